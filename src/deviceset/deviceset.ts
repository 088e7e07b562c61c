// The DeviceSet owns the thin pool and every thin device in it: the base
// device with its filesystem, one snapshot per layer, thin volumes and
// containerd's snapshots (each consumer in its own namespace of device
// names, namespaces.ts), their metadata and their mounts. This file is
// its verbs; each subject lives beside it:
//   startup.ts            opening after any stop: adopt or unmount, roll back, reconcile
//   base-device.ts        the base device: made once, checked and grown at start
//   transactions.ts       pool changes and the crash-safety rules they follow
//   activation.ts         dm devices over thin ids: activate, deactivate, snapshot, discard
//   mounts.ts             mounting a device, and the mounts a shutdown keeps
//   deferred-deletion.ts  devices deleted while busy, deleted later
//   context.ts            the state the files above share
//   consumer-devices.ts   each consumer's view: its verbs over its own ids (namespaces.ts)
//
// Lock order. Two locks, always taken in this order, never the other:
//   1. deviceLocks(hash): one per device, held while the device is
//      activated, mounted, unmounted, deactivated or deleted; addDevice
//      holds the parent's, so an origin is not mounted while snapshotted.
//   2. poolLock: one for the pool, held for every pool change (a new,
//      snapshotted or deleted thin id, the transaction id) and for reads
//      of the pool's metadata snapshot. Pool changes run one at a time;
//      mounts of different devices run side by side.
// No code waits for a device lock while it holds the pool lock.
import { mkdirSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { dm, thin } from '../devmapper';
import { SECTOR_SIZE } from '../devmapper/thin';
import { DmthinError } from '../shared/errors';
import { failpoint } from '../shared/failpoint';
import { KeyedMutex, Mutex } from '../shared/lock';
import type { Logger } from '../shared/log';
import { activate, deactivate, deactivateAll, snapshot } from './activation';
import { saveSetRecord, setupBaseDevice } from './base-device';
import { ConsumerDevices } from './consumer-devices';
import { SetContext } from './context';
import { DeferredDeletions } from './deferred-deletion';
import { growFilesystem, makeFilesystem, type FsType } from './filesystem';
import { BASE_HASH, checkHash, MetadataStore, type DeviceRecord } from './metadata';
import { checkAdopted, mountAt, saveKeptMounts, unmountAndRemove, withTemporaryMount, type KeptMount } from './mounts';
import { lowWaterBlocks } from './low-water';
import type { DeviceOwner } from './namespaces';
import type { DeviceSetOptions } from './options';
import { checkFreeSpace, mappedBytesByThinId, poolBlockSize, setupPool, type Pool } from './pool';
import { deviceSizeProblem, MIN_XFS_SIZE } from './sizes';
import { configureLibdm, deferredSupport, devicePrefix, loadSet, type LeftMountPolicy } from './startup';
import { statusRows, type StatusRow } from './status';
import { createThinWithFreeId, deleteInTransaction, inTransaction } from './transactions';

export interface DeviceSetConfig {
  home: string;
  options: DeviceSetOptions;
  log: Logger;
  /**
   * Whether a mount of device `hash` at `target` that a killed process
   * left behind is still someone's (a running container's layer), to be
   * adopted with one user rather than unmounted as stale.
   */
  adoptLeftMount?: (hash: string, target: string) => boolean;
  /**
   * Whether device `hash` is mounted by others, never by the set (the
   * containerd snapshotter's devices, which containerd mounts itself):
   * its mounts are theirs, left alone at start-up.
   */
  mountedByOthers?: (hash: string) => boolean;
}

export interface AddDeviceOptions {
  /** bytes; at least the parent's size */
  size?: number;
}

export interface CreateDeviceOptions {
  /** bytes */
  size: number;
  /** default: the base device's filesystem */
  fs?: FsType;
  mkfsArgs?: readonly string[];
}

export interface DeleteDeviceOptions {
  /** discard every block first, whatever dm.blkdiscard says (volumes: their data must not linger) */
  discard?: boolean;
  /** wait for a busy device instead of deferring its deletion */
  syncDelete?: boolean;
}

export interface MountOptions {
  /** where to mount it; default <home>/mnt/<hash> */
  target?: string;
  mountLabel?: string;
  /** mount options for this mount only, after dm.mountopt (a thin volume's noinit_itable) */
  options?: readonly string[];
}

/** What a device holds, for volume Status. */
export interface DeviceUsage {
  deviceId: number;
  /** bytes */
  size: number;
  filesystem: FsType;
  /** bytes of pool data behind the device */
  mappedBytes: number;
}

/** A device whose metadata and pool disagree; refused until an operator looks. */
export interface FaultyDevice {
  hash: string;
  reason: string;
}

export class DeviceSet {
  private readonly poolLock = new Mutex();
  private readonly deviceLocks = new KeyedMutex();
  private readonly deferredDeletions: DeferredDeletions;
  private closed = false;
  private readonly views = new Map<DeviceOwner, ConsumerDevices>();
  /** the callers' say on mounts a dead process left (DeviceSetConfig) */
  private leftMounts: LeftMountPolicy = { adoptLeftMount: () => false, mountedByOthers: () => false };
  readonly home: string;
  readonly prefix: string;
  readonly options: DeviceSetOptions;
  readonly pool: Pool;

  private constructor(private readonly ctx: SetContext) {
    this.home = ctx.home;
    this.prefix = ctx.prefix;
    this.options = ctx.options;
    this.pool = ctx.pool;
    this.deferredDeletions = new DeferredDeletions(ctx, (hash) =>
      this.deviceLocks.run(hash, () =>
        this.poolLock.run(async () => {
          const record = ctx.devices.get(hash);
          if (record?.deleted === true) await deleteInTransaction(ctx, record, true, ctx.options.blkDiscard);
        }),
      ),
    );
  }

  /** Sets up (or adopts) the pool, recovers from an unclean stop, and makes sure the base device is there. */
  static async open(config: DeviceSetConfig): Promise<DeviceSet> {
    const { home, options, log } = config;
    await fsp.mkdir(path.join(home, 'mnt'), { recursive: true, mode: 0o700 });
    const store = new MetadataStore(path.join(home, 'metadata'));
    await store.init();
    configureLibdm(options, log);
    const { deferredRemoval, deferredDeletion } = await deferredSupport(options);
    const prefix = await devicePrefix(home);
    const pool = await setupPool(home, prefix, options, log);
    const set = new DeviceSet(new SetContext(home, prefix, options, log, store, pool, deferredRemoval, deferredDeletion));
    set.leftMounts = {
      adoptLeftMount: config.adoptLeftMount ?? ((): boolean => false),
      mountedByOthers: config.mountedByOthers ?? ((): boolean => false),
    };
    try {
      await loadSet(set.ctx, set.leftMounts);
      await setupBaseDevice(set.ctx, set.poolLock);
    } catch (err) {
      await set.releasePool();
      throw err;
    }
    set.deferredDeletions.start();
    return set;
  }

  /** The view of consumer `owner`: the verbs over its own ids, refusing any outside its namespace. One per owner, so it can key a cache. */
  devicesOf(owner: DeviceOwner): ConsumerDevices {
    let view = this.views.get(owner);
    if (view === undefined) {
      view = new ConsumerDevices(this, owner);
      this.views.set(owner, view);
    }
    return view;
  }

  // ---- the verbs ------------------------------------------------------------------------------

  /** Creates device `hash` as a snapshot of `parent` ('' is the base device). */
  async addDevice(hash: string, parent: string, options: AddDeviceOptions = {}): Promise<void> {
    checkHash(hash);
    if (hash === BASE_HASH) throw new DmthinError('EINVALIDID', 'a device id must not be empty');
    checkHash(parent);
    this.checkOpen();
    // The parent's lock keeps it from being activated or mounted while it is snapshotted.
    await this.deviceLocks.run(parent, () => this.poolLock.run(async () => {
      this.checkFree(hash);
      const origin = this.usable(parent);
      const size = options.size ?? origin.size;
      if (!Number.isSafeInteger(size) || size < origin.size) {
        throw new DmthinError('ESIZE', `size of ${hash} cannot be smaller than its parent's ${origin.size} bytes`, { subject: hash });
      }
      const problem = deviceSizeProblem(size, origin.size);
      if (problem !== null) throw new DmthinError('ESIZE', `size of ${hash} ${problem}`, { subject: hash });
      await checkFreeSpace(this.ctx.pool, this.ctx.options);
      const record: DeviceRecord = { hash, deviceId: 0, size, transactionId: 0, initialized: true, deleted: false, filesystem: origin.filesystem };
      await inTransaction(this.ctx, 'add-device', record, async () => {
        await createThinWithFreeId(this.ctx, 'add-device', record, (id) => snapshot(this.ctx, origin, id));
        await this.ctx.store.saveDevice(record);
        failpoint('add-device:record-saved');
        if (size > origin.size) await this.growDevice(record);
      });
    }));
  }

  /**
   * Creates device `hash` as a new, empty thin device with a filesystem of
   * its own (thin volumes). Its root directory is empty: no lost+found.
   */
  async createDevice(hash: string, options: CreateDeviceOptions): Promise<void> {
    checkHash(hash);
    if (hash === BASE_HASH) throw new DmthinError('EINVALIDID', 'a device id must not be empty');
    this.checkOpen();
    const { size } = options;
    const problem = deviceSizeProblem(size);
    if (problem !== null) throw new DmthinError('ESIZE', `size of ${hash} ${problem}`, { subject: hash });
    const filesystem = options.fs ?? this.ctx.fsType;
    if (filesystem === 'xfs' && size < MIN_XFS_SIZE) {
      throw new DmthinError('ESIZE', `xfs needs at least 300M, and ${hash} would have ${size} bytes; ask for more, or for ext4`, { subject: hash });
    }
    await this.poolLock.run(async () => {
      this.checkFree(hash);
      await checkFreeSpace(this.ctx.pool, this.ctx.options);
      const record: DeviceRecord = { hash, deviceId: 0, size, transactionId: 0, initialized: false, deleted: false, filesystem };
      await inTransaction(this.ctx, 'create-device', record, async () => {
        await createThinWithFreeId(this.ctx, 'create-device', record, (id) => thin.createThin(this.ctx.pool.name, id));
        await this.ctx.store.saveDevice(record);
        failpoint('create-device:record-saved');
        const name = this.ctx.deviceName(hash);
        await activate(this.ctx, record);
        try {
          await makeFilesystem(dm.devicePath(name), filesystem, options.mkfsArgs ?? []);
          failpoint('create-device:formatted');
          if (filesystem === 'ext4') await withTemporaryMount(this.ctx, record, (dir) => fsp.rmdir(path.join(dir, 'lost+found')));
        } finally {
          await deactivate(name, false);
        }
        record.initialized = true;
        await this.ctx.store.saveDevice(record);
      });
    });
  }

  /** Deletes device `hash`; an unknown one is not an error. */
  async deleteDevice(hash: string, options: DeleteDeviceOptions = {}): Promise<void> {
    checkHash(hash);
    if (hash === BASE_HASH) throw new DmthinError('EINVALIDID', 'the base device cannot be deleted');
    this.checkOpen();
    await this.deviceLocks.run(hash, () =>
      this.poolLock.run(async () => {
        const record = this.ctx.devices.get(hash);
        if (record === undefined) return;
        const mounted = this.ctx.mounts.get(hash);
        if (mounted?.adopted === true) {
          // Adopted from a killed process and not used since: its user was
          // that process (an ApplyDiff cut short, say), since dockerd removes
          // no layer it still holds.
          await unmountAndRemove(mounted.target).catch(() => undefined);
          this.ctx.mounts.delete(hash);
        } else if (mounted !== undefined) {
          throw new DmthinError('EBUSY', `device ${hash} is mounted`);
        }
        await deleteInTransaction(this.ctx, record, options.syncDelete ?? false, options.discard ?? this.ctx.options.blkDiscard);
      }),
    );
  }

  /**
   * Mounts device `hash` at `target` (default <home>/mnt/<hash>), counting
   * users, and returns the directory. A device is mounted in one place at a time.
   */
  async mountDevice(hash: string, options: MountOptions = {}): Promise<string> {
    checkHash(hash);
    this.checkOpen();
    const target = options.target ?? this.ctx.mountPath(hash);
    return this.deviceLocks.run(hash, async () => {
      const record = this.usable(hash);
      let mounted = this.ctx.mounts.get(hash);
      if (mounted?.adopted === true) mounted = await checkAdopted(this.ctx, hash, mounted);
      if (mounted !== undefined) {
        if (mounted.target !== target) throw new DmthinError('EBUSY', `device ${hash || 'base'} is mounted at ${mounted.target}, not ${target}`);
        mounted.users++;
        return target;
      }
      await activate(this.ctx, record);
      try {
        // Synchronous: a mkdir of an existing directory costs less than a thread-pool round trip.
        mkdirSync(target, { recursive: true, mode: 0o755 });
        await mountAt(this.ctx, record, target, options.mountLabel ?? '', options.options ?? []);
      } catch (err) {
        await deactivate(this.ctx.deviceName(hash), this.ctx.deferredRemoval).catch(() => undefined);
        throw err;
      }
      this.ctx.mounts.set(hash, { target, users: 1 });
      return target;
    });
  }

  /** Drops one user of device `hash`; the last one unmounts and deactivates it. */
  async unmountDevice(hash: string): Promise<void> {
    checkHash(hash);
    await this.deviceLocks.run(hash, async () => {
      const mounted = this.ctx.mounts.get(hash);
      if (mounted === undefined) return;
      if (mounted.users > 1) {
        mounted.users--;
        return;
      }
      await unmountAndRemove(mounted.target);
      this.ctx.mounts.delete(hash);
      await deactivate(this.ctx.deviceName(hash), this.ctx.deferredRemoval);
    });
  }

  /**
   * Activates device `hash` without mounting it, for users that mount it
   * themselves (containerd), and returns its /dev/mapper path.
   */
  async activateDevice(hash: string): Promise<string> {
    checkHash(hash);
    this.checkOpen();
    return this.deviceLocks.run(hash, async () => {
      const record = this.usable(hash);
      await activate(this.ctx, record);
      return dm.devicePath(this.ctx.deviceName(hash));
    });
  }

  /** Deactivates device `hash` that activateDevice activated; one still open goes when its last user closes it. */
  async deactivateDevice(hash: string): Promise<void> {
    checkHash(hash);
    await this.deviceLocks.run(hash, async () => {
      if (this.ctx.mounts.has(hash)) return;
      await deactivate(this.ctx.deviceName(hash), this.ctx.deferredRemoval);
    });
  }

  /**
   * Size, filesystem and pool space of device `hash`: live from the thin
   * target when the device is active, else from a metadata snapshot.
   */
  async deviceUsage(hash: string): Promise<DeviceUsage> {
    checkHash(hash);
    const record = this.usable(hash);
    const filesystem = this.ctx.filesystemOf(record);
    const name = this.ctx.deviceName(hash);
    if ((await dm.info(name)).exists) {
      const status = await thin.thinStatus(name);
      return { deviceId: record.deviceId, size: record.size, filesystem, mappedBytes: status.mappedSectors * SECTOR_SIZE };
    }
    const mapped = await this.poolLock.run(() => mappedBytesByThinId(this.ctx.pool));
    return { deviceId: record.deviceId, size: record.size, filesystem, mappedBytes: mapped.get(record.deviceId) ?? 0 };
  }

  /** The base device's filesystem: what createDevice makes when not told otherwise. */
  get baseFilesystem(): FsType {
    return this.ctx.fsType;
  }

  /** Whether metadata knows the device (faulty ones included: they exist, they are just refused). */
  hasDevice(hash: string): boolean {
    return this.ctx.devices.has(hash) || this.ctx.faulty.has(hash);
  }

  /** Every device id the set serves, base device excluded. */
  listDevices(): string[] {
    return [...this.ctx.devices.keys()].filter((hash) => hash !== BASE_HASH);
  }

  isMounted(hash: string): boolean {
    return this.ctx.mounts.has(hash);
  }

  /** The hashes of every mounted device. */
  mountedDevices(): string[] {
    return [...this.ctx.mounts.keys()];
  }

  faultyDevices(): FaultyDevice[] {
    return [...this.ctx.faulty].map(([hash, reason]) => ({ hash, reason }));
  }

  // ---- for the admin commands (src/admin/) ---------------------------------------------------------

  /** Runs fn under the pool lock: no create or delete is half done while it looks at the pool or fixes it. */
  underPoolLock<T>(fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    return this.poolLock.run(fn);
  }

  /** Every device record metadata holds, deferred deletions and the base device included. */
  deviceRecords(): DeviceRecord[] {
    return [...this.ctx.devices.values()].map((d) => ({ ...d }));
  }

  /** Where the set has device `hash` mounted, if it does. */
  mountTarget(hash: string): string | undefined {
    return this.ctx.mounts.get(hash)?.target;
  }

  /** Deferred removal and deletion as in effect (the options, decided against the kernel). */
  deferredModes(): { removal: boolean; deletion: boolean } {
    return { removal: this.ctx.deferredRemoval, deletion: this.ctx.deferredDeletion };
  }

  /** Whether device `hash` is mounted by others (containerd's snapshots), never by the set. */
  isMountedByOthers(hash: string): boolean {
    return this.leftMounts.mountedByOthers(hash);
  }

  /** GetMetadata's keys, as the in-tree driver returned them. */
  deviceMetadata(hash: string): Record<string, string> {
    const record = this.usable(hash);
    return { DeviceId: String(record.deviceId), DeviceSize: String(record.size), DeviceName: this.ctx.deviceName(hash) };
  }

  deviceName(hash: string): string {
    return this.ctx.deviceName(hash);
  }

  mountPath(hash: string): string {
    return this.ctx.mountPath(hash);
  }

  async status(): Promise<StatusRow[]> {
    const deleted = this.deferredDeletions.count();
    const status = await thin.poolStatus(this.ctx.pool.name);
    const blockSize = await poolBlockSize(this.ctx.pool);
    return statusRows({
      pool: this.ctx.pool,
      status,
      blockSize,
      lowWaterBlocks: lowWaterBlocks(this.ctx.options, status.totalDataBlocks, blockSize),
      baseSize: this.ctx.devices.get(BASE_HASH)?.size ?? this.ctx.options.baseSize,
      fsType: this.ctx.fsType,
      udevSync: dm.udevSync(),
      minFreeSpacePercent: this.ctx.options.minFreeSpacePercent,
      deferredRemoval: this.ctx.deferredRemoval,
      deferredDeletion: this.ctx.deferredDeletion,
      deferredDeletedCount: deleted,
      faultyCount: this.ctx.faulty.size,
      libraryVersion: (await dm.version()).library,
      loopBackingDir: this.ctx.pool.dataFile === '' ? '' : path.dirname(this.ctx.pool.dataFile),
    });
  }

  /**
   * Flushes metadata, unmounts what it mounted, deactivates its devices and,
   * if it made the pool, the pool. Mounts that `keepMounted` names stay
   * mounted and active for their users (dockerd's layers of running
   * containers, when the plugin restarts under dockerd), and so does the
   * pool; the next start adopts them.
   */
  async shutdown(options: { keepMounted?: (hash: string) => boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deferredDeletions.stop();
    await this.poolLock.run(async () => {
      await saveSetRecord(this.ctx);
      const kept: KeptMount[] = [];
      for (const [hash, { target, users }] of this.ctx.mounts) {
        if (options.keepMounted?.(hash) === true) {
          kept.push({ hash, target, users });
          continue;
        }
        await unmountAndRemove(target).catch(() => undefined);
      }
      this.ctx.mounts.clear();
      if (kept.length > 0) await saveKeptMounts(this.ctx, kept);
      await deactivateAll(this.ctx, new Set(kept.map((k) => this.ctx.deviceName(k.hash))));
      if (kept.length > 0) {
        this.ctx.log.info('left devices mounted for their users; the next start adopts them', { mounts: kept.length });
        return;
      }
      await this.releasePool();
    });
  }

  /** Retries the deletion of devices that were busy when deleted; the background timer calls it too. */
  async retryDeferredDeletions(): Promise<void> {
    await this.deferredDeletions.retry();
  }

  // ---- checks and helpers ----------------------------------------------------------------------

  /** Snapshots grown past their origin's size: the filesystem grows with the device. */
  private async growDevice(record: DeviceRecord): Promise<void> {
    await activate(this.ctx, record);
    try {
      await withTemporaryMount(this.ctx, record, async (dir) => {
        failpoint('add-device:grow-mounted');
        await growFilesystem(dm.devicePath(this.ctx.deviceName(record.hash)), dir, this.ctx.filesystemOf(record));
        failpoint('add-device:grown');
      });
    } finally {
      await deactivate(this.ctx.deviceName(record.hash), false);
    }
  }

  /** Refuses a hash that is taken, faulty ones included. */
  private checkFree(hash: string): void {
    if (this.ctx.devices.has(hash) || this.ctx.faulty.has(hash)) {
      throw new DmthinError('EEXIST', `device ${hash} already exists${this.ctx.faulty.has(hash) ? ' (faulty)' : ''}`);
    }
  }

  private usable(hash: string): DeviceRecord {
    const reason = this.ctx.faulty.get(hash);
    if (reason !== undefined) throw new DmthinError('EFAULTY', `device ${hash || 'base'} is faulty: ${reason}`);
    const record = this.ctx.devices.get(hash);
    if (record === undefined) throw new DmthinError('ENOENT', `unknown device ${hash || 'base'}`);
    if (record.deleted) throw new DmthinError('ENOENT', `device ${hash} is being deleted`);
    return record;
  }

  private checkOpen(): void {
    if (this.closed) throw new DmthinError('ESHUTDOWN', 'the device set is shut down');
  }

  private async releasePool(): Promise<void> {
    if (!this.ctx.pool.owned) return;
    await deactivate(this.ctx.pool.name, false).catch((err: unknown) => this.ctx.log.warn('cannot remove the pool', { err: String(err) }));
  }
}
