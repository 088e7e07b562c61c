// End to end: `dmthin migrate` takes a data root that dockerd 20.10 ran on
// Docker's in-tree devicemapper driver (loop-lvm) to dmthin. One dockerd
// sequence: devicemapper makes an image, a tag and a container with a file;
// migrate refuses while dockerd runs and on a root that is not a
// devicemapper one; --dry-run changes nothing; a SIGKILL at every step
// before the commit point leaves the old state whole, after it a rerun
// goes on; then dockerd on dmthin (legacy plugin socket) sees it all.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { tempHome } from '../support/deviceset';
import { DOCKERD_26, Dockerd, engineMissing, haveDockerd } from '../support/dockerd';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { CLI, DmthinProcess } from '../support/plugin-process';
import { printLogTail, waitUntil } from '../support/processes';
import { STORAGE_OPTS } from '../support/workload';

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `dmthin migrate ARGS`, maybe armed to kill itself at a failpoint. */
function runMigrate(args: string[], failpoint = ''): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'migrate', ...args], { env: { ...process.env, DMTHIN_FAILPOINT: failpoint } }, (err, stdout, stderr) => {
      const e = err as { code?: number | string; signal?: NodeJS.Signals } | null;
      process.stdout.write(`      dmthin migrate${failpoint === '' ? '' : ` (killed at ${failpoint})`}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

/** Every path under `dirs` with its type, size, mode and mtime: what "nothing changed" compares. */
async function treeState(...dirs: string[]): Promise<string[]> {
  const lines: string[] = [];
  async function walk(p: string): Promise<void> {
    const st = await fsp.lstat(p).catch(() => null);
    if (st === null) return;
    lines.push(`${p} ${st.mode.toString(8)} ${st.isDirectory() ? '-' : st.size} ${st.mtimeMs}`);
    if (st.isDirectory()) for (const name of await fsp.readdir(p)) await walk(path.join(p, name));
  }
  for (const d of dirs) await walk(d);
  return lines.sort();
}

const STORAGE_ARGS = STORAGE_OPTS.flatMap((o) => ['--storage-opt', o]);
const CONTAINER = 'keeper';
// Backquoted: the failpoint registry (test/unit/failpoints.test.ts) reads quoted a:b names here as failpoints.
const IMAGE = `bb:latest`;
const TAG = `bb:migrated`;

describe('dmthin migrate: a devicemapper data root of dockerd 20.10 onto dmthin (VM)', function () {
  this.timeout(15 * 60_000);
  let top: string;
  let daemon: Dockerd;
  let root: string;
  let plugin: DmthinProcess | undefined;
  let args: string[];

  before(async function () {
    requireVm(this);
    requireRoot(this);
    if (!haveDockerd()) skipBecause(this, 'dockerd is not installed (scripts/setup --test installs docker.io)');
    top = await tempHome('migrate');
    root = path.join(top, 'dmthin-root');
    daemon = new Dockerd(path.join(top, 'daemon'), { driver: 'devicemapper', args: ['--storage-driver=devicemapper', ...STORAGE_ARGS] });
    args = ['--data-root', daemon.dataRoot, '--root', root];
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    await printLogTail(daemon.logFile);
    if (plugin !== undefined) await printLogTail(plugin.logFile, 60);
  });

  after(async () => {
    await daemon?.stop();
    await plugin?.stop();
  });

  const oldStateIntact = async (): Promise<void> => {
    const d = daemon.dataRoot;
    assert.ok(existsSync(path.join(d, 'devicemapper', 'devicemapper', 'data')), 'the loop data file is where the in-tree driver left it');
    assert.ok(existsSync(path.join(d, 'devicemapper', 'metadata', 'base')), 'the in-tree device records are there');
    assert.ok(existsSync(path.join(d, 'image', 'devicemapper', 'repositories.json')), 'the image database is there');
    assert.equal(existsSync(path.join(d, 'image', 'dmthin')), false, 'no image database under the new name');
    for (const id of await fsp.readdir(path.join(d, 'containers'))) {
      const config = JSON.parse(await fsp.readFile(path.join(d, 'containers', id, 'config.v2.json'), 'utf8')) as { Driver: string };
      assert.equal(config.Driver, 'devicemapper', `container ${id} still names devicemapper`);
    }
  };

  it('dockerd 20.10 on devicemapper: an image, a tag, a container that wrote a file', async () => {
    await daemon.start();
    await daemon.importBusybox(IMAGE);
    await daemon.docker('tag', IMAGE, TAG);
    const out = await daemon.docker('run', '--name', CONTAINER, '--network', 'none', IMAGE, 'sh', '-c', 'echo kept-across > /kept.txt; cat /kept.txt');
    assert.equal(out.trim(), 'kept-across');
  });

  it('refuses while dockerd runs, and changes nothing', async () => {
    const r = await runMigrate(args);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /dockerd \(or something else\) is using .*stop it first, nothing was changed/);
    await daemon.stop();
    // dockerd's own files change as it stops: what migrate could have touched is checked.
    assert.equal(existsSync(root), false, 'no dmthin root was made');
    await oldStateIntact();
  });

  it('refuses a data root that is not a devicemapper one, and changes nothing', async () => {
    const other = path.join(top, 'not-devicemapper');
    await fsp.mkdir(path.join(other, 'image', 'overlay2'), { recursive: true });
    const before = await treeState(other);
    const r = await runMigrate(['--data-root', other, '--root', path.join(top, 'other-root')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not a data root of Docker's devicemapper driver.*nothing was changed/);
    assert.deepEqual(await treeState(other), before);
    assert.equal(existsSync(path.join(top, 'other-root')), false);
  });

  it('--dry-run prints the plan and changes nothing', async () => {
    const before = await treeState(daemon.dataRoot, root);
    const r = await runMigrate([...args, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pool: move the loop files .*renamed: no data is copied/);
    assert.match(r.stdout, /containers: set the storage driver of 1 containers to dmthin/);
    assert.match(r.stdout, /dry run: nothing changed/);
    assert.deepEqual(await treeState(daemon.dataRoot, root), before);
  });

  it('a SIGKILL at each step: before the commit point the old state is whole, after it a rerun goes on', async () => {
    for (const failpoint of ['migrate:staging', 'migrate:staged']) {
      const r = await runMigrate(args, failpoint);
      assert.equal(r.signal, 'SIGKILL', `killed at ${failpoint}: ${r.stdout}${r.stderr}`);
      await oldStateIntact();
    }
    const afterCommit = ['migrate:committed', 'migrate:pool-moved', 'migrate:metadata-placed', 'migrate:images-placed', 'migrate:container-placed', 'migrate:old-set-aside'];
    for (const failpoint of afterCommit) {
      const r = await runMigrate(args, failpoint);
      assert.equal(r.signal, 'SIGKILL', `killed at ${failpoint}: ${r.stdout}${r.stderr}`);
    }
    // Interrupted after its commit point: dmthin refuses to open the half-moved pool.
    const early = new DmthinProcess(root, path.join(top, 'early.log'), { DMTHIN_STORAGE_OPTS: STORAGE_OPTS.join(' ') });
    await early.start();
    try {
      await waitUntil('dmthin to refuse the unfinished migration', async () => (await fsp.readFile(early.logFile, 'utf8')).includes('interrupted after its commit point'), 60_000);
    } finally {
      await early.stop();
    }
    const done = await runMigrate(args);
    assert.equal(done.code, 0, done.stdout + done.stderr);
    assert.match(done.stdout, /finishing the migration .* interrupted after its commit point/);
    assert.match(done.stdout, /to go back to the devicemapper driver/);
    const again = await runMigrate(args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /was migrated to dmthin already/);
    const d = daemon.dataRoot;
    assert.ok(existsSync(path.join(root, 'devicemapper', 'data')), 'the loop files moved to the dmthin root');
    assert.ok(existsSync(path.join(root, 'metadata', 'base')));
    assert.ok(existsSync(path.join(d, 'image', 'dmthin', 'repositories.json')));
    assert.ok(existsSync(path.join(d, 'devicemapper.migrated-to-dmthin', 'metadata', 'base')), 'the old records are set aside');
    assert.equal(existsSync(path.join(root, '.migrate')), false);
  });

  it('dockerd 20.10 on dmthin lists the image, its tag and the container with its file; docker start and a new container work', async () => {
    plugin = new DmthinProcess(root, path.join(top, 'dmthin.log'), { DMTHIN_STORAGE_OPTS: STORAGE_OPTS.join(' ') });
    await plugin.start();
    await daemon.start({ driver: 'dmthin', args: ['--experimental', '-s', 'dmthin', ...STORAGE_ARGS] });
    const images = (await daemon.docker('images', '--format', '{{.Repository}}:{{.Tag}}')).split('\n');
    assert.ok(images.includes(IMAGE) && images.includes(TAG), `both tags listed: ${images.join(' ')}`);
    assert.match(await daemon.docker('ps', '-a', '--format', '{{.Names}}'), new RegExp(`^${CONTAINER}$`, 'm'));
    assert.match(await daemon.docker('diff', CONTAINER), /^A \/kept\.txt$/m, 'the writable layer came along');
    const copied = path.join(top, 'kept.txt');
    await daemon.docker('cp', `${CONTAINER}:/kept.txt`, copied);
    assert.equal((await fsp.readFile(copied, 'utf8')).trim(), 'kept-across');
    assert.equal((await daemon.docker('start', '-a', CONTAINER)).trim(), 'kept-across');
    assert.equal((await daemon.docker('run', '--rm', '--network', 'none', TAG, 'sh', '-c', 'echo new-container')).trim(), 'new-container');
  });

  it('dockerd 26 on dmthin starts on the migrated root and sees the same', async function () {
    const missing = engineMissing(DOCKERD_26);
    if (missing !== null) skipBecause(this, missing);
    await daemon.stop();
    const d26 = new Dockerd(daemon.dir, { driver: 'dmthin', args: ['--experimental', '-s', 'dmthin', ...STORAGE_ARGS] }, DOCKERD_26);
    try {
      await d26.start();
      assert.match(await d26.docker('images', '--format', '{{.Repository}}:{{.Tag}}'), /^bb:migrated$/m);
      assert.equal((await d26.docker('start', '-a', CONTAINER)).trim(), 'kept-across');
    } finally {
      await d26.stop();
    }
  });
});
