// A thin volume cloned from another (-o from=VOLUME): a thin snapshot of
// the source's device, as big as the source or bigger (its filesystem is
// grown). The DeviceSet suspends a mounted source around the snapshot (its
// filesystem frozen), so the clone is consistent even while a container
// writes to the source. The caller holds both volumes' locks.
import type { ConsumerDevices } from '../deviceset';
import { DmthinError } from '../shared/errors';
import { volumeDeviceId } from './names';
import { newRecord, type VolumeRecord } from './record';
import type { VolumeRegistry } from './registry';
import { namedFailure, type ThinPlan } from './thin';

/** The clone of `from` as volume `name`: its record and how its device is made; a clear refusal when `from` cannot be cloned. */
export function planClone(name: string, from: string, devices: ConsumerDevices, registry: VolumeRegistry, size: number | undefined, options: Readonly<Record<string, string>>): ThinPlan {
  const source = cloneSource(from, devices, registry);
  const cloneSize = size ?? source.Size;
  if (cloneSize < source.Size) {
    throw new DmthinError('EVOLOPTION', `size=${options['size'] ?? ''} is smaller than volume ${from}'s ${source.Size} bytes; a clone can only be as big or bigger`);
  }
  const record = newRecord('thin', options, { Size: cloneSize, Filesystem: source.Filesystem, From: from });
  const grow = cloneSize > source.Size ? { size: cloneSize } : {};
  return { record, makeDevice: namedFailure(name, devices, () => devices.add(volumeDeviceId(name), volumeDeviceId(from), grow)) };
}

/** The record of a thin volume that a clone can be made from, or a clear refusal. */
function cloneSource(from: string, devices: ConsumerDevices, registry: VolumeRegistry): NonNullable<VolumeRecord['Thin']> {
  const source = registry.get(from);
  if (source === undefined) throw new DmthinError('EVOLOPTION', `from=${from}: no such volume`);
  if (source.state?.ok === false) throw new DmthinError('EVOLOPTION', `from=${from}: that volume cannot be used: ${source.state.problem}`);
  if (source.state === null || source.state.record.Thin === undefined) {
    throw new DmthinError('EVOLOPTION', `from=${from} is a plain volume; only thin volumes (made with -o size, or by default when a pool is there) can be cloned`);
  }
  const id = volumeDeviceId(from);
  if (!devices.has(id)) throw new DmthinError('EVOLOPTION', `from=${from}: its thin device ${devices.deviceHash(id)} is missing from the pool`);
  return source.state.record.Thin;
}
