// Fuzzes the layer tar reader against Go's archive/tar: N seeded mutations
// of the tar corpus, each listed by dmthin's reader (in a worker, bounded
// by a deadline) and by Go's (test/go/tarview), which must agree.
//
//   node dist/bench/fuzz-tar.js [--cases N] [--seed S] [--from I] [--apply]
//
// With --apply (as root) each case is also applied to a layer in a sandbox
// under /var/tmp, and must change nothing outside it.
// Prints the figures and every finding (seed and case index reproduce it:
// `--seed S --from I --cases 1`); exits 1 if there is any.
import { mkdtempSync, rmSync } from 'node:fs';
import { goMissing } from '../test/support/go-tarview';
import { fuzzTars } from '../test/support/tar-fuzz';
import { applyInSandbox } from '../test/support/tar-fuzz-apply';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value < 0) {
    console.error(`fuzz-tar: --${name} needs a whole number, got ${process.argv[at + 1]}`);
    process.exit(2);
  }
  return value;
}

async function main(): Promise<void> {
  const missing = goMissing();
  if (missing) {
    console.error(`fuzz-tar: ${missing}`);
    process.exit(2);
  }
  const cases = option('cases', 10_000);
  const seed = option('seed', Date.now() % 1_000_000);
  const from = option('from', 0);
  const dir = mkdtempSync('/var/tmp/dmthin-fuzz-tar.');
  const started = Date.now();
  try {
    const report = await fuzzTars({
      cases,
      seed,
      from,
      dir,
      ...(process.argv.includes('--apply') ? { alsoCheck: (c) => applyInSandbox(c, dir) } : {}),
      progress: (done) => process.stderr.write(`\r${done}/${cases} cases`),
    });
    process.stderr.write('\n');
    for (const finding of report.findings) console.log(`FINDING ${finding}`);
    console.log(`${report.summary} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    process.exitCode = report.findings.length > 0 ? 1 : 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
