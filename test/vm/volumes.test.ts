// Thin volumes on a real pool, through the store as main.ts composes it
// (one DeviceSetHolder shared with layers): a size that is a real quota,
// a filesystem that costs the pool only what is written, clones of a
// mounted volume that are consistent, a Remove that gives the space back
// to the loop file, and Get/List that never wait for the pool.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DeviceSetHolder } from '../../src/deviceset';
import { fs as kfs } from '../../src/devmapper';
import { volumeDeviceId } from '../../src/volume/names';
import { VolumeStore } from '../../src/volume/store';
import type { VolumeInfo } from '../../src/volume/types';
import { requireRoot, requireVm } from '../support/env';
import { quietLog, SMALL, tempHome } from '../support/deviceset';

const MiB = 1024 * 1024;

interface Plugin {
  holder: DeviceSetHolder;
  store: VolumeStore;
}

/** The store and the holder as main.ts makes them: the store loaded first, the pool opened in the background. */
async function startStore(root: string): Promise<Plugin> {
  const holder = new DeviceSetHolder({ root, pluginOptions: SMALL, log: quietLog });
  const store = new VolumeStore({ root, mountRoot: root, volumeKind: 'auto', volumeSize: 320 * MiB, pool: holder, log: quietLog });
  await store.load();
  holder.start([]);
  return { holder, store };
}

async function status(store: VolumeStore, name: string): Promise<Record<string, unknown>> {
  const info = (await store.get(name)) as VolumeInfo;
  assert.ok(info !== null, `volume ${name} exists`);
  return info.Status;
}

/** Writes `bytes` in 1 MiB chunks, fsyncs (after an error too), and resolves to what was written, with the error. */
async function fill(file: string, bytes: number): Promise<{ written: number; err: NodeJS.ErrnoException | null }> {
  const handle = await fsp.open(file, 'w');
  let written = 0;
  try {
    const chunk = Buffer.alloc(MiB, 0x5a);
    while (written < bytes) written += (await handle.write(chunk)).bytesWritten;
    await handle.sync();
    return { written, err: null };
  } catch (err) {
    // What did fit must reach the device before its use is measured.
    await handle.sync().catch(() => undefined);
    return { written, err: err as NodeJS.ErrnoException };
  } finally {
    await handle.close();
  }
}

describe('thin volumes (VM)', function () {
  let root = '';
  let plugin: Plugin;

  before(async function () {
    requireVm(this);
    requireRoot(this);
    root = await tempHome('volumes');
    plugin = await startStore(root);
    await plugin.store.reconcileWhenReady();
  });

  after(async () => {
    await plugin?.store.shutdown();
    await plugin?.holder.shutdown();
  });

  it('makes a volume of the size asked for, a real quota: writing past it fails with ENOSPC', async () => {
    const { store } = plugin;
    await store.create('quota', { size: '32M', fs: 'ext4' });
    const st = await status(store, 'quota');
    assert.equal(st['Kind'], 'thin');
    assert.equal(st['Size'], '32MiB');
    assert.equal(st['Filesystem'], 'ext4');
    assert.equal(typeof st['DeviceId'], 'number');
    const mp = await store.mount('quota', 'm1');
    assert.equal(mp, path.join(root, 'volumes', 'quota', '_data'));
    assert.deepEqual(await fsp.readdir(mp), [], 'an empty root: no lost+found');
    const { written, err } = await fill(path.join(mp, 'big'), 64 * MiB);
    assert.equal(err?.code, 'ENOSPC');
    assert.ok(written > 20 * MiB && written < 32 * MiB, `${written} bytes fit`);
    const used = await status(store, 'quota');
    assert.ok(Number(used['UsedBytes']) > 20 * MiB, `Used shows what was written: ${String(used['Used'])}`);
    assert.match(String(used['Used']), /MiB \(\d+\.\d%\)$/);
    await store.unmount('quota', 'm1');
    assert.deepEqual(await fsp.readdir(path.join(root, 'volumes', 'quota')), ['_data', 'opts.json'], '_data stays after the last unmount');
  });

  it('costs the pool only what is written: a fresh 1G ext4 volume maps a few MiB', async () => {
    const { store } = plugin;
    await store.create('sparse', { size: '1G', fs: 'ext4' });
    await store.mount('sparse', 'm');
    await store.unmount('sparse', 'm');
    const st = await status(store, 'sparse');
    assert.ok(Number(st['UsedBytes']) < 8 * MiB, `a 1G ext4 volume uses ${String(st['Used'])} of the pool`);
    await store.remove('sparse');
  });

  it('gives a volume without options a thin device of DMTHIN_VOLUME_SIZE on the base filesystem', async () => {
    const { store, holder } = plugin;
    await store.create('plainopts', null);
    const st = await status(store, 'plainopts');
    assert.equal(st['Kind'], 'thin');
    assert.equal(st['Size'], '320MiB');
    assert.equal(st['Filesystem'], (await holder.ready()).baseFilesystem);
  });

  it('clones a mounted volume consistently, and the clone lives apart from its source', async () => {
    const { store } = plugin;
    await store.create('src', { size: '64M', fs: 'ext4' });
    const src = await store.mount('src', 'writer');
    // Written, not synced: the snapshot freezes the filesystem, so it still lands in the clone.
    await fsp.writeFile(path.join(src, 'a.txt'), 'written before the clone');
    await store.create('copy', { from: 'src' });
    await store.create('bigger', { from: 'src', size: '128M' });
    const copy = await store.mount('copy', 'reader');
    assert.equal(await fsp.readFile(path.join(copy, 'a.txt'), 'utf8'), 'written before the clone');
    await fsp.writeFile(path.join(copy, 'a.txt'), 'changed in the clone');
    await fsp.writeFile(path.join(src, 'b.txt'), 'after the clone');
    assert.equal(await fsp.readFile(path.join(src, 'a.txt'), 'utf8'), 'written before the clone');
    await assert.rejects(fsp.readFile(path.join(copy, 'b.txt')), { code: 'ENOENT' });
    const copyStatus = await status(store, 'copy');
    assert.equal(copyStatus['ClonedFrom'], 'src');
    assert.equal(copyStatus['Size'], '64MiB');
    assert.notEqual(copyStatus['DeviceId'], (await status(store, 'src'))['DeviceId']);
    const bigger = await store.mount('bigger', 'r2');
    const st = await kfs.statfs(bigger);
    assert.ok(st.blocks * st.bsize > 100 * MiB, 'a clone asked bigger has its filesystem grown');
    assert.equal(await fsp.readFile(path.join(bigger, 'a.txt'), 'utf8'), 'written before the clone');
    for (const [name, id] of [['bigger', 'r2'], ['copy', 'reader'], ['src', 'writer']] as const) await store.unmount(name, id);
  });

  it('clones an xfs volume while it is mounted, and mounts both side by side', async () => {
    const { store } = plugin;
    await store.create('x1', { size: '320M', fs: 'xfs' });
    const a = await store.mount('x1', 'a');
    await fsp.writeFile(path.join(a, 'f'), 'xfs data');
    await store.create('x2', { from: 'x1' });
    const b = await store.mount('x2', 'b');
    assert.equal(await fsp.readFile(path.join(b, 'f'), 'utf8'), 'xfs data');
    assert.equal((await status(store, 'x2'))['Filesystem'], 'xfs');
    await store.unmount('x2', 'b');
    await store.unmount('x1', 'a');
  });

  it('refuses clones of what cannot be cloned, and leaves nothing behind', async () => {
    const { store, holder } = plugin;
    const set = await holder.ready();
    await store.create('tmpvol', { type: 'tmpfs', device: 'tmpfs' });
    const devices = set.listDevices().sort();
    const dirs = (await fsp.readdir(path.join(root, 'volumes'))).sort();
    await assert.rejects(store.create('c1', { from: 'nosuch' }), /from=nosuch: no such volume/);
    await assert.rejects(store.create('c2', { from: 'tmpvol' }), /from=tmpvol is a plain volume; only thin volumes .* can be cloned/);
    await assert.rejects(store.create('c3', { from: 'src', size: '32M' }), /size=32M is smaller than volume src's 67108864 bytes/);
    await assert.rejects(store.create('c4', { size: '100M', fs: 'xfs' }), /too small for xfs/);
    assert.deepEqual(set.listDevices().sort(), devices);
    assert.deepEqual((await fsp.readdir(path.join(root, 'volumes'))).sort(), dirs);
  });

  it('refuses to remove a mounted volume; Remove discards and deletes the device, and the loop file shrinks', async () => {
    const { store, holder } = plugin;
    const set = await holder.ready();
    const dataFile = path.join(root, 'devicemapper', 'data');
    await store.create('victim', { size: '96M', fs: 'ext4' });
    const mp = await store.mount('victim', 'v');
    await fill(path.join(mp, 'data'), 48 * MiB);
    await assert.rejects(store.remove('victim'), /volume victim is in use/);
    await store.unmount('victim', 'v');
    const allocated = async (): Promise<number> => (await fsp.stat(dataFile)).blocks * 512;
    const before = await allocated();
    await store.remove('victim');
    assert.equal(set.devicesOf('volume').has(volumeDeviceId('victim')), false, 'the thin device is deleted');
    assert.equal(await store.get('victim'), null);
    const freed = before - (await allocated());
    assert.ok(freed > 40 * MiB, `the discard gave ${freed} bytes back to the loop file`);
    // The name is free again, for any kind.
    await store.create('victim', null);
    await store.remove('victim');
  });

  it('answers Get and List from the store while the pool is still opening', async () => {
    await plugin.store.shutdown();
    await plugin.holder.shutdown();
    plugin = await startStore(root);
    // No await between start and Get: the pool cannot be open yet.
    const early = await status(plugin.store, 'src');
    assert.equal(early['Size'], '64MiB');
    assert.match(String(early['Used']), /^unknown: the thin pool is not open/);
    assert.ok((await plugin.store.list()).some((v) => v.Name === 'copy'));
    await plugin.store.reconcileWhenReady();
    const late = await status(plugin.store, 'src');
    assert.equal(typeof late['DeviceId'], 'number');
    const mp = await plugin.store.mount('copy', 'again');
    assert.equal(await fsp.readFile(path.join(mp, 'a.txt'), 'utf8'), 'changed in the clone', 'data survives a restart');
    await plugin.store.unmount('copy', 'again');
  });
});
