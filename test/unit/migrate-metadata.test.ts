// The in-tree devicemapper driver's metadata as `dmthin migrate` reads it,
// over files in the exact form dockerd 20.10 writes them.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readInTreeMetadata } from '../../src/migrate/intree-metadata';

const LAYER = 'a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';

/** A home as dockerd 20.10 leaves it after an import and a run: base, a layer, a container and its init layer. */
const FIXTURE: Record<string, string> = {
  'deviceset-metadata': '{"next_device_id":4,"BaseDeviceUUID":"4c1f3a4e-2d57-4e8b-9a55-0d6a3b7c9e21","BaseDeviceFilesystem":"ext4"}',
  'transaction-metadata': `{"open_transaction_id":6,"device_hash":"${LAYER}","device_id":2}`,
  base: '{"device_id":1,"size":1073741824,"transaction_id":1,"initialized":true,"deleted":false}',
  [LAYER]: '{"device_id":2,"size":1073741824,"transaction_id":2,"initialized":false,"deleted":false}',
  'c0ffee-init': '{"device_id":3,"size":1073741824,"transaction_id":3,"initialized":false,"deleted":false}',
  c0ffee: '{"device_id":4,"size":1073741824,"transaction_id":4,"initialized":false,"deleted":false}',
  '.tmp123456': '{"half written',
};

async function home(files: Record<string, string>): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-intree-'));
  await fsp.mkdir(path.join(dir, 'metadata'));
  await fsp.mkdir(path.join(dir, 'devicemapper'));
  for (const [name, text] of Object.entries(files)) await fsp.writeFile(path.join(dir, 'metadata', name), text);
  return dir;
}

describe('dmthin migrate: reading the in-tree devicemapper metadata', () => {
  it('reads every device, the set record and the transaction, skipping what the in-tree driver skips', async () => {
    const m = readInTreeMetadata(await home(FIXTURE));
    assert.deepEqual(
      m.devices.map((d) => [d.hash, d.deviceId]).sort(),
      [['', 1], [LAYER, 2], ['c0ffee', 4], ['c0ffee-init', 3]].sort(),
    );
    assert.deepEqual(m.devices.find((d) => d.hash === ''), { hash: '', deviceId: 1, size: 1073741824, transactionId: 1, initialized: true, deleted: false });
    assert.equal(m.nextDeviceId, 4);
    assert.equal(m.baseDeviceUuid, '4c1f3a4e-2d57-4e8b-9a55-0d6a3b7c9e21');
    assert.equal(m.baseDeviceFilesystem, 'ext4');
    assert.deepEqual(m.transaction, { openTransactionId: 6, deviceHash: LAYER, deviceId: 2 });
    assert.deepEqual(m.unknownFields, []);
    assert.deepEqual(m.unreadable, []);
  });

  it('reports fields it does not know and files that are not metadata, instead of dropping them', async () => {
    const m = readInTreeMetadata(
      await home({
        ...FIXTURE,
        base: '{"device_id":1,"size":1073741824,"transaction_id":1,"initialized":true,"deleted":false,"encrypted":true}',
        'bad-json': '{',
        'no-size': '{"device_id":9,"transaction_id":1,"initialized":true}',
        'too-big': '{"device_id":16777216,"size":1,"transaction_id":1,"initialized":true}',
        'old-layer.migrated': 'whatever',
      }),
    );
    assert.deepEqual(m.unknownFields, ['base: encrypted']);
    assert.deepEqual(m.unreadable.map((u) => u.file).sort(), ['bad-json', 'no-size', 'too-big']);
    assert.match(m.unreadable.find((u) => u.file === 'no-size')?.reason ?? '', /size/);
    assert.match(m.unreadable.find((u) => u.file === 'too-big')?.reason ?? '', /24-bit/);
  });

  it('accepts device files from before deferred deletion (no "deleted" field)', async () => {
    const m = readInTreeMetadata(await home({ ...FIXTURE, base: '{"device_id":1,"size":10737418240,"transaction_id":1,"initialized":true}' }));
    assert.equal(m.devices.find((d) => d.hash === '')?.deleted, false);
  });

  it('refuses a directory that is not a devicemapper home, and the pre-1.x format', async () => {
    const empty = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-intree-'));
    assert.throws(() => readInTreeMetadata(empty), { code: 'ENOTDEVICEMAPPER' });
    const noSet = await home({ base: FIXTURE['base'] ?? '' });
    assert.throws(() => readInTreeMetadata(noSet), { code: 'ENOTDEVICEMAPPER', message: /deviceset-metadata is missing/ });
    const old = await home(FIXTURE);
    await fsp.writeFile(path.join(old, 'devicemapper', 'json'), '{}');
    assert.throws(() => readInTreeMetadata(old), { code: 'EOLDFORMAT' });
    const broken = await home({ ...FIXTURE, 'deviceset-metadata': '{"next_device_id":"four"}' });
    assert.throws(() => readInTreeMetadata(broken), { code: 'EMETADATA', message: /next_device_id/ });
  });
});
