// The volumes on disk and in memory, as Docker's local volume store keeps
// them: one directory per volume under <root>/volumes (_data and opts.json
// in it), the map rebuilt from them at start, and where each is mounted.
//
// Crash safety. A volume exists exactly when <root>/volumes/<name> does,
// and that name appears by one rename of a finished staging directory
// (.creating-<device hash>, opts.json and _data inside, the thin device
// made) and disappears by one rename to .removing-<device hash>-<random>
// before its device is deleted. A thin volume's device hash is derived
// from its name, so after a SIGKILL anywhere the start-up finds either a
// whole volume or none: dot-directories are removed here, and once the
// pool is open every volume device that no volume derives is deleted
// (thin.ts, reconcile).
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { isVolumeMapperPath } from '../deviceset/namespaces';
import { syncDirectory } from '../shared/atomic-file';
import { DmthinError } from '../shared/errors';
import { failpoint } from '../shared/failpoint';
import type { Logger } from '../shared/log';
import { MountCount } from './mount-count';
import { mountsUnder, removeEmptyDir, removeTree, unmountAll } from './mounts';
import { checkVolumeName, volumeDeviceId } from './names';
import { checkRecord, readVolumeRecord, writeVolumeRecord, type RecordState, type VolumeRecord } from './record';

export interface Volume {
  name: string;
  createdAt: string;
  /** null: no opts.json, a plain directory volume */
  state: RecordState | null;
  /** who holds it mounted */
  mounts: MountCount;
}

const DATA_DIR = '_data';
const CREATING = '.creating-';
const REMOVING = '.removing-';

export class VolumeRegistry {
  private readonly volumes = new Map<string, Volume>();
  readonly volumesDir: string;
  private readonly mountsDir: string;
  /** mountpoints are <root>/volumes/<name>/_data, as Docker's local driver's (mount root = root) */
  readonly legacyLayout: boolean;

  constructor(root: string, mountRoot: string) {
    this.volumesDir = path.join(root, 'volumes');
    this.legacyLayout = path.resolve(mountRoot) === path.resolve(root);
    this.mountsDir = path.join(mountRoot, 'volumes');
  }

  /**
   * Rebuilds the map from the directories and their opts.json, after
   * unmounting whatever an unclean stop left mounted and removing
   * half-made or half-removed volumes.
   */
  async load(log: Logger): Promise<void> {
    await fsp.mkdir(this.volumesDir, { recursive: true, mode: 0o701 });
    if (!this.legacyLayout) await fsp.mkdir(this.mountsDir, { recursive: true, mode: 0o755 });
    const found = mountsUnder(this.volumesDir, { includeSelf: false });
    if (!this.legacyLayout) found.push(...mountsUnder(this.mountsDir, { includeSelf: false }));
    // A thin volume's device may have been left suspended (killed mid-clone); unmounting it
    // now would hang. The DeviceSet resumes it, then unmounts it, as it opens.
    const stale = found.filter((m) => !isVolumeMapperPath(m.source)).map((m) => m.mountpoint);
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
      this.volumes.set(entry.name, { name: entry.name, createdAt: await createdAt(dir, state), state, mounts: new MountCount() });
    }
    if (!this.legacyLayout) await this.removeUnusedMountpoints();
    log.info('volumes loaded', { volumes: this.volumes.size, staleMounts: stale.length, staleThinMounts: found.length - stale.length, layout: this.legacyLayout ? 'local' : 'mount root' });
  }

  get(name: string): Volume | undefined {
    return this.volumes.get(name);
  }

  mustGet(name: string): Volume {
    const volume = this.volumes.get(name);
    if (volume === undefined) throw new DmthinError('ENOENT', `no such volume: ${name}`);
    return volume;
  }

  all(): IterableIterator<Volume> {
    return this.volumes.values();
  }

  names(): string[] {
    return [...this.volumes.keys()];
  }

  get size(): number {
    return this.volumes.size;
  }

  volumeDir(name: string): string {
    return path.join(this.volumesDir, name);
  }

  /** A volume's own data directory, what a plain volume without type binds. */
  dataDir(name: string): string {
    return path.join(this.volumeDir(name), DATA_DIR);
  }

  /** Where the volume is (or would be) mounted: always under the mount root, as dockerd needs for a managed plugin. */
  mountpoint(name: string): string {
    return this.legacyLayout ? this.dataDir(name) : path.join(this.mountsDir, name);
  }

  /** Whether anything (a volume or not) has the volume's directory name. */
  async entryExists(name: string): Promise<boolean> {
    try {
      await fsp.lstat(this.volumeDir(name));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Makes the volume in a staging directory (opts.json, _data, then the
   * device), and gives it its name with one rename. Any failure undoes
   * what was made (undoDevice for the device); a crash leaves a
   * dot-directory and maybe a device that no volume owns, both removed at
   * the next start.
   */
  async commitNew(name: string, record: VolumeRecord, makeDevice: (() => Promise<void>) | null, undoDevice: () => Promise<void>): Promise<void> {
    const staging = path.join(this.volumesDir, `${CREATING}${volumeDeviceId(name)}`);
    let deviceMade = false;
    try {
      await removeTree(staging);
      await fsp.mkdir(staging, { mode: 0o755 });
      await fsp.mkdir(path.join(staging, DATA_DIR), { mode: 0o755 });
      await writeVolumeRecord(staging, record);
      failpoint('volume:create:staged');
      if (makeDevice !== null) {
        await makeDevice();
        deviceMade = true;
        failpoint('volume:create:device-made');
      }
      await fsp.rename(staging, this.volumeDir(name));
      await syncDirectory(this.volumesDir);
      failpoint('volume:create:renamed');
    } catch (err) {
      if (deviceMade) await undoDevice();
      await removeTree(staging).catch(() => undefined);
      throw err;
    }
    // Checked as a restart would read it, so memory and disk agree.
    this.volumes.set(name, { name, createdAt: record.CreatedAt, state: checkRecord(record), mounts: new MountCount() });
  }

  /**
   * Removes the volume: its name goes with one rename to a dot-directory,
   * then deleteDevice runs; if that fails the name comes back.
   */
  async remove(name: string, deleteDevice: () => Promise<void>, log: Logger): Promise<void> {
    const dir = this.volumeDir(name);
    const trash = path.join(this.volumesDir, `${REMOVING}${volumeDeviceId(name)}-${randomBytes(4).toString('hex')}`);
    await fsp.rename(dir, trash);
    await syncDirectory(this.volumesDir);
    failpoint('volume:remove:renamed');
    try {
      await deleteDevice();
    } catch (err) {
      await fsp.rename(trash, dir);
      await syncDirectory(this.volumesDir);
      throw err;
    }
    failpoint('volume:remove:device-deleted');
    this.volumes.delete(name);
    if (!this.legacyLayout) await removeEmptyDir(this.mountpoint(name));
    // Left behind on failure: the next start removes dot-directories.
    await removeTree(trash).catch((err: unknown) => log.warn('cannot remove a removed volume\'s directory', { dir: trash, err: String(err) }));
  }

  /** Mountpoint directories under the mount root that no mounted volume uses (left by a crash). */
  private async removeUnusedMountpoints(): Promise<void> {
    for (const entry of await fsp.readdir(this.mountsDir)) {
      await removeEmptyDir(path.join(this.mountsDir, entry));
    }
  }
}

/** opts.json's CreatedAt; for a volume without a usable one, its directory's birth (or change) time. */
async function createdAt(dir: string, state: RecordState | null): Promise<string> {
  if (state?.ok === true) return state.record.CreatedAt;
  const st = await fsp.stat(dir);
  return (st.birthtimeMs > 0 ? st.birthtime : st.ctime).toISOString();
}
