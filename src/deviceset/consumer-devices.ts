// One consumer's view of the DeviceSet (DeviceSet.devicesOf): the verbs it
// needs, over its own ids. Each id (and a snapshot's parent) is checked to
// be in the consumer's namespace and turned into a device name here, once
// (namespaces.ts); anything outside is refused before the set is asked, so
// a consumer cannot touch another's devices, and none spells a device name.
// Verbs that answer with a promise refuse by rejecting it.
// Admin and start-up code that must see every device uses the DeviceSet.
import { DmthinError } from '../shared/errors';
import type { AddDeviceOptions, CreateDeviceOptions, DeleteDeviceOptions, DeviceSet, DeviceUsage, MountOptions } from './deviceset';
import type { FsType } from './filesystem';
import { deviceHashOf, idOfDeviceHash, idRefusal, type DeviceOwner } from './namespaces';
import type { StatusRow } from './status';

/** What a view asks of the DeviceSet. */
export type DeviceSetVerbs = Pick<
  DeviceSet,
  | 'addDevice' | 'createDevice' | 'deleteDevice' | 'mountDevice' | 'unmountDevice' | 'isMounted' | 'mountedDevices'
  | 'activateDevice' | 'deactivateDevice' | 'deviceUsage' | 'hasDevice' | 'listDevices' | 'faultyDevices'
  | 'deviceMetadata' | 'deviceName' | 'status' | 'retryDeferredDeletions' | 'baseFilesystem' | 'options'
>;

/** The base device, which a layer may name as its parent (and only a layer). */
const BASE_DEVICE = '';

export class ConsumerDevices {
  constructor(
    private readonly set: DeviceSetVerbs,
    readonly owner: DeviceOwner,
  ) {}

  /** The device name of id `id`, for messages and logs; refuses an id outside the namespace. */
  deviceHash(id: string): string {
    const reason = idRefusal(this.owner, id);
    if (reason !== null) throw new DmthinError('EINVALIDID', `invalid ${this.owner} id ${JSON.stringify(id.slice(0, 120))}: ${reason}`, { subject: id });
    return deviceHashOf(this.owner, id);
  }

  /** Creates device `id` as a snapshot of `parent`, a device of the same namespace ('' the base device, for layers). */
  async add(id: string, parent: string, options: AddDeviceOptions = {}): Promise<void> {
    const hash = this.deviceHash(id);
    const origin = this.owner === 'layer' && parent === BASE_DEVICE ? BASE_DEVICE : this.deviceHash(parent);
    return this.set.addDevice(hash, origin, options);
  }

  /** Creates device `id` as a new, empty thin device with a filesystem of its own. */
  async create(id: string, options: CreateDeviceOptions): Promise<void> {
    return this.set.createDevice(this.deviceHash(id), options);
  }

  /** Deletes device `id`; an unknown one is not an error. */
  async delete(id: string, options: DeleteDeviceOptions = {}): Promise<void> {
    return this.set.deleteDevice(this.deviceHash(id), options);
  }

  async mount(id: string, options: MountOptions = {}): Promise<string> {
    return this.set.mountDevice(this.deviceHash(id), options);
  }

  async unmount(id: string): Promise<void> {
    return this.set.unmountDevice(this.deviceHash(id));
  }

  isMounted(id: string): boolean {
    return this.set.isMounted(this.deviceHash(id));
  }

  /** The ids of this namespace's mounted devices. */
  mounted(): string[] {
    return this.idsOf(this.set.mountedDevices());
  }

  /** Activates device `id` without mounting it (containerd mounts it) and returns its /dev/mapper path. */
  async activate(id: string): Promise<string> {
    return this.set.activateDevice(this.deviceHash(id));
  }

  async deactivate(id: string): Promise<void> {
    return this.set.deactivateDevice(this.deviceHash(id));
  }

  async usage(id: string): Promise<DeviceUsage> {
    return this.set.deviceUsage(this.deviceHash(id));
  }

  /** Whether metadata knows device `id` (a faulty one too). */
  has(id: string): boolean {
    return this.set.hasDevice(this.deviceHash(id));
  }

  /** Why device `id` is faulty, or undefined when it is not. */
  faultReason(id: string): string | undefined {
    const hash = this.deviceHash(id);
    return this.set.faultyDevices().find((f) => f.hash === hash)?.reason;
  }

  /** The ids of every device of this namespace. */
  list(): string[] {
    return this.idsOf(this.set.listDevices());
  }

  /** GetMetadata's keys for device `id`. */
  metadata(id: string): Record<string, string> {
    return this.set.deviceMetadata(this.deviceHash(id));
  }

  /** Device `id`'s device-mapper name (the set's prefix and the device name). */
  mapperName(id: string): string {
    return this.set.deviceName(this.deviceHash(id));
  }

  /** The pool's status rows (the whole pool's: the namespaces share it). */
  async status(): Promise<StatusRow[]> {
    return this.set.status();
  }

  async retryDeferredDeletions(): Promise<void> {
    return this.set.retryDeferredDeletions();
  }

  /** The base device's filesystem: what create makes when not told otherwise. */
  get baseFilesystem(): FsType {
    return this.set.baseFilesystem;
  }

  /** bytes: the base device's size as configured (dm.basesize). */
  get baseSize(): number {
    return this.set.options.baseSize;
  }

  private idsOf(hashes: readonly string[]): string[] {
    const ids: string[] = [];
    for (const hash of hashes) {
      const id = idOfDeviceHash(this.owner, hash);
      if (id !== null) ids.push(id);
    }
    return ids;
  }
}
