// Each consumer of the DeviceSet owns a namespace of device names: layers
// (dockerd's ids), thin volumes (vol-), containerd snapshots (snap-), and
// reaches the set only through its view (ConsumerDevices), which turns its
// ids into device names and refuses any outside its namespace before the
// set is asked. The view runs here over a stand-in for the DeviceSet that
// records what it is asked: the unit under test is the view's mapping and
// its refusals; the views over a real pool are exercised by the VM suites
// of the graph driver, the volumes and the snapshotter.
import assert from 'node:assert/strict';
import { ConsumerDevices, type DeviceSetVerbs } from '../../src/deviceset/consumer-devices';
import { deviceOwner, foreignLayerId } from '../../src/deviceset/namespaces';
import { DEFAULT_OPTIONS } from '../../src/deviceset/options';
import { DmthinError } from '../../src/shared/errors';
import { volumeDeviceId } from '../../src/volume/names';

const LAYER = '4f1e0c3b2a'.repeat(6) + 'abcd';
const VOLUME_ID = volumeDeviceId('data');

/** Records each verb and its device names; knows the devices it is given. */
function standIn(devices: string[] = [], mounted: string[] = []): { set: DeviceSetVerbs; calls: string[] } {
  const calls: string[] = [];
  const call = (...args: unknown[]): Promise<never> => {
    calls.push(args.map((a) => JSON.stringify(a)).join(' '));
    return Promise.resolve(undefined as never);
  };
  const set: DeviceSetVerbs = {
    addDevice: (hash, parent) => call('add', hash, parent),
    createDevice: (hash) => call('create', hash),
    deleteDevice: (hash) => call('delete', hash),
    mountDevice: (hash) => call('mount', hash),
    unmountDevice: (hash) => call('unmount', hash),
    activateDevice: (hash) => call('activate', hash),
    deactivateDevice: (hash) => call('deactivate', hash),
    deviceUsage: (hash) => call('usage', hash),
    isMounted: (hash) => mounted.includes(hash),
    mountedDevices: () => mounted,
    hasDevice: (hash) => devices.includes(hash),
    listDevices: () => devices,
    faultyDevices: () => [],
    deviceMetadata: (hash) => ({ DeviceName: `dmthin-${hash}` }),
    deviceName: (hash) => `dmthin-${hash}`,
    status: () => call('status'),
    retryDeferredDeletions: () => call('retry'),
    baseFilesystem: 'ext4',
    options: DEFAULT_OPTIONS,
  };
  return { set, calls };
}

/** An EINVALIDID refusal about `id` in the `owner` namespace. */
function refusal(owner: string, id: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof DmthinError, String(err));
    assert.equal(err.code, 'EINVALIDID');
    assert.equal(err.subject, id);
    assert.ok(err.message.startsWith(`invalid ${owner} id ${JSON.stringify(id)}: `), err.message);
    return true;
  };
}

describe('device namespaces', () => {
  it('tells layers, volumes and snapshots apart', () => {
    assert.equal(deviceOwner(LAYER), 'layer');
    assert.equal(deviceOwner('4f1e0c3b2a-init'), 'layer');
    assert.equal(deviceOwner(`vol-${VOLUME_ID}`), 'volume');
    assert.equal(deviceOwner('snap-12'), 'snapshot');
  });

  it('refuses layer ids in another consumer namespace', () => {
    assert.equal(foreignLayerId('abc'), null);
    assert.match(foreignLayerId('vol-abc') ?? '', /dmthin's volumes/);
    assert.match(foreignLayerId('snap-3') ?? '', /containerd snapshotter's/);
  });
});

describe('a consumer view of the DeviceSet', () => {
  it('gives the set a layer id as it is, and the base device as a layer parent', async () => {
    const { set, calls } = standIn();
    const layers = new ConsumerDevices(set, 'layer');
    await layers.add(LAYER, '');
    await layers.add(`${LAYER}-init`, LAYER);
    await layers.mount(LAYER);
    assert.deepEqual(calls, [`"add" "${LAYER}" ""`, `"add" "${LAYER}-init" "${LAYER}"`, `"mount" "${LAYER}"`]);
  });

  it('lets no layer verb touch a volume or a snapshot device, as id or as parent', async () => {
    const { set, calls } = standIn([`vol-${VOLUME_ID}`, 'snap-1'], [`vol-${VOLUME_ID}`]);
    const layers = new ConsumerDevices(set, 'layer');
    await assert.rejects(layers.add('snap-9', ''), refusal('layer', 'snap-9'));
    await assert.rejects(layers.add(LAYER, 'snap-1'), refusal('layer', 'snap-1'));
    await assert.rejects(layers.delete(`vol-${VOLUME_ID}`), refusal('layer', `vol-${VOLUME_ID}`));
    await assert.rejects(layers.mount('vol-abc'), /ids starting with vol- are dmthin's volumes/);
    assert.throws(() => layers.has('snap-1'), /ids starting with snap- are the containerd snapshotter's/);
    assert.throws(() => layers.metadata(`vol-${VOLUME_ID}`), refusal('layer', `vol-${VOLUME_ID}`));
    assert.deepEqual(layers.list(), [], 'a volume and a snapshot device are not layers');
    assert.deepEqual(layers.mounted(), []);
    assert.deepEqual(calls, [], 'the set was asked nothing');
  });

  it('names a volume device vol-<id> and takes only volume ids, never a layer or the base device', async () => {
    const { set, calls } = standIn([LAYER, `vol-${VOLUME_ID}`, 'snap-1']);
    const volumes = new ConsumerDevices(set, 'volume');
    const other = volumeDeviceId('other');
    await volumes.create(VOLUME_ID, { size: 1 << 30 });
    await volumes.add(other, VOLUME_ID);
    assert.deepEqual(calls, [`"create" "vol-${VOLUME_ID}"`, `"add" "vol-${other}" "vol-${VOLUME_ID}"`]);
    assert.equal(volumes.mapperName(VOLUME_ID), `dmthin-vol-${VOLUME_ID}`);
    assert.deepEqual(volumes.list(), [VOLUME_ID]);
    calls.length = 0;
    await assert.rejects(volumes.add(other, ''), refusal('volume', ''));
    await assert.rejects(volumes.add(other, `${LAYER}-init`), refusal('volume', `${LAYER}-init`));
    // An id is the namespace's: the 64 hex digits of a layer are vol-<them> here, never the layer.
    assert.equal(volumes.has(LAYER), false);
    await assert.rejects(volumes.delete(`vol-${VOLUME_ID}`), refusal('volume', `vol-${VOLUME_ID}`));
    await assert.rejects(volumes.mount('snap-1'), refusal('volume', 'snap-1'));
    assert.deepEqual(calls, []);
  });

  it('names a snapshot device snap-<id>, the empty device included, and takes nothing else', async () => {
    const { set, calls } = standIn([LAYER, `vol-${VOLUME_ID}`, 'snap-empty', 'snap-12'], ['snap-12', LAYER]);
    const snapshots = new ConsumerDevices(set, 'snapshot');
    await snapshots.create('empty', { size: 1 << 30 });
    await snapshots.add('13', 'empty');
    await snapshots.activate('13');
    assert.deepEqual(calls, ['"create" "snap-empty"', '"add" "snap-13" "snap-empty"', '"activate" "snap-13"']);
    assert.deepEqual(snapshots.list(), ['empty', '12']);
    assert.deepEqual(snapshots.mounted(), ['12']);
    calls.length = 0;
    await assert.rejects(snapshots.add('14', ''), refusal('snapshot', ''));
    await assert.rejects(snapshots.add('14', LAYER), refusal('snapshot', LAYER));
    await assert.rejects(snapshots.delete('snap-12'), refusal('snapshot', 'snap-12'));
    await assert.rejects(snapshots.usage('0'), refusal('snapshot', '0'));
    await assert.rejects(snapshots.deactivate(VOLUME_ID), refusal('snapshot', VOLUME_ID));
    assert.deepEqual(calls, []);
  });
});
