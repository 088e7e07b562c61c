// ApplyDiff: unpack a layer tar (AUFS whiteouts, as dockerd sends them)
// onto a directory that already holds the parent's files. Streams: the
// tar is never held in memory.
import { promises as fsp } from 'node:fs';
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

/** Applies the tar stream to root; resolves to the sum of the entries' sizes, as dockerd computes a layer's size. */
export async function applyTar(root: string, input: Readable): Promise<number> {
  const extract = tar.extract();
  const unpacked = new Set<string>();
  const dirTimes: DirTimes[] = [];
  let size = 0;
  // Not pipeline(): on a bad entry the rest of the input is drained, not
  // destroyed, so that an HTTP caller still gets the error as an answer.
  const tap = new PaxXattrTap();
  input.once('error', (err) => extract.destroy(err));
  input.pipe(tap).pipe(extract as unknown as NodeJS.WritableStream);
  try {
    for await (const entry of extract) {
      size += entry.header.size;
      await applyEntry(root, entry.header, tap.next(), entry as unknown as Body, unpacked, dirTimes);
      entry.resume(); // drain whatever applyEntry did not read
    }
  } catch (err) {
    input.unpipe();
    input.resume();
    extract.destroy();
    throw err;
  }
  // Directory times last, deepest first: creating children changed them.
  for (const { dir, mtime } of dirTimes.reverse()) await fsp.utimes(dir, mtime, mtime);
  return size;
}

async function applyEntry(root: string, h: Header, xattrs: Map<string, Buffer>, body: Body, unpacked: Set<string>, dirTimes: DirTimes[]): Promise<void> {
  const parts = entryParts(h.name);
  if (parts.length === 0) {
    // The root itself: only its metadata.
    if (h.type === 'directory') {
      await setMetadata(root, h, xattrs, METADATA_ALL);
      dirTimes.push({ dir: root, mtime: h.mtime });
    }
    return;
  }
  if (parts[0] === AUFS_LINK_DIR) return;
  const base = parts[parts.length - 1] as string;
  const parent = await resolveInRoot(root, parts.slice(0, -1));
  // A tar that skips a directory's entry gets one as the in-tree driver
  // makes it: mode 0600, root's.
  await fsp.mkdir(parent, { recursive: true, mode: MISSING_PARENT_MODE });

  if (base === OPAQUE_WHITEOUT) {
    await hideLowerEntries(parent, unpacked);
    return;
  }
  if (base.startsWith(WHITEOUT_PREFIX)) {
    await fsp.rm(path.join(parent, base.slice(WHITEOUT_PREFIX.length)), { recursive: true, force: true });
    return;
  }

  const target = path.join(parent, base);
  await makeRoom(target, h.type === 'directory');
  switch (h.type) {
    case 'directory':
      await fsp.mkdir(target, { mode: 0o700 }).catch((err: unknown) => {
        if (!isErrno(err, 'EEXIST')) throw err;
      });
      dirTimes.push({ dir: target, mtime: h.mtime });
      break;
    case 'file':
    case 'contiguous-file':
      await writeBody(target, body);
      break;
    case 'symlink':
      await fsp.symlink(h.linkname, target);
      break;
    case 'link': {
      const linkParts = entryParts(h.linkname);
      const source = path.join(await resolveInRoot(root, linkParts.slice(0, -1)), linkParts[linkParts.length - 1] ?? '');
      if (linkParts.length === 0 || !source.startsWith(`${root}/`)) {
        throw new DmthinError('EBADTAR', `hard link ${h.name} points outside the layer: ${h.linkname}`);
      }
      await fsp.link(source, target);
      unpacked.add(target);
      // The link's header describes the shared inode too, and wins, as in
      // the in-tree driver; mode and times only when it is not a symlink.
      const toSymlink = (await fsp.lstat(target)).isSymbolicLink();
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
  unpacked.add(target);
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

/** Clears the way for a new entry: anything there goes, except a directory that stays a directory. */
async function makeRoom(target: string, isDir: boolean): Promise<void> {
  try {
    const st = await fsp.lstat(target);
    if (isDir && st.isDirectory()) return;
    await fsp.rm(target, { recursive: true, force: true });
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
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
  await fsp.lchown(target, h.uid, h.gid);
  if (parts.mode) await fsp.chmod(target, h.mode & 0o7777);
  // Byte for byte, from the PAX tap: security.capability values are binary.
  for (const [name, value] of xattrs) await kfs.lsetxattr(target, name, value);
  if (parts.times && h.type !== 'directory') await fsp.lutimes(target, h.mtime, h.mtime);
}

