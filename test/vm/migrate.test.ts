// End to end: `dmthin migrate` takes a data root that dockerd 20.10 ran on
// Docker's in-tree devicemapper driver to dmthin, as the issue states it.
// Loop-lvm, onto dockerd 26: devicemapper builds and imports images, runs
// one container that keeps running and one that stops, both with data in
// their writable layers, a named volume; each container's export is kept.
// migrate refuses while dockerd runs and on a root that is not a
// devicemapper one; --dry-run changes nothing; a SIGKILL at every step
// before the commit point leaves the old state whole, after it a rerun goes
// on; then dockerd 26 on dmthin sees the same images and containers, the
// same exports, the volume's data, and commit/rmi/rm work.
// dm.thinpooldev, onto dockerd 20.10: a prepared thin pool is adopted as it
// is, under the managed plugin's driver name (dmthin:latest).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { dm } from '../../src/devmapper';
import { tempHome } from '../support/deviceset';
import { DOCKERD_26, Dockerd, engineMissing, haveDockerd } from '../support/dockerd';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { CLI, DmthinProcess } from '../support/plugin-process';
import { TestPool } from '../support/pool';
import { printLogTail, waitUntil } from '../support/processes';
import { compareListings, listTarFile } from '../support/tar-listing';
import { STORAGE_OPTS } from '../support/workload';

const execFileAsync = promisify(execFile);

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
// Backquoted: the failpoint registry (test/unit/failpoints.test.ts) reads quoted a:b names here as failpoints.
const IMAGE = `bb:latest`;
const TAG = `bb:migrated`;
const BUILT = `mig/built:1`;
const COMMITTED = `mig/committed:1`;
/** Keeps running (restarted by dockerd), its data written once. */
const RUNNING = 'mig-running';
/** Ran once and stopped; writes the named volume too. */
const STOPPED = 'mig-stopped';
const VOLUME = 'mig-data';
// Idempotent: a restart (dockerd's or `docker start`) writes nothing new, so the exports stay comparable.
const RUNNING_SCRIPT = '[ -e /run-data ] || { mkdir /run-data; echo running-data > /run-data/note; dd if=/dev/urandom of=/run-data/blob bs=64k count=16 2>/dev/null; rm /bin/ls; }; exec sleep 100000';
const STOPPED_SCRIPT = '[ -e /stopped.txt ] || { echo stopped-data > /stopped.txt; dd if=/dev/urandom of=/blob bs=64k count=8 2>/dev/null; rm -r /built; echo volume-data > /data/v.txt; }; cat /stopped.txt';
const POOL_SCRIPT = '[ -e /stopped.txt ] || echo stopped-data > /stopped.txt; cat /stopped.txt';

const sortedLines = (text: string): string[] => text.split('\n').filter((l) => l !== '').sort();

/** What a user compares before and after: image ids with their tags, containers with their images. */
async function inventory(d: Dockerd): Promise<{ images: string[]; containers: string[] }> {
  return {
    images: sortedLines(await d.docker('images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}')),
    containers: sortedLines(await d.docker('ps', '-a', '--format', '{{.ID}} {{.Names}} {{.Image}}')),
  };
}

describe('dmthin migrate: dockerd 20.10 on loop-lvm devicemapper, then dockerd 26 on dmthin (VM)', function () {
  this.timeout(15 * 60_000);
  let top: string;
  let daemon: Dockerd;
  let root: string;
  let plugin: DmthinProcess | undefined;
  let d26: Dockerd | undefined;
  let args: string[];
  let inventoryBefore: { images: string[]; containers: string[] };
  const exportsBefore = new Map<string, string>();

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
    await printLogTail(d26?.logFile ?? daemon.logFile);
    if (plugin !== undefined) await printLogTail(plugin.logFile, 60);
  });

  after(async () => {
    await d26?.stop();
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

  it('dockerd 20.10 on devicemapper: imported and built images, a running and a stopped container with data, a named volume; each export kept', async () => {
    await daemon.start();
    await daemon.importBusybox(IMAGE);
    await daemon.docker('tag', IMAGE, TAG);
    const context = path.join(top, 'build');
    await fsp.mkdir(context);
    await fsp.writeFile(path.join(context, 'Dockerfile'), `FROM ${IMAGE}\nRUN mkdir /built && echo built > /built/file\n`);
    await daemon.dockerWith({ DOCKER_BUILDKIT: '0' }, 'build', '-q', '-t', BUILT, context);
    await daemon.docker('volume', 'create', VOLUME);
    await daemon.docker('run', '-d', '--name', RUNNING, '--restart', 'always', '--network', 'none', BUILT, 'sh', '-c', RUNNING_SCRIPT);
    const out = await daemon.docker('run', '--name', STOPPED, '--network', 'none', '-v', `${VOLUME}:/data`, BUILT, 'sh', '-c', STOPPED_SCRIPT);
    assert.equal(out.trim(), 'stopped-data');
    await waitUntil('the running container to write its data', async () => (await daemon.docker('exec', RUNNING, 'cat', '/run-data/note').catch(() => '')).trim() === 'running-data');
    for (const name of [RUNNING, STOPPED]) {
      const file = path.join(top, `export-${name}-before.tar`);
      await daemon.docker('export', '-o', file, name);
      exportsBefore.set(name, file);
    }
    inventoryBefore = await inventory(daemon);
    assert.equal(inventoryBefore.containers.length, 2);
    assert.equal(inventoryBefore.images.length, 3, inventoryBefore.images.join('\n'));
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
    assert.match(r.stdout, /containers: set the storage driver of 2 containers to dmthin/);
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

  describe('dockerd 26 on dmthin, on the migrated root', function () {
    before(async function () {
      const missing = engineMissing(DOCKERD_26);
      if (missing !== null) skipBecause(this, missing);
      plugin = new DmthinProcess(root, path.join(top, 'dmthin.log'), { DMTHIN_STORAGE_OPTS: STORAGE_OPTS.join(' ') });
      await plugin.start();
      d26 = new Dockerd(daemon.dir, { driver: 'dmthin', args: ['--experimental', '-s', 'dmthin', ...STORAGE_ARGS] }, DOCKERD_26);
      await d26.start();
    });
    const docker = (...a: string[]): Promise<string> => {
      assert.ok(d26 !== undefined);
      return d26.docker(...a);
    };

    it('lists the same images and containers; the running one runs again; docker info shows the pool', async () => {
      assert.ok(d26 !== undefined);
      assert.deepEqual(await inventory(d26), inventoryBefore);
      await waitUntil('dockerd 26 to restart the running container', async () => (await docker('inspect', '-f', '{{.State.Running}}', RUNNING)).trim() === 'true');
      assert.equal((await docker('exec', RUNNING, 'cat', '/run-data/note')).trim(), 'running-data');
      const info = await docker('info');
      assert.match(info, /Storage Driver: dmthin/);
      assert.match(info, /Pool Name: \S+/);
      assert.match(info, new RegExp(`Data loop file: ${path.join(root, 'devicemapper', 'data')}`));
    });

    it('exports each container as it was exported before the migration', async () => {
      assert.ok(d26 !== undefined);
      for (const [name, beforeFile] of exportsBefore) {
        const afterFile = path.join(top, `export-${name}-after.tar`);
        await docker('export', '-o', afterFile, name);
        const differences = compareListings(await listTarFile(beforeFile), await listTarFile(afterFile), {
          labels: ['devicemapper 20.10', 'dmthin 26'],
          // Every entry, its modification time included: the same layers, not copies.
          stableBefore: Number.MAX_SAFE_INTEGER,
        });
        assert.deepEqual(differences, [], `the export of ${name} differs:\n  ${differences.join('\n  ')}`);
      }
    });

    it('starts the stopped container; the named volume kept its data', async () => {
      assert.equal((await docker('start', '-a', STOPPED)).trim(), 'stopped-data');
      assert.equal((await docker('run', '--rm', '--network', 'none', '-v', `${VOLUME}:/data`, IMAGE, 'cat', '/data/v.txt')).trim(), 'volume-data');
    });

    it('commits, removes containers and images (the migrated layers too)', async () => {
      await docker('commit', STOPPED, COMMITTED);
      assert.equal((await docker('run', '--rm', '--network', 'none', COMMITTED, 'cat', '/stopped.txt')).trim(), 'stopped-data');
      await docker('rm', '-f', RUNNING, STOPPED);
      await docker('rmi', COMMITTED, BUILT);
      assert.deepEqual(sortedLines(await docker('images', '--format', '{{.Repository}}:{{.Tag}}')), [IMAGE, TAG].sort());
      assert.equal((await docker('run', '--rm', '--network', 'none', TAG, 'sh', '-c', 'echo new-container')).trim(), 'new-container');
    });
  });
});

describe('dmthin migrate: dockerd 20.10 on an existing pool (dm.thinpooldev), then dockerd 20.10 on dmthin as the managed plugin names it (VM)', function () {
  this.timeout(10 * 60_000);
  // The name dockerd gives the managed plugin's driver (-s dmthin:latest): its image database and containers' Driver.
  const DRIVER = `dmthin:latest`;
  let top: string;
  let pool: TestPool | undefined;
  let daemon: Dockerd;
  let plugin: DmthinProcess | undefined;
  let inventoryBefore: { images: string[]; containers: string[] };
  let migrateOutput = '';
  let poolArgs: string[] = [];

  before(async function () {
    requireVm(this);
    requireRoot(this);
    if (!haveDockerd()) skipBecause(this, 'dockerd is not installed (scripts/setup --test installs docker.io)');
    top = await tempHome('migrate-pool');
    pool = await TestPool.create({ dataBytes: 4096 * 1024 * 1024 });
    poolArgs = ['--storage-driver=devicemapper', '--storage-opt', `dm.thinpooldev=${pool.name}`, '--storage-opt', 'dm.basesize=1G', '--storage-opt', 'dm.override_udev_sync_check=true'];
    daemon = new Dockerd(path.join(top, 'daemon'), {
      driver: 'devicemapper',
      args: poolArgs,
    });
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    await printLogTail(daemon.logFile);
    if (plugin !== undefined) await printLogTail(plugin.logFile, 60);
  });

  after(async () => {
    await daemon?.stop();
    await plugin?.stop();
    await pool?.destroy();
  });

  it('dockerd 20.10 on devicemapper with dm.thinpooldev: an image and a stopped container with data', async () => {
    await daemon.start();
    await daemon.importBusybox(IMAGE);
    assert.equal((await daemon.docker('run', '--name', STOPPED, '--network', 'none', IMAGE, 'sh', '-c', POOL_SCRIPT)).trim(), 'stopped-data');
    inventoryBefore = await inventory(daemon);
    await daemon.stop();
  });

  it(`migrate adopts the pool as it is, under the driver name ${DRIVER}`, async () => {
    assert.ok(pool !== undefined);
    const root = path.join(top, 'dmthin-root');
    const dataFile = path.join(pool.dir, 'data');
    const sizeBefore = (await fsp.stat(dataFile)).size;
    const r = await runMigrate(['--data-root', daemon.dataRoot, '--root', root, '--thinpooldev', pool.name, '--driver-name', DRIVER]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    migrateOutput = r.stdout;
    assert.match(r.stdout, new RegExp(`pool: keep the existing pool ${pool.name}`));
    assert.match(r.stdout, new RegExp(`install the managed plugin as ${DRIVER} with state.source=${root} DMTHIN_STORAGE_OPTS="dm.thinpooldev=${pool.name}"`));
    assert.match(r.stdout, /to go back to the devicemapper driver/);
    assert.ok((await dm.info(pool.name)).exists, 'the pool stays active where it was');
    assert.equal((await fsp.stat(dataFile)).size, sizeBefore);
    assert.equal(existsSync(path.join(root, 'devicemapper')), false, 'nothing was copied into the dmthin root');
    assert.ok(existsSync(path.join(daemon.dataRoot, 'image', DRIVER, 'repositories.json')), `the image database is under image/${DRIVER}`);
    for (const id of await fsp.readdir(path.join(daemon.dataRoot, 'containers'))) {
      const config = JSON.parse(await fsp.readFile(path.join(daemon.dataRoot, 'containers', id, 'config.v2.json'), 'utf8')) as { Driver: string };
      assert.equal(config.Driver, DRIVER);
    }
    // dmthin on the socket dockerd looks up for that name.
    plugin = new DmthinProcess(root, path.join(top, 'dmthin.log'), {
      DMTHIN_STORAGE_OPTS: `dm.thinpooldev=${pool.name} dm.basesize=1G`,
      DMTHIN_SOCKET: `/run/docker/plugins/${DRIVER}.sock`,
    });
    await plugin.start();
  });

  it(`dockerd 20.10 -s ${DRIVER} lists the same image and container, which starts with its data`, async () => {
    await daemon.start({ driver: DRIVER, args: ['--experimental', '-s', DRIVER] });
    assert.deepEqual(await inventory(daemon), inventoryBefore);
    assert.equal((await daemon.docker('start', '-a', STOPPED)).trim(), 'stopped-data');
    assert.equal((await daemon.docker('run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'echo new-container')).trim(), 'new-container');
  });

  it('goes back as the command printed: dockerd 20.10 on devicemapper sees the container again', async () => {
    await daemon.stop();
    await plugin?.stop();
    plugin = undefined;
    const lines = migrateOutput.split('\n');
    const from = lines.findIndex((l) => l.startsWith('to go back to the devicemapper driver'));
    const commands = lines.slice(from + 1).filter((l) => l.startsWith('  ') && !l.trim().startsWith('and start'));
    assert.ok(from >= 0 && commands.length >= 4, `the commands to go back:\n${migrateOutput}`);
    for (const command of commands) await execFileAsync('sh', ['-ec', command.trim()]);
    await daemon.start({ driver: 'devicemapper', args: poolArgs });
    assert.deepEqual((await inventory(daemon)).containers, inventoryBefore.containers);
    assert.equal((await daemon.docker('start', '-a', STOPPED)).trim(), 'stopped-data');
  });
});
