// End to end: the docker workload (test/support/workload.ts) on two
// dockerd 20.10 in one VM run, one on dmthin (a legacy socket plugin,
// `--experimental -s dmthin`) and one on Docker's in-tree devicemapper
// driver, with the same storage options. Whatever the in-tree driver
// gives, dmthin must give too: the same `docker diff`, the same
// `docker export` entry by entry, the same layers in `docker save`.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { tempHome } from '../support/deviceset';
import { haveDockerd } from '../support/dockerd';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { printLogTail } from '../support/processes';
import { compareListings, listTarFile, type TarListing } from '../support/tar-listing';
import { CONTAINERS, DriverPair, IMAGES, prepareAssets, unpackSave, type Workload } from '../support/workload';

const LABELS: [string, string] = ['in-tree', 'dmthin'];

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return `sha256:${hash.digest('hex')}`;
}

describe('docker workload: dmthin against the in-tree devicemapper driver (VM)', function () {
  this.timeout(15 * 60_000);
  let pair: DriverPair | undefined;
  let inTree: Workload;
  let dmthin: Workload;
  /** Times before this came from a tar and must be kept; later ones were made by this run. */
  let stableBefore = 0;

  /** Runs a step on the in-tree driver, then on dmthin. */
  async function both<T>(step: (w: Workload) => Promise<T>): Promise<[T, T]> {
    const a = await step(inTree);
    return [a, await step(dmthin)];
  }

  function assertSame(a: TarListing, b: TarListing, what: string): void {
    const differences = compareListings(a, b, { labels: LABELS, stableBefore });
    assert.deepEqual(differences, [], `${what} differs between the drivers:\n  ${differences.join('\n  ')}`);
  }

  before(async function () {
    requireVm(this);
    requireRoot(this);
    if (!haveDockerd()) skipBecause(this, 'dockerd is not installed (scripts/setup --test installs docker.io)');
    stableBefore = Math.floor(Date.now() / 1000);
    const top = await tempHome('workload');
    pair = new DriverPair(top, await prepareAssets(top));
    ({ inTree, dmthin } = pair);
    await pair.start();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed' || pair === undefined) return;
    for (const d of pair.daemons) await printLogTail(d.logFile);
    await printLogTail(pair.plugin.logFile, 60);
  });

  after(async () => {
    const code = await pair?.stop();
    if (pair !== undefined) assert.equal(code, 0, 'dmthin stops cleanly on SIGTERM');
  });

  it('imports the base image made from busybox-static', async () => {
    await both((w) => w.importBase());
    for (const w of [inTree, dmthin]) assert.ok((await w.images()).includes(IMAGES.base), `${w.daemon.driver} lists ${IMAGES.base}`);
  });

  it('builds with the legacy builder: deletions, hard links, symlinks, special bits, owners, a fifo, a device node', async () => {
    await both((w) => w.build());
    const ls = await dmthin.daemon.docker('run', '--rm', '--network', 'none', IMAGES.built, 'ls', '-ln', '/app/data/f', '/opt/lower');
    assert.match(ls, /^-rwsr-xr-x\s+1\s+0\s+0\s+11\s.*\/app\/data\/f$/m, 'the setuid file, appended to, its hard link removed');
    assert.doesNotMatch(ls, /gone|empty-dir/, 'what the build deleted is gone');
  });

  it('runs a container, and docker diff lists the same changes on both', async () => {
    await both((w) => w.run());
    const [a, b] = await both((w) => w.diff());
    assert.deepEqual(b, a, 'dmthin and the in-tree driver see the same changes');
    for (const line of ['A /app/run-file', 'D /app/dangling', 'D /srv/tree', 'C /etc/group', 'A /app/rundir', 'A /app/rundir/f-link', 'C /opt/empty', 'C /app/owned.txt']) {
      assert.ok(b.includes(line), `docker diff shows ${line}; got:\n${b.join('\n')}`);
    }
  });

  it('exports the run container identically: names, types, modes, owners, links, content, xattrs', async () => {
    const [a, b] = await both(async (w) => listTarFile(await w.exportContainer(CONTAINERS.run)));
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
    await both((w) => w.commit());
    await both((w) => w.createFromCommit());
    const [a, b] = await both(async (w) => listTarFile(await w.exportContainer(CONTAINERS.fromCommit)));
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
    const [a, b] = await both(async (w) => unpackSave(await w.save(), path.join(w.out, 'saved')));
    assert.equal(b.layers.length, a.layers.length, 'as many layers');
    for (const [side, image] of [['in-tree', a], ['dmthin', b]] as const) {
      for (const [i, layer] of image.layers.entries()) assert.equal(await sha256File(layer), image.diffIds[i], `${side} layer ${i} matches its DiffID`);
    }
    for (const [i, layer] of a.layers.entries()) {
      assertSame(await listTarFile(layer), await listTarFile(b.layers[i] ?? ''), `layer ${i} of docker save`);
    }
  });

  it('shows the in-tree driver\'s Status rows, in its order, in docker info', async () => {
    const [a, b] = await both((w) => w.statusRows());
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
    const [a, b] = await both((w) => w.graphDriver(CONTAINERS.run));
    assert.deepEqual([a.Name, b.Name], ['devicemapper', 'dmthin']);
    assert.deepEqual(Object.keys(b.Data).sort(), Object.keys(a.Data).sort());
    assert.equal(b.Data['DeviceSize'], a.Data['DeviceSize']);
    assert.match(b.Data['DeviceName'] ?? '', /^dmthin-.*-[0-9a-f]{64}$/);
  });

  it('keeps images and containers across a dockerd restart', async () => {
    const [firstA, firstB] = await both((w) => w.createKept());
    assert.deepEqual([firstA.trim(), firstB.trim()], ['', '']);
    const before = await both(async (w) => [await w.images(), await w.containers()]);
    await both((w) => w.restartDockerd());
    assert.deepEqual(await both(async (w) => [await w.images(), await w.containers()]), before);
    const [a, b] = await both((w) => w.startKept());
    assert.deepEqual([a.trim(), b.trim()], ['kept', 'kept'], 'the container\'s own layer outlived the restart');
  });

  it('keeps a running container\'s files when the plugin restarts under dockerd, and serves new operations after', async () => {
    const w = dmthin;
    await w.startLive();
    assert.equal((await w.execInLive('cat /app/data/f')).trim(), 'hello\nmore');
    const plugin = pair?.plugin;
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
    await both((w) => w.rm());
    await both((w) => w.rmi());
    for (const w of [inTree, dmthin]) {
      assert.deepEqual(await w.containers(), [], `${w.daemon.driver}: no container left`);
      assert.deepEqual(await w.images(), [], `${w.daemon.driver}: no image left`);
    }
  });
});

/** A hard link the run makes to a file of the image. */
const CROSS_LAYER_LINK = 'app/rundir/f-link';

/** What dockerd writes into each container's init layer, made anew (and dated) per container, and the directories holding it. */
function initLayerFile(name: string): boolean {
  if (['dev', 'proc', 'sys'].some((d) => name === d || name.startsWith(`${d}/`))) return true;
  return ['.', '.dockerenv', 'etc', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'etc/mtab'].includes(name);
}
