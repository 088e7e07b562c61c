// Each consumer of the DeviceSet owns a namespace of device names: layers
// (dockerd's ids), thin volumes (vol-), containerd snapshots (snap-). A
// layer id in another's namespace is refused, saying whose it is.
import assert from 'node:assert/strict';
import { deviceOwner, foreignLayerId } from '../../src/deviceset/namespaces';
import { volumeDeviceHash } from '../../src/volume/names';

describe('device namespaces', () => {
  it('tells layers, volumes and snapshots apart', () => {
    assert.equal(deviceOwner('4f1e0c3b2a'.repeat(6) + 'abcd'), 'layer');
    assert.equal(deviceOwner('4f1e0c3b2a-init'), 'layer');
    assert.equal(deviceOwner(volumeDeviceHash('data')), 'volume');
    assert.equal(deviceOwner('snap-12'), 'snapshot');
  });

  it('refuses layer ids in another consumer namespace', () => {
    assert.equal(foreignLayerId('abc'), null);
    assert.match(foreignLayerId('vol-abc') ?? '', /dmthin's volumes/);
    assert.match(foreignLayerId('snap-3') ?? '', /containerd snapshotter's/);
  });
});
