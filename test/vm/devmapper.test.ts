// The device-mapper half of the addon against a real kernel thin pool, in
// the test VM: what a DeviceSet will rely on.
import assert from 'node:assert/strict';
import { existsSync, promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { blockdev, dm, fs, thin } from '../../src/devmapper';
import { isErrno, isSystemError } from '../../src/shared/errors';
import { run } from '../support/exec';
import { requireRoot, requireVm } from '../support/env';
import { TestPool } from '../support/pool';

const MiB = 1024 * 1024;
// mkfs.xfs from xfsprogs 6 refuses filesystems under 300 MB.
const THIN_BYTES = 512 * MiB;

async function mountDevice(device: string, target: string, fstype: string, data: string | null = null): Promise<void> {
  await fsp.mkdir(target, { recursive: true });
  await fs.mount(device, target, fstype, 0, data);
}

/** The kernel's encoding of a device number, as stat's rdev carries it. */
function makedev(major: number, minor: number): number {
  return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12);
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting until ${what}`);
}

async function withHandle<T>(device: string, flags: number, use: (h: fsp.FileHandle) => Promise<T>): Promise<T> {
  const handle = await fsp.open(device, flags);
  try {
    return await use(handle);
  } finally {
    await handle.close();
  }
}

describe('device-mapper thin pool (VM)', function () {
  let pool: TestPool;
  let mnt = '';

  before(async function () {
    requireVm(this);
    requireRoot(this);
    pool = await TestPool.create();
    mnt = path.join(pool.dir, 'mnt');
  });

  after(async () => {
    await pool?.destroy();
  });

  it('reports the library and kernel driver versions', async () => {
    const v = await dm.version();
    assert.match(v.library, /^1\.02\.\d+/);
    assert.match(v.driver, /^4\.\d+\.\d+/);
  });

  it('builds a pool whose status starts empty at transaction 0', async () => {
    const s = await thin.poolStatus(pool.name);
    assert.equal(s.failed, false);
    assert.equal(s.transactionId, 0);
    assert.equal(s.usedDataBlocks, 0);
    assert.equal(s.totalDataBlocks, pool.dataBytes / (pool.blockSize * 512));
    assert.ok(s.usedMetadataBlocks > 0 && s.usedMetadataBlocks < s.totalMetadataBlocks);
    assert.equal(s.mode, 'rw');
    assert.equal(s.heldMetadataRoot, null);
    assert.equal(s.needsCheck, false);
    const [target] = await dm.table(pool.name);
    assert.equal(target?.type, 'thin-pool');
  });

  it('creates a thin device, activates it and describes it', async () => {
    assert.equal(await dm.message(pool.name, 0, 'create_thin 1'), null);
    const device = await pool.activate(1, THIN_BYTES);
    assert.ok(existsSync(device), `${device} exists`);
    assert.equal(await blockdev.size(device), THIN_BYTES);

    const info = await dm.info(pool.thinName(1));
    assert.equal(info.exists, true);
    assert.equal(info.openCount, 0);
    assert.equal(info.targetCount, 1);
    assert.equal(info.suspended, false);
    assert.equal(info.readOnly, false);
    assert.equal(info.liveTable, true);
    const st = await fsp.stat(device);
    assert.equal(st.rdev, makedev(info.major ?? -1, info.minor ?? -1));

    const poolInfo = await dm.info(pool.name);
    assert.deepEqual(await dm.deps(pool.thinName(1)), [{ major: poolInfo.major, minor: poolInfo.minor }]);
    assert.deepEqual(await dm.table(pool.thinName(1)), [
      { start: 0, length: THIN_BYTES / 512, type: 'thin', params: `${poolInfo.major}:${poolInfo.minor} 1` },
    ]);
    assert.deepEqual(await thin.thinStatus(pool.thinName(1)), { failed: false, mappedSectors: 0, highestMappedSector: null });
    assert.ok((await dm.list()).some((d) => d.name === pool.thinName(1) && d.major === info.major && d.minor === info.minor));
  });

  it('says a missing device does not exist, and fails to remove it with ENXIO', async () => {
    assert.deepEqual(await dm.info(`${pool.prefix}-nothing`), { name: `${pool.prefix}-nothing`, exists: false });
    await assert.rejects(dm.remove(`${pool.prefix}-nothing`), (err: unknown) => {
      assert.ok(isErrno(err, 'ENXIO'), String(err));
      assert.equal(err.path, `${pool.prefix}-nothing`);
      assert.equal(err.syscall, 'dm_task_run(remove)');
      return true;
    });
  });

  it('formats ext4 on a thin device, mounts it, writes and unmounts', async () => {
    const device = dm.devicePath(pool.thinName(1));
    await run('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=1', device]);
    await mountDevice(device, mnt, 'ext4');
    try {
      await fsp.writeFile(path.join(mnt, 'origin.txt'), 'from the origin\n');
      assert.equal((await fs.statfs(mnt)).type, 0xef53);
    } finally {
      await fs.umount2(mnt);
    }
    const mapped = await thin.thinStatus(pool.thinName(1));
    assert.ok(mapped.mappedSectors > 0, 'writes mapped data blocks');
    assert.ok((await thin.poolStatus(pool.name)).usedDataBlocks > 0);
  });

  it('formats xfs on another thin device and mounts it', async () => {
    await thin.createThin(pool.name, 2);
    const device = await pool.activate(2, THIN_BYTES);
    await run('mkfs.xfs', ['-q', '-f', '-K', device]);
    await mountDevice(device, mnt, 'xfs');
    try {
      await fsp.writeFile(path.join(mnt, 'x'), 'xfs');
      assert.equal((await fs.statfs(mnt)).type, 0x58465342);
    } finally {
      await fs.umount2(mnt);
    }
  });

  it('snapshots a suspended origin: the snapshot sees its data, then the two diverge', async () => {
    const origin = pool.thinName(1);
    await dm.suspend(origin);
    assert.equal((await dm.info(origin)).suspended, true);
    try {
      await thin.createSnap(pool.name, 3, 1);
    } finally {
      await dm.resume(origin);
    }
    assert.equal((await dm.info(origin)).suspended, false);

    const snapMnt = path.join(pool.dir, 'snap');
    const snapshot = await pool.activate(3, THIN_BYTES);
    await mountDevice(snapshot, snapMnt, 'ext4');
    await mountDevice(dm.devicePath(origin), mnt, 'ext4');
    try {
      assert.equal(await fsp.readFile(path.join(snapMnt, 'origin.txt'), 'utf8'), 'from the origin\n');
      await fsp.writeFile(path.join(snapMnt, 'origin.txt'), 'changed in the snapshot\n');
      await fsp.writeFile(path.join(mnt, 'later.txt'), 'only in the origin\n');
      assert.equal(await fsp.readFile(path.join(mnt, 'origin.txt'), 'utf8'), 'from the origin\n');
      assert.equal(existsSync(path.join(snapMnt, 'later.txt')), false);
    } finally {
      await fs.umount2(snapMnt);
      await fs.umount2(mnt);
    }
    // After a fresh mount, each still holds its own version.
    await mountDevice(snapshot, snapMnt, 'ext4');
    try {
      assert.equal(await fsp.readFile(path.join(snapMnt, 'origin.txt'), 'utf8'), 'changed in the snapshot\n');
    } finally {
      await fs.umount2(snapMnt);
    }
  });

  it('refuses to remove a mounted device with EBUSY', async () => {
    const name = pool.thinName(1);
    await mountDevice(dm.devicePath(name), mnt, 'ext4');
    try {
      await assert.rejects(dm.remove(name), (err: unknown) => {
        assert.ok(isErrno(err, 'EBUSY'), String(err));
        assert.equal(err.path, name);
        return true;
      });
      assert.equal((await dm.info(name)).openCount, 1);
    } finally {
      await fs.umount2(mnt);
    }
  });

  it('refuses to create a thin id that exists with EEXIST, and passes the kernel message to the logger', async () => {
    const logged: string[] = [];
    dm.setLogger((_level, message) => logged.push(message));
    try {
      await assert.rejects(thin.createThin(pool.name, 1), (err: unknown) => {
        assert.ok(isErrno(err, 'EEXIST'), String(err));
        assert.equal(err.syscall, 'dm_task_run(message)');
        assert.equal(err.path, pool.name);
        return true;
      });
    } finally {
      dm.setLogger(null);
    }
    assert.ok(logged.length > 0, 'libdevmapper logged why');
  });

  it('deletes a thin device, which frees its blocks', async () => {
    await fs.umount2(mnt).catch(() => undefined);
    const before = (await thin.poolStatus(pool.name)).usedDataBlocks;
    await dm.remove(pool.thinName(2));
    assert.equal(existsSync(dm.devicePath(pool.thinName(2))), false);
    await thin.deleteThin(pool.name, 2);
    assert.ok((await thin.poolStatus(pool.name)).usedDataBlocks < before);
    await assert.rejects(thin.deleteThin(pool.name, 2), (err: unknown) => isSystemError(err));
  });

  it('sets the transaction id as a compare-and-swap and reads it back from status', async () => {
    await thin.setTransactionId(pool.name, 0, 5);
    assert.equal((await thin.poolStatus(pool.name)).transactionId, 5);
    await assert.rejects(thin.setTransactionId(pool.name, 0, 6), (err: unknown) => isErrno(err, 'EINVAL'));
    assert.equal((await thin.poolStatus(pool.name)).transactionId, 5);
  });

  it('reserves and releases a metadata snapshot', async () => {
    await thin.reserveMetadataSnap(pool.name);
    assert.notEqual((await thin.poolStatus(pool.name)).heldMetadataRoot, null);
    await thin.releaseMetadataSnap(pool.name);
    assert.equal((await thin.poolStatus(pool.name)).heldMetadataRoot, null);
  });

  it('discards a range, which unmaps its blocks in the pool', async () => {
    await thin.createThin(pool.name, 4);
    const device = await pool.activate(4, 16 * MiB);
    await withHandle(device, fsc.O_WRONLY, async (h) => {
      await h.write(Buffer.alloc(8 * MiB, 0x5a), 0, 8 * MiB, 0);
      await h.sync();
    });
    assert.equal((await thin.thinStatus(pool.thinName(4))).mappedSectors, (8 * MiB) / 512);
    await blockdev.discard(device, 0, 4 * MiB);
    assert.equal((await thin.thinStatus(pool.thinName(4))).mappedSectors, (4 * MiB) / 512);
    const head = await withHandle(device, fsc.O_RDONLY, async (h) => (await h.read(Buffer.alloc(4096), 0, 4096, 0)).buffer);
    assert.ok(head.every((b) => b === 0), 'a discarded range reads back as zeroes');
  });

  it('grows a device by reloading a longer table and resuming', async () => {
    const name = pool.thinName(4);
    await dm.reload(name, [thin.thinTable(pool.path, 4, (32 * MiB) / 512)]);
    assert.equal((await dm.info(name)).inactiveTable, true);
    assert.equal(await blockdev.size(dm.devicePath(name)), 16 * MiB);
    await dm.suspend(name);
    await dm.resume(name);
    assert.equal(await blockdev.size(dm.devicePath(name)), 32 * MiB);
  });

  it('removes a busy device deferred, once its last user closes it', async () => {
    const name = pool.thinName(4);
    const handle = await fsp.open(dm.devicePath(name), fsc.O_RDONLY);
    try {
      await assert.rejects(dm.remove(name), (err: unknown) => isErrno(err, 'EBUSY'));
      await dm.remove(name, { deferred: true });
      const info = await dm.info(name);
      assert.equal(info.exists, true);
      assert.equal(info.deferredRemove, true);
    } finally {
      await handle.close();
    }
    // The kernel finishes the removal from its own work queue.
    await waitFor(`${name} is gone`, async () => !(await dm.info(name)).exists);
  });

  it('makes /dev/mapper nodes with udev sync on or off', async () => {
    const before = dm.udevSync();
    try {
      for (const sync of [true, false]) {
        dm.setUdevSync(sync);
        const id = sync ? 5 : 6;
        await thin.createThin(pool.name, id);
        const device = await pool.activate(id, 8 * MiB);
        assert.ok((await fsp.stat(device)).isBlockDevice(), `${device} with udev sync ${String(sync)}`);
        await dm.remove(pool.thinName(id));
        assert.equal(existsSync(device), false);
      }
    } finally {
      dm.setUdevSync(before);
    }
  });

  it('runs many calls started at once, each to its own correct end', async () => {
    const ids = Array.from({ length: 48 }, (_, i) => 100 + i);
    await Promise.all(ids.map((id) => thin.createThin(pool.name, id)));
    const devices = await Promise.all(ids.map((id) => pool.activate(id, (4 + (id % 4)) * MiB)));
    const sizes = await Promise.all(devices.map((d) => blockdev.size(d)));
    assert.deepEqual(sizes, ids.map((id) => (4 + (id % 4)) * MiB));
    const infos = await Promise.all(ids.map((id) => dm.info(pool.thinName(id))));
    assert.ok(infos.every((i, n) => i.exists && i.name === pool.thinName(ids[n] ?? -1)));
    // Half of them fail at once (existing ids), the other half succeed; none is mixed up.
    const results = await Promise.allSettled(ids.map((id) => thin.createThin(pool.name, id % 2 === 0 ? id : id + 1000)));
    results.forEach((r, n) => {
      const id = ids[n] ?? -1;
      if (id % 2 === 0) assert.ok(r.status === 'rejected' && isErrno(r.reason, 'EEXIST'), `create_thin ${id} must fail`);
      else assert.equal(r.status, 'fulfilled', `create_thin ${id + 1000} must succeed`);
    });
    await Promise.all(ids.map((id) => dm.remove(pool.thinName(id))));
    await Promise.all(ids.map((id) => thin.deleteThin(pool.name, id)));
    const names = new Set(ids.map((id) => pool.thinName(id)));
    assert.deepEqual((await dm.list()).filter((d) => names.has(d.name)), []);
  });
});
