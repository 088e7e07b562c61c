// The pieces of the DeviceSet that need no pool: ids, locks, metadata files.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IdAllocator } from '../../src/deviceset/ids';
import { KeyedMutex, Mutex } from '../../src/shared/lock';
import { MetadataStore, checkHash } from '../../src/deviceset/metadata';

describe('DeviceSet building blocks', () => {
  describe('thin id allocator', () => {
    it('hands out the lowest free id, reuses freed ones and skips ids in use', () => {
      const ids = new IdAllocator([1, 2, 5]);
      assert.equal(ids.allocate(), 3);
      assert.equal(ids.allocate(), 4);
      assert.equal(ids.allocate(), 6);
      ids.release(2);
      assert.equal(ids.allocate(), 2);
      ids.markUsed(7);
      ids.markUsed(10);
      assert.equal(ids.allocate(), 8);
      assert.equal(ids.allocate(), 9);
      assert.equal(ids.allocate(), 11);
      assert.equal(new IdAllocator([]).allocate(), 1, 'id 0 is never handed out');
    });
  });

  describe('locks', () => {
    it('runs one holder at a time, in order, and survives a failing holder', async () => {
      const mutex = new Mutex();
      const order: number[] = [];
      let inside = 0;
      const step = (n: number, fail = false) =>
        mutex.run(async () => {
          inside++;
          assert.equal(inside, 1);
          await new Promise((resolve) => setTimeout(resolve, 5));
          order.push(n);
          inside--;
          if (fail) throw new Error('boom');
        });
      const results = await Promise.allSettled([step(1), step(2, true), step(3)]);
      assert.deepEqual(order, [1, 2, 3]);
      assert.equal(results[1]?.status, 'rejected');
    });

    it('lets different keys run at once', async () => {
      const locks = new KeyedMutex();
      let concurrent = 0;
      let peak = 0;
      const hold = (key: string) =>
        locks.run(key, async () => {
          peak = Math.max(peak, ++concurrent);
          await new Promise((resolve) => setTimeout(resolve, 10));
          concurrent--;
        });
      await Promise.all([hold('a'), hold('b'), hold('a')]);
      assert.equal(peak, 2);
    });
  });

  describe('metadata files', () => {
    let dir = '';
    beforeEach(async () => {
      dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-meta-'));
    });
    afterEach(async () => {
      await fsp.rm(dir, { recursive: true, force: true });
    });

    it('writes the in-tree driver\'s JSON and reads it back', async () => {
      const store = new MetadataStore(dir);
      await store.saveDevice({ hash: 'abc', deviceId: 7, size: 1024, transactionId: 3, initialized: true, deleted: false, filesystem: null });
      await store.saveDevice({ hash: '', deviceId: 1, size: 1024, transactionId: 1, initialized: true, deleted: false, filesystem: null });
      await store.saveDevice({ hash: 'vol-x', deviceId: 2, size: 2048, transactionId: 4, initialized: true, deleted: false, filesystem: 'ext4' });
      assert.deepEqual(JSON.parse(await fsp.readFile(path.join(dir, 'abc'), 'utf8')), { device_id: 7, size: 1024, transaction_id: 3, initialized: true, deleted: false });
      const { devices, unreadable } = await store.loadDevices();
      assert.deepEqual(devices.map((d) => d.hash).sort(), ['', 'abc', 'vol-x']);
      assert.deepEqual(devices.map((d) => d.filesystem).sort(), ['ext4', null, null], 'a device\'s own filesystem is kept; layers have none');
      assert.deepEqual(unreadable, []);
      assert.deepEqual((await fsp.readdir(dir)).sort(), ['abc', 'base', 'vol-x'], 'no temp files left');
    });

    it('reports unreadable files instead of dropping them, and clears leftover temp files', async () => {
      const store = new MetadataStore(dir);
      await fsp.writeFile(path.join(dir, 'torn'), '{"device_id": 4, "si');
      await fsp.writeFile(path.join(dir, 'wrongid'), JSON.stringify({ device_id: 2 ** 24, size: 1 }));
      await fsp.writeFile(path.join(dir, '.tmp-abc-123'), 'half');
      const { devices, unreadable } = await store.loadDevices();
      assert.deepEqual(devices, []);
      assert.deepEqual(unreadable.map((u) => u.file).sort(), ['torn', 'wrongid']);
      assert.deepEqual((await fsp.readdir(dir)).sort(), ['torn', 'wrongid']);
    });

    it('keeps the transaction record until it is removed', async () => {
      const store = new MetadataStore(dir);
      assert.equal(await store.loadTransaction(), null);
      await store.saveTransaction({ openTransactionId: 5, deviceHash: 'x', deviceId: 9 });
      assert.deepEqual(await store.loadTransaction(), { openTransactionId: 5, deviceHash: 'x', deviceId: 9 });
      await store.removeTransaction();
      assert.equal(await store.loadTransaction(), null);
    });

    it('refuses ids that are not plain file names', () => {
      for (const bad of ['../x', 'a/b', '.', '..', 'a\0b', 'x'.repeat(101), 'base', 'transaction-metadata', '-x']) {
        assert.throws(() => checkHash(bad), { code: 'EINVALIDID' }, JSON.stringify(bad));
      }
      checkHash('f'.repeat(64));
      checkHash(`${'f'.repeat(64)}-init`);
    });
  });
});
