// The DeviceSet's consumers and their device names. Each consumer owns a
// namespace: the GraphDriver's layers (dockerd's ids), the volume store's
// thin volumes (vol-<sha256 of the name>), the containerd snapshotter's
// snapshots (snap-<id>). No consumer makes, mounts or deletes a device in
// another's namespace; start-up and shutdown use the owner to decide whose
// mounts are whose.

/** Who a device belongs to. */
export type DeviceOwner = 'layer' | 'volume' | 'snapshot';

/** A thin volume's device: vol- and the volume name's sha256. */
export const VOLUME_DEVICE_PREFIX = 'vol-';
/** A containerd snapshot's device: snap- and the snapshot's id. */
export const SNAPSHOT_DEVICE_PREFIX = 'snap-';

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
