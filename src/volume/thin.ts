// Thin volumes: each one a thin device of the process's DeviceSet, in the
// volume namespace (the DeviceSet's volume view; a volume's device id is
// derived from its name, names.ts), with its own filesystem.
// The pool may open late or not at all (no device-mapper): thin volumes
// wait for it or say why they cannot, plain volumes never do. Once the
// pool is open, its volume devices are reconciled with the volumes once.
import type { ConsumerDevices, DeviceSet } from '../deviceset';
import { DmthinError } from '../shared/errors';
import type { Logger } from '../shared/log';
import { volumeDeviceId } from './names';
import { MIN_XFS_SIZE } from '../deviceset/sizes';
import type { ThinSpec } from './options';
import { newRecord, type VolumeRecord } from './record';
import type { Volume } from './registry';
import type { UsageLookup } from './status';

/** The thin pool as the store sees it: DeviceSetHolder's three ways to reach the DeviceSet. */
export interface ThinPoolAccess {
  /** the set, waiting for it to open; rejects saying why there is none */
  ready(): Promise<DeviceSet>;
  /** the set, waiting for it to open, or null when there is none */
  tryReady(): Promise<DeviceSet | null>;
  /** the set if it is open now, never waiting */
  current(): DeviceSet | null;
}

/** A thin volume about to be made: its record, and how its device is made. */
export interface ThinPlan {
  record: VolumeRecord;
  makeDevice: () => Promise<void>;
}

/** Status waits this long for a thin device's usage, then answers without it: Get must stay quick. */
const USAGE_TIMEOUT_MS = 2000;
/**
 * ext4 thin volumes leave their inode tables unwritten: a thin device reads
 * zeros where nothing was written, so zeroing them (mkfs, or the kernel's
 * lazy init at mount) would only allocate pool space, 1/64 of the size.
 */
const EXT4_MKFS_ARGS = ['-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1'];
const EXT4_MOUNT_OPTIONS = ['noinit_itable'];

/** Whether a volume may own a thin device: a thin one, or one whose opts.json cannot say. */
export function mayOwnDevice(volume: Volume): boolean {
  return volume.state !== null && (!volume.state.ok || volume.state.record.Kind === 'thin');
}

export class ThinVolumes {
  /** device ids of creates in flight: reconcile must not take their devices */
  private readonly creating = new Set<string>();
  private readonly reconciled = new WeakMap<ConsumerDevices, Promise<void>>();

  constructor(
    private readonly pool: ThinPoolAccess,
    /** the volumes, to know which devices are owned */
    private readonly volumes: () => Iterable<Volume>,
    private readonly log: Logger,
  ) {}

  /** The DeviceSet's volume view, reconciled with the store; rejects with what is missing (device-mapper, the pool). */
  async devices(): Promise<ConsumerDevices> {
    let set: DeviceSet;
    try {
      set = await this.pool.ready();
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ENOPOOL';
      const why = code === 'ENODM'
        ? 'device-mapper is not available in this kernel: load it with `modprobe dm_thin_pool`, then restart dmthin'
        : (err as Error).message;
      throw new DmthinError(code, `thin volumes are unavailable: ${why}; plain volumes (-o type/device/o, or none with DMTHIN_VOLUME_KIND=plain or auto) still work`, { cause: err });
    }
    return this.reconciledView(set.devicesOf('volume'));
  }

  /** The reconciled volume view, or null when there is no pool. */
  async devicesIfAny(): Promise<ConsumerDevices | null> {
    const set = await this.pool.tryReady();
    return set === null ? null : this.reconciledView(set.devicesOf('volume'));
  }

  /** Whether a pool is there (a volume without options is thin then, with DMTHIN_VOLUME_KIND=auto). */
  async available(): Promise<boolean> {
    return (await this.pool.tryReady()) !== null;
  }

  /** Reconciles the pool's volume devices once it is open; for main to start in the background. */
  async reconcileWhenReady(): Promise<void> {
    await this.devicesIfAny();
  }

  /** A new, empty thin volume: its record and its device. */
  plan(name: string, devices: ConsumerDevices, spec: ThinSpec, options: Readonly<Record<string, string>>, defaultSize: number): ThinPlan {
    const filesystem = spec.fs ?? devices.baseFilesystem;
    const size = spec.size ?? defaultSize;
    if (filesystem === 'xfs' && size < MIN_XFS_SIZE) {
      throw new DmthinError('EVOLOPTION', `a ${size}-byte xfs volume is too small: xfs needs at least 300M; give -o size=300M or more, or -o fs=ext4`);
    }
    const record = newRecord('thin', options, { Size: size, Filesystem: filesystem });
    const id = volumeDeviceId(name);
    return { record, makeDevice: namedFailure(name, devices, () => devices.create(id, { size, fs: filesystem, mkfsArgs: filesystem === 'ext4' ? EXT4_MKFS_ARGS : [] })) };
  }

  /** Runs a create of volume `name` with its device kept from reconcile meanwhile. */
  async whileCreating<T>(name: string, create: () => Promise<T>): Promise<T> {
    const id = volumeDeviceId(name);
    this.creating.add(id);
    try {
      return await create();
    } finally {
      this.creating.delete(id);
    }
  }

  /** The device ids volumes (and creates in flight) own: what reconcile keeps. */
  ownedDeviceIds(): Set<string> {
    const owned = new Set(this.creating);
    for (const volume of this.volumes()) {
      if (mayOwnDevice(volume)) owned.add(volumeDeviceId(volume.name));
    }
    return owned;
  }

  /** Deletes the device of a create that failed after making it; the next start does it if this cannot. */
  async undoCreate(name: string): Promise<void> {
    const devices = this.pool.current()?.devicesOf('volume');
    if (devices === undefined) return;
    const id = volumeDeviceId(name);
    await devices.delete(id, { discard: true }).catch((e: unknown) => this.log.warn('cannot delete the device of a failed create; the next start does', { hash: devices.deviceHash(id), err: String(e) }));
  }

  /** Deletes a volume's device, its blocks discarded first: a volume's data must not linger in the pool's free blocks. */
  async deleteDevice(name: string, devices: ConsumerDevices | null): Promise<void> {
    if (devices === null) return;
    const id = volumeDeviceId(name);
    try {
      if (devices.has(id)) await devices.delete(id, { discard: true });
    } catch (err) {
      throw new DmthinError('EVOLREMOVE', `cannot remove volume ${name}: its thin device ${devices.deviceHash(id)}: ${(err as Error).message}`, { cause: err });
    }
  }

  async mount(volume: Volume, mountpoint: string): Promise<void> {
    const devices = await this.devices();
    const id = volumeDeviceId(volume.name);
    if (!devices.has(id)) throw new DmthinError('ENODEV', `volume ${volume.name} cannot be mounted: its thin device ${devices.deviceHash(id)} is missing from the pool`);
    const ext4 = volume.state?.ok === true && volume.state.record.Thin?.Filesystem === 'ext4';
    await devices.mount(id, { target: mountpoint, ...(ext4 ? { options: EXT4_MOUNT_OPTIONS } : {}) });
  }

  async unmount(volume: Volume): Promise<void> {
    await (await this.devices()).unmount(volumeDeviceId(volume.name));
  }

  /** The device's usage if the pool is open now; never waits for the pool, and not long for the device. */
  async usage(name: string): Promise<UsageLookup> {
    const devices = this.pool.current()?.devicesOf('volume');
    if (devices === undefined) return { kind: 'unavailable', reason: 'the thin pool is not open' };
    const id = volumeDeviceId(name);
    const hash = devices.deviceHash(id);
    const faulty = devices.faultReason(id);
    if (faulty !== undefined) return { kind: 'error', reason: `thin device ${hash} is faulty: ${faulty}` };
    if (!devices.has(id)) return { kind: 'error', reason: `thin device ${hash} is missing from the pool; the volume cannot be mounted` };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<UsageLookup>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'unavailable', reason: 'the pool is busy; ask again' }), USAGE_TIMEOUT_MS);
    });
    const lookup = devices.usage(id).then(
      (usage): UsageLookup => ({ kind: 'usage', usage, deviceName: devices.mapperName(id) }),
      (err: unknown): UsageLookup => ({ kind: 'error', reason: `thin device ${hash}: ${(err as Error).message}` }),
    );
    try {
      return await Promise.race([lookup, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async reconciledView(devices: ConsumerDevices): Promise<ConsumerDevices> {
    let done = this.reconciled.get(devices);
    if (done === undefined) {
      done = this.reconcile(devices);
      this.reconciled.set(devices, done);
    }
    await done;
    return devices;
  }

  /**
   * Deletes every volume device that no volume owns: what a crash during a
   * create or a remove leaves. A volume whose opts.json is unreadable keeps
   * its device: it may be thin. Never throws: thin operations wait on it.
   */
  private async reconcile(devices: ConsumerDevices): Promise<void> {
    const owned = this.ownedDeviceIds();
    let deleted = 0;
    for (const id of devices.list()) {
      if (owned.has(id)) continue;
      const hash = devices.deviceHash(id);
      this.log.warn('deleting a thin device that no volume owns (left by an interrupted create or remove)', { hash });
      try {
        await devices.delete(id, { discard: true });
        deleted++;
      } catch (err) {
        this.log.error('cannot delete an orphaned volume device', { hash, err: String(err) });
      }
    }
    for (const volume of this.volumes()) {
      const id = volumeDeviceId(volume.name);
      if (volume.state?.ok === true && volume.state.record.Kind === 'thin' && !devices.has(id)) {
        this.log.error('thin volume without its device; it is listed but cannot be mounted', { volume: volume.name, hash: devices.deviceHash(id) });
      }
    }
    this.log.info('thin volumes reconciled with the pool', { orphansDeleted: deleted });
  }
}

/** makeDevice, with its failure said as volume `name`'s. */
export function namedFailure(name: string, devices: ConsumerDevices, makeDevice: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await makeDevice();
    } catch (err) {
      throw deviceError(name, devices.deviceHash(volumeDeviceId(name)), err);
    }
  };
}

function deviceError(name: string, hash: string, err: unknown): Error {
  if ((err as { code?: string }).code === 'EEXIST') {
    return new DmthinError('EEXIST', `cannot create volume ${name}: its thin device ${hash} still exists (a deletion still pending, or a faulty device; see the logs)`, { cause: err });
  }
  return new DmthinError((err as { code?: string }).code ?? 'EVOLCREATE', `cannot create volume ${name}: ${(err as Error).message}`, { cause: err });
}
