// The DeviceSet's consumers and their device names. Each consumer owns a
// namespace and names its devices by its own ids; this file alone turns an
// id into a device name and back:
//   layer     dockerd's layer id, as it is ('' is the base device, a layer's parent only)
//   volume    vol-<id>, the id the sha256 of the volume's name (64 hex digits)
//   snapshot  snap-<id>, the id a snapshot record's number, or `empty`
// No consumer makes, mounts or deletes a device in another's namespace
// (consumer-devices.ts enforces it); start-up and shutdown use the owner to
// decide whose mounts are whose.

/** Who a device belongs to. */
export type DeviceOwner = 'layer' | 'volume' | 'snapshot';

const VOLUME_DEVICE_PREFIX = 'vol-';
const SNAPSHOT_DEVICE_PREFIX = 'snap-';
const VOLUME_ID = /^[0-9a-f]{64}$/;
const SNAPSHOT_ID = /^(?:empty|[1-9][0-9]{0,15})$/;
/** /dev/mapper/<DeviceSet prefix>-vol-<id>: a thin volume's device, as mountinfo names its source. */
const VOLUME_MAPPER_PATH = new RegExp(`^/dev/mapper/.+-${VOLUME_DEVICE_PREFIX}[0-9a-f]{64}$`);

/** What owns device `hash`; a layer is anything not in another consumer's namespace. */
export function deviceOwner(hash: string): DeviceOwner {
  if (hash.startsWith(VOLUME_DEVICE_PREFIX)) return 'volume';
  if (hash.startsWith(SNAPSHOT_DEVICE_PREFIX)) return 'snapshot';
  return 'layer';
}

/** Why a layer id is refused: it is in another consumer's namespace; null when it is a layer's. */
export function foreignLayerId(id: string): string | null {
  switch (deviceOwner(id)) {
    case 'volume':
      return `ids starting with ${VOLUME_DEVICE_PREFIX} are dmthin's volumes`;
    case 'snapshot':
      return `ids starting with ${SNAPSHOT_DEVICE_PREFIX} are the containerd snapshotter's`;
    case 'layer':
      return null;
  }
}

/** Why `id` is not one of `owner`'s ids; null when it is. */
export function idRefusal(owner: DeviceOwner, id: string): string | null {
  switch (owner) {
    case 'layer':
      return foreignLayerId(id);
    case 'volume':
      return VOLUME_ID.test(id) ? null : 'a volume device id is the 64 hex digits of its name\'s sha256';
    case 'snapshot':
      return SNAPSHOT_ID.test(id) ? null : 'a snapshot device id is a snapshot\'s number or `empty`';
  }
}

/** The device name of `owner`'s id `id` (checked by idRefusal first). */
export function deviceHashOf(owner: DeviceOwner, id: string): string {
  switch (owner) {
    case 'layer':
      return id;
    case 'volume':
      return `${VOLUME_DEVICE_PREFIX}${id}`;
    case 'snapshot':
      return `${SNAPSHOT_DEVICE_PREFIX}${id}`;
  }
}

/** `owner`'s id of device `hash`, or null when the device is not `owner`'s (the base device '' counts as a layer's, as it always has). */
export function idOfDeviceHash(owner: DeviceOwner, hash: string): string | null {
  if (deviceOwner(hash) !== owner) return null;
  const id = owner === 'volume' ? hash.slice(VOLUME_DEVICE_PREFIX.length) : owner === 'snapshot' ? hash.slice(SNAPSHOT_DEVICE_PREFIX.length) : hash;
  return idRefusal(owner, id) === null ? id : null;
}

/** Whether a mount's source is a thin volume's device (mountinfo's /dev/mapper path). */
export function isVolumeMapperPath(source: string): boolean {
  return VOLUME_MAPPER_PATH.test(source);
}
