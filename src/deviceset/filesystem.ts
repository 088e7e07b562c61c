// Filesystems on thin devices: which one, making it, growing it, its UUID.
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fs as kfs } from '../devmapper';
import { DmthinError } from '../shared/errors';
import { hasTool, runTool } from './run';

export type FsType = 'ext4' | 'xfs';

/** xfs when mkfs.xfs is installed and the kernel has xfs (a failed mount loads the module), else ext4. */
export async function defaultFilesystem(): Promise<FsType> {
  if (!(await hasTool('mkfs.xfs'))) return 'ext4';
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-xfs-'));
  try {
    await kfs.mount('none', dir, 'xfs', 0, null).catch(() => undefined);
  } finally {
    await fsp.rmdir(dir).catch(() => undefined);
  }
  const filesystems = await fsp.readFile('/proc/filesystems', 'utf8');
  return /\bxfs\b/.test(filesystems) ? 'xfs' : 'ext4';
}

export async function makeFilesystem(device: string, type: FsType, extraArgs: readonly string[]): Promise<void> {
  if (type === 'xfs') {
    await runTool('mkfs.xfs', ['-q', '-f', ...extraArgs, device]);
    return;
  }
  // Lazy init would write the inode tables in the background for minutes,
  // allocating blocks in every snapshot taken meanwhile.
  const args = ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', ...extraArgs, device];
  await runTool('mkfs.ext4', args);
  // No forced fsck by mount count or age: thin devices are checked by nobody at boot.
  await runTool('tune2fs', ['-c', '-1', '-i', '0', device]);
}

/** `blkid -s UUID -o value DEVICE`. */
export async function filesystemUuid(device: string): Promise<string> {
  const uuid = (await runTool('blkid', ['-p', '-s', 'UUID', '-o', 'value', device])).trim();
  if (uuid === '') throw new DmthinError('ENOFS', `no filesystem UUID found on ${device}`);
  return uuid;
}

/** Reads the superblock magic, as the in-tree driver did: ext4 at 0x438, xfs at 0. */
export async function probeFilesystem(device: string): Promise<FsType | null> {
  const handle = await fsp.open(device, 'r');
  try {
    const { buffer } = await handle.read(Buffer.alloc(0x440), 0, 0x440, 0);
    if (buffer.subarray(0, 4).toString('latin1') === 'XFSB') return 'xfs';
    if (buffer[0x438] === 0x53 && buffer[0x439] === 0xef) return 'ext4';
    return null;
  } finally {
    await handle.close();
  }
}

/** Grows the filesystem on a device that is mounted at `mountpoint` to fill the device. */
export async function growFilesystem(device: string, mountpoint: string, type: FsType): Promise<void> {
  if (type === 'xfs') await runTool('xfs_growfs', [mountpoint]);
  else await runTool('resize2fs', [device]);
}

/** mount(8)'s generic options, which are MS_* flags for mount(2), not filesystem data. */
const FLAG_OPTIONS: Record<string, { set?: keyof typeof kfs.constants; clear?: keyof typeof kfs.constants; recursive?: true }> = {
  defaults: {},
  rw: { clear: 'MS_RDONLY' },
  ro: { set: 'MS_RDONLY' },
  suid: { clear: 'MS_NOSUID' },
  nosuid: { set: 'MS_NOSUID' },
  dev: { clear: 'MS_NODEV' },
  nodev: { set: 'MS_NODEV' },
  exec: { clear: 'MS_NOEXEC' },
  noexec: { set: 'MS_NOEXEC' },
  async: { clear: 'MS_SYNCHRONOUS' },
  sync: { set: 'MS_SYNCHRONOUS' },
  dirsync: { set: 'MS_DIRSYNC' },
  atime: { clear: 'MS_NOATIME' },
  noatime: { set: 'MS_NOATIME' },
  diratime: { clear: 'MS_NODIRATIME' },
  nodiratime: { set: 'MS_NODIRATIME' },
  relatime: { set: 'MS_RELATIME' },
  norelatime: { clear: 'MS_RELATIME' },
  strictatime: { set: 'MS_STRICTATIME' },
  lazytime: { set: 'MS_LAZYTIME' },
  bind: { set: 'MS_BIND' },
  rbind: { set: 'MS_BIND', recursive: true },
};

/**
 * Comma-separated mount(8) options as mount(2) takes them: the generic
 * words (ro, noatime, bind, ...) become MS_* flags, a later word undoing an
 * earlier one; everything else is filesystem data, in order.
 */
export function mountFlagsAndData(options: readonly string[]): { flags: number; data: string | null } {
  let flags = 0;
  const data: string[] = [];
  for (const option of options.flatMap((o) => o.split(','))) {
    const flag = FLAG_OPTIONS[option];
    if (flag === undefined) {
      if (option !== '') data.push(option);
      continue;
    }
    if (flag.set !== undefined) flags |= kfs.constants[flag.set];
    if (flag.clear !== undefined) flags &= ~kfs.constants[flag.clear];
    if (flag.recursive === true) flags |= kfs.constants.MS_REC;
  }
  return { flags, data: data.length > 0 ? data.join(',') : null };
}

/**
 * The flags and data of mount(2) for a device: nouuid for xfs (so
 * snapshots of one filesystem mount side by side), dm.mountopt, the mount
 * label. Generic options such as noatime become flags, as mount(8) does.
 */
export function mountArguments(type: FsType, extra: readonly string[], mountLabel: string): { flags: number; data: string | null } {
  const options = type === 'xfs' ? ['nouuid', ...extra] : [...extra];
  if (mountLabel !== '') options.push(`context=${JSON.stringify(mountLabel)}`);
  return mountFlagsAndData(options);
}
