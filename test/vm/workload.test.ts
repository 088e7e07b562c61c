// End to end: the docker workload (test/support/workload.ts) in one VM run
// on dmthin under each dockerd of the matrix (Debian 13's 26 by default,
// Debian 12's 20.10 too with DMTHIN_DOCKERD_MATRIX=full; dmthin as a legacy
// socket plugin, `--experimental -s dmthin`),
// against a dockerd 20.10 on Docker's in-tree devicemapper driver with the
// same storage options (Docker 25 removed that driver: 20.10's is the
// reference for every version). Whatever the in-tree driver gives, dmthin
// must give too: the same `docker diff`, the same `docker export` entry by
// entry (types and permission bits: dockerd 26's tar writer leaves the
// file-type bits out of a header's mode, 20.10's puts them in), the same
// layers in `docker save`. The in-tree side runs the workload once; each
// engine's describe compares with what it gave.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { tempHome } from '../support/deviceset';
import { DOCKERD_26, Dockerd, dockerdMatrix, engineMissing, haveDockerd } from '../support/dockerd';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import type { DmthinProcess } from '../support/plugin-process';
import { printLogTail } from '../support/processes';
import { compareListings, listTarFile, type TarListing } from '../support/tar-listing';
import { CONTAINERS, dmthinPlugin, dmthinWorkload, IMAGES, inTreeWorkload, prepareAssets, unpackSave, type Workload, type WorkloadAssets } from '../support/workload';

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * The in-tree side, shared by every engine's describe: each step runs once
 * on it, under its name, and its result is kept for the describes after.
 * The steps come in the same order in each describe, so the in-tree
 * dockerd is always where the step's first run left it.
 */
class Reference {
  private readonly results = new Map<string, Promise<unknown>>();

  constructor(readonly workload: Workload) {}

  step<T>(name: string, run: (w: Workload) => Promise<T>): Promise<T> {
    let result = this.results.get(name);
    if (result === undefined) {
      result = run(this.workload);
      this.results.set(name, result);
    }
    return result as Promise<T>;
  }
}

describe('docker workload: dmthin against the in-tree devicemapper driver of dockerd 20.10 (VM)', function () {
  this.timeout(15 * 60_000);
  let top = '';
  let assets: WorkloadAssets;
  let reference: Reference | undefined;
  /** Times before this came from a tar and must be kept; later ones were made by this run. */
  let stableBefore = 0;

  before(async function () {
    requireVm(this);
    requireRoot(this);
    if (!haveDockerd()) skipBecause(this, 'dockerd is not installed (scripts/setup --test installs docker.io)');
    stableBefore = Math.floor(Date.now() / 1000);
    top = await tempHome('workload');
    assets = await prepareAssets(top);
    const inTree = inTreeWorkload(path.join(top, 'in-tree'), assets);
    await inTree.daemon.start();
    reference = new Reference(inTree);
  });

  after(async () => {
    await reference?.workload.daemon.stop();
  });

  // dmthin under 20.10 only with DMTHIN_DOCKERD_MATRIX=full, to keep CI's
  // time: 20.10 runs the managed plugin test, 26 is the engine users move to.
  for (const engine of dockerdMatrix([DOCKERD_26])) {
    describe(`dmthin on dockerd ${engine.version}`, function () {
      let plugin: DmthinProcess | undefined;
      let dmthin: Workload;
      const labels: [string, string] = ['in-tree 20.10', `dmthin ${engine.version}`];
      const ref = (): Reference => {
        assert.ok(reference, 'the in-tree dockerd was started');
        return reference;
      };

      /** Runs a step on the in-tree driver (once for all describes), then on dmthin. */
      async function both<T>(name: string, step: (w: Workload) => Promise<T>): Promise<[T, T]> {
        const a = await ref().step(name, step);
        return [a, await step(dmthin)];
      }

      function assertSame(a: TarListing, b: TarListing, what: string): void {
        const differences = compareListings(a, b, { labels, stableBefore });
        assert.deepEqual(differences, [], `${what} differs between the drivers:\n  ${differences.join('\n  ')}`);
      }

      before(async function () {
        const missing = engineMissing(engine);
        if (missing !== null) skipBecause(this, missing);
        const dir = path.join(top, `dmthin-${engine.version}`);
        plugin = dmthinPlugin(dir);
        dmthin = dmthinWorkload(path.join(dir, 'dockerd'), assets, engine);
        await plugin.start();
        await dmthin.daemon.start();
      });

      afterEach(async function () {
        if (this.currentTest?.state !== 'failed' || plugin === undefined) return;
        for (const d of [ref().workload.daemon, dmthin.daemon]) await printLogTail(d.logFile);
        await printLogTail(plugin.logFile, 60);
      });

      after(async () => {
        if (plugin === undefined) return;
        await dmthin.daemon.stop();
        assert.equal(await plugin.stop(), 0, 'dmthin stops cleanly on SIGTERM');
      });

      it('is refused as a storage driver without --experimental, as every GraphDriver plugin is', async () => {
        const plain = new Dockerd(path.join(top, `no-experimental-${engine.version}`), { driver: 'dmthin', args: ['-s', 'dmthin'] }, engine);
        await assert.rejects(plain.start(), /graphdriver plugins are only supported with experimental mode/);
      });

      it('imports the base image made from busybox-static', async () => {
        const [a, b] = await both('import', async (w) => (await w.importBase(), w.images()));
        for (const [side, images] of [['in-tree', a], ['dmthin', b]] as const) assert.ok(images.includes(IMAGES.base), `${side} lists ${IMAGES.base}`);
      });

      it('builds with the legacy builder: deletions, hard links, symlinks, special bits, owners, a fifo, a device node', async () => {
        await both('build', (w) => w.build());
        const ls = await dmthin.daemon.docker('run', '--rm', '--network', 'none', IMAGES.built, 'ls', '-ln', '/app/data/f', '/opt/lower');
        assert.match(ls, /^-rwsr-xr-x\s+1\s+0\s+0\s+11\s.*\/app\/data\/f$/m, 'the setuid file, appended to, its hard link removed');
        assert.doesNotMatch(ls, /gone|empty-dir/, 'what the build deleted is gone');
      });

      it('runs a container, and docker diff lists the same changes on both', async () => {
        await both('run', (w) => w.run());
        const [a, b] = await both('diff', (w) => w.diff());
        assert.deepEqual(b, a, 'dmthin and the in-tree driver see the same changes');
        for (const line of ['A /app/run-file', 'D /app/dangling', 'D /srv/tree', 'C /etc/group', 'A /app/rundir', 'A /app/rundir/f-link', 'C /opt/empty', 'C /app/owned.txt']) {
          assert.ok(b.includes(line), `docker diff shows ${line}; got:\n${b.join('\n')}`);
        }
      });

      it('exports the run container identically: names, types, modes, owners, links, content, xattrs', async () => {
        const [a, b] = await both('export run', async (w) => listTarFile(await w.exportContainer(CONTAINERS.run)));
        assertSame(a, b, 'docker export of the run container');
        // What the build asked for is really there (both sides could lose it alike).
        const item = (name: string) => b.items.get(name);
        assert.equal(item('app/data/f')?.mode, 0o4755);
        assert.equal(item('usr/share/hl-a')?.mode, 0o6755);
        assert.equal(item('app/sticky')?.mode, 0o1777);
        assert.equal(item('app/setgid')?.mode, 0o2775);
        assert.equal(item('app/fifo')?.type, 'fifo');
        assert.equal(item('app/tty-node')?.device, '5:0');
        assert.deepEqual([item('app/data')?.uid, item('app/data')?.gid], [1000, 1000]);
        const link = (name: string) => [item(name)?.type, item(name)?.linkname];
        assert.deepEqual(link('app/rundir/f-link'), ['link', 'app/data/f'], 'a hard link made by the run');
        assert.deepEqual(link('app/data/sym-hard'), ['link', 'app/data/f-sym'], 'a hard link to a symlink, from a layer');
        assert.deepEqual(link('app/fifo-hard'), ['link', 'app/fifo'], 'a hard link to a fifo, from a layer');
        assert.equal(item('opt/lower/gone-file'), undefined);
        assert.equal(item('opt/lower/gone-dir'), undefined);
        assert.ok(item('usr/bin/capped')?.xattrs.some((x) => x.startsWith('security.capability=')), 'the imported file capability');
        // The legacy builder's COPY does not carry a file capability: the
        // in-tree driver's export has none either (compared above).
        assert.ok(item('app/capped-copy') !== undefined);
        assert.equal(item('srv/tree/new'), undefined, 'the run removed /srv/tree');
        assert.equal(item('app/zero')?.mode, 0);
        assert.equal(item('opt/old-times')?.mtime, 1_262_304_000);
      });

      it('commits the container; a container of the commit exports identically on both, and as the run container did', async () => {
        await both('commit', (w) => w.commit());
        await both('create from commit', (w) => w.createFromCommit());
        const [a, b] = await both('export from commit', async (w) => listTarFile(await w.exportContainer(CONTAINERS.fromCommit)));
        assertSame(a, b, 'docker export of a container of the committed image');
        const run = await listTarFile(await dmthin.exportContainer(CONTAINERS.run));
        const lost = compareListings(run, b, { labels: ['run container', 'its commit'], stableBefore: Number.MAX_SAFE_INTEGER, ignore: (name) => initLayerFile(name) || name === CROSS_LAYER_LINK });
        assert.deepEqual(lost, [], `dmthin's commit kept everything the run container had:\n  ${lost.join('\n  ')}`);
        // The run's hard link to a file of a lower layer it left alone reaches
        // the commit as a file of its own, with the same content, on both
        // drivers: the layer's tar has no entry of the target to link to.
        const [runLink, commitLink] = [run.items.get(CROSS_LAYER_LINK), b.items.get(CROSS_LAYER_LINK)];
        assert.deepEqual([runLink?.type, commitLink?.type], ['link', 'file']);
        assert.equal(commitLink?.sha256, b.items.get('app/data/f')?.sha256);
      });

      it('saves the committed image: each layer matches its DiffID and holds the same entries on both', async () => {
        const [a, b] = await both('save', async (w) => unpackSave(await w.save(), path.join(w.out, 'saved')));
        assert.equal(b.layers.length, a.layers.length, 'as many layers');
        for (const [side, image] of [['in-tree', a], ['dmthin', b]] as const) {
          for (const [i, layer] of image.layers.entries()) assert.equal(await sha256File(layer), image.diffIds[i], `${side} layer ${i} matches its DiffID`);
        }
        for (const [i, layer] of a.layers.entries()) {
          assertSame(await listTarFile(layer), await listTarFile(b.layers[i] ?? ''), `layer ${i} of docker save`);
        }
      });

      it('shows the in-tree driver\'s Status rows, in its order, in docker info', async () => {
        const [a, b] = await both('status rows', (w) => w.statusRows());
        const labels = (rows: Array<[string, string]>) => rows.map(([k]) => k);
        // dmthin's own rows come after the in-tree driver's.
        const dmthinOwn = new Set(['Faulty Device Count', 'Low Water Mark', 'Pool Health']);
        assert.deepEqual(labels(b).filter((l) => !dmthinOwn.has(l)), labels(a));
        const value = (rows: Array<[string, string]>, key: string) => rows.find(([k]) => k === key)?.[1];
        for (const key of ['Pool Blocksize', 'Base Device Size', 'Backing Filesystem', 'Data Space Total', 'Metadata Space Total', 'Thin Pool Minimum Free Space', 'Deferred Removal Enabled', 'Deferred Deletion Enabled', 'Library Version']) {
          assert.equal(value(b, key), value(a, key), `docker info row ${key}`);
        }
      });

      it('shows GraphDriver data in docker inspect with the in-tree keys', async () => {
        const [a, b] = await both('inspect', (w) => w.graphDriver(CONTAINERS.run));
        assert.deepEqual([a.Name, b.Name], ['devicemapper', 'dmthin']);
        assert.deepEqual(Object.keys(b.Data).sort(), Object.keys(a.Data).sort());
        assert.equal(b.Data['DeviceSize'], a.Data['DeviceSize']);
        assert.match(b.Data['DeviceName'] ?? '', /^dmthin-.*-[0-9a-f]{64}$/);
      });

      it('keeps images and containers across a dockerd restart', async () => {
        const [firstA, firstB] = await both('create kept', (w) => w.createKept());
        assert.deepEqual([firstA.trim(), firstB.trim()], ['', '']);
        const before = await both('before restart', async (w) => [await w.images(), await w.containers()]);
        await both('restart', (w) => w.restartDockerd());
        assert.deepEqual(await both('after restart', async (w) => [await w.images(), await w.containers()]), before);
        const [a, b] = await both('start kept', (w) => w.startKept());
        assert.deepEqual([a.trim(), b.trim()], ['kept', 'kept'], 'the container\'s own layer outlived the restart');
      });

      it('keeps a running container\'s files when the plugin restarts under dockerd, and serves new operations after', async () => {
        const w = dmthin;
        await w.startLive();
        assert.equal((await w.execInLive('cat /app/data/f')).trim(), 'hello\nmore');
        assert.ok(plugin !== undefined);
        assert.equal(await plugin.stop(), 0, 'dmthin stops cleanly on SIGTERM with a container running');
        await plugin.start();
        assert.equal((await w.execInLive('cat /app/data/f; echo live > /live-new; cat /live-new')).trim(), 'hello\nmore\nlive');
        assert.ok((await w.daemon.docker('diff', CONTAINERS.live)).includes('A /live-new'), 'docker diff of the running container');
        await w.daemon.docker('commit', CONTAINERS.live, 'wl/live:1');
        assert.equal((await w.daemon.docker('run', '--rm', '--network', 'none', 'wl/live:1', 'cat', '/live-new')).trim(), 'live');
        await w.daemon.docker('stop', '-t', '1', CONTAINERS.live);
        await w.daemon.docker('rm', CONTAINERS.live);
        await w.daemon.docker('rmi', 'wl/live:1');
      });

      it('removes the containers and the images: rm, rmi', async () => {
        const [a, b] = await both('rm, rmi', async (w) => (await w.rm(), await w.rmi(), [await w.containers(), await w.images()]));
        for (const [side, [containers, images]] of [['in-tree', a], ['dmthin', b]] as const) {
          assert.deepEqual(containers, [], `${side}: no container left`);
          assert.deepEqual(images, [], `${side}: no image left`);
        }
      });

      it('loads the saved image back once it is gone: the same image ID, its files readable in a container', async () => {
        const [a, b] = await both('load', async (w) => {
          const ids = await w.load();
          const files = await w.daemon.docker('run', '--rm', '--network', 'none', IMAGES.committed, 'cat', '/app/run-file', '/app/data/f');
          await w.rmi();
          return { ...ids, files, images: await w.images() };
        });
        for (const [side, result] of [['in-tree', a], ['dmthin', b]] as const) {
          assert.equal(result.loaded, result.saved, `${side}: docker load gives back the image ID docker save was given`);
          assert.equal(result.files, 'run\nhello\nmore\n', `${side}: the loaded image's files`);
          assert.deepEqual(result.images, [], `${side}: no image left`);
        }
      });
    });
  }
});

/** A hard link the run makes to a file of the image. */
const CROSS_LAYER_LINK = 'app/rundir/f-link';

/** What dockerd writes into each container's init layer, made anew (and dated) per container, and the directories holding it. */
function initLayerFile(name: string): boolean {
  if (['dev', 'proc', 'sys'].some((d) => name === d || name.startsWith(`${d}/`))) return true;
  return ['.', '.dockerenv', 'etc', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'etc/mtab'].includes(name);
}
