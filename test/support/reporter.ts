// mocha's spec reporter plus one machine-readable line at the end, which
// scripts/test-all sums over all suites:
//   DMTHIN-STATS {"suite":"host","passed":N,"failed":N,"skipped":N}
// Skipped tests are counted on their own, never as passed.
import Mocha from 'mocha';

class DmthinReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    runner.on(Mocha.Runner.constants.EVENT_TEST_PASS, () => passed++);
    runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, () => failed++);
    runner.on(Mocha.Runner.constants.EVENT_TEST_PENDING, () => skipped++);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const suite = process.env['DMTHIN_SUITE'] ?? 'tests';
      process.stdout.write(`DMTHIN-STATS ${JSON.stringify({ suite, passed, failed, skipped })}\n`);
    });
  }
}

export = DmthinReporter;
