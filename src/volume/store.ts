// The volume store: VolumeDriver's calls over the volumes' parts, each in
// its own file: registry.ts (the volumes on disk and in memory, and how a
// create or a remove survives a crash), mount-count.ts (who holds a volume
// mounted), plain.ts and thin.ts (the two kinds), clone.ts (-o from).
// Every call on a volume runs under that volume's lock; a clone holds its
// source's too, both taken in name order.
import { promises as fsp } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { VolumeKind } from '../config';
import { DmthinError } from '../shared/errors';
import { KeyedMutex } from '../shared/lock';
import type { Logger } from '../shared/log';
import { planClone } from './clone';
import { mountpointsUnder } from './mounts';
import { checkVolumeName } from './names';
import { parseVolumeOptions, shownOptions, type PlainSpec, type ThinSpec } from './options';
import { mountPlainVolume, unmountPlainVolume } from './plain';
import { newRecord } from './record';
import { VolumeRegistry, type Volume } from './registry';
import { volumeStatus, type UsageLookup } from './status';
import { mayOwnDevice, ThinVolumes, type ThinPoolAccess } from './thin';
import type { VolumeDriverApi, VolumeInfo, VolumeListEntry } from './types';

export type { ThinPoolAccess } from './thin';

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

export class VolumeStore implements VolumeDriverApi {
  private readonly registry: VolumeRegistry;
  private readonly thin: ThinVolumes;
  private readonly locks = new KeyedMutex();

  constructor(private readonly config: VolumeStoreConfig) {
    this.registry = new VolumeRegistry(config.root, config.mountRoot);
    this.thin = new ThinVolumes(config.pool, () => this.registry.all(), config.log);
  }

  // ---- start and stop ---------------------------------------------------------------------------

  /**
   * Rebuilds the volumes from disk, after unmounting whatever an unclean
   * stop left mounted and removing half-made or half-removed volumes.
   * Runs before the socket listens.
   */
  async load(): Promise<void> {
    await this.registry.load(this.config.log);
  }

  /** Reconciles the pool's volume devices once it is open; for main to start in the background. */
  async reconcileWhenReady(): Promise<void> {
    await this.thin.reconcileWhenReady();
  }

  /** The device ids (volume namespace) volumes and creates in flight own: for the admin commands' orphan check. */
  ownedDeviceIds(): Set<string> {
    return this.thin.ownedDeviceIds();
  }

  /** Unmounts what the store mounted itself (thin devices go with the DeviceSet's shutdown). */
  async shutdown(): Promise<void> {
    for (const volume of this.registry.all()) {
      if (!volume.mounts.inUse || volume.state?.ok !== true || volume.state.spec.kind !== 'plain') continue;
      await this.locks.run(volume.name, async () => {
        await this.unmountVolume(volume).catch((err: unknown) => this.config.log.warn('cannot unmount a volume at shutdown', { volume: volume.name, err: String(err) }));
        volume.mounts.clear();
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
      const existing = this.registry.get(name);
      if (existing !== undefined) return this.checkSameVolume(existing, options);
      if (await this.registry.entryExists(name)) throw new DmthinError('EEXIST', `cannot create volume ${name}: ${this.registry.volumeDir(name)} exists and is not a volume directory`);
      const kind = spec.kind === 'default' ? await this.defaultKind() : spec.kind;
      if (kind === 'plain') return this.commitNew(name, newRecord('plain', options), null);
      return this.createThin(name, spec.kind === 'thin' ? spec : { kind: 'thin' }, options);
    });
    this.config.log.info('volume created', { volume: name, options: shownOptions(options) });
  }

  async remove(name: string): Promise<void> {
    checkVolumeName(name);
    await this.locks.run(name, async () => {
      const volume = this.registry.mustGet(name);
      if (volume.mounts.inUse) {
        throw new DmthinError('EBUSY', `volume ${name} is in use: mounted for ${volume.mounts.total} container mount(s); stop the containers using it first`);
      }
      // A thin volume, or one whose opts.json cannot say, may own a device. Once the
      // set is open, a stale mount of that device is gone too.
      const devices = mayOwnDevice(volume) ? await this.thin.devicesIfAny() : null;
      const mounted = [...mountpointsUnder(this.registry.volumeDir(name)), ...(this.registry.legacyLayout ? [] : mountpointsUnder(this.registry.mountpoint(name)))];
      if (mounted.length > 0) throw new DmthinError('EBUSY', `volume ${name} is still mounted at ${mounted.join(', ')}; not removing it`);
      await this.registry.remove(name, () => this.thin.deleteDevice(name, devices), this.config.log);
    });
    this.config.log.info('volume removed', { volume: name });
  }

  async mount(name: string, id: string): Promise<string> {
    checkVolumeName(name);
    return this.locks.run(name, async () => {
      const volume = this.registry.mustGet(name);
      if (volume.state?.ok === false) throw new DmthinError('EVOLCORRUPT', `volume ${name} cannot be mounted: ${volume.state.problem}`);
      const mountpoint = this.registry.mountpoint(name);
      if (!volume.mounts.inUse) await this.mountVolume(volume, mountpoint);
      volume.mounts.add(id);
      this.config.log.debug('volume mounted', { volume: name, id, mountpoint, mounts: volume.mounts.total });
      return mountpoint;
    });
  }

  async unmount(name: string, id: string): Promise<void> {
    checkVolumeName(name);
    await this.locks.run(name, async () => {
      const volume = this.registry.mustGet(name);
      const release = volume.mounts.peek(id);
      if (release === 'unknown') {
        // IDs from before a restart of the plugin: their mounts were unmounted at start.
        this.config.log.debug('unmount for a mount ID this process does not know; nothing to do', { volume: name, id });
        return;
      }
      if (release === 'last') await this.unmountVolume(volume);
      volume.mounts.release(id);
      this.config.log.debug('volume unmounted', { volume: name, id, mounts: volume.mounts.total });
    });
  }

  async path(name: string): Promise<string> {
    checkVolumeName(name);
    this.registry.mustGet(name);
    return this.registry.mountpoint(name);
  }

  async get(name: string): Promise<VolumeInfo | null> {
    checkVolumeName(name);
    const volume = this.registry.get(name);
    if (volume === undefined) return null;
    return { Name: name, Mountpoint: this.registry.mountpoint(name), CreatedAt: volume.createdAt, Status: await this.status(volume) };
  }

  async list(): Promise<VolumeListEntry[]> {
    return this.registry.names().sort().map((name) => ({ Name: name, Mountpoint: this.registry.mountpoint(name) }));
  }

  // ---- create -------------------------------------------------------------------------------------

  private async createThin(name: string, spec: ThinSpec, options: Readonly<Record<string, string>>): Promise<void> {
    const devices = await this.thin.devices();
    const plan = spec.from !== undefined
      ? planClone(name, spec.from, devices, this.registry, spec.size, options)
      : this.thin.plan(name, devices, spec, options, this.config.volumeSize);
    await this.commitNew(name, plan.record, plan.makeDevice);
  }

  private async commitNew(name: string, record: Parameters<VolumeRegistry['commitNew']>[1], makeDevice: (() => Promise<void>) | null): Promise<void> {
    await this.thin.whileCreating(name, () => this.registry.commitNew(name, record, makeDevice, () => this.thin.undoCreate(name)));
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
    return (await this.thin.available()) ? 'thin' : 'plain';
  }

  // ---- mount --------------------------------------------------------------------------------------

  private async mountVolume(volume: Volume, mountpoint: string): Promise<void> {
    const spec = specOf(volume);
    if (spec.kind === 'thin') return this.thin.mount(volume, mountpoint);
    return mountPlainVolume(this.registry, volume.name, spec, mountpoint);
  }

  private async unmountVolume(volume: Volume): Promise<void> {
    const spec = specOf(volume);
    const mountpoint = this.registry.mountpoint(volume.name);
    if (spec.kind === 'thin') {
      await this.thin.unmount(volume);
      // The DeviceSet removes the directory it unmounted; _data stays, as Docker's local driver keeps it.
      if (this.registry.legacyLayout) await fsp.mkdir(mountpoint, { recursive: true, mode: 0o755 });
      return;
    }
    await unmountPlainVolume(this.registry, spec, mountpoint);
  }

  // ---- status -------------------------------------------------------------------------------------

  private async status(volume: Volume): Promise<Record<string, unknown>> {
    let usage: UsageLookup | null = null;
    try {
      if (volume.state?.ok === true && volume.state.record.Kind === 'thin') usage = await this.thin.usage(volume.name);
      return volumeStatus(volume.state, volume.mounts.total, usage);
    } catch (err) {
      // Get must answer for a volume that exists, or dockerd forgets it.
      return { Kind: volume.state?.ok === true ? volume.state.record.Kind : 'unknown', Error: `status unavailable: ${String(err)}`, Mounts: volume.mounts.total };
    }
  }

  /** Runs fn holding the locks of all names, taken in sorted order so two creates never wait on each other. */
  private withLocks<T>(names: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(names)].sort();
    const run = (i: number): Promise<T> => (i === sorted.length ? fn() : this.locks.run(sorted[i] ?? '', () => run(i + 1)));
    return run(0);
  }
}

function specOf(volume: Volume): PlainSpec | ThinSpec {
  if (volume.state === null) return { kind: 'plain' };
  if (!volume.state.ok) throw new DmthinError('EVOLCORRUPT', `volume ${volume.name}: ${volume.state.problem}`);
  return volume.state.spec;
}
