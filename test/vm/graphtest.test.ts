// moby 20.10.24's graphtest conformance tests (daemon/graphdriver/graphtest)
// on dmthin, through moby's own GraphDriver plugin proxy: the Go binary
// test/go/graphtest (built on the host by test/go/build) is the client,
// as dockerd would be. One mocha test per Go test, each in its own
// process against one dmthin; a Go failure fails it with Go's output.
import assert from 'node:assert/strict';
import path from 'node:path';
import { tempHome } from '../support/deviceset';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { goTestOutcome, graphtestMissing, listGraphtest, runGraphtest, type GraphtestRun } from '../support/graphtest';
import { LISTENING, startPlugin, type PluginProcess } from '../support/plugin-process';
import { printLogTail } from '../support/processes';

/** Small and quick to make; the plugin has them from its start, and Init sends them again. */
const OPTIONS = ['dm.loopdatasize=4G', 'dm.loopmetadatasize=128M', 'dm.basesize=512M'];

/** Listed from the binary itself, so a test added in Go appears here; none when the binary is missing. */
const goTests = graphtestMissing() === null && process.env['DMTHIN_IN_VM'] === '1' ? listGraphtest('^Test') : [];

describe('moby graphtest conformance: dmthin through the plugin proxy (VM)', function () {
  this.timeout(10 * 60_000);
  let plugin: PluginProcess | undefined;
  let logFile = '';
  let run: GraphtestRun;

  before(async function () {
    requireVm(this);
    requireRoot(this);
    const missing = graphtestMissing();
    if (missing !== null) throw new Error(missing);
    const top = await tempHome('graphtest');
    const socket = path.join(top, 'dmthin.sock');
    logFile = path.join(top, 'dmthin.log');
    plugin = startPlugin({ DMTHIN_ROOT: path.join(top, 'state'), DMTHIN_SOCKET: socket, DMTHIN_STORAGE_OPTS: OPTIONS.join(' ') }, logFile);
    await plugin.waitFor(LISTENING);
    run = { driver: 'dmthin', options: OPTIONS, tmpDir: top, socket };
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && logFile !== '') await printLogTail(logFile, 40);
  });

  after(async () => {
    const exit = await plugin?.stop();
    if (plugin !== undefined) assert.equal(exit?.code, 0, 'dmthin stops cleanly on SIGTERM');
  });

  it('the binary lists moby graphtest conformance tests', () => {
    assert.ok(goTests.length > 0, 'test/go/graphtest has Test functions');
  });

  for (const test of goTests) {
    it(`graphtest ${test}`, async function () {
      const { code, output } = await runGraphtest(run, ['-test.run', `^${test}$`, '-test.v', '-test.count', '1']);
      const outcome = goTestOutcome(output, test);
      if (outcome === 'SKIP' && code === 0) skipBecause(this, `the Go test skipped itself:\n${output.trim()}`);
      assert.ok(outcome === 'PASS' && code === 0, `Go test ${test} ${outcome ?? 'did not finish'} (exit ${String(code)}):\n${output.trim()}`);
    });
  }
});
