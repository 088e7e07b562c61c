// The dmthin command as a user meets it: --help and --version answer
// without loading the native addon or starting anything, exit codes a
// script can test, and the daemon's log lines on the right streams.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit';
import { dm } from '../../src/devmapper';
import { resolvedFormat } from '../../src/shared/log';
import { skipBecause } from '../support/env';
import { startLogged } from '../support/processes';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');
const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'dmthin');
const VERSION = (JSON.parse(require('node:fs').readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

describe('the dmthin command', () => {
  let dir = '';
  /** A preload that reports, at exit, every module of dmthin's that touches the kernel. */
  let probe = '';
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-cli-'));
    probe = path.join(dir, 'probe.js');
    await fsp.writeFile(
      probe,
      `process.on('exit', () => {
        const loaded = Object.keys(require.cache).filter((f) => /native[\\\\/]binding\\.js$|dmthin\\.node$|[\\\\/]main\\.js$/.test(f));
        process.stderr.write('LOADED ' + JSON.stringify(loaded) + '\\n');
      });`,
    );
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  /** Runs `dmthin ARGS` with the probe; what it printed and which kernel-facing modules it loaded. */
  const run = (args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string; loaded: string[] } => {
    const result = spawnSync(process.execPath, ['--require', probe, CLI, ...args], {
      env: { ...process.env, DMTHIN_SOCKET: path.join(dir, 'none.sock'), DMTHIN_ROOT: path.join(dir, 'none'), ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });
    const line = /^LOADED (.*)$/m.exec(result.stderr);
    return {
      status: result.status,
      stdout: result.stdout,
      stderr: result.stderr.replace(/^LOADED .*\n/m, ''),
      loaded: line?.[1] === undefined ? ['(no probe line)'] : (JSON.parse(line[1]) as string[]),
    };
  };

  it('prints --help and --version and exits 0, without the native addon and without starting the daemon', () => {
    const help = run(['--help']);
    assert.equal(help.status, EXIT.OK, help.stderr);
    assert.match(help.stdout, /^Usage: dmthin \[options\] \[command\]/);
    assert.match(help.stdout, /serve\s+run the plugin daemon/);
    assert.match(help.stdout, /Exit codes: 0 /);
    assert.deepEqual(help.loaded, []);
    const version = run(['--version']);
    assert.equal(version.status, EXIT.OK);
    assert.equal(version.stdout, `${VERSION}\n`);
    assert.deepEqual(version.loaded, []);
    const serveHelp = run(['serve', '--help']);
    assert.equal(serveHelp.status, EXIT.OK);
    assert.match(serveHelp.stdout, /^Usage: dmthin serve/);
    assert.deepEqual(serveHelp.loaded, []);
    assert.equal(run(['help', 'serve']).stdout, serveHelp.stdout);
  });

  it('runs as bin/dmthin, the package\'s bin, from any directory', () => {
    const result = spawnSync(BIN, ['--version'], { cwd: '/', encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, EXIT.OK, result.stderr);
    assert.equal(result.stdout, `${VERSION}\n`);
  });

  it('exits 2 on bad usage, saying what was wrong on stderr, and starts nothing', () => {
    for (const [args, said] of [
      [['bogus'], /unknown command 'bogus'/],
      [['--bogus'], /unknown option '--bogus'/],
      [['serve', 'extra'], /too many arguments for 'serve'/],
    ] as Array<[string[], RegExp]>) {
      const result = run(args);
      assert.equal(result.status, EXIT.USAGE, args.join(' '));
      assert.match(result.stderr, said);
      assert.equal(result.stdout, '');
      assert.deepEqual(result.loaded, []);
    }
    const badSetting = run(['serve'], { DMTHIN_LOG_FORMAT: 'xml' });
    assert.equal(badSetting.status, 2);
    assert.match(badSetting.stderr, /^dmthin: DMTHIN_LOG_FORMAT "xml" must be one of auto, text, json/);
  });

  it('status, check and gc: --help without the addon; exit 3 and a clear line when nothing answers on the socket', () => {
    for (const sub of ['status', 'check', 'gc']) {
      const help = run([sub, '--help']);
      assert.equal(help.status, EXIT.OK, help.stderr);
      assert.match(help.stdout, new RegExp(`^Usage: dmthin ${sub} \\[options\\]`));
      assert.match(help.stdout, /--json +print the report as JSON/);
      assert.deepEqual(help.loaded, []);
      const down = run([sub]);
      assert.equal(down.status, EXIT.UNREACHABLE, down.stderr);
      assert.match(down.stderr, /^dmthin: nothing answers on \S+none\.sock: dmthin is not running there/);
      assert.deepEqual(down.loaded, [], 'the command side never loads the addon');
    }
    assert.match(run(['gc', '--help']).stdout, /-n, --dry-run/);
    assert.match(run(['check', '--help']).stdout, /--thin-check/);
    const noMetadata = run(['check', '--thin-check']);
    assert.equal(noMetadata.status, EXIT.USAGE);
    assert.match(noMetadata.stderr, /no pool metadata at \S+none\/devicemapper\/metadata: give --metadata DEVICE/);
    assert.equal(run(['check', '--metadata', '/x']).status, EXIT.USAGE, '--metadata alone is bad usage');
    const growNothing = run(['pool', 'grow']);
    assert.equal(growNothing.status, EXIT.USAGE);
    assert.match(growNothing.stderr, /pool grow: give --data SIZE and\/or --metadata SIZE/);
    const growBad = run(['pool', 'grow', '--data', 'lots']);
    assert.equal(growBad.status, EXIT.USAGE);
    assert.match(growBad.stderr, /pool grow --data: invalid size "lots"/);
    assert.match(run(['pool', 'grow', '--help']).stdout, /--metadata <size>/);
  });

  it('status, check and gc against a daemon without device-mapper: no pool, said so, exit 1; gc removes nothing', async function () {
    if (dm.driverLoaded()) skipBecause(this, 'this kernel has device-mapper; test/vm/ops.test.ts covers a real pool');
    const root = path.join(dir, 'root-admin');
    const socket = path.join(dir, 'admin.sock');
    const env = { ...process.env, DMTHIN_ROOT: root, DMTHIN_SOCKET: socket, DMTHIN_SNAPSHOTTER_SOCKET: 'off' };
    const started = startLogged(process.execPath, [CLI, 'serve'], undefined, env);
    try {
      await started.waitFor('dmthin listening');
      const status = run(['status', '--json'], { DMTHIN_SOCKET: socket });
      assert.equal(status.status, EXIT.PROBLEM, status.stderr);
      const report = JSON.parse(status.stdout) as { pool: unknown; poolError: string; socket: string };
      assert.equal(report.pool, null);
      assert.match(report.poolError, /device-mapper is not available/);
      assert.equal(report.socket, socket);
      assert.match(run(['status'], { DMTHIN_SOCKET: socket }).stdout, /^pool +none: device-mapper is not available/m);
      const check = run(['check'], { DMTHIN_SOCKET: socket });
      assert.equal(check.status, EXIT.PROBLEM);
      assert.match(check.stdout, /^  pool-health +\S+: device-mapper is not available/m);
      const gc = run(['gc', '--json'], { DMTHIN_SOCKET: socket });
      assert.equal(gc.status, EXIT.OK, gc.stderr);
      assert.deepEqual((JSON.parse(gc.stdout) as { removed: unknown[] }).removed, []);
      const refused = run(['check', '--thin-check'], { DMTHIN_SOCKET: socket });
      assert.equal(refused.status, EXIT.USAGE);
      assert.match(refused.stderr, /dmthin is running on \S+: thin_check needs the pool stopped/);
    } finally {
      assert.equal((await started.stop()).code, 0, started.output());
    }
  });

  it('writes text lines on a terminal and JSON lines otherwise', () => {
    assert.equal(resolvedFormat('auto', true), 'text');
    assert.equal(resolvedFormat('auto', false), 'json');
    assert.equal(resolvedFormat('json', true), 'json');
    assert.equal(resolvedFormat('text', false), 'text');
  });

  for (const format of ['json', 'text'] as const) {
    it(`serves with no subcommand, logs ${format} lines, errors on stderr only, and stops on SIGTERM with exit 0`, async () => {
      const root = path.join(dir, `root-${format}`);
      await fsp.mkdir(root, { recursive: true });
      // An unreadable last Init is logged as an error, and the daemon goes on.
      await fsp.writeFile(path.join(root, 'graphdriver.json'), '{not json');
      const stdoutFile = path.join(dir, `stdout-${format}`);
      const env = { ...process.env, DMTHIN_ROOT: root, DMTHIN_SOCKET: path.join(dir, `${format}.sock`), DMTHIN_LOG_FORMAT: format, DMTHIN_LOG_LEVEL: 'info' };
      const started = startLogged('/bin/sh', ['-c', `exec "$0" "$1" 2>"$2"`, process.execPath, CLI, stdoutFile.replace('stdout', 'stderr')], undefined, env);
      await started.waitFor('dmthin listening');
      const exit = await started.stop();
      assert.equal(exit.code, 0, `${JSON.stringify(exit)} ${started.output()}`);
      const stdout = started.output();
      const stderr = await fsp.readFile(stdoutFile.replace('stdout', 'stderr'), 'utf8');
      const outLines = stdout.trim().split('\n');
      const errLines = stderr.trim().split('\n');
      assert.equal(errLines.length, 1, stderr);
      assert.ok(outLines.some((l) => l.includes('stopped')), 'a last line says it stopped');
      if (format === 'json') {
        for (const line of [...outLines, ...errLines]) JSON.parse(line);
        assert.equal((JSON.parse(errLines[0] ?? '') as { level: string }).level, 'error');
        assert.ok(outLines.every((l) => (JSON.parse(l) as { level: string }).level !== 'error'));
      } else {
        const shape = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (ERROR|WARN |INFO |DEBUG) \S/;
        for (const line of [...outLines, ...errLines]) assert.match(line, shape);
        assert.match(errLines[0] ?? '', /^\S+ ERROR cannot read the last GraphDriver\.Init err=/);
        assert.match(stdout, / INFO  dmthin listening socket=\S+dmthin-cli-\S+text\.sock /);
      }
    });
  }
});
