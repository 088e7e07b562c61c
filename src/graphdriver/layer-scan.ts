// The native layer scan (native/scan.cc), typed: a whole tree's lstat in
// one worker-thread call, and batches of entries (lstat, image xattrs,
// link target, small body) for Diff. Paths are binary strings, one char
// per byte, so names that are not UTF-8 keep their bytes.
import { binding, StatField, type ScanEntries, type ScanEntriesOptions, type ScanWalk } from '../native/binding';

export { StatField, type ScanEntries, type ScanWalk };

export const STAT_FIELDS: number = StatField.Count;

const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;

/** Every entry under root (not root itself), pre-order, children sorted by name bytes. */
export function walkTree(root: string): Promise<ScanWalk> {
  return binding.scan.walk(root);
}

/** lstat, image xattrs, link target and small body of each relative path under root. */
export function readEntries(root: string, paths: string[], options: ScanEntriesOptions = {}): Promise<ScanEntries> {
  return binding.scan.entries(root, paths, options);
}

/** One number of entry i. */
export function field(stats: Float64Array, i: number, f: StatField): number {
  return stats[i * STAT_FIELDS + f] ?? 0;
}

export function fileType(stats: Float64Array, i: number): number {
  return field(stats, i, StatField.Mode) & S_IFMT;
}

/** The inode number as a Map key (exact below 2^53, which covers real file systems). */
export function inodeKey(stats: Float64Array, i: number): number {
  return field(stats, i, StatField.InoHigh) * 2 ** 32 + field(stats, i, StatField.InoLow);
}

/** A UTF-8 string as a binary string (its bytes, one char each). */
export function toBinary(text: string): string {
  // Pure ASCII is the same either way: skip the round trip.
  return /^[\x00-\x7f]*$/.test(text) ? text : Buffer.from(text, 'utf8').toString('latin1');
}

/** A binary string's bytes read as UTF-8, for JSON answers (what dockerd's Go would make of them). */
export function fromBinary(bytes: string): string {
  return /^[\x00-\x7f]*$/.test(bytes) ? bytes : Buffer.from(bytes, 'latin1').toString('utf8');
}
