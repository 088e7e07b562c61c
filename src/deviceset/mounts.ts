// Mounting the set's devices: a device's filesystem at a directory (with
// dm.mountopt and, for xfs, dm.xfs_nospace_max_retries), a moment's mount
// for mkfs follow-ups and grows, the lazy unmount that also removes the
// directory, and the record of the mounts a shutdown kept for their users.
// The users of a mount are counted in SetContext.mounts, by deviceset.ts,
// under the device's lock.
import { promises as fsp, rmdirSync } from 'node:fs';
import path from 'node:path';
import { dm, fs as kfs, mountinfo } from '../devmapper';
import { readJsonFile, removeFileDurably, writeFileAtomic } from '../shared/atomic-file';
import { DmthinError } from '../shared/errors';
import type { MountRecord, SetContext } from './context';
import { mountArguments } from './filesystem';
import { BASE_HASH, type DeviceRecord } from './metadata';

/** Where a shutdown records the mounts it kept for their users. */
const KEPT_MOUNTS_FILE = 'kept-mounts.json';

/** A mount a shutdown left in place, with the users it had. */
export interface KeptMount {
  hash: string;
  target: string;
  users: number;
}

/** Mounts an active device's filesystem at dir. */
export async function mountAt(ctx: SetContext, record: DeviceRecord, dir: string, mountLabel: string, extra: readonly string[] = []): Promise<void> {
  const device = dm.devicePath(ctx.deviceName(record.hash));
  const filesystem = ctx.filesystemOf(record);
  const { flags, data } = mountArguments(filesystem, [...ctx.options.mountOptions, ...extra], mountLabel);
  await kfs.mount(device, dir, filesystem, flags, data);
  if (filesystem === 'xfs' && ctx.options.xfsNospaceMaxRetries !== null) {
    const minor = (await dm.info(ctx.deviceName(record.hash))).minor ?? -1;
    const knob = `/sys/fs/xfs/dm-${minor}/error/metadata/ENOSPC/max_retries`;
    try {
      await fsp.writeFile(knob, String(ctx.options.xfsNospaceMaxRetries));
    } catch (err) {
      await kfs.umount2(dir, kfs.constants.MNT_DETACH);
      throw new DmthinError('EXFSRETRIES', `dm.xfs_nospace_max_retries is set but ${knob} cannot be written: ${String(err)}`);
    }
  }
}

/** Mounts an active device at its own mountpoint for a moment (mkfs follow-up, grow). */
export async function withTemporaryMount<T>(ctx: SetContext, record: DeviceRecord, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = path.join(ctx.home, 'mnt', `.${record.hash === BASE_HASH ? 'base' : record.hash}`);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  await mountAt(ctx, record, dir, '');
  try {
    return await use(dir);
  } finally {
    await unmountAndRemove(dir);
  }
}

/**
 * Unmounts target lazily and removes its directory, which also drops
 * copies of the mount that leaked into other namespaces. The directory
 * goes even when the unmount fails because nothing was mounted; a
 * directory still mounted refuses, harmlessly. Rejects if the unmount failed.
 */
export async function unmountAndRemove(target: string): Promise<void> {
  try {
    await kfs.umount2(target, kfs.constants.MNT_DETACH);
  } finally {
    // Synchronous: an rmdir costs less than a thread-pool round trip.
    try {
      rmdirSync(target);
    } catch {
      // still mounted, or already gone: harmless, as above
    }
  }
}

/**
 * A mount adopted from the last run, at its first use: still there, or
 * someone (dockerd cleaning up its root) unmounted it meanwhile and the
 * users it had are gone with it.
 */
export async function checkAdopted(ctx: SetContext, hash: string, mounted: MountRecord): Promise<MountRecord | undefined> {
  const info = await dm.info(ctx.deviceName(hash));
  const device = `${String(info.major)}:${String(info.minor)}`;
  if (info.exists && mountinfo.readMountinfo().some((m) => m.mountpoint === mounted.target && m.device === device)) {
    mounted.adopted = false;
    return mounted;
  }
  ctx.log.warn('a mount adopted from the last run is gone; mounting it afresh', { hash, target: mounted.target });
  ctx.mounts.delete(hash);
  return undefined;
}

function keptMountsFile(ctx: SetContext): string {
  return path.join(ctx.home, KEPT_MOUNTS_FILE);
}

/** Records the mounts a shutdown leaves for their users; the next start adopts them. */
export async function saveKeptMounts(ctx: SetContext, kept: readonly KeptMount[]): Promise<void> {
  await writeFileAtomic(keptMountsFile(ctx), JSON.stringify(kept));
}

/** What the last shutdown kept mounted; the record is gone once read (a later crash must not adopt it). */
export async function takeKeptMounts(ctx: SetContext): Promise<KeptMount[]> {
  let json: unknown;
  try {
    json = await readJsonFile(keptMountsFile(ctx));
  } catch (err) {
    ctx.log.warn('cannot read the mounts the last run kept; they are unmounted as stale', { err: String(err) });
    json = null;
  }
  await removeFileDurably(keptMountsFile(ctx));
  if (!Array.isArray(json)) return [];
  return json.filter((k): k is KeptMount => {
    const o = k as Partial<KeptMount> | null;
    return typeof o?.hash === 'string' && typeof o.target === 'string' && typeof o.users === 'number' && o.users > 0;
  });
}
