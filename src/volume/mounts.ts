// The mounts a volume store makes itself (plain volumes: a bind, a tmpfs,
// any type/device/o), finding the ones a dead process left behind, and
// removing a volume's directory without ever following a mount out of it.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fs as kfs, mountinfo } from '../devmapper';
import { DmthinError, isErrno } from '../shared/errors';
import { maskSecrets, plainMountArguments, type PlainSpec } from './options';

/** Mounts at `dir` or below it (includeSelf false: strictly below), deepest first. */
export function mountsUnder(dir: string, { includeSelf = true } = {}): mountinfo.MountEntry[] {
  const prefix = `${dir.replace(/\/+$/, '')}/`;
  return mountinfo
    .readMountinfo()
    .filter((m) => m.mountpoint.startsWith(prefix) || (includeSelf && m.mountpoint === dir))
    .sort((a, b) => b.mountpoint.length - a.mountpoint.length);
}

export function mountpointsUnder(dir: string, options: { includeSelf?: boolean } = {}): string[] {
  return mountsUnder(dir, options).map((m) => m.mountpoint);
}

/** Unmounts (detached, as Docker's local driver does) every mountpoint given, deepest first; returns what could not be. */
export async function unmountAll(mountpoints: readonly string[]): Promise<Array<{ mountpoint: string; err: string }>> {
  const failed: Array<{ mountpoint: string; err: string }> = [];
  for (const mp of [...mountpoints].sort((a, b) => b.length - a.length)) {
    try {
      await kfs.umount2(mp, kfs.constants.MNT_DETACH);
    } catch (err) {
      // EINVAL: not a mountpoint (any more); stacked mounts were all detached by the first call.
      if (!isErrno(err, 'EINVAL', 'ENOENT')) failed.push({ mountpoint: mp, err: String(err) });
    }
  }
  return failed;
}

/** Mounts a plain volume's type/device/o at target, as Docker's local driver does; a bind with ro is remounted read-only. */
export async function mountPlain(name: string, spec: PlainSpec, target: string): Promise<void> {
  const { source, fstype, flags, data, bind } = plainMountArguments(spec);
  try {
    await kfs.mount(source, target, fstype, flags, data);
    // mount(2) ignores MS_RDONLY on a new bind: it takes a remount.
    if (bind && (flags & kfs.constants.MS_RDONLY) !== 0) {
      try {
        await kfs.mount(null, target, null, flags | kfs.constants.MS_REMOUNT, null);
      } catch (err) {
        await kfs.umount2(target, kfs.constants.MNT_DETACH).catch(() => undefined);
        throw err;
      }
    }
  } catch (err) {
    const o = spec.o === undefined ? '' : `, o=${maskSecrets(spec.o)}`;
    throw new DmthinError(
      'EMOUNT',
      `failed to mount volume ${name} (type=${fstype}, device=${source}${o}): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Bind-mounts a directory (a plain volume's data, at its mountpoint under the mount root). */
export async function bindMount(source: string, target: string): Promise<void> {
  await kfs.mount(source, target, null, kfs.constants.MS_BIND, null);
}

/**
 * rm -rf of a directory of the store, refused while anything is mounted
 * in it: a bind-mounted host directory must never be emptied with it.
 */
export async function removeTree(dir: string): Promise<void> {
  const mounted = mountpointsUnder(dir);
  if (mounted.length > 0) {
    throw new DmthinError('EBUSY', `${dir} still has mounts (${mounted.slice(0, 3).join(', ')}); not removing it`);
  }
  await fsp.rm(dir, { recursive: true, force: true });
}

/** Removes an empty mountpoint directory, best effort: one already gone, still mounted or not empty stays as it is. */
export async function removeEmptyDir(dir: string): Promise<void> {
  await fsp.rmdir(dir).catch(() => undefined);
}

export function isMountpoint(dir: string): boolean {
  const normalized = path.resolve(dir);
  return mountinfo.readMountinfo().some((m) => m.mountpoint === normalized);
}
