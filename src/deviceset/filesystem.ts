// Filesystems on thin devices: which one, making it, growing it, its UUID.
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fs as kfs } from '../devmapper';
import { DmthinError } from '../errors';
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

/** Mount options for a device: nouuid for xfs, so snapshots of one filesystem can be mounted together. */
export function mountOptions(type: FsType, extra: readonly string[], mountLabel: string): string {
  const options = type === 'xfs' ? ['nouuid', ...extra] : [...extra];
  if (mountLabel !== '') options.push(`context=${JSON.stringify(mountLabel)}`);
  return options.join(',');
}
