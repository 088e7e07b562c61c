// The DeviceSet on a real loop-backed thin pool: layers as snapshots,
// mounts, deletion, metadata that survives restarts, and the checks that
// refuse a wrong pool or a full one.
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { dm, fs as kfs, thin } from '../../src/devmapper';
import type { DeviceSet } from '../../src/deviceset';
import { listThinIds } from '../../src/deviceset/pool';
import { requireRoot, requireVm } from '../support/env';
import { mountLayer, openSet, readIn, tempHome } from '../support/deviceset';
import { run } from '../support/exec';

const MiB = 1024 * 1024;
const XFS_MAGIC = 0x58465342;
const EXT4_MAGIC = 0xef53;

function isMountpoint(dir: string): boolean {
  return readMountinfo().some((target) => target === dir);
}

function readMountinfo(): string[] {
  return require('node:fs')
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l: string) => l.split(' ')[4] ?? '');
}

/** Thin ids the pool really holds (thin_ls on a metadata snapshot), sorted. */
async function poolIds(set: DeviceSet): Promise<number[]> {
  return [...(await listThinIds(set.pool))].sort((a, b) => a - b);
}

describe('DeviceSet (VM)', function () {
  before(function () {
    requireVm(this);
    requireRoot(this);
  });

  describe('a fresh loop-backed set', () => {
    let home = '';
    let set: DeviceSet;

    before(async () => {
      home = await tempHome('set');
      set = await openSet(home);
    });

    after(async () => {
      await set?.shutdown();
    });

    it('makes sparse data and metadata files and a base device with xfs', async () => {
      const data = await fsp.stat(path.join(home, 'devicemapper', 'data'));
      assert.equal(data.size, 4 * 1024 * MiB);
      assert.ok(data.blocks * 512 < data.size / 4, 'the data file is sparse');
      assert.ok(set.hasDevice(''));
      const rows = Object.fromEntries(await set.status());
      assert.equal(rows['Backing Filesystem'], 'xfs');
      assert.equal(rows['Base Device Size'], '536.9MB');
      assert.equal(rows['Pool Blocksize'], '65.54kB');
      assert.equal(rows['Data loop file'], path.join(home, 'devicemapper', 'data'));
      assert.equal(rows['Data Space Total'], '4.295GB');
    });

    it('lists the in-tree driver\'s Status rows in its order, then dmthin\'s own', async () => {
      assert.deepEqual(
        (await set.status()).map(([label]) => label),
        [
          'Pool Name', 'Pool Blocksize', 'Base Device Size', 'Backing Filesystem', 'Udev Sync Supported',
          'Data file', 'Metadata file', 'Data loop file', 'Metadata loop file',
          'Data Space Used', 'Data Space Total', 'Data Space Available',
          'Metadata Space Used', 'Metadata Space Total', 'Metadata Space Available',
          'Thin Pool Minimum Free Space', 'Deferred Removal Enabled', 'Deferred Deletion Enabled',
          'Deferred Deleted Device Count', 'Library Version', 'Faulty Device Count', 'Low Water Mark', 'Pool Health',
        ],
      );
    });

    it('adds a layer, mounts it at <home>/mnt/<id>/rootfs without lost+found, and keeps its files', async () => {
      await set.addDevice('layer1', '');
      const rootfs = await mountLayer(set, 'layer1');
      assert.equal(rootfs, path.join(home, 'mnt', 'layer1', 'rootfs'));
      assert.deepEqual(await fsp.readdir(rootfs), []);
      assert.equal((await kfs.statfs(rootfs)).type, XFS_MAGIC);
      await fsp.writeFile(path.join(rootfs, 'a.txt'), 'layer one\n');
      await set.unmountDevice('layer1');
      assert.equal(isMountpoint(path.dirname(rootfs)), false);
      assert.equal((await dm.info(set.deviceName('layer1'))).exists, false, 'deactivated after the last unmount');
      assert.deepEqual(set.deviceMetadata('layer1'), {
        DeviceId: set.deviceMetadata('layer1')['DeviceId'],
        DeviceSize: String(512 * MiB),
        DeviceName: set.deviceName('layer1'),
      });
    });

    it('snapshots a layer: the child sees the parent\'s files, then they diverge', async () => {
      await set.addDevice('layer2', 'layer1');
      const child = await mountLayer(set, 'layer2');
      const parent = await mountLayer(set, 'layer1');
      try {
        assert.equal(await readIn(child, 'a.txt'), 'layer one\n');
        await fsp.writeFile(path.join(child, 'a.txt'), 'changed in two\n');
        await fsp.writeFile(path.join(child, 'b.txt'), 'only in two\n');
        assert.equal(await readIn(parent, 'a.txt'), 'layer one\n');
        assert.equal(existsSync(path.join(parent, 'b.txt')), false);
      } finally {
        await set.unmountDevice('layer2');
        await set.unmountDevice('layer1');
      }
    });

    it('snapshots a mounted origin with the writes it has not flushed yet', async () => {
      const origin = await mountLayer(set, 'layer2');
      try {
        await fsp.writeFile(path.join(origin, 'unflushed.txt'), 'in the page cache\n');
        await set.addDevice('layer3', 'layer2');
      } finally {
        await set.unmountDevice('layer2');
      }
      const child = await mountLayer(set, 'layer3');
      try {
        assert.equal(await readIn(child, 'unflushed.txt'), 'in the page cache\n');
        assert.equal(await readIn(child, 'b.txt'), 'only in two\n');
      } finally {
        await set.unmountDevice('layer3');
      }
    });

    it('counts mounts: the device stays mounted until its last user unmounts', async () => {
      const first = await mountLayer(set, 'layer3');
      const second = await mountLayer(set, 'layer3');
      assert.equal(first, second);
      await set.unmountDevice('layer3');
      assert.ok(isMountpoint(path.dirname(first)), 'one user left');
      await set.unmountDevice('layer3');
      assert.equal(isMountpoint(path.dirname(first)), false);
      await set.unmountDevice('layer3'); // one too many is harmless
    });

    it('gives a layer a bigger size on request and grows its filesystem', async () => {
      await set.addDevice('big', 'layer1', { size: 1024 * MiB });
      const rootfs = await mountLayer(set, 'big');
      try {
        const st = await kfs.statfs(rootfs);
        assert.ok(st.blocks * st.bsize > 900 * MiB, `filesystem is ${st.blocks * st.bsize} bytes`);
        assert.equal(await readIn(rootfs, 'a.txt'), 'layer one\n');
      } finally {
        await set.unmountDevice('big');
      }
      assert.equal(set.deviceMetadata('big')['DeviceSize'], String(1024 * MiB));
    });

    it('refuses a size below the parent\'s, an existing id, an unknown parent and hostile ids', async () => {
      await assert.rejects(set.addDevice('small', 'layer1', { size: 100 * MiB }), { code: 'ESIZE' });
      await assert.rejects(set.addDevice('layer1', ''), { code: 'EEXIST' });
      await assert.rejects(set.addDevice('orphan', 'nosuchparent'), { code: 'ENOENT' });
      for (const bad of ['../x', 'a/b', 'a\0b', 'x'.repeat(200), '.hidden', 'base', 'deviceset-metadata']) {
        await assert.rejects(set.addDevice(bad, ''), { code: 'EINVALIDID' }, JSON.stringify(bad));
        await assert.rejects(mountLayer(set, bad), { code: 'EINVALIDID' });
      }
      assert.equal(existsSync(path.join(home, 'metadata', 'small')), false);
    });

    it('refuses to delete a mounted device, deletes it once unmounted, and ignores unknown ids', async () => {
      await mountLayer(set, 'layer3');
      await assert.rejects(set.deleteDevice('layer3'), { code: 'EBUSY' });
      await set.unmountDevice('layer3');
      const id = Number(set.deviceMetadata('layer3')['DeviceId']);
      await set.deleteDevice('layer3');
      assert.equal(set.hasDevice('layer3'), false);
      assert.equal(existsSync(path.join(home, 'metadata', 'layer3')), false);
      assert.ok(!(await poolIds(set)).includes(id), 'the thin device is gone from the pool');
      await set.deleteDevice('never-existed');
      // The freed id is the next one handed out.
      await set.addDevice('layer3b', 'layer2');
      assert.equal(Number(set.deviceMetadata('layer3b')['DeviceId']), id);
    });

    it('returns the blocks of a deleted device to the pool', async () => {
      await set.addDevice('fat', 'layer1');
      const rootfs = await mountLayer(set, 'fat');
      await fsp.writeFile(path.join(rootfs, 'blob'), Buffer.alloc(64 * MiB, 1));
      await set.unmountDevice('fat');
      const before = (await thin.poolStatus(set.pool.name)).usedDataBlocks;
      await set.deleteDevice('fat');
      const after = (await thin.poolStatus(set.pool.name)).usedDataBlocks;
      assert.ok(before - after >= 1000, `freed ${before - after} blocks of 64 KiB`);
    });

    it('keeps the pool\'s transaction id in step with every change', async () => {
      const before = (await thin.poolStatus(set.pool.name)).transactionId;
      await set.addDevice('tx', 'layer1');
      await set.deleteDevice('tx');
      assert.equal((await thin.poolStatus(set.pool.name)).transactionId, before + 2);
      assert.equal(existsSync(path.join(home, 'metadata', 'transaction-metadata')), false);
    });

    it('steps over a thin id that appeared in the pool behind its back', async () => {
      await set.addDevice('probe-id', '');
      const next = Number(set.deviceMetadata('probe-id')['DeviceId']);
      await set.deleteDevice('probe-id');
      // Someone else takes the id that would be handed out next.
      await thin.createThin(set.pool.name, next);
      try {
        await set.addDevice('stepped', '');
        assert.notEqual(Number(set.deviceMetadata('stepped')['DeviceId']), next);
        const rootfs = await mountLayer(set, 'stepped');
        await set.unmountDevice('stepped');
        assert.ok(rootfs.endsWith('stepped/rootfs'));
      } finally {
        await thin.deleteThin(set.pool.name, next);
      }
    });

    it('runs 50 adds at once on different ids, then 50 deletes', async () => {
      const ids = Array.from({ length: 50 }, (_, i) => `many-${i}`);
      await Promise.all(ids.map((id, i) => set.addDevice(id, i % 2 === 0 ? 'layer1' : 'layer2')));
      assert.ok(ids.every((id) => set.hasDevice(id)));
      const deviceIds = new Set(ids.map((id) => set.deviceMetadata(id)['DeviceId']));
      assert.equal(deviceIds.size, 50, 'every device got its own thin id');
      const mounted = await Promise.all(ids.slice(0, 10).map((id) => mountLayer(set, id)));
      await Promise.all(mounted.map((_, i) => set.unmountDevice(ids[i] ?? '')));
      await Promise.all(ids.map((id) => set.deleteDevice(id)));
      assert.ok(ids.every((id) => !set.hasDevice(id)));
    });
  });

  describe('devices with a filesystem of their own (thin volumes)', () => {
    let home = '';
    let set: DeviceSet;

    before(async () => {
      home = await tempHome('own-fs');
      set = await openSet(home);
    });

    after(async () => {
      await set?.shutdown();
    });

    it('makes an empty ext4 device of the asked size, mounts it where asked, and reports its usage', async () => {
      await set.createDevice('vol-a', { size: 64 * MiB, fs: 'ext4' });
      const target = path.join(home, 'volumes', 'a');
      assert.equal(await set.mountDevice('vol-a', { target }), target);
      assert.deepEqual(await fsp.readdir(target), [], 'no lost+found in a volume');
      assert.equal((await kfs.statfs(target)).type, EXT4_MAGIC);
      await fsp.writeFile(path.join(target, 'blob'), Buffer.alloc(4 * MiB, 7));
      await run('sync', []);
      const live = await set.deviceUsage('vol-a');
      assert.equal(live.size, 64 * MiB);
      assert.equal(live.filesystem, 'ext4');
      assert.ok(live.mappedBytes >= 4 * MiB, `mapped ${live.mappedBytes} bytes while mounted`);
      await set.unmountDevice('vol-a');
      assert.equal(isMountpoint(target), false);
      const cold = await set.deviceUsage('vol-a');
      assert.equal(cold.mappedBytes, live.mappedBytes, 'read from the pool metadata when not active');
      assert.equal(cold.deviceId, live.deviceId);
    });

    it('fails writes past the device size with ENOSPC', async () => {
      const target = await set.mountDevice('vol-a', { target: path.join(home, 'volumes', 'a') });
      try {
        await assert.rejects(fsp.writeFile(path.join(target, 'too-big'), Buffer.alloc(80 * MiB, 1)), { code: 'ENOSPC' });
      } finally {
        await fsp.rm(path.join(target, 'too-big'), { force: true });
        await set.unmountDevice('vol-a');
      }
    });

    it('clones a mounted device with what was just written, and the clone keeps its filesystem', async () => {
      const target = await set.mountDevice('vol-a', { target: path.join(home, 'volumes', 'a') });
      await fsp.writeFile(path.join(target, 'fresh'), 'not yet synced\n');
      await set.addDevice('vol-b', 'vol-a');
      await fsp.writeFile(path.join(target, 'after'), 'only in the source\n');
      const clone = await set.mountDevice('vol-b', { target: path.join(home, 'volumes', 'b') });
      try {
        assert.equal(await readIn(clone, 'fresh'), 'not yet synced\n');
        assert.equal(existsSync(path.join(clone, 'after')), false);
        assert.equal((await kfs.statfs(clone)).type, EXT4_MAGIC);
        assert.equal((await set.deviceUsage('vol-b')).filesystem, 'ext4');
      } finally {
        await set.unmountDevice('vol-b');
        await set.unmountDevice('vol-a');
      }
    });

    it('refuses a second mount of a device elsewhere, a size too small for xfs, and an odd size', async () => {
      await set.mountDevice('vol-a', { target: path.join(home, 'volumes', 'a') });
      try {
        await assert.rejects(set.mountDevice('vol-a', { target: path.join(home, 'elsewhere') }), { code: 'EBUSY' });
      } finally {
        await set.unmountDevice('vol-a');
      }
      await assert.rejects(set.createDevice('vol-c', { size: 100 * MiB, fs: 'xfs' }), { code: 'ESIZE', message: /xfs needs at least 300M/ });
      await assert.rejects(set.createDevice('vol-c', { size: 64 * MiB + 1, fs: 'ext4' }), { code: 'ESIZE' });
      await assert.rejects(set.createDevice('vol-a', { size: 64 * MiB, fs: 'ext4' }), { code: 'EEXIST' });
      assert.equal(set.hasDevice('vol-c'), false);
    });

    it('discards a deleted device when asked, returning its blocks to the pool', async () => {
      const before = await thin.poolStatus(set.pool.name);
      await set.deleteDevice('vol-b', { discard: true });
      await set.deleteDevice('vol-a', { discard: true });
      const after = await thin.poolStatus(set.pool.name);
      assert.ok(after.usedDataBlocks < before.usedDataBlocks, `used blocks ${before.usedDataBlocks} -> ${after.usedDataBlocks}`);
      assert.equal(set.hasDevice('vol-a'), false);
    });

    it('keeps a device\'s own filesystem across a restart', async () => {
      await set.createDevice('vol-d', { size: 400 * MiB, fs: 'xfs' });
      await set.createDevice('vol-e', { size: 32 * MiB, fs: 'ext4' });
      await set.shutdown();
      set = await openSet(home, ['dm.fs=xfs']);
      const e = await set.mountDevice('vol-e', { target: path.join(home, 'volumes', 'e') });
      assert.equal((await kfs.statfs(e)).type, EXT4_MAGIC);
      await set.unmountDevice('vol-e');
      assert.equal((await set.deviceUsage('vol-d')).filesystem, 'xfs');
    });
  });

  describe('restarts', () => {
    let home = '';

    before(async () => {
      home = await tempHome('restart');
      const set = await openSet(home, ['dm.fs=ext4']);
      await set.addDevice('kept', '');
      const rootfs = await mountLayer(set, 'kept');
      await fsp.writeFile(path.join(rootfs, 'kept.txt'), 'still here\n');
      await set.unmountDevice('kept');
      await set.shutdown();
    });

    it('shuts down completely: no devices, no pool, no loop devices left', async () => {
      const prefix = path.basename(home);
      assert.deepEqual((await dm.list()).filter((d) => d.name.includes('-pool') && d.name.includes(prefix)), []);
      const losetup = await run('losetup', ['-a']);
      assert.ok(!losetup.includes(home), `no loop device still backed by ${home}: ${losetup}`);
    });

    it('finds its devices and their data again', async () => {
      const set = await openSet(home);
      try {
        assert.ok(set.hasDevice('kept'));
        const rootfs = await mountLayer(set, 'kept');
        assert.equal(await readIn(rootfs, 'kept.txt'), 'still here\n');
        assert.equal((await kfs.statfs(rootfs)).type, EXT4_MAGIC, 'the recorded filesystem wins over the default');
        await set.unmountDevice('kept');
      } finally {
        await set.shutdown();
      }
    });

    it('starts over a pool a process killed inside its create (no table) or inside a reload (suspended) left behind', async () => {
      const probe = await openSet(home);
      const poolName = probe.pool.name;
      await probe.shutdown();
      // Killed between libdevmapper's create and its table load: the pool device exists with no table.
      await run('dmsetup', ['create', poolName, '--notable']);
      let set = await openSet(home);
      try {
        assert.equal(await readIn(await mountLayer(set, 'kept'), 'kept.txt'), 'still here\n');
        await set.unmountDevice('kept');
      } finally {
        await set.shutdown();
      }
      // Killed between the suspend and the resume of a table reload: no shutdown, the pool stays suspended.
      const killed = await openSet(home);
      await dm.suspend(killed.pool.name);
      set = await openSet(home);
      try {
        assert.equal((await dm.info(poolName)).suspended, false);
        assert.equal(await readIn(await mountLayer(set, 'kept'), 'kept.txt'), 'still here\n');
        await set.unmountDevice('kept');
      } finally {
        await set.shutdown();
      }
    });

    it('unmounts stale mounts and deactivates devices left by a process that died', async () => {
      const crashed = await openSet(home);
      const rootfs = await mountLayer(crashed, 'kept');
      await crashed.addDevice('elsewhere', '');
      const other = await crashed.mountDevice('elsewhere', { target: path.join(home, 'outside-mnt', 'x') });
      // No shutdown: as if the process had been killed.
      const set = await openSet(home);
      try {
        assert.equal(isMountpoint(path.dirname(rootfs)), false, 'stale mount is gone');
        assert.equal(isMountpoint(other), false, 'a stale mount outside <home>/mnt is found by its device and unmounted too');
        const again = await mountLayer(set, 'kept');
        assert.equal(await readIn(again, 'kept.txt'), 'still here\n');
        await set.unmountDevice('kept');
      } finally {
        await set.shutdown();
      }
    });

    it('rolls back a pool change that a crash left open', async () => {
      const set = await openSet(home);
      const tid = (await thin.poolStatus(set.pool.name)).transactionId;
      // A crash right after create_thin: the thin exists, the transaction record says so, the pool's id was not bumped.
      await thin.createThin(set.pool.name, 4000);
      await fsp.writeFile(path.join(home, 'metadata', 'transaction-metadata'), JSON.stringify({ open_transaction_id: tid + 1, device_hash: 'half', device_id: 4000 }));
      await fsp.writeFile(path.join(home, 'metadata', 'half'), JSON.stringify({ device_id: 4000, size: 512 * MiB, transaction_id: tid + 1, initialized: true, deleted: false }));
      const after = await openSet(home);
      try {
        assert.equal(after.hasDevice('half'), false);
        assert.ok(!(await poolIds(after)).includes(4000));
        assert.equal(existsSync(path.join(home, 'metadata', 'half')), false);
        assert.equal(existsSync(path.join(home, 'metadata', 'transaction-metadata')), false);
      } finally {
        await after.shutdown();
      }
    });

    it('removes thin devices no metadata names, and marks metadata without a thin device faulty', async () => {
      let set = await openSet(home);
      await thin.createThin(set.pool.name, 4001);
      await fsp.writeFile(path.join(home, 'metadata', 'ghost'), JSON.stringify({ device_id: 4002, size: 512 * MiB, transaction_id: 1, initialized: true, deleted: false }));
      set = await openSet(home);
      try {
        assert.ok(!(await poolIds(set)).includes(4001), 'orphan thin device removed');
        assert.ok(set.hasDevice('ghost'));
        assert.deepEqual(set.faultyDevices().map((f) => f.hash), ['ghost']);
        await assert.rejects(mountLayer(set, 'ghost'), { code: 'EFAULTY' });
        await assert.rejects(set.addDevice('child-of-ghost', 'ghost'), { code: 'EFAULTY' });
        assert.equal(Object.fromEntries(await set.status())['Faulty Device Count'], '1');
      } finally {
        await set.shutdown();
        await fsp.rm(path.join(home, 'metadata', 'ghost'));
      }
    });

    it('refuses a pool whose base filesystem UUID differs from the recorded one', async () => {
      const file = path.join(home, 'metadata', 'deviceset-metadata');
      const saved = await fsp.readFile(file, 'utf8');
      const record = JSON.parse(saved) as Record<string, unknown>;
      await fsp.writeFile(file, JSON.stringify({ ...record, BaseDeviceUUID: '00000000-0000-0000-0000-000000000000' }));
      try {
        await assert.rejects(openSet(home), (err: unknown) => {
          assert.equal((err as { code: string }).code, 'EBASEUUID');
          assert.match(String(err), /different thin pool/);
          return true;
        });
      } finally {
        await fsp.writeFile(file, saved);
      }
      const prefixPools = (await dm.list()).filter((d) => d.name.endsWith('-pool'));
      assert.ok(prefixPools.every((d) => !d.name.includes(String(require('node:fs').statSync(home).ino))), 'the refused start left no pool active');
    });

    it('grows the base device when dm.basesize is raised, and refuses to shrink it', async () => {
      let set = await openSet(home, ['dm.basesize=768M']);
      try {
        assert.equal(Object.fromEntries(await set.status())['Base Device Size'], '805.3MB');
        await set.addDevice('after-grow', '');
        const rootfs = await mountLayer(set, 'after-grow');
        const st = await kfs.statfs(rootfs);
        assert.ok(st.blocks * st.bsize > 700 * MiB);
        await set.unmountDevice('after-grow');
      } finally {
        await set.shutdown();
      }
      await assert.rejects(openSet(home, ['dm.basesize=256M']), { code: 'EBASESIZE' });
      set = await openSet(home, ['dm.basesize=768M']);
      await set.shutdown();
    });
  });

  describe('an existing pool (dm.thinpooldev)', () => {
    it('refuses to take over a pool that already has data, and uses an empty one', async () => {
      const home = await tempHome('ext');
      const { TestPool } = await import('../support/pool');
      const used = await TestPool.create();
      const empty = await TestPool.create();
      try {
        await thin.createThin(used.name, 1);
        await used.activate(1, 64 * MiB);
        await run('mkfs.ext4', ['-q', '-F', dm.devicePath(used.thinName(1))]);
        await dm.remove(used.thinName(1));
        await assert.rejects(openSet(home, [`dm.thinpooldev=/dev/mapper/${used.name}`]), { code: 'EPOOLINUSE' });
        const set = await openSet(home, [`dm.thinpooldev=/dev/mapper/${empty.name}`]);
        await set.addDevice('on-existing', '');
        await set.shutdown();
        assert.ok((await dm.info(empty.name)).exists, 'an existing pool is never removed');
      } finally {
        await used.destroy();
        await empty.destroy();
      }
    });
  });

  describe('a pool that cannot take changes', () => {
    it('refuses new devices while the pool is read-only, and works again once it is writable', async () => {
      const set = await openSet(await tempHome('ro'));
      const [table] = await dm.table(set.pool.name);
      assert.ok(table !== undefined);
      const setMode = async (params: string): Promise<void> => {
        await dm.reload(set.pool.name, [{ ...table, params }]);
        await dm.suspend(set.pool.name);
        await dm.resume(set.pool.name);
      };
      try {
        // The pool's own feature list, with read_only added.
        const [meta, data, block, low, count = '0', ...features] = table.params.split(' ');
        await setMode([meta, data, block, low, Number(count) + 1, ...features, 'read_only'].join(' '));
        assert.equal((await thin.poolStatus(set.pool.name)).mode, 'ro');
        await assert.rejects(set.addDevice('while-ro', ''), (err: unknown) => {
          assert.equal((err as { code: string }).code, 'EPOOLRO');
          assert.match(String(err), /read-only/);
          return true;
        });
        assert.equal(set.hasDevice('while-ro'), false);
        await setMode(table.params);
        await set.addDevice('while-ro', '');
      } finally {
        await set.shutdown();
      }
    });
  });

  describe('free space', () => {
    it('refuses new devices once free space falls under dm.min_free_space, with a clear error', async () => {
      const home = await tempHome('full');
      const set = await openSet(home, ['dm.loopdatasize=1G', 'dm.min_free_space=60%', 'dm.fs=ext4', 'dm.basesize=600M', 'dm.blkdiscard=false']);
      try {
        await set.addDevice('filler', '');
        const rootfs = await mountLayer(set, 'filler');
        await fsp.writeFile(path.join(rootfs, 'blob'), Buffer.alloc(450 * MiB, 7));
        await set.unmountDevice('filler');
        await assert.rejects(set.addDevice('one-more', ''), (err: unknown) => {
          assert.equal((err as { code: string }).code, 'ENOSPC');
          assert.match(String(err), /free data blocks, less than the \d+ that dm.min_free_space=60% requires/);
          return true;
        });
        assert.equal(set.hasDevice('one-more'), false);
        await set.deleteDevice('filler');
        await set.addDevice('one-more', '');
      } finally {
        await set.shutdown();
      }
    });
  });
});
