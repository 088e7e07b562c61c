// The volume store: Docker's local volume store on disk (one directory per
// volume under <root>/volumes, _data and opts.json in it, the map rebuilt
// from them at start, stale mounts unmounted), plus thin volumes whose
// device lives in the process's thin pool.
//
// Crash safety. A volume exists exactly when <root>/volumes/<name> does,
// and that name appears by one rename of a finished staging directory
// (.creating-<device hash>, opts.json and _data inside, the thin device
// made) and disappears by one rename to .removing-<device hash>-<random>
// before its device is deleted. A thin volume's device hash is derived
// from its name, so after a SIGKILL anywhere the start-up finds either a
// whole volume or none: dot-directories are removed, and once the pool is
// open every vol- device that no volume derives is deleted (reconcile).
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { syncDirectory } from '../shared/atomic-file';
import { VOLUME_DEVICE_PREFIX, type DeviceSet } from '../deviceset';
import { failpoint } from '../shared/failpoint';
import { KeyedMutex } from '../shared/lock';
import { fs as kfs } from '../devmapper';
import { DmthinError } from '../shared/errors';
import type { VolumeKind } from '../config';
import type { Logger } from '../shared/log';
import { bindMount, mountPlain, mountpointsUnder, mountsUnder, removeEmptyDir, removeTree, unmountAll } from './mounts';
import { checkVolumeName, volumeDeviceHash } from './names';
import { MIN_XFS_SIZE, parseVolumeOptions, shownOptions, type PlainSpec, type ThinSpec } from './options';
import { checkRecord, newRecord, readVolumeRecord, writeVolumeRecord, type RecordState, type VolumeRecord } from './record';
import { volumeStatus, type UsageLookup } from './status';
import type { VolumeDriverApi, VolumeInfo, VolumeListEntry } from './types';

/** The thin pool as the store sees it: DeviceSetHolder's three ways to reach the DeviceSet. */
export interface ThinPoolAccess {
  /** the set, waiting for it to open; rejects saying why there is none */
  ready(): Promise<DeviceSet>;
  /** the set, waiting for it to open, or null when there is none */
  tryReady(): Promise<DeviceSet | null>;
  /** the set if it is open now, never waiting */
  current(): DeviceSet | null;
}

export interface VolumeStoreConfig {
  /** the state directory: volumes live in <root>/volumes */
  root: string;
  /** where mountpoints are made; equal to root: <root>/volumes/<name>/_data, as Docker's local driver */
  mountRoot: string;
  /** what a volume without options becomes */
  volumeKind: VolumeKind;
  /** bytes: a thin volume's size without -o size */
  volumeSize: number;
  pool: ThinPoolAccess;
  log: Logger;
}

interface Volume {
  name: string;
  createdAt: string;
  /** null: no opts.json, a plain directory volume */
  state: RecordState | null;
  /**
   * dockerd's mount IDs that hold the volume mounted, each with how many
   * Mounts it sent not yet matched by an Unmount: a container that mounts
   * one volume at two paths sends two Mounts under the same ID. Kept in
   * memory only; they die with dockerd's activations.
   */
  mountIds: Map<string, number>;
}

/** Mounts not yet matched by an Unmount, over every mount ID. */
function mountCount(volume: Volume): number {
  let total = 0;
  for (const n of volume.mountIds.values()) total += n;
  return total;
}

const DATA_DIR = '_data';
const CREATING = '.creating-';
const REMOVING = '.removing-';
/** Status waits this long for a thin device's usage, then answers without it: Get must stay quick. */
const USAGE_TIMEOUT_MS = 2000;
/**
 * ext4 thin volumes leave their inode tables unwritten: a thin device reads
 * zeros where nothing was written, so zeroing them (mkfs, or the kernel's
 * lazy init at mount) would only allocate pool space, 1/64 of the size.
 */
const EXT4_MKFS_ARGS = ['-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1'];
const EXT4_MOUNT_OPTIONS = ['noinit_itable'];
/** /dev/mapper/<DeviceSet prefix>-vol-<sha256>: a thin volume's device, as mountinfo names its source. */
const THIN_VOLUME_DEVICE = new RegExp(`^/dev/mapper/.+-${VOLUME_DEVICE_PREFIX}[0-9a-f]{64}$`);

export class VolumeStore implements VolumeDriverApi {
  private readonly volumes = new Map<string, Volume>();
  private readonly locks = new KeyedMutex();
  /** device hashes of creates in flight: reconcile must not take their devices */
  private readonly creating = new Set<string>();
  private readonly reconciled = new WeakMap<DeviceSet, Promise<void>>();
  readonly volumesDir: string;
  private readonly mountsDir: string;
  private readonly legacyLayout: boolean;

  constructor(private readonly config: VolumeStoreConfig) {
    this.volumesDir = path.join(config.root, 'volumes');
    this.legacyLayout = path.resolve(config.mountRoot) === path.resolve(config.root);
    this.mountsDir = path.join(config.mountRoot, 'volumes');
  }

  // ---- start-up -----------------------------------------------------------------------------------

  /**
   * Rebuilds the map from the directories and their opts.json, after
   * unmounting whatever an unclean stop left mounted and removing
   * half-made or half-removed volumes. Runs before the socket listens.
   */
  async load(): Promise<void> {
    const { log } = this.config;
    await fsp.mkdir(this.volumesDir, { recursive: true, mode: 0o701 });
    if (!this.legacyLayout) await fsp.mkdir(this.mountsDir, { recursive: true, mode: 0o755 });
    const found = mountsUnder(this.volumesDir, { includeSelf: false });
    if (!this.legacyLayout) found.push(...mountsUnder(this.mountsDir, { includeSelf: false }));
    // A thin volume's device may have been left suspended (killed mid-clone); unmounting it
    // now would hang. The DeviceSet resumes it, then unmounts it, as it opens.
    const stale = found.filter((m) => !THIN_VOLUME_DEVICE.test(m.source)).map((m) => m.mountpoint);
    for (const mountpoint of stale) log.info('unmounting a stale volume mount', { mountpoint });
    for (const { mountpoint, err } of await unmountAll(stale)) log.warn('cannot unmount a stale volume mount', { mountpoint, err });

    this.volumes.clear();
    for (const entry of await fsp.readdir(this.volumesDir, { withFileTypes: true })) {
      const dir = path.join(this.volumesDir, entry.name);
      if (entry.name.startsWith(CREATING) || entry.name.startsWith(REMOVING)) {
        log.info('removing a volume an unclean stop left half made or half removed', { dir });
        await removeTree(dir).catch((err: unknown) => log.warn('cannot remove it', { dir, err: String(err) }));
        continue;
      }
      if (!entry.isDirectory()) continue;
      try {
        checkVolumeName(entry.name);
      } catch {
        log.warn('ignoring a directory whose name is not a volume name', { dir });
        continue;
      }
      const state = await readVolumeRecord(dir);
      if (state?.ok === false) log.error('volume metadata unusable; the volume is listed with the reason and cannot be mounted', { volume: entry.name, problem: state.problem });
      this.volumes.set(entry.name, { name: entry.name, createdAt: await this.createdAt(dir, state), state, mountIds: new Map() });
    }
    if (!this.legacyLayout) await this.removeUnusedMountpoints();
    log.info('volumes loaded', { volumes: this.volumes.size, staleMounts: stale.length, staleThinMounts: found.length - stale.length, layout: this.legacyLayout ? 'local' : 'mount root' });
  }

  /** Reconciles the pool's vol- devices once it is open; for main to start in the background. */
  async reconcileWhenReady(): Promise<void> {
    const set = await this.config.pool.tryReady();
    if (set !== null) await this.reconciledSet(set);
  }

  /** The thin device hashes volumes (and creates in flight) own: for the admin commands' orphan check. */
  ownedDeviceHashes(): Set<string> {
    const owned = new Set(this.creating);
    for (const volume of this.volumes.values()) if (this.mayOwnDevice(volume)) owned.add(volumeDeviceHash(volume.name));
    return owned;
  }

  /** Unmounts what the store mounted itself (thin devices go with the DeviceSet's shutdown). */
  async shutdown(): Promise<void> {
    for (const volume of this.volumes.values()) {
      if (volume.mountIds.size === 0 || volume.state?.ok !== true || volume.state.spec.kind !== 'plain') continue;
      await this.locks.run(volume.name, async () => {
        await this.unmountVolume(volume).catch((err: unknown) => this.config.log.warn('cannot unmount a volume at shutdown', { volume: volume.name, err: String(err) }));
        volume.mountIds.clear();
      });
    }
  }

  // ---- VolumeDriver -------------------------------------------------------------------------------

  async create(name: string, opts: Readonly<Record<string, string>> | null): Promise<void> {
    checkVolumeName(name, true);
    const options = opts ?? {};
    const spec = parseVolumeOptions(options);
    const names = spec.kind === 'thin' && spec.from !== undefined ? [name, spec.from] : [name];
    await this.withLocks(names, async () => {
      const existing = this.volumes.get(name);
      if (existing !== undefined) return this.checkSameVolume(existing, options);
      if (await this.entryExists(name)) throw new DmthinError('EEXIST', `cannot create volume ${name}: ${this.volumeDir(name)} exists and is not a volume directory`);
      const kind = spec.kind === 'default' ? await this.defaultKind() : spec.kind;
      if (kind === 'plain') return this.commitNew(name, newRecord('plain', options), null);
      return this.createThin(name, spec.kind === 'thin' ? spec : { kind: 'thin' }, options);
    });
    this.config.log.info('volume created', { volume: name, options: shownOptions(options) });
  }

  async remove(name: string): Promise<void> {
    checkVolumeName(name);
    await this.locks.run(name, async () => {
      const volume = this.mustGet(name);
      if (volume.mountIds.size > 0) {
        throw new DmthinError('EBUSY', `volume ${name} is in use: mounted for ${mountCount(volume)} container mount(s); stop the containers using it first`);
      }
      // A thin volume, or one whose opts.json cannot say, may own a device. Once the
      // set is open, a stale mount of that device is gone too.
      const set = this.mayOwnDevice(volume) ? await this.reconciledSetIfAny() : null;
      const dir = this.volumeDir(name);
      const mounted = [...mountpointsUnder(dir), ...(this.legacyLayout ? [] : mountpointsUnder(this.mountpoint(name)))];
      if (mounted.length > 0) throw new DmthinError('EBUSY', `volume ${name} is still mounted at ${mounted.join(', ')}; not removing it`);
      const hash = volumeDeviceHash(name);
      const trash = path.join(this.volumesDir, `${REMOVING}${hash}-${randomBytes(4).toString('hex')}`);
      await fsp.rename(dir, trash);
      await syncDirectory(this.volumesDir);
      failpoint('volume:remove:renamed');
      try {
        // Discarded first: a volume's data must not linger in the pool's free blocks.
        if (set?.hasDevice(hash) === true) await set.deleteDevice(hash, { discard: true });
      } catch (err) {
        await fsp.rename(trash, dir);
        await syncDirectory(this.volumesDir);
        throw new DmthinError('EVOLREMOVE', `cannot remove volume ${name}: its thin device ${hash}: ${(err as Error).message}`, { cause: err });
      }
      failpoint('volume:remove:device-deleted');
      this.volumes.delete(name);
      if (!this.legacyLayout) await removeEmptyDir(this.mountpoint(name));
      // Left behind on failure: the next start removes dot-directories.
      await removeTree(trash).catch((err: unknown) => this.config.log.warn('cannot remove a removed volume\'s directory', { dir: trash, err: String(err) }));
    });
    this.config.log.info('volume removed', { volume: name });
  }

  async mount(name: string, id: string): Promise<string> {
    checkVolumeName(name);
    return this.locks.run(name, async () => {
      const volume = this.mustGet(name);
      if (volume.state?.ok === false) throw new DmthinError('EVOLCORRUPT', `volume ${name} cannot be mounted: ${volume.state.problem}`);
      const mountpoint = this.mountpoint(name);
      if (volume.mountIds.size === 0) await this.mountVolume(volume, mountpoint);
      volume.mountIds.set(id, (volume.mountIds.get(id) ?? 0) + 1);
      this.config.log.debug('volume mounted', { volume: name, id, mountpoint, mounts: mountCount(volume) });
      return mountpoint;
    });
  }

  async unmount(name: string, id: string): Promise<void> {
    checkVolumeName(name);
    await this.locks.run(name, async () => {
      const volume = this.mustGet(name);
      // IDs from before a restart of the plugin: their mounts were unmounted at start.
      const count = volume.mountIds.get(id);
      if (count === undefined) {
        this.config.log.debug('unmount for a mount ID this process does not know; nothing to do', { volume: name, id });
        return;
      }
      if (count === 1 && volume.mountIds.size === 1) await this.unmountVolume(volume);
      if (count === 1) volume.mountIds.delete(id);
      else volume.mountIds.set(id, count - 1);
      this.config.log.debug('volume unmounted', { volume: name, id, mounts: mountCount(volume) });
    });
  }

  async path(name: string): Promise<string> {
    checkVolumeName(name);
    this.mustGet(name);
    return this.mountpoint(name);
  }

  async get(name: string): Promise<VolumeInfo | null> {
    checkVolumeName(name);
    const volume = this.volumes.get(name);
    if (volume === undefined) return null;
    return { Name: name, Mountpoint: this.mountpoint(name), CreatedAt: volume.createdAt, Status: await this.status(volume) };
  }

  async list(): Promise<VolumeListEntry[]> {
    return [...this.volumes.keys()].sort().map((name) => ({ Name: name, Mountpoint: this.mountpoint(name) }));
  }

  // ---- paths ----------------------------------------------------------------------------------------

  volumeDir(name: string): string {
    return path.join(this.volumesDir, name);
  }

  /** Where the volume is (or would be) mounted: always under the mount root, as dockerd needs for a managed plugin. */
  mountpoint(name: string): string {
    return this.legacyLayout ? path.join(this.volumesDir, name, DATA_DIR) : path.join(this.mountsDir, name);
  }

  // ---- create -------------------------------------------------------------------------------------

  private async createThin(name: string, spec: ThinSpec, options: Readonly<Record<string, string>>): Promise<void> {
    const set = await this.thinSet();
    const hash = volumeDeviceHash(name);
    if (spec.from !== undefined) {
      const source = this.cloneSource(spec.from, set);
      const size = spec.size ?? source.Size;
      if (size < source.Size) {
        throw new DmthinError('EVOLOPTION', `size=${options['size'] ?? ''} is smaller than volume ${spec.from}'s ${source.Size} bytes; a clone can only be as big or bigger`);
      }
      const record = newRecord('thin', options, { Size: size, Filesystem: source.Filesystem, From: spec.from });
      // The DeviceSet suspends a mounted source around the snapshot (its filesystem frozen): the clone is consistent.
      await this.commitNew(name, record, () => set.addDevice(hash, volumeDeviceHash(spec.from ?? ''), size > source.Size ? { size } : {}));
      return;
    }
    const filesystem = spec.fs ?? set.baseFilesystem;
    const size = spec.size ?? this.config.volumeSize;
    if (filesystem === 'xfs' && size < MIN_XFS_SIZE) {
      throw new DmthinError('EVOLOPTION', `a ${size}-byte xfs volume is too small: xfs needs at least 300M; give -o size=300M or more, or -o fs=ext4`);
    }
    const record = newRecord('thin', options, { Size: size, Filesystem: filesystem });
    await this.commitNew(name, record, () => set.createDevice(hash, { size, fs: filesystem, mkfsArgs: filesystem === 'ext4' ? EXT4_MKFS_ARGS : [] }));
  }

  /** The record of a thin volume that a clone can be made from, or a clear refusal. */
  private cloneSource(from: string, set: DeviceSet): NonNullable<VolumeRecord['Thin']> {
    const source = this.volumes.get(from);
    if (source === undefined) throw new DmthinError('EVOLOPTION', `from=${from}: no such volume`);
    if (source.state?.ok === false) throw new DmthinError('EVOLOPTION', `from=${from}: that volume cannot be used: ${source.state.problem}`);
    if (source.state === null || source.state.record.Thin === undefined) {
      throw new DmthinError('EVOLOPTION', `from=${from} is a plain volume; only thin volumes (made with -o size, or by default when a pool is there) can be cloned`);
    }
    if (!set.hasDevice(volumeDeviceHash(from))) throw new DmthinError('EVOLOPTION', `from=${from}: its thin device ${volumeDeviceHash(from)} is missing from the pool`);
    return source.state.record.Thin;
  }

  /**
   * Makes the volume in a staging directory (opts.json, _data, then the
   * device), and gives it its name with one rename. Any failure undoes
   * what was made; a crash leaves a dot-directory and maybe a device that
   * no volume owns, both removed at the next start.
   */
  private async commitNew(name: string, record: VolumeRecord, makeDevice: (() => Promise<void>) | null): Promise<void> {
    const hash = volumeDeviceHash(name);
    const staging = path.join(this.volumesDir, `${CREATING}${hash}`);
    this.creating.add(hash);
    let deviceMade = false;
    try {
      await removeTree(staging);
      await fsp.mkdir(staging, { mode: 0o755 });
      await fsp.mkdir(path.join(staging, DATA_DIR), { mode: 0o755 });
      await writeVolumeRecord(staging, record);
      failpoint('volume:create:staged');
      if (makeDevice !== null) {
        try {
          await makeDevice();
        } catch (err) {
          throw this.deviceError(name, hash, err);
        }
        deviceMade = true;
        failpoint('volume:create:device-made');
      }
      await fsp.rename(staging, this.volumeDir(name));
      await syncDirectory(this.volumesDir);
      failpoint('volume:create:renamed');
    } catch (err) {
      if (deviceMade) {
        const set = this.config.pool.current();
        await set?.deleteDevice(hash, { discard: true }).catch((e: unknown) => this.config.log.warn('cannot delete the device of a failed create; the next start does', { hash, err: String(e) }));
      }
      await removeTree(staging).catch(() => undefined);
      throw err;
    } finally {
      this.creating.delete(hash);
    }
    // Checked as a restart would read it, so memory and disk agree.
    this.volumes.set(name, { name, createdAt: record.CreatedAt, state: checkRecord(record), mountIds: new Map() });
  }

  private deviceError(name: string, hash: string, err: unknown): Error {
    if ((err as { code?: string }).code === 'EEXIST') {
      return new DmthinError('EEXIST', `cannot create volume ${name}: its thin device ${hash} still exists (a deletion still pending, or a faulty device; see the logs)`, { cause: err });
    }
    return new DmthinError((err as { code?: string }).code ?? 'EVOLCREATE', `cannot create volume ${name}: ${(err as Error).message}`, { cause: err });
  }

  /** Create of a name that exists: the same options are a no-op, as for Docker's local driver; others are refused. */
  private checkSameVolume(existing: Volume, options: Readonly<Record<string, string>>): void {
    if (existing.state?.ok === false) throw new DmthinError('EEXIST', `volume ${existing.name} already exists, and ${existing.state.problem}`);
    const had = existing.state === null ? {} : existing.state.record.Options;
    if (!isDeepStrictEqual({ ...had }, { ...options })) {
      throw new DmthinError('EEXIST', `volume ${existing.name} already exists with other options (${JSON.stringify(shownOptions(had))}); remove it first, or use another name`);
    }
  }

  private async defaultKind(): Promise<'plain' | 'thin'> {
    const { volumeKind } = this.config;
    if (volumeKind !== 'auto') return volumeKind;
    return (await this.config.pool.tryReady()) === null ? 'plain' : 'thin';
  }

  // ---- mount --------------------------------------------------------------------------------------

  private async mountVolume(volume: Volume, mountpoint: string): Promise<void> {
    const spec = this.specOf(volume);
    if (spec.kind === 'thin') {
      const set = await this.thinSet();
      const hash = volumeDeviceHash(volume.name);
      if (!set.hasDevice(hash)) throw new DmthinError('ENODEV', `volume ${volume.name} cannot be mounted: its thin device ${hash} is missing from the pool`);
      const ext4 = volume.state?.ok === true && volume.state.record.Thin?.Filesystem === 'ext4';
      await set.mountDevice(hash, { target: mountpoint, ...(ext4 ? { options: EXT4_MOUNT_OPTIONS } : {}) });
      return;
    }
    if (spec.type === undefined && this.legacyLayout) {
      // A plain directory: nothing to mount; dockerd binds _data itself.
      await fsp.mkdir(mountpoint, { recursive: true, mode: 0o755 });
      return;
    }
    await fsp.mkdir(mountpoint, { recursive: true, mode: 0o755 });
    try {
      if (spec.type === undefined) await bindMount(path.join(this.volumeDir(volume.name), DATA_DIR), mountpoint);
      else await mountPlain(volume.name, spec, mountpoint);
    } catch (err) {
      if (!this.legacyLayout) await removeEmptyDir(mountpoint);
      throw err;
    }
  }

  private async unmountVolume(volume: Volume): Promise<void> {
    const spec = this.specOf(volume);
    const mountpoint = this.mountpoint(volume.name);
    if (spec.kind === 'thin') {
      await (await this.thinSet()).unmountDevice(volumeDeviceHash(volume.name));
      // The DeviceSet removes the directory it unmounted; _data stays, as Docker's local driver keeps it.
      if (this.legacyLayout) await fsp.mkdir(mountpoint, { recursive: true, mode: 0o755 });
      return;
    }
    if (spec.type === undefined && this.legacyLayout) return;
    await kfs.umount2(mountpoint, kfs.constants.MNT_DETACH);
    if (!this.legacyLayout) await removeEmptyDir(mountpoint);
  }

  // ---- the thin pool ------------------------------------------------------------------------------

  /** The DeviceSet, reconciled with the store; rejects with what is missing (device-mapper, the pool). */
  private async thinSet(): Promise<DeviceSet> {
    let set: DeviceSet;
    try {
      set = await this.config.pool.ready();
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ENOPOOL';
      const why = code === 'ENODM'
        ? 'device-mapper is not available in this kernel: load it with `modprobe dm_thin_pool`, then restart dmthin'
        : (err as Error).message;
      throw new DmthinError(code, `thin volumes are unavailable: ${why}; plain volumes (-o type/device/o, or none with DMTHIN_VOLUME_KIND=plain or auto) still work`, { cause: err });
    }
    return this.reconciledSet(set);
  }

  private async reconciledSetIfAny(): Promise<DeviceSet | null> {
    const set = await this.config.pool.tryReady();
    return set === null ? null : this.reconciledSet(set);
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
    const { log } = this.config;
    const owned = new Set(this.creating);
    for (const volume of this.volumes.values()) {
      if (this.mayOwnDevice(volume)) owned.add(volumeDeviceHash(volume.name));
    }
    let deleted = 0;
    for (const hash of set.listDevices()) {
      if (!hash.startsWith(VOLUME_DEVICE_PREFIX) || owned.has(hash)) continue;
      log.warn('deleting a thin device that no volume owns (left by an interrupted create or remove)', { hash });
      try {
        await set.deleteDevice(hash, { discard: true });
        deleted++;
      } catch (err) {
        log.error('cannot delete an orphaned volume device', { hash, err: String(err) });
      }
    }
    for (const volume of this.volumes.values()) {
      const hash = volumeDeviceHash(volume.name);
      if (volume.state?.ok === true && volume.state.record.Kind === 'thin' && !set.hasDevice(hash)) {
        log.error('thin volume without its device; it is listed but cannot be mounted', { volume: volume.name, hash });
      }
    }
    log.info('thin volumes reconciled with the pool', { orphansDeleted: deleted });
  }

  private mayOwnDevice(volume: Volume): boolean {
    return volume.state !== null && (!volume.state.ok || volume.state.record.Kind === 'thin');
  }

  // ---- status -------------------------------------------------------------------------------------

  private async status(volume: Volume): Promise<Record<string, unknown>> {
    let usage: UsageLookup | null = null;
    try {
      if (volume.state?.ok === true && volume.state.record.Kind === 'thin') usage = await this.usage(volume.name);
      return volumeStatus(volume.state, mountCount(volume), usage);
    } catch (err) {
      // Get must answer for a volume that exists, or dockerd forgets it.
      return { Kind: volume.state?.ok === true ? volume.state.record.Kind : 'unknown', Error: `status unavailable: ${String(err)}`, Mounts: mountCount(volume) };
    }
  }

  /** The device's usage if the pool is open now; never waits for the pool, and not long for the device. */
  private async usage(name: string): Promise<UsageLookup> {
    const set = this.config.pool.current();
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

  // ---- helpers ------------------------------------------------------------------------------------

  private specOf(volume: Volume): PlainSpec | ThinSpec {
    if (volume.state === null) return { kind: 'plain' };
    if (!volume.state.ok) throw new DmthinError('EVOLCORRUPT', `volume ${volume.name}: ${volume.state.problem}`);
    return volume.state.spec;
  }

  private mustGet(name: string): Volume {
    const volume = this.volumes.get(name);
    if (volume === undefined) throw new DmthinError('ENOENT', `no such volume: ${name}`);
    return volume;
  }

  private async entryExists(name: string): Promise<boolean> {
    try {
      await fsp.lstat(this.volumeDir(name));
      return true;
    } catch {
      return false;
    }
  }

  /** opts.json's CreatedAt; for a volume without a usable one, its directory's birth (or change) time. */
  private async createdAt(dir: string, state: RecordState | null): Promise<string> {
    if (state?.ok === true) return state.record.CreatedAt;
    const st = await fsp.stat(dir);
    return (st.birthtimeMs > 0 ? st.birthtime : st.ctime).toISOString();
  }

  /** Runs fn holding the locks of all names, taken in sorted order so two creates never wait on each other. */
  private withLocks<T>(names: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(names)].sort();
    const run = (i: number): Promise<T> => (i === sorted.length ? fn() : this.locks.run(sorted[i] ?? '', () => run(i + 1)));
    return run(0);
  }

  /** Mountpoint directories under the mount root that no mounted volume uses (left by a crash). */
  private async removeUnusedMountpoints(): Promise<void> {
    for (const entry of await fsp.readdir(this.mountsDir)) {
      await removeEmptyDir(path.join(this.mountsDir, entry));
    }
  }
}
