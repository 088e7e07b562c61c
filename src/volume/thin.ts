// Thin volumes: each one a thin device of the process's DeviceSet, in the
// volume namespace (vol-<sha256 of the name>), with its own filesystem.
// The pool may open late or not at all (no device-mapper): thin volumes
// wait for it or say why they cannot, plain volumes never do. Once the
// pool is open, its vol- devices are reconciled with the volumes once.
import type { DeviceSet } from '../deviceset';
import { deviceOwner } from '../deviceset/namespaces';
import { DmthinError } from '../shared/errors';
import type { Logger } from '../shared/log';
import { volumeDeviceHash } from './names';
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
  /** device hashes of creates in flight: reconcile must not take their devices */
  private readonly creating = new Set<string>();
  private readonly reconciled = new WeakMap<DeviceSet, Promise<void>>();

  constructor(
    private readonly pool: ThinPoolAccess,
    /** the volumes, to know which devices are owned */
    private readonly volumes: () => Iterable<Volume>,
    private readonly log: Logger,
  ) {}

  /** The DeviceSet, reconciled with the store; rejects with what is missing (device-mapper, the pool). */
  async set(): Promise<DeviceSet> {
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
    return this.reconciledSet(set);
  }

  /** The reconciled set, or null when there is none. */
  async setIfAny(): Promise<DeviceSet | null> {
    const set = await this.pool.tryReady();
    return set === null ? null : this.reconciledSet(set);
  }

  /** Whether a pool is there (a volume without options is thin then, with DMTHIN_VOLUME_KIND=auto). */
  async available(): Promise<boolean> {
    return (await this.pool.tryReady()) !== null;
  }

  /** Reconciles the pool's vol- devices once it is open; for main to start in the background. */
  async reconcileWhenReady(): Promise<void> {
    const set = await this.pool.tryReady();
    if (set !== null) await this.reconciledSet(set);
  }

  /** A new, empty thin volume: its record and its device. */
  plan(name: string, set: DeviceSet, spec: ThinSpec, options: Readonly<Record<string, string>>, defaultSize: number): ThinPlan {
    const filesystem = spec.fs ?? set.baseFilesystem;
    const size = spec.size ?? defaultSize;
    if (filesystem === 'xfs' && size < MIN_XFS_SIZE) {
      throw new DmthinError('EVOLOPTION', `a ${size}-byte xfs volume is too small: xfs needs at least 300M; give -o size=300M or more, or -o fs=ext4`);
    }
    const record = newRecord('thin', options, { Size: size, Filesystem: filesystem });
    const hash = volumeDeviceHash(name);
    return { record, makeDevice: namedFailure(name, () => set.createDevice(hash, { size, fs: filesystem, mkfsArgs: filesystem === 'ext4' ? EXT4_MKFS_ARGS : [] })) };
  }

  /** Runs a create of volume `name` with its device kept from reconcile meanwhile. */
  async whileCreating<T>(name: string, create: () => Promise<T>): Promise<T> {
    const hash = volumeDeviceHash(name);
    this.creating.add(hash);
    try {
      return await create();
    } finally {
      this.creating.delete(hash);
    }
  }

  /** The thin device hashes volumes (and creates in flight) own: what reconcile keeps. */
  ownedDeviceHashes(): Set<string> {
    const owned = new Set(this.creating);
    for (const volume of this.volumes()) {
      if (mayOwnDevice(volume)) owned.add(volumeDeviceHash(volume.name));
    }
    return owned;
  }

  /** Deletes the device of a create that failed after making it; the next start does it if this cannot. */
  async undoCreate(name: string): Promise<void> {
    const hash = volumeDeviceHash(name);
    const set = this.pool.current();
    await set?.deleteDevice(hash, { discard: true }).catch((e: unknown) => this.log.warn('cannot delete the device of a failed create; the next start does', { hash, err: String(e) }));
  }

  /** Deletes a volume's device, its blocks discarded first: a volume's data must not linger in the pool's free blocks. */
  async deleteDevice(name: string, set: DeviceSet | null): Promise<void> {
    const hash = volumeDeviceHash(name);
    try {
      if (set?.hasDevice(hash) === true) await set.deleteDevice(hash, { discard: true });
    } catch (err) {
      throw new DmthinError('EVOLREMOVE', `cannot remove volume ${name}: its thin device ${hash}: ${(err as Error).message}`, { cause: err });
    }
  }

  async mount(volume: Volume, mountpoint: string): Promise<void> {
    const set = await this.set();
    const hash = volumeDeviceHash(volume.name);
    if (!set.hasDevice(hash)) throw new DmthinError('ENODEV', `volume ${volume.name} cannot be mounted: its thin device ${hash} is missing from the pool`);
    const ext4 = volume.state?.ok === true && volume.state.record.Thin?.Filesystem === 'ext4';
    await set.mountDevice(hash, { target: mountpoint, ...(ext4 ? { options: EXT4_MOUNT_OPTIONS } : {}) });
  }

  async unmount(volume: Volume): Promise<void> {
    await (await this.set()).unmountDevice(volumeDeviceHash(volume.name));
  }

  /** The device's usage if the pool is open now; never waits for the pool, and not long for the device. */
  async usage(name: string): Promise<UsageLookup> {
    const set = this.pool.current();
    if (set === null) return { kind: 'unavailable', reason: 'the thin pool is not open' };
    const hash = volumeDeviceHash(name);
    const faulty = set.faultyDevices().find((f) => f.hash === hash);
    if (faulty !== undefined) return { kind: 'error', reason: `thin device ${hash} is faulty: ${faulty.reason}` };
    if (!set.hasDevice(hash)) return { kind: 'error', reason: `thin device ${hash} is missing from the pool; the volume cannot be mounted` };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<UsageLookup>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'unavailable', reason: 'the pool is busy; ask again' }), USAGE_TIMEOUT_MS);
    });
    const lookup = set.deviceUsage(hash).then(
      (usage): UsageLookup => ({ kind: 'usage', usage, deviceName: set.deviceName(hash) }),
      (err: unknown): UsageLookup => ({ kind: 'error', reason: `thin device ${hash}: ${(err as Error).message}` }),
    );
    try {
      return await Promise.race([lookup, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async reconciledSet(set: DeviceSet): Promise<DeviceSet> {
    let done = this.reconciled.get(set);
    if (done === undefined) {
      done = this.reconcile(set);
      this.reconciled.set(set, done);
    }
    await done;
    return set;
  }

  /**
   * Deletes every vol- device that no volume owns: what a crash during a
   * create or a remove leaves. A volume whose opts.json is unreadable keeps
   * its device: it may be thin. Never throws: thin operations wait on it.
   */
  private async reconcile(set: DeviceSet): Promise<void> {
    const owned = this.ownedDeviceHashes();
    let deleted = 0;
    for (const hash of set.listDevices()) {
      if (deviceOwner(hash) !== 'volume' || owned.has(hash)) continue;
      this.log.warn('deleting a thin device that no volume owns (left by an interrupted create or remove)', { hash });
      try {
        await set.deleteDevice(hash, { discard: true });
        deleted++;
      } catch (err) {
        this.log.error('cannot delete an orphaned volume device', { hash, err: String(err) });
      }
    }
    for (const volume of this.volumes()) {
      const hash = volumeDeviceHash(volume.name);
      if (volume.state?.ok === true && volume.state.record.Kind === 'thin' && !set.hasDevice(hash)) {
        this.log.error('thin volume without its device; it is listed but cannot be mounted', { volume: volume.name, hash });
      }
    }
    this.log.info('thin volumes reconciled with the pool', { orphansDeleted: deleted });
  }
}

/** makeDevice, with its failure said as volume `name`'s. */
export function namedFailure(name: string, makeDevice: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await makeDevice();
    } catch (err) {
      throw deviceError(name, volumeDeviceHash(name), err);
    }
  };
}

function deviceError(name: string, hash: string, err: unknown): Error {
  if ((err as { code?: string }).code === 'EEXIST') {
    return new DmthinError('EEXIST', `cannot create volume ${name}: its thin device ${hash} still exists (a deletion still pending, or a faulty device; see the logs)`, { cause: err });
  }
  return new DmthinError((err as { code?: string }).code ?? 'EVOLCREATE', `cannot create volume ${name}: ${(err as Error).message}`, { cause: err });
}
