// The DeviceSet owns the thin pool and every thin device in it: the base
// device with its filesystem, one snapshot per layer, their metadata, and
// their mounts. Pool changes run one at a time under a transaction that a
// restart can roll back; mounts of different devices run independently.
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { blockdev, dm, fs as kfs, mountinfo, thin } from '../devmapper';
import { SECTOR_SIZE } from '../devmapper/thin';
import { readJsonFile, removeFileDurably, writeFileAtomic } from '../shared/atomic-file';
import { DmthinError, isErrno } from '../shared/errors';
import type { Logger } from '../shared/log';
import { defaultFilesystem, filesystemUuid, growFilesystem, makeFilesystem, mountArguments, probeFilesystem, type FsType } from './filesystem';
import { failpoint } from '../shared/failpoint';
import { IdAllocator } from './ids';
import { KeyedMutex, Mutex } from '../shared/lock';
import { BASE_HASH, checkHash, MetadataStore, type DeviceRecord, type SetRecord } from './metadata';
import type { DeviceSetOptions } from './options';
import { lowWaterBlocks } from './low-water';
import { listThinIds, mappedBytesByThinId, poolBlockSize, setupPool, type Pool } from './pool';
import { statusRows, type StatusRow } from './status';

const EBUSY_RETRIES = 50;
/** Smallest thin device createDevice makes; mkfs.xfs refuses less than 300 MiB. */
const MIN_DEVICE_SIZE = 1024 * 1024;
const MIN_XFS_SIZE = 300 * 1024 * 1024;
const EBUSY_RETRY_MS = 100;
const DEFERRED_DELETION_INTERVAL_MS = 30_000;
/** Kernels before dm 4.27 cannot remove a device deferred. */
const DEFERRED_REMOVE_DRIVER = [4, 27];

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

/** Where a shutdown records the mounts it kept for their users. */
const KEPT_MOUNTS_FILE = 'kept-mounts.json';

interface KeptMount {
  hash: string;
  target: string;
  users: number;
}

interface MountRecord {
  target: string;
  users: number;
  adopted?: boolean;
}

export class DeviceSet {
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly faulty = new Map<string, string>();
  /** mounted devices: where, how many users, and whether a mount adopted from the last run is still to be checked */
  private readonly mounts = new Map<string, MountRecord>();
  private adoptLeftMount: (hash: string, target: string) => boolean = () => false;
  private mountedByOthers: (hash: string) => boolean = () => false;
  private readonly poolLock = new Mutex();
  private readonly deviceLocks = new KeyedMutex();
  private ids = new IdAllocator([]);
  private transactionId = 0;
  private fsType: FsType = 'ext4';
  private setRecord: SetRecord = { nextDeviceId: 0, baseDeviceUuid: '', baseDeviceFilesystem: '' };
  private deletionTimer: NodeJS.Timeout | undefined;
  private deferredRemoval = false;
  private deferredDeletion = false;
  private closed = false;

  private constructor(
    readonly home: string,
    readonly prefix: string,
    readonly options: DeviceSetOptions,
    private readonly log: Logger,
    private readonly store: MetadataStore,
    readonly pool: Pool,
  ) {}

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
    const set = new DeviceSet(home, prefix, options, log, store, pool);
    set.deferredRemoval = deferredRemoval;
    set.deferredDeletion = deferredDeletion;
    set.adoptLeftMount = config.adoptLeftMount ?? ((): boolean => false);
    set.mountedByOthers = config.mountedByOthers ?? ((): boolean => false);
    try {
      await set.load();
      await set.setupBaseDevice();
    } catch (err) {
      await set.releasePool();
      throw err;
    }
    if (set.deferredDeletion) {
      set.deletionTimer = setInterval(() => void set.retryDeferredDeletions(), DEFERRED_DELETION_INTERVAL_MS);
      set.deletionTimer.unref();
    }
    return set;
  }

  // ---- start-up -------------------------------------------------------------------------------

  private async load(): Promise<void> {
    const phases: Record<string, number> = {};
    const phase = async <T>(name: string, step: () => Promise<T>): Promise<T> => {
      const start = performance.now();
      try {
        return await step();
      } finally {
        phases[name] = Math.round(performance.now() - start);
      }
    };
    const status = await thin.poolStatus(this.pool.name);
    if (status.failed) throw new DmthinError('EPOOLFAILED', `thin pool ${this.pool.name} has failed; repair it with thin_check/thin_repair`);
    this.transactionId = status.transactionId;
    const setRecord = await this.store.loadSet();
    const { devices, unreadable } = await phase('metadata', () => this.store.loadDevices());
    if (setRecord === null && devices.length === 0 && this.options.thinPoolDevice !== null) {
      // First use of a pool someone else made: it must be empty.
      if (status.usedDataBlocks > 0) throw new DmthinError('EPOOLINUSE', `cannot take over thin pool ${this.pool.name}: it already has used data blocks`);
      if (status.transactionId !== 0) throw new DmthinError('EPOOLINUSE', `cannot take over thin pool ${this.pool.name}: its transaction id is ${status.transactionId}, not 0`);
    }
    if (setRecord !== null) this.setRecord = setRecord;
    for (const d of devices) this.devices.set(d.hash, d);
    for (const u of unreadable) this.faulty.set(u.file, `metadata unreadable: ${u.reason}`);
    // A process killed while an origin was suspended for a snapshot leaves it suspended;
    // unmounting or using it would hang until it is resumed.
    await phase('resume', () => this.resumeSuspended());
    const kept = await this.takeKeptMounts();
    await phase('unmount', () => this.unmountStale(kept));
    await phase('deactivate', () => this.deactivateAll(this.mountedNames()));
    await phase('rollback', () => this.rollbackTransaction());
    await phase('reconcile', () => this.reconcile());
    this.ids = new IdAllocator([...this.devices.values()].map((d) => d.deviceId));
    this.log.info('device metadata loaded', { devices: this.devices.size, faulty: this.faulty.size, ms: phases });
  }

  private async resumeSuspended(): Promise<void> {
    for (const d of await dm.list()) {
      if (!d.name.startsWith(`${this.prefix}-`)) continue;
      const info = await dm.info(d.name);
      if (info.suspended === true) {
        this.log.warn('resuming a device a dead process left suspended', { device: d.name });
        await dm.resume(d.name);
      }
    }
  }

  /**
   * Mounts of this set's devices left by a process that died, wherever they
   * are (layers under a Home, volumes under their mount root): found by
   * device number in mountinfo, deepest first. Those the last shutdown
   * kept for their users (see shutdown) are adopted instead, users and all;
   * after a crash, those adoptLeftMount claims are adopted with one user
   * (a running container's layer: unmounting it would leave the container
   * without its rootfs on the host, and docker exec or commit failing).
   */
  private async unmountStale(kept: readonly KeptMount[]): Promise<void> {
    const hashByName = new Map([...this.devices.keys()].map((hash) => [this.deviceName(hash), hash]));
    /** "MAJOR:MINOR" of each active device of this set -> its hash, when metadata knows it */
    const ours = new Map<string, string | undefined>();
    for (const d of await dm.list()) {
      if (d.name.startsWith(`${this.prefix}-`) && d.name !== this.pool.name) ours.set(`${d.major}:${d.minor}`, hashByName.get(d.name));
    }
    const mounts = mountinfo
      .readMountinfo()
      .filter((m) => ours.has(m.device))
      .sort((a, b) => b.mountpoint.length - a.mountpoint.length);
    for (const { device, mountpoint: target } of mounts) {
      const hash = ours.get(device);
      if (hash !== undefined && this.mountedByOthers(hash)) continue;
      if (hash !== undefined && !this.mounts.has(hash)) {
        // Kept by the last shutdown with its users; else, after a crash, claimed with one.
        const keptUsers = kept.find((k) => k.hash === hash && k.target === target)?.users;
        const users = keptUsers ?? (this.adoptLeftMount(hash, target) ? 1 : 0);
        if (users > 0) {
          this.mounts.set(hash, { target, users, adopted: true });
          this.log.info('adopted a mount the last run left for its users', { hash, target, users, by: keptUsers !== undefined ? 'shutdown' : 'crash' });
          continue;
        }
      }
      this.log.info('unmounting a stale mount', { target });
      await kfs.umount2(target, kfs.constants.MNT_DETACH).catch((err: unknown) => this.log.warn('cannot unmount', { target, err: String(err) }));
    }
  }

  private get keptMountsFile(): string {
    return path.join(this.home, KEPT_MOUNTS_FILE);
  }

  /** What the last shutdown kept mounted; the record is gone once read (a later crash must not adopt it). */
  private async takeKeptMounts(): Promise<KeptMount[]> {
    let json: unknown;
    try {
      json = await readJsonFile(this.keptMountsFile);
    } catch (err) {
      this.log.warn('cannot read the mounts the last run kept; they are unmounted as stale', { err: String(err) });
      json = null;
    }
    await removeFileDurably(this.keptMountsFile);
    if (!Array.isArray(json)) return [];
    return json.filter((k): k is KeptMount => {
      const o = k as Partial<KeptMount> | null;
      return typeof o?.hash === 'string' && typeof o.target === 'string' && typeof o.users === 'number' && o.users > 0;
    });
  }

  /** The dm names of the mounted devices. */
  private mountedNames(): Set<string> {
    return new Set([...this.mounts.keys()].map((hash) => this.deviceName(hash)));
  }

  /**
   * Deactivates every device of this set. One still open elsewhere (a
   * running container's mount namespace) is left to deferred removal, or
   * active, rather than failing the start or the shutdown.
   */
  private async deactivateAll(except: ReadonlySet<string> = new Set()): Promise<void> {
    const ours = (await dm.list()).filter((d) => d.name.startsWith(`${this.prefix}-`) && d.name !== this.pool.name && !except.has(d.name));
    for (const d of ours) {
      try {
        await dm.remove(d.name, { deferred: this.deferredRemoval });
      } catch (err) {
        if (!isErrno(err, 'ENXIO')) this.log.warn('device still in use; left active', { device: d.name, err: String(err) });
      }
    }
  }

  private async rollbackTransaction(): Promise<void> {
    const tx = await this.store.loadTransaction();
    if (tx === null) return;
    if (tx.openTransactionId > this.transactionId) {
      this.log.warn('rolling back a pool change that did not finish', { hash: tx.deviceHash, deviceId: tx.deviceId });
      if (tx.deviceId !== 0) await this.deleteThin(tx.deviceId);
      this.devices.delete(tx.deviceHash);
      await this.store.removeDevice(tx.deviceHash);
    }
    await this.store.removeTransaction();
  }

  /** Thin ids the pool has but metadata lacks are removed; metadata without a thin device is faulty. */
  private async reconcile(): Promise<void> {
    const inPool = await listThinIds(this.pool);
    const known = new Set<number>();
    for (const d of this.devices.values()) {
      known.add(d.deviceId);
      if (!inPool.has(d.deviceId)) {
        this.faulty.set(d.hash, `thin device ${d.deviceId} is missing from pool ${this.pool.name}`);
        this.log.error('device metadata without a thin device; refusing to serve it', { hash: d.hash, deviceId: d.deviceId });
      }
    }
    const unreadable = this.faulty.size > 0 && [...this.faulty.keys()].some((h) => !this.devices.has(h));
    for (const id of inPool) {
      if (known.has(id)) continue;
      if (unreadable) {
        // An unreadable metadata file may be the one naming it: keep the data.
        this.log.warn('thin device without metadata kept, since some metadata is unreadable', { deviceId: id });
        continue;
      }
      this.log.warn('removing a thin device that no metadata names', { deviceId: id });
      await this.deleteThin(id);
    }
    for (const hash of this.faulty.keys()) this.devices.delete(hash);
  }

  private async setupBaseDevice(): Promise<void> {
    const base = this.devices.get(BASE_HASH);
    if (base !== undefined && (!base.initialized || base.deleted)) {
      this.log.warn('recreating a base device that was never finished');
      await this.poolLock.run(() => this.deleteLocked(base, true, this.options.blkDiscard));
    }
    if (!this.devices.has(BASE_HASH)) {
      if (this.faulty.has('base') || this.faulty.has(BASE_HASH)) throw new DmthinError('EFAULTY', 'the base device is faulty; see the logs');
      await this.poolLock.run(() => this.createBaseDevice());
      return;
    }
    await this.verifyBaseDevice();
  }

  private async createBaseDevice(): Promise<void> {
    this.fsType = this.options.fs ?? (await defaultFilesystem());
    const record: DeviceRecord = { hash: BASE_HASH, deviceId: 0, size: this.options.baseSize, transactionId: 0, initialized: false, deleted: false, filesystem: null };
    await this.inTransaction(record, async () => {
      await this.createThinWithFreeId(record, (id) => thin.createThin(this.pool.name, id));
      await this.store.saveDevice(record);
      const name = this.deviceName(BASE_HASH);
      await this.activate(record);
      try {
        await makeFilesystem(dm.devicePath(name), this.fsType, this.options.mkfsArgs);
        // Every layer inherits rootfs/ from the base, so no container sees lost+found.
        await this.withTemporaryMount(record, async (dir) => fsp.mkdir(path.join(dir, 'rootfs'), { mode: 0o755 }));
        this.setRecord = { ...this.setRecord, baseDeviceUuid: await filesystemUuid(dm.devicePath(name)), baseDeviceFilesystem: this.fsType };
      } finally {
        await this.deactivate(name, false);
      }
      record.initialized = true;
      await this.store.saveDevice(record);
    });
    await this.saveSetRecord();
    this.log.info('created the base device', { fs: this.fsType, size: record.size, uuid: this.setRecord.baseDeviceUuid });
  }

  private async verifyBaseDevice(): Promise<void> {
    const base = this.mustGet(BASE_HASH);
    const name = this.deviceName(BASE_HASH);
    await this.activate(base);
    try {
      const device = dm.devicePath(name);
      const uuid = await filesystemUuid(device);
      if (this.setRecord.baseDeviceUuid === '') {
        this.setRecord = { ...this.setRecord, baseDeviceUuid: uuid };
      } else if (uuid !== this.setRecord.baseDeviceUuid) {
        throw new DmthinError(
          'EBASEUUID',
          `base device UUID ${uuid} does not match the recorded ${this.setRecord.baseDeviceUuid}: this looks like a different thin pool than last time`,
        );
      }
      const probed = await probeFilesystem(device);
      if (probed === null) throw new DmthinError('ENOFS', `base device ${name} has no ext4 or xfs filesystem`);
      if (this.setRecord.baseDeviceFilesystem !== '' && probed !== this.setRecord.baseDeviceFilesystem) {
        throw new DmthinError('EBASEFS', `base device filesystem is ${probed}, but ${this.setRecord.baseDeviceFilesystem} was recorded`);
      }
      if (this.options.fs !== null && this.options.fs !== probed) {
        this.log.warn('dm.fs differs from the existing base device; keeping the base device filesystem', { asked: this.options.fs, actual: probed });
      }
      this.fsType = probed;
      this.setRecord = { ...this.setRecord, baseDeviceFilesystem: probed };
      if (this.options.baseSizeSet && this.options.baseSize !== base.size) await this.growBase(base);
    } finally {
      await this.deactivate(name, false);
    }
    await this.saveSetRecord();
  }

  private async growBase(base: DeviceRecord): Promise<void> {
    if (this.options.baseSize < base.size) {
      throw new DmthinError('EBASESIZE', `dm.basesize ${this.options.baseSize} is smaller than the base device's ${base.size} bytes; it can only grow`);
    }
    const grown = { ...base, size: this.options.baseSize };
    await this.deactivate(this.deviceName(BASE_HASH), false);
    await this.activate(grown);
    await this.withTemporaryMount(grown, (dir) => growFilesystem(dm.devicePath(this.deviceName(BASE_HASH)), dir, this.fsType));
    await this.store.saveDevice(grown);
    this.devices.set(BASE_HASH, grown);
    this.log.info('grew the base device', { size: grown.size });
  }

  // ---- the verbs --------------------------------------------------------------------------------

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
        throw new DmthinError('ESIZE', `size of ${hash} cannot be smaller than its parent's ${origin.size} bytes`);
      }
      await this.checkFreeSpace();
      const record: DeviceRecord = { hash, deviceId: 0, size, transactionId: 0, initialized: true, deleted: false, filesystem: origin.filesystem };
      await this.inTransaction(record, async () => {
        await this.createThinWithFreeId(record, (id) => this.snapshot(origin, id));
        await this.store.saveDevice(record);
        failpoint('add:record-saved');
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
    if (!Number.isSafeInteger(size) || size < MIN_DEVICE_SIZE || size % 512 !== 0) {
      throw new DmthinError('ESIZE', `size of ${hash} must be a whole number of 512-byte sectors, at least ${MIN_DEVICE_SIZE} bytes, got ${size}`);
    }
    const filesystem = options.fs ?? this.fsType;
    if (filesystem === 'xfs' && size < MIN_XFS_SIZE) {
      throw new DmthinError('ESIZE', `xfs needs at least 300M, and ${hash} would have ${size} bytes; ask for more, or for ext4`);
    }
    await this.poolLock.run(async () => {
      this.checkFree(hash);
      await this.checkFreeSpace();
      const record: DeviceRecord = { hash, deviceId: 0, size, transactionId: 0, initialized: false, deleted: false, filesystem };
      await this.inTransaction(record, async () => {
        await this.createThinWithFreeId(record, (id) => thin.createThin(this.pool.name, id));
        await this.store.saveDevice(record);
        failpoint('create:record-saved');
        const name = this.deviceName(hash);
        await this.activate(record);
        try {
          await makeFilesystem(dm.devicePath(name), filesystem, options.mkfsArgs ?? []);
          failpoint('create:formatted');
          if (filesystem === 'ext4') await this.withTemporaryMount(record, (dir) => fsp.rmdir(path.join(dir, 'lost+found')));
        } finally {
          await this.deactivate(name, false);
        }
        record.initialized = true;
        await this.store.saveDevice(record);
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
        const record = this.devices.get(hash);
        if (record === undefined) return;
        const mounted = this.mounts.get(hash);
        if (mounted?.adopted === true) {
          // Adopted from a killed process and not used since: its user was
          // that process (an ApplyDiff cut short, say), since dockerd removes
          // no layer it still holds.
          await this.unmountAndRemove(mounted.target).catch(() => undefined);
          this.mounts.delete(hash);
        } else if (mounted !== undefined) {
          throw new DmthinError('EBUSY', `device ${hash} is mounted`);
        }
        await this.deleteLocked(record, options.syncDelete ?? false, options.discard ?? this.options.blkDiscard);
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
    const target = options.target ?? this.mountPath(hash);
    return this.deviceLocks.run(hash, async () => {
      const record = this.usable(hash);
      let mounted = this.mounts.get(hash);
      if (mounted?.adopted === true) mounted = await this.checkAdopted(hash, mounted);
      if (mounted !== undefined) {
        if (mounted.target !== target) throw new DmthinError('EBUSY', `device ${hash || 'base'} is mounted at ${mounted.target}, not ${target}`);
        mounted.users++;
        return target;
      }
      await this.activate(record);
      try {
        await fsp.mkdir(target, { recursive: true, mode: 0o755 });
        await this.mountAt(record, target, options.mountLabel ?? '', options.options ?? []);
      } catch (err) {
        await this.deactivate(this.deviceName(hash), this.deferredRemoval).catch(() => undefined);
        throw err;
      }
      this.mounts.set(hash, { target, users: 1 });
      return target;
    });
  }

  /**
   * A mount adopted from the last run, at its first use: still there, or
   * someone (dockerd cleaning up its root) unmounted it meanwhile and the
   * users it had are gone with it.
   */
  private async checkAdopted(hash: string, mounted: MountRecord): Promise<MountRecord | undefined> {
    const info = await dm.info(this.deviceName(hash));
    const device = `${String(info.major)}:${String(info.minor)}`;
    if (info.exists && mountinfo.readMountinfo().some((m) => m.mountpoint === mounted.target && m.device === device)) {
      mounted.adopted = false;
      return mounted;
    }
    this.log.warn('a mount adopted from the last run is gone; mounting it afresh', { hash, target: mounted.target });
    this.mounts.delete(hash);
    return undefined;
  }

  /** Drops one user of device `hash`; the last one unmounts and deactivates it. */
  async unmountDevice(hash: string): Promise<void> {
    checkHash(hash);
    await this.deviceLocks.run(hash, async () => {
      const mounted = this.mounts.get(hash);
      if (mounted === undefined) return;
      if (mounted.users > 1) {
        mounted.users--;
        return;
      }
      await this.unmountAndRemove(mounted.target);
      this.mounts.delete(hash);
      await this.deactivate(this.deviceName(hash), this.deferredRemoval);
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
      await this.activate(record);
      return dm.devicePath(this.deviceName(hash));
    });
  }

  /** Deactivates device `hash` that activateDevice activated; one still open goes when its last user closes it. */
  async deactivateDevice(hash: string): Promise<void> {
    checkHash(hash);
    await this.deviceLocks.run(hash, async () => {
      if (this.mounts.has(hash)) return;
      await this.deactivate(this.deviceName(hash), this.deferredRemoval);
    });
  }

  /**
   * Size, filesystem and pool space of device `hash`: live from the thin
   * target when the device is active, else from a metadata snapshot.
   */
  async deviceUsage(hash: string): Promise<DeviceUsage> {
    checkHash(hash);
    const record = this.usable(hash);
    const filesystem = this.filesystemOf(record);
    const name = this.deviceName(hash);
    if ((await dm.info(name)).exists) {
      const status = await thin.thinStatus(name);
      return { deviceId: record.deviceId, size: record.size, filesystem, mappedBytes: status.mappedSectors * SECTOR_SIZE };
    }
    const mapped = await this.poolLock.run(() => mappedBytesByThinId(this.pool));
    return { deviceId: record.deviceId, size: record.size, filesystem, mappedBytes: mapped.get(record.deviceId) ?? 0 };
  }

  /** The base device's filesystem: what createDevice makes when not told otherwise. */
  get baseFilesystem(): FsType {
    return this.fsType;
  }

  /** Whether metadata knows the device (faulty ones included: they exist, they are just refused). */
  hasDevice(hash: string): boolean {
    return this.devices.has(hash) || this.faulty.has(hash);
  }

  /** Every device id the set serves, base device excluded. */
  listDevices(): string[] {
    return [...this.devices.keys()].filter((hash) => hash !== BASE_HASH);
  }

  isMounted(hash: string): boolean {
    return this.mounts.has(hash);
  }

  /** The hashes of every mounted device. */
  mountedDevices(): string[] {
    return [...this.mounts.keys()];
  }

  faultyDevices(): FaultyDevice[] {
    return [...this.faulty].map(([hash, reason]) => ({ hash, reason }));
  }

  // ---- for the admin commands (src/admin/) ---------------------------------------------------------

  /** Runs fn under the pool lock: no create or delete is half done while it looks at the pool or fixes it. */
  underPoolLock<T>(fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    return this.poolLock.run(fn);
  }

  /** Every device record metadata holds, deferred deletions and the base device included. */
  deviceRecords(): DeviceRecord[] {
    return [...this.devices.values()].map((d) => ({ ...d }));
  }

  /** Where the set has device `hash` mounted, if it does. */
  mountTarget(hash: string): string | undefined {
    return this.mounts.get(hash)?.target;
  }

  /** Deferred removal and deletion as in effect (the options, decided against the kernel). */
  deferredModes(): { removal: boolean; deletion: boolean } {
    return { removal: this.deferredRemoval, deletion: this.deferredDeletion };
  }

  /** Whether device `hash` is mounted by others (containerd's snapshots), never by the set. */
  isMountedByOthers(hash: string): boolean {
    return this.mountedByOthers(hash);
  }

  /** GetMetadata's keys, as the in-tree driver returned them. */
  deviceMetadata(hash: string): Record<string, string> {
    const record = this.usable(hash);
    return { DeviceId: String(record.deviceId), DeviceSize: String(record.size), DeviceName: this.deviceName(hash) };
  }

  deviceName(hash: string): string {
    return `${this.prefix}-${hash === BASE_HASH ? 'base' : hash}`;
  }

  mountPath(hash: string): string {
    return path.join(this.home, 'mnt', hash);
  }

  async status(): Promise<StatusRow[]> {
    const deleted = [...this.devices.values()].filter((d) => d.deleted).length;
    const status = await thin.poolStatus(this.pool.name);
    const blockSize = await poolBlockSize(this.pool);
    return statusRows({
      pool: this.pool,
      status,
      blockSize,
      lowWaterBlocks: lowWaterBlocks(this.options, status.totalDataBlocks, blockSize),
      baseSize: this.devices.get(BASE_HASH)?.size ?? this.options.baseSize,
      fsType: this.fsType,
      udevSync: dm.udevSync(),
      minFreeSpacePercent: this.options.minFreeSpacePercent,
      deferredRemoval: this.deferredRemoval,
      deferredDeletion: this.deferredDeletion,
      deferredDeletedCount: deleted,
      faultyCount: this.faulty.size,
      libraryVersion: (await dm.version()).library,
      loopBackingDir: this.pool.dataFile === '' ? '' : path.dirname(this.pool.dataFile),
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
    if (this.deletionTimer !== undefined) clearInterval(this.deletionTimer);
    await this.poolLock.run(async () => {
      await this.saveSetRecord();
      const kept: KeptMount[] = [];
      for (const [hash, { target, users }] of this.mounts) {
        if (options.keepMounted?.(hash) === true) {
          kept.push({ hash, target, users });
          continue;
        }
        await this.unmountAndRemove(target).catch(() => undefined);
      }
      this.mounts.clear();
      if (kept.length > 0) await writeFileAtomic(this.keptMountsFile, JSON.stringify(kept));
      await this.deactivateAll(new Set(kept.map((k) => this.deviceName(k.hash))));
      if (kept.length > 0) {
        this.log.info('left devices mounted for their users; the next start adopts them', { mounts: kept.length });
        return;
      }
      await this.releasePool();
    });
  }

  // ---- pool changes, each under poolLock ----------------------------------------------------

  /**
   * The in-tree driver's transaction: record the change about to be made,
   * make it, then bump the pool's transaction id. A restart that finds the
   * record ahead of the pool's id undoes the change (rollbackTransaction).
   */
  private async inTransaction(record: DeviceRecord, change: () => Promise<void>): Promise<void> {
    const next = this.transactionId + 1;
    record.transactionId = next;
    await this.store.saveTransaction({ openTransactionId: next, deviceHash: record.hash, deviceId: record.deviceId });
    failpoint('add:transaction-opened');
    let done = false;
    try {
      await change();
      failpoint('add:changed');
      await thin.setTransactionId(this.pool.name, this.transactionId, next);
      this.transactionId = next;
      failpoint('add:transaction-id-set');
      done = true;
    } finally {
      if (!done) await this.undoCreate(record);
    }
    await this.store.removeTransaction();
    failpoint('add:transaction-closed');
    this.devices.set(record.hash, record);
  }

  /** Undo of a create that failed before its transaction closed. */
  private async undoCreate(record: DeviceRecord): Promise<void> {
    try {
      await this.deactivate(this.deviceName(record.hash), false);
      if (record.deviceId !== 0) await this.deleteThin(record.deviceId);
      await this.store.removeDevice(record.hash);
      if (record.deviceId !== 0) this.ids.release(record.deviceId);
      await this.store.removeTransaction();
    } catch (err) {
      this.log.error('cannot undo a failed create; the next start rolls it back', { hash: record.hash, err: String(err) });
    }
  }

  /** Takes a free id and makes the thin device; ids the pool already has (EEXIST) are stepped over. */
  private async createThinWithFreeId(record: DeviceRecord, create: (id: number) => Promise<void>): Promise<void> {
    for (;;) {
      record.deviceId = this.ids.allocate();
      await this.store.saveTransaction({ openTransactionId: record.transactionId, deviceHash: record.hash, deviceId: record.deviceId });
      failpoint('add:id-chosen');
      try {
        await create(record.deviceId);
        failpoint('add:thin-created');
        return;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) {
          this.ids.release(record.deviceId);
          record.deviceId = 0;
          throw err;
        }
        this.log.warn('thin id exists in the pool but no metadata names it; skipping it', { deviceId: record.deviceId });
      }
    }
  }

  /** create_snap of an origin; an active origin is suspended around it so no write in flight is lost. */
  private async snapshot(origin: DeviceRecord, id: number): Promise<void> {
    const name = this.deviceName(origin.hash);
    const active = (await dm.info(name)).exists;
    if (active) await dm.suspend(name);
    try {
      failpoint('add:origin-suspended');
      await thin.createSnap(this.pool.name, id, origin.deviceId);
      failpoint('add:snapshot-taken');
    } finally {
      if (active) await dm.resume(name);
    }
  }

  private async growDevice(record: DeviceRecord): Promise<void> {
    await this.activate(record);
    try {
      await this.withTemporaryMount(record, async (dir) => {
        failpoint('add:grow-mounted');
        await growFilesystem(dm.devicePath(this.deviceName(record.hash)), dir, this.filesystemOf(record));
        failpoint('add:grown');
      });
    } finally {
      await this.deactivate(this.deviceName(record.hash), false);
    }
  }

  private async deleteLocked(record: DeviceRecord, syncDelete: boolean, discard: boolean): Promise<void> {
    const name = this.deviceName(record.hash);
    // The transaction opens before the discard: a restart after a crash at
    // any later step finishes the deletion instead of serving a device
    // whose blocks are already gone.
    const next = this.transactionId + 1;
    await this.store.saveTransaction({ openTransactionId: next, deviceHash: record.hash, deviceId: record.deviceId });
    failpoint('delete:transaction-opened');
    if (discard) await this.discard(record);
    failpoint('delete:discarded');
    const deferred = this.deferredRemoval && this.deferredDeletion && !syncDelete;
    try {
      await this.deactivate(name, deferred);
    } catch (err) {
      await this.store.removeTransaction();
      throw err;
    }
    failpoint('delete:deactivated');
    try {
      await this.deleteThin(record.deviceId);
      failpoint('delete:thin-deleted');
    } catch (err) {
      if (!(isErrno(err, 'EBUSY') && deferred)) {
        await this.store.removeTransaction();
        throw err;
      }
      // Still open somewhere (a leaked mount): delete it later, from the background and after restarts.
      record.deleted = true;
      await this.store.saveDevice(record);
      await this.store.removeTransaction();
      this.log.info('device busy; deletion deferred', { hash: record.hash });
      return;
    }
    await this.store.removeDevice(record.hash);
    failpoint('delete:record-removed');
    await thin.setTransactionId(this.pool.name, this.transactionId, next);
    this.transactionId = next;
    failpoint('delete:transaction-id-set');
    await this.store.removeTransaction();
    this.devices.delete(record.hash);
    this.ids.release(record.deviceId);
  }

  /** `delete ID`; a thin id the pool does not have (ENODATA) counts as deleted. */
  private async deleteThin(id: number): Promise<void> {
    try {
      await thin.deleteThin(this.pool.name, id);
    } catch (err) {
      if (!isErrno(err, 'ENODATA')) throw err;
    }
  }

  /** Retries the deletion of devices that were busy when deleted; the background timer calls it too. */
  async retryDeferredDeletions(): Promise<void> {
    for (const record of [...this.devices.values()].filter((d) => d.deleted)) {
      await this.deviceLocks
        .run(record.hash, () => this.poolLock.run(() => this.deleteLocked(record, true, this.options.blkDiscard)))
        .catch((err: unknown) => this.log.debug('deferred deletion still blocked', { hash: record.hash, err: String(err) }));
    }
  }

  // ---- devices ------------------------------------------------------------------------------------

  private async activate(record: DeviceRecord): Promise<void> {
    const name = this.deviceName(record.hash);
    const info = await dm.info(name);
    if (info.exists) {
      // A pending deferred removal would take it away under the new user.
      if (info.deferredRemove === true) await dm.message(name, 0, '@cancel_deferred_remove');
      return;
    }
    await dm.create(name, [thin.thinTable(this.pool.path, record.deviceId, record.size / 512)]);
  }

  /** `dmsetup remove`, retried while busy, or deferred to the last close. Missing devices are fine. */
  private async deactivate(name: string, deferred: boolean): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await dm.remove(name, { deferred });
        return;
      } catch (err) {
        if (isErrno(err, 'ENXIO')) return;
        if (!isErrno(err, 'EBUSY') || attempt >= EBUSY_RETRIES) throw err;
        await new Promise((resolve) => setTimeout(resolve, EBUSY_RETRY_MS));
      }
    }
  }

  private async discard(record: DeviceRecord): Promise<void> {
    try {
      await this.activate(record);
      const name = this.deviceName(record.hash);
      if ((await dm.info(name)).openCount !== 0) return;
      const device = dm.devicePath(name);
      await blockdev.discard(device, 0, await blockdev.size(device));
    } catch (err) {
      this.log.warn('discard failed; deleting anyway', { hash: record.hash, err: String(err) });
    }
  }

  private async mountAt(record: DeviceRecord, dir: string, mountLabel: string, extra: readonly string[] = []): Promise<void> {
    const device = dm.devicePath(this.deviceName(record.hash));
    const filesystem = this.filesystemOf(record);
    const { flags, data } = mountArguments(filesystem, [...this.options.mountOptions, ...extra], mountLabel);
    await kfs.mount(device, dir, filesystem, flags, data);
    if (filesystem === 'xfs' && this.options.xfsNospaceMaxRetries !== null) {
      const minor = (await dm.info(this.deviceName(record.hash))).minor ?? -1;
      const knob = `/sys/fs/xfs/dm-${minor}/error/metadata/ENOSPC/max_retries`;
      try {
        await fsp.writeFile(knob, String(this.options.xfsNospaceMaxRetries));
      } catch (err) {
        await kfs.umount2(dir, kfs.constants.MNT_DETACH);
        throw new DmthinError('EXFSRETRIES', `dm.xfs_nospace_max_retries is set but ${knob} cannot be written: ${String(err)}`);
      }
    }
  }

  /** Mounts an active device at its own mountpoint for a moment (mkfs follow-up, grow). */
  private async withTemporaryMount<T>(record: DeviceRecord, use: (dir: string) => Promise<T>): Promise<T> {
    const dir = path.join(this.home, 'mnt', `.${record.hash === BASE_HASH ? 'base' : record.hash}`);
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    await this.mountAt(record, dir, '');
    try {
      return await use(dir);
    } finally {
      await this.unmountAndRemove(dir);
    }
  }

  /**
   * Unmounts target lazily and removes its directory, which also drops
   * copies of the mount that leaked into other namespaces. The directory
   * goes even when the unmount fails because nothing was mounted; a
   * directory still mounted refuses, harmlessly. Rejects if the unmount failed.
   */
  private async unmountAndRemove(target: string): Promise<void> {
    try {
      await kfs.umount2(target, kfs.constants.MNT_DETACH);
    } finally {
      await fsp.rmdir(target).catch(() => undefined);
    }
  }

  // ---- checks --------------------------------------------------------------------------------------

  private async checkFreeSpace(): Promise<void> {
    const s = await thin.poolStatus(this.pool.name);
    if (s.failed) throw new DmthinError('EPOOLFAILED', `thin pool ${this.pool.name} has failed`);
    if (s.needsCheck) throw new DmthinError('EPOOLCHECK', `thin pool ${this.pool.name} needs a metadata check (thin_check)`);
    if (s.mode === 'ro') throw new DmthinError('EPOOLRO', `thin pool ${this.pool.name} is read-only (metadata space exhausted or an error); it needs repair`);
    if (s.mode === 'out_of_data_space') throw new DmthinError('ENOSPC', `thin pool ${this.pool.name} is out of data space; free some or grow the pool`);
    const freeBlocks = s.totalDataBlocks - s.usedDataBlocks;
    const lowWater = lowWaterBlocks(this.options, s.totalDataBlocks, await poolBlockSize(this.pool));
    if (freeBlocks < lowWater) {
      throw new DmthinError(
        'ENOSPC',
        `thin pool ${this.pool.name} has ${freeBlocks} free data blocks, below its low-water mark of ${lowWater} (dm.low_water_mark): no new layers, containers or volumes until it is grown (dmthin pool grow --data SIZE, or lvextend) or space is freed; removing and reading still work`,
      );
    }
    const pct = this.options.minFreeSpacePercent;
    if (pct === 0) return;
    const minData = Math.max(1, Math.floor((s.totalDataBlocks * pct) / 100));
    const freeData = s.totalDataBlocks - s.usedDataBlocks;
    if (freeData < minData) {
      throw new DmthinError('ENOSPC', `thin pool ${this.pool.name} has ${freeData} free data blocks, less than the ${minData} that dm.min_free_space=${pct}% requires; free space in the pool or lower dm.min_free_space`);
    }
    const minMeta = Math.max(1, Math.floor((s.totalMetadataBlocks * pct) / 100));
    const freeMeta = s.totalMetadataBlocks - s.usedMetadataBlocks;
    if (freeMeta < minMeta) {
      throw new DmthinError('ENOSPC', `thin pool ${this.pool.name} has ${freeMeta} free metadata blocks, less than the ${minMeta} that dm.min_free_space=${pct}% requires`);
    }
  }

  /** Refuses a hash that is taken, faulty ones included. */
  private checkFree(hash: string): void {
    if (this.devices.has(hash) || this.faulty.has(hash)) {
      throw new DmthinError('EEXIST', `device ${hash} already exists${this.faulty.has(hash) ? ' (faulty)' : ''}`);
    }
  }

  private filesystemOf(record: DeviceRecord): FsType {
    return record.filesystem ?? this.fsType;
  }

  private usable(hash: string): DeviceRecord {
    const reason = this.faulty.get(hash);
    if (reason !== undefined) throw new DmthinError('EFAULTY', `device ${hash || 'base'} is faulty: ${reason}`);
    const record = this.mustGet(hash);
    if (record.deleted) throw new DmthinError('ENOENT', `device ${hash} is being deleted`);
    return record;
  }

  private mustGet(hash: string): DeviceRecord {
    const record = this.devices.get(hash);
    if (record === undefined) throw new DmthinError('ENOENT', `unknown device ${hash || 'base'}`);
    return record;
  }

  private checkOpen(): void {
    if (this.closed) throw new DmthinError('ESHUTDOWN', 'the device set is shut down');
  }

  private async saveSetRecord(): Promise<void> {
    const next = Math.max(0, ...[...this.devices.values()].map((d) => d.deviceId));
    this.setRecord = { ...this.setRecord, nextDeviceId: next };
    await this.store.saveSet(this.setRecord);
  }

  private async releasePool(): Promise<void> {
    if (!this.pool.owned) return;
    await this.deactivate(this.pool.name, false).catch((err: unknown) => this.log.warn('cannot remove the pool', { err: String(err) }));
  }
}

/** `dmthin-MAJ:MIN-INODE` of the home directory, like the in-tree driver's `docker-` prefix: two homes never clash. */
async function devicePrefix(home: string): Promise<string> {
  const st = await fsp.stat(home);
  const major = Math.floor(st.dev / 256) & 0xfff;
  const minor = (st.dev & 0xff) | (Math.floor(st.dev / 4096) & ~0xff);
  return `dmthin-${major}:${minor}-${st.ino}`;
}

function configureLibdm(options: DeviceSetOptions, log: Logger): void {
  dm.setLogLevel(options.libdmLogLevel);
  if (!existsUdev()) {
    // Without udev (a plugin container, the test VM) libdevmapper makes the nodes itself.
    dm.setUdevSync(false);
    log.info('udev is not running; libdevmapper creates /dev/mapper nodes itself');
  }
}

/** libdevmapper's own test for a running udev. */
function existsUdev(): boolean {
  return existsSync('/run/udev/control');
}

async function deferredSupport(options: DeviceSetOptions): Promise<{ deferredRemoval: boolean; deferredDeletion: boolean }> {
  const driver = (await dm.version()).driver.split('.').map(Number);
  const [major = 0, minor = 0] = driver;
  const supported = major > (DEFERRED_REMOVE_DRIVER[0] ?? 4) || (major === DEFERRED_REMOVE_DRIVER[0] && minor >= (DEFERRED_REMOVE_DRIVER[1] ?? 27));
  if (options.useDeferredRemoval === true && !supported) {
    throw new DmthinError('EDMOPTION', 'dm.use_deferred_removal needs kernel device-mapper 4.27 or later');
  }
  const deferredRemoval = options.useDeferredRemoval ?? supported;
  const deferredDeletion = options.useDeferredDeletion ?? deferredRemoval;
  if (deferredDeletion && !deferredRemoval) {
    throw new DmthinError('EDMOPTION', 'dm.use_deferred_deletion needs deferred removal; set dm.use_deferred_removal=true');
  }
  return { deferredRemoval, deferredDeletion };
}
