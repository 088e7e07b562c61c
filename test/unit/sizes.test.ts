// Sizes are checked where they come in, with a message that names the
// option: whole 512-byte sectors, at least room for a filesystem, at most
// what a number holds exactly. Nothing reaches the pool or the addon.
// - the rule itself (deviceSizeProblem)
// - a layer's size storage option, through the real GraphDriver before any pool
// - dm.basesize, a volume's -o size, DMTHIN_VOLUME_SIZE
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { loadSettings } from '../../src/config';
import { DeviceSetHolder } from '../../src/deviceset/holder';
import { parseOptions } from '../../src/deviceset/options';
import { deviceSizeProblem, MAX_DEVICE_SIZE, MIN_DEVICE_SIZE } from '../../src/deviceset/sizes';
import { DeviceSetDriver } from '../../src/graphdriver/driver';
import { createLogger } from '../../src/shared/log';
import { parseVolumeOptions } from '../../src/volume/options';

const MiB = 1024 * 1024;

describe('device sizes', () => {
  it('takes whole sectors from the minimum to the maximum, and says what is wrong otherwise', () => {
    assert.equal(deviceSizeProblem(MIN_DEVICE_SIZE), null);
    assert.equal(deviceSizeProblem(10 * 1024 ** 3), null);
    assert.equal(deviceSizeProblem(MAX_DEVICE_SIZE), null);
    assert.equal(deviceSizeProblem(64 * MiB + 1), 'is not a whole number of 512-byte sectors: 67108865 bytes (67108864 or 67109376 would be)');
    assert.equal(deviceSizeProblem(512 * 1024), 'is too small: at least 1M');
    assert.match(deviceSizeProblem(MAX_DEVICE_SIZE + 512) ?? '', /^is too large: at most \d+ bytes$/);
    assert.match(deviceSizeProblem(1.5) ?? '', /too large|whole number/);
  });

  it('refuses a layer size option that is not whole sectors before reaching the pool', async () => {
    const root = mkdtempSync('/var/tmp/dmthin-sizes-');
    try {
      const log = createLogger('error', 'json');
      const holder = new DeviceSetHolder({ root, pluginOptions: [], log });
      const driver = new DeviceSetDriver({ holder, root, log, restored: { home: path.join(root, 'home'), opts: [] } });
      const create = (size: string) => driver.create({ id: 'layer1', parent: '', mountLabel: '', storageOpt: { size } });
      await assert.rejects(create('20000001'), { code: 'EDMOPTION', message: /^storage option size=20000001 is not a whole number of 512-byte sectors/ });
      await assert.rejects(create('100k'), { code: 'EDMOPTION', message: 'storage option size=100k is too small: at least 1M' });
      // A good size gets as far as the pool, which this host has not opened.
      await assert.rejects(create('20G'), { code: 'ENODM' });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses a base size that is not whole sectors or too small', () => {
    assert.equal(parseOptions(['dm.basesize=20G']).baseSize, 20 * 1024 ** 3);
    assert.throws(() => parseOptions(['dm.basesize=1000000001']), { code: 'EDMOPTION', message: /^dm\.basesize=1000000001 is not a whole number of 512-byte sectors/ });
    assert.throws(() => parseOptions(['dm.basesize=512k']), { code: 'EDMOPTION', message: 'dm.basesize=512k is too small: at least 1M' });
  });

  it('rounds volume sizes up to whole sectors, from -o size and from DMTHIN_VOLUME_SIZE alike', () => {
    const spec = parseVolumeOptions({ size: '20000001' });
    assert.equal(spec.kind === 'thin' ? spec.size : undefined, 20000256);
    assert.equal(loadSettings({ DMTHIN_VOLUME_SIZE: '20000001' }).volumeSize, 20000256);
    assert.throws(() => loadSettings({ DMTHIN_VOLUME_SIZE: '1M' }), { code: 'ECONFIG', message: 'DMTHIN_VOLUME_SIZE: size=1M is too small: a thin volume needs at least 16M' });
    assert.throws(() => parseVolumeOptions({ size: '9007199254740900' }), { code: 'EVOLOPTION', message: /^size=9007199254740900 is too large/ });
    assert.throws(() => parseVolumeOptions({ size: '9P' }), { code: 'EVOLOPTION', message: /^size: invalid size "9P": too large/ });
  });
});
