// ApplyDiff: unpack a layer tar (AUFS whiteouts, as dockerd sends them)
// onto a directory that already holds the parent's files. Streams: the
// tar is never held in memory.
import {
  chmodSync,
  closeSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  promises as fsp,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { fs as kfs } from '../devmapper';
import { DmthinError, isErrno } from '../errors';
import { PaxXattrTap } from './pax-xattrs';
import { entryParts, resolveInRoot } from './paths';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
/** AUFS keeps hard link targets here; they carry nothing a layer needs. */
const AUFS_LINK_DIR = '.wh..wh.plnk';
const MISSING_PARENT_MODE = 0o600;

type Header = tar.Header;
/** An entry's content: tar-stream's (streamx) readable, iterated chunk by chunk. */
type Body = AsyncIterable<Buffer> & { resume(): unknown };

interface DirTimes {
  dir: string;
  mtime: Date;
}

/**
 * Bodies up to this size are gathered and written, with the entry's
 * metadata, in one synchronous burst of a few system calls: a thread-pool
 * round trip per call costs far more than the call (many times more under
 * emulation), and ApplyDiff is one call per entry. Larger bodies stream.
 * Diff reads files up to the same size in one call.
 */
export const SMALL_BODY = 1024 * 1024;

/** One ApplyDiff: the layer root and what this tar has done to it so far. */
class Applier {
  /** entries this tar put in place (the opaque whiteout keeps these) */
  readonly unpacked = new Set<string>();
  /** every path this tar created, its missing parents included */
  private readonly created = new Set<string>();
  /** directories this tar created: nothing of a lower layer is inside them */
  private readonly fresh = new Set<string>();
  /** entry parent "a/b" -> its real directory, while nothing on the way is removed */
  private readonly parents = new Map<string, string>();
  readonly dirTimes: DirTimes[] = [];

  constructor(readonly root: string) {}

  /**
   * The real directory that holds an entry (symlinks on the way followed
   * inside the root), made if missing. A tar that skips a directory's
   * entry gets one as the in-tree driver makes it: mode 0600, root's.
   */
  async parentOf(parts: readonly string[]): Promise<string> {
    const key = parts.slice(0, -1).join('/');
    const known = this.parents.get(key);
    if (known !== undefined) return known;
    const dir = await resolveInRoot(this.root, parts.slice(0, -1));
    const first = mkdirSync(dir, { recursive: true, mode: MISSING_PARENT_MODE });
    if (first !== undefined) {
      for (let d = dir; d.length >= first.length; d = path.dirname(d)) this.madeDir(d);
    }
    this.parents.set(key, dir);
    return dir;
  }

  madeDir(dir: string): void {
    this.created.add(dir);
    this.fresh.add(dir);
  }

  made(target: string): void {
    this.created.add(target);
    this.unpacked.add(target);
  }

  /** Whether something may be at target: not when this tar made its directory and has put nothing there. */
  mayExist(parent: string, target: string): boolean {
    return !this.fresh.has(parent) || this.created.has(target);
  }

  /** Something that may be a directory or a symlink was removed: resolved parents may be stale. */
  removedTree(): void {
    this.parents.clear();
  }
}

/** Applies the tar stream to root; resolves to the sum of the entries' sizes, as dockerd computes a layer's size. */
export async function applyTar(root: string, input: Readable): Promise<number> {
  const extract = tar.extract();
  const applier = new Applier(root);
  let size = 0;
  // Not pipeline(): on a bad entry the rest of the input is drained, not
  // destroyed, so that an HTTP caller still gets the error as an answer.
  const tap = new PaxXattrTap();
  input.once('error', (err) => extract.destroy(err));
  input.pipe(tap).pipe(extract as unknown as NodeJS.WritableStream);
  try {
    for await (const entry of extract) {
      size += entry.header.size;
      await applyEntry(applier, entry.header, tap.next(), entry as unknown as Body);
      entry.resume(); // drain whatever applyEntry did not read
    }
  } catch (err) {
    input.unpipe();
    input.resume();
    extract.destroy();
    throw err;
  }
  // Directory times last, deepest first: creating children changed them.
  for (const { dir, mtime } of applier.dirTimes.reverse()) setDirTime(dir, mtime);
  return size;
}

/**
 * Dates a directory an entry made, if it is still one: a later entry of
 * the same tar may have removed it or put a symlink there, and a symlink
 * is never followed (it may point outside the layer).
 */
function setDirTime(dir: string, mtime: Date): void {
  if (lstatSync(dir, { throwIfNoEntry: false })?.isDirectory() === true) lutimesSync(dir, mtime, mtime);
}

async function applyEntry(a: Applier, h: Header, xattrs: Map<string, Buffer>, body: Body): Promise<void> {
  const parts = entryParts(h.name);
  if (parts.length === 0) {
    // The root itself: only its metadata.
    if (h.type === 'directory') {
      await setMetadata(a.root, h, xattrs, METADATA_ALL);
      a.dirTimes.push({ dir: a.root, mtime: h.mtime });
    }
    return;
  }
  if (parts[0] === AUFS_LINK_DIR) return;
  const base = parts[parts.length - 1] as string;
  const parent = await a.parentOf(parts);

  if (base === OPAQUE_WHITEOUT) {
    await hideLowerEntries(parent, a.unpacked);
    a.removedTree();
    return;
  }
  if (base.startsWith(WHITEOUT_PREFIX)) {
    await fsp.rm(path.join(parent, base.slice(WHITEOUT_PREFIX.length)), { recursive: true, force: true });
    a.removedTree();
    return;
  }

  const target = path.join(parent, base);
  if (a.mayExist(parent, target)) await makeRoom(a, target, h.type === 'directory');
  switch (h.type) {
    case 'directory':
      try {
        mkdirSync(target, { mode: 0o700 });
        a.madeDir(target);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      a.dirTimes.push({ dir: target, mtime: h.mtime });
      break;
    case 'file':
    case 'contiguous-file':
      if (h.size <= SMALL_BODY) await writeSmallBody(target, body, h.size);
      else await writeBody(target, body);
      break;
    case 'symlink':
      symlinkSync(h.linkname, target);
      break;
    case 'link': {
      const linkParts = entryParts(h.linkname);
      const source = path.join(await resolveInRoot(a.root, linkParts.slice(0, -1)), linkParts[linkParts.length - 1] ?? '');
      if (linkParts.length === 0 || !source.startsWith(`${a.root}/`)) {
        throw new DmthinError('EBADTAR', `hard link ${h.name} points outside the layer: ${h.linkname}`);
      }
      linkSync(source, target);
      a.made(target);
      // The link's header describes the shared inode too, and wins, as in
      // the in-tree driver; mode and times only when it is not a symlink.
      const toSymlink = lstatSync(target).isSymbolicLink();
      await setMetadata(target, h, xattrs, toSymlink ? METADATA_OWNER_XATTRS : METADATA_ALL);
      return;
    }
    case 'fifo':
      await kfs.mknod(target, kfs.constants.S_IFIFO | 0o600);
      break;
    case 'character-device':
    case 'block-device': {
      const kind = h.type === 'character-device' ? kfs.constants.S_IFCHR : kfs.constants.S_IFBLK;
      await kfs.mknod(target, kind | 0o600, h.devmajor, h.devminor);
      break;
    }
    default:
      throw new DmthinError('EBADTAR', `tar entry ${h.name} has an unsupported type ${String(h.type)}`);
  }
  a.made(target);
  await setMetadata(target, h, xattrs, h.type === 'symlink' ? METADATA_SYMLINK : METADATA_ALL);
}

/**
 * An opaque directory: every entry under it that this tar did not put
 * there goes, at any depth (a directory of this tar keeps only what the
 * tar put in it), as the in-tree driver's walk does.
 */
async function hideLowerEntries(dir: string, unpacked: Set<string>): Promise<void> {
  for (const name of await fsp.readdir(dir)) {
    const child = path.join(dir, name);
    if (!unpacked.has(child)) {
      await fsp.rm(child, { recursive: true, force: true });
      continue;
    }
    if ((await fsp.lstat(child)).isDirectory()) await hideLowerEntries(child, unpacked);
  }
}

async function writeBody(target: string, body: Body): Promise<void> {
  const handle = await fsp.open(target, 'wx', 0o600);
  try {
    for await (const chunk of body) await handle.write(chunk);
  } finally {
    await handle.close();
  }
}

async function writeSmallBody(target: string, body: Body, size: number): Promise<void> {
  const data = Buffer.allocUnsafe(size);
  let at = 0;
  for await (const chunk of body) at += chunk.copy(data, at);
  const fd = openSync(target, 'wx', 0o600);
  try {
    writeSync(fd, data, 0, at);
  } finally {
    closeSync(fd);
  }
}

/** Clears the way for a new entry: anything there goes, except a directory that stays a directory. */
async function makeRoom(a: Applier, target: string, isDir: boolean): Promise<void> {
  const st = lstatSync(target, { throwIfNoEntry: false });
  if (st === undefined) return;
  if (isDir && st.isDirectory()) return;
  if (st.isDirectory()) {
    await fsp.rm(target, { recursive: true, force: true });
    a.removedTree();
    return;
  }
  unlinkSync(target);
  if (st.isSymbolicLink()) a.removedTree();
}

interface MetadataParts {
  mode: boolean;
  times: boolean;
}
const METADATA_ALL: MetadataParts = { mode: true, times: true };
/** A symlink has no mode of its own, but times. */
const METADATA_SYMLINK: MetadataParts = { mode: false, times: true };
/** A hard link to a symlink: the in-tree driver sets neither mode nor times. */
const METADATA_OWNER_XATTRS: MetadataParts = { mode: false, times: false };

/**
 * Owner, then mode (chown clears setuid/setgid), then xattrs (chown also
 * drops security.capability), then times (a directory's are set at the end).
 */
async function setMetadata(target: string, h: Header, xattrs: Map<string, Buffer>, parts: MetadataParts): Promise<void> {
  lchownSync(target, h.uid, h.gid);
  if (parts.mode) chmodSync(target, h.mode & 0o7777);
  // Byte for byte, from the PAX tap: security.capability values are binary.
  for (const [name, value] of xattrs) await kfs.lsetxattr(target, name, value);
  if (parts.times && h.type !== 'directory') lutimesSync(target, h.mtime, h.mtime);
}
