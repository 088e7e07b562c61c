// ApplyDiff's entries, one at a time, onto a directory that already holds
// the parent's files: what dockerd's in-tree driver does
// (pkg/archive UnpackLayer and createTarFile, run chrooted at the layer),
// with AUFS whiteouts, and never anything outside the layer or to the
// layer root but its metadata. Every call is synchronous and does work
// bounded by the entry or chunk it is given (a whiteout of a directory by
// that directory's size): the caller feeds it one input chunk at a time
// and the event loop gets its turn between chunks.
import { chmodSync, closeSync, constants as fsConstants, ftruncateSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, rmdirSync, statfsSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fs as kfs } from '../devmapper';
import { binding } from '../native/binding';
import { DmthinError, isErrno } from '../shared/errors';
import { binaryPath, entryParts, fsPath, resolveInRoot } from './paths';
import { TYPE_BLOCK, TYPE_CHAR, TYPE_DIR, TYPE_FIFO, TYPE_LINK, TYPE_REG, TYPE_SYMLINK, type TarHeader, type TarTime } from './tar/reader';
import { printableName } from './tar/tar-error';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
/** Top-level names under this prefix are AUFS metadata (.wh..wh.plnk, ...): skipped, as dockerd does. */
const AUFS_META_PREFIX = '.wh..wh.';
/** AUFS kept hard link targets here: dockerd stashes its regular files and turns links to them into copies. */
const AUFS_LINK_DIR = '.wh..wh.plnk';
/** The most bytes of .wh..wh.plnk files held for such copies (dockerd keeps them in a temp dir). */
const AUFS_STASH_LIMIT = 64 * 1024 * 1024;
/** A directory the tar needs but does not list: as dockerd 20.10 makes it, mode 0600, root's. */
const MISSING_PARENT_MODE = 0o600;
const XATTR_PREFIX = 'SCHILY.xattr.';
/** The largest uid or gid: 2^32-1 means "leave unchanged" to the kernel. */
const MAX_ID = 0xfffffffe;

/** Typeflags dockerd applies (Go's archive/tar constants), after the reader's '\0' fix-up. */
const TYPE = {
  reg: TYPE_REG,
  link: TYPE_LINK,
  symlink: TYPE_SYMLINK,
  char: TYPE_CHAR,
  block: TYPE_BLOCK,
  dir: TYPE_DIR,
  fifo: TYPE_FIFO,
  global: 0x67, // 'g': a PAX global header, which Go's Next() returns as an entry
} as const;

/** A tar name for a message: as UTF-8 when it is, bytes above 0x7e escaped otherwise. */
export function describeName(binary: string): string {
  const bytes = Buffer.from(binary, 'latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) && !text.includes('\u007f') ? JSON.stringify(text) : printableName(binary);
}

/** An entry the tar must not have: EBADTAR, naming the entry. */
export class BadEntry extends DmthinError {
  readonly entryIndex: number;
  readonly entryName: string;
  constructor(h: TarHeader, problem: string, options?: { cause?: unknown }) {
    super('EBADTAR', `layer tar entry #${h.index} ${describeName(h.name)}: ${problem}`, options);
    this.entryIndex = h.index;
    this.entryName = h.name;
  }
}

/** Failures of the filesystem under the layer rather than of the tar keep their code, with the entry named. */
const FILESYSTEM_CODES = ['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'ENOMEM', 'EMFILE', 'ENFILE'];

/** Whatever went wrong while applying an entry, as an error that names it and says what happened. */
function entryError(h: TarHeader, err: unknown): Error {
  if (err instanceof BadEntry) return err;
  if (err instanceof DmthinError && FILESYSTEM_CODES.includes(err.code)) return err;
  if (isErrno(err, ...FILESYSTEM_CODES)) {
    return new DmthinError(err.code, `layer tar entry #${h.index} ${describeName(h.name)} could not be written: ${err.message}`, { cause: err });
  }
  if (isErrno(err)) return new BadEntry(h, `cannot be applied: ${err.message}`, { cause: err });
  if (err instanceof DmthinError) return new BadEntry(h, err.message, { cause: err });
  return new BadEntry(h, `cannot be applied: ${String(err)}`, { cause: err });
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

/** Files from this size on are checked against the space left first. */
const LARGE_FILE = 64 * 1024 * 1024;

/**
 * Regular files up to this size without xattrs are written whole at their
 * end, in one native call with their metadata; larger ones stream.
 */
const SMALL_FILE = 1024 * 1024;

/** A small regular file whose body is being gathered. */
interface SmallFile {
  path: string;
  header: TarHeader;
  chunks: Buffer[];
}

interface OpenFile {
  fd: number;
  path: string;
  header: TarHeader;
  /** bytes of the body so far */
  at: number;
  /** a PAX GNU sparse file, whose holes the reader expands into zeros */
  sparse: boolean;
}

function hasXattrs(h: TarHeader): boolean {
  for (const [key, value] of h.pax) if (key.startsWith(XATTR_PREFIX) && value.length > 0) return true;
  return false;
}

function isSparse(h: TarHeader): boolean {
  for (const key of h.pax.keys()) if (key.startsWith('GNU.sparse.')) return true;
  return false;
}

const ZEROS = Buffer.alloc(64 * 1024);

function isZeros(chunk: Buffer): boolean {
  for (let at = 0; at < chunk.length; at += ZEROS.length) {
    const part = chunk.subarray(at, at + ZEROS.length);
    if (!part.equals(ZEROS.subarray(0, part.length))) return false;
  }
  return true;
}

interface DirTime {
  dir: string;
  header: TarHeader;
}

/** Go's zero time, and times Chtimes clamps: before 1970 or after 2262 become the epoch. */
const EPOCH: TarTime = { sec: 0, nsec: 0 };
const MAX_CHTIMES_SEC = 9_223_372_036; // int64 nanoseconds from 1970, as whole seconds

function chtimesClamp(t: TarTime | null): TarTime {
  if (t === null || t.sec < 0 || t.sec > MAX_CHTIMES_SEC) return EPOCH;
  return t;
}

function later(a: TarTime | null, b: TarTime | null): TarTime | null {
  if (a === null) return b;
  if (b === null) return a;
  return a.sec > b.sec || (a.sec === b.sec && a.nsec > b.nsec) ? a : b;
}

/** Removes target and everything under it, never following a symlink; nothing there is fine. */
function removeAll(target: string): void {
  const st = lstatSync(fsPath(target), { throwIfNoEntry: false });
  if (st === undefined) return;
  if (!st.isDirectory()) {
    unlinkSync(fsPath(target));
    return;
  }
  for (const name of readdirSync(fsPath(target), { encoding: 'buffer' })) removeAll(`${target}/${name.toString('latin1')}`);
  rmdirSync(fsPath(target));
}

/** One ApplyDiff: the layer root and what this tar has done to it so far. */
export class LayerApplier {
  /** sum of every entry's Size, as dockerd returns it */
  size = 0;
  /** binary string */
  private readonly root: string;
  /** entries this tar put in place (the opaque whiteout keeps these) */
  private readonly unpacked = new Set<string>();
  /** every path this tar created, its missing parents included */
  private readonly created = new Set<string>();
  /** directories this tar created: nothing of a lower layer is inside them */
  private readonly fresh = new Set<string>();
  /** entry parent "a/b" -> its real directory, while nothing on the way is removed */
  private readonly parents = new Map<string, string>();
  private readonly dirTimes: DirTime[] = [];
  /** the regular file being written, its metadata set at its end */
  private file: OpenFile | null = null;
  /** or the small one being gathered, written at its end */
  private small: SmallFile | null = null;
  /** .wh..wh.plnk files by base name, for the links that copy them */
  private readonly stash = new Map<string, { header: TarHeader; body: Buffer }>();
  private stashing: { key: string; header: TarHeader; chunks: Buffer[] } | null = null;
  private stashed = 0;

  constructor(root: string) {
    this.root = binaryPath(root);
  }

  /** A new entry: everything but a regular file's body and metadata is done here. */
  entry(h: TarHeader): void {
    this.size += h.size;
    try {
      this.begin(h);
    } catch (err) {
      throw entryError(h, err);
    }
  }

  /** Body bytes of the current entry; kept only for a regular file. */
  data(chunk: Buffer): void {
    if (this.stashing !== null) {
      this.stashing.chunks.push(Buffer.from(chunk));
      this.stashed += chunk.length;
      if (this.stashed > AUFS_STASH_LIMIT) throw new BadEntry(this.stashing.header, `makes the AUFS hard link files larger than ${AUFS_STASH_LIMIT} bytes in all`);
      return;
    }
    if (this.small !== null) {
      // The reader's chunk may be a view of its input: kept as a copy.
      this.small.chunks.push(Buffer.from(chunk));
      return;
    }
    const file = this.file;
    if (file === null) return;
    try {
      // A sparse file's holes stay holes (the file is sized at its end): the
      // content is the same as dockerd's, without the disk space.
      if (!(file.sparse && isZeros(chunk))) {
        for (let done = 0; done < chunk.length; ) done += writeSync(file.fd, chunk, done, chunk.length - done, file.at + done);
      }
      file.at += chunk.length;
    } catch (err) {
      throw entryError(file.header, err);
    }
  }

  /** The current entry's body is complete: a regular file is closed and gets its metadata. */
  entryEnd(): void {
    if (this.stashing !== null) {
      this.stash.set(this.stashing.key, { header: this.stashing.header, body: Buffer.concat(this.stashing.chunks) });
      this.stashing = null;
    }
    if (this.small !== null) return this.writeSmall(this.small);
    const file = this.file;
    if (file === null) return;
    this.file = null;
    try {
      if (file.sparse) ftruncateSync(file.fd, file.at);
      closeSync(file.fd);
      this.setMetadata(file.path, file.header, METADATA_ALL);
    } catch (err) {
      throw entryError(file.header, err);
    }
  }

  /**
   * The tar ended: directory times, deepest and latest first (creating
   * children changed them). As in dockerd, a directory a later entry
   * removed fails the apply, and whatever is at its path now gets its
   * times (never through a symlink: that one is dated itself).
   */
  finish(): void {
    for (const { dir, header } of this.dirTimes.reverse()) {
      try {
        // dockerd dates directories with the raw access time (none: the epoch), not max(atime, mtime).
        const a = chtimesClamp(header.atime);
        const m = chtimesClamp(header.mtime);
        kfs.lutimensSync(fsPath(dir), a.sec, a.nsec, m.sec, m.nsec);
      } catch (err) {
        if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new BadEntry(header, 'is a directory that a later entry of the same tar removed; dockerd refuses such a tar when it dates its directories');
        throw entryError(header, err);
      }
    }
  }

  /** Gives up: an open file is closed. */
  abort(): void {
    if (this.file !== null) closeSync(this.file.fd);
    this.file = null;
    this.small = null;
  }

  /** A small file, whole: created, written, owned, moded and dated in one call. */
  private writeSmall(small: SmallFile): void {
    this.small = null;
    const h = small.header;
    const body = small.chunks.length === 1 ? (small.chunks[0] as Buffer) : Buffer.concat(small.chunks);
    // setMetadata's times for a regular file (METADATA_ALL).
    const m = chtimesClamp(h.mtime);
    const a = chtimesClamp(later(h.atime, h.mtime));
    try {
      binding.apply.createFileSync(fsPath(small.path), body, h.uid, h.gid, h.mode & 0o7777, a.sec, a.nsec, m.sec, m.nsec);
    } catch (err) {
      throw entryError(h, err);
    }
  }

  private begin(h: TarHeader): void {
    if (h.name.includes('\0')) throw new BadEntry(h, 'the name holds a NUL byte');
    const parts = entryParts(h.name);
    if (parts.length === 0) return this.rootEntry(h);
    const top = parts[0] as string;
    if (top.startsWith(AUFS_META_PREFIX) && !(parts.length === 1 && top === OPAQUE_WHITEOUT)) return this.aufsMeta(h, parts);
    const base = parts[parts.length - 1] as string;
    // What the header alone says is wrong is refused before anything is touched.
    if (!base.startsWith(WHITEOUT_PREFIX)) checkHeader(h);
    const parent = this.parentOf(parts);

    if (base === OPAQUE_WHITEOUT) {
      this.hideLowerEntries(parent);
      this.parents.clear();
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const victim = base.slice(WHITEOUT_PREFIX.length);
      // dockerd would remove the directory holding the whiteout (or its parent, or in the chroot the whole layer).
      if (victim === '' || victim === '.' || victim === '..') {
        throw new BadEntry(h, `is a whiteout of ${victim === '' ? 'an empty name' : `"${victim}"`}, which would delete ${victim === '..' ? 'the directory above it' : 'its own directory'}; a whiteout must name an entry`);
      }
      removeAll(`${parent}/${victim}`);
      this.parents.clear();
      return;
    }

    const target = `${parent}/${base}`;
    if (this.mayExist(parent, target)) this.makeRoom(target, h.typeflag === TYPE.dir);
    switch (h.typeflag) {
      case TYPE.dir:
        try {
          mkdirSync(fsPath(target), { mode: 0o700 });
          this.madeDir(target);
        } catch (err) {
          if (!isErrno(err, 'EEXIST')) throw err;
        }
        this.dirTimes.push({ dir: target, header: h });
        break;
      case TYPE.reg:
        if (h.size <= SMALL_FILE && !isSparse(h) && !hasXattrs(h)) {
          this.small = { path: target, header: h, chunks: [] };
          this.made(target);
          return; // written whole at its end
        }
        this.checkRoomFor(h);
        this.file = { fd: openSync(fsPath(target), 'wx', 0o600), path: target, header: h, at: 0, sparse: isSparse(h) };
        this.made(target);
        return; // metadata at its end
      case TYPE.symlink:
        symlinkSync(fsPath(h.linkname), fsPath(target));
        break;
      case TYPE.link:
        if (path.posix.normalize(h.linkname).startsWith(AUFS_LINK_DIR)) this.aufsCopy(h, target);
        else this.hardLink(h, target);
        return;
      case TYPE.fifo:
        kfs.mknodSync(fsPath(target), kfs.constants.S_IFIFO | 0o600);
        break;
      case TYPE.char:
      case TYPE.block: {
        const kind = h.typeflag === TYPE.char ? kfs.constants.S_IFCHR : kfs.constants.S_IFBLK;
        kfs.mknodSync(fsPath(target), kind | 0o600, h.devmajor, h.devminor);
        break;
      }
      case TYPE.global:
        // A PAX global header: dockerd 20.10 removed what had its name (above) and made nothing.
        return;
      default:
        throw new Error(`type ${h.typeflag} passed checkHeader`);
    }
    this.made(target);
    this.setMetadata(target, h, h.typeflag === TYPE.symlink ? METADATA_SYMLINK : METADATA_ALL);
  }

  /**
   * A top-level AUFS metadata entry (.wh..wh.*): skipped, as dockerd does,
   * after its implied parent is made (dockerd makes it first); a regular
   * file under .wh..wh.plnk is kept for the links that copy it.
   */
  private aufsMeta(h: TarHeader, parts: string[]): void {
    this.parentOf(parts);
    if (!parts.join('/').startsWith(AUFS_LINK_DIR) || h.typeflag !== TYPE.reg) return;
    checkHeader(h);
    this.stashing = { key: parts[parts.length - 1] as string, header: h, chunks: [] };
  }

  /** A hard link into .wh..wh.plnk: a copy of the stashed file, with that file's header, as dockerd makes it. */
  private aufsCopy(h: TarHeader, target: string): void {
    const stashed = this.stash.get(path.posix.basename(h.linkname));
    if (stashed === undefined) throw new BadEntry(h, `is a hard link into AUFS's ${AUFS_LINK_DIR} to a file the tar did not have before it (dockerd: "Invalid aufs hardlink")`);
    const fd = openSync(fsPath(target), 'wx', 0o600);
    try {
      for (let done = 0; done < stashed.body.length; ) done += writeSync(fd, stashed.body, done);
    } finally {
      closeSync(fd);
    }
    this.made(target);
    this.setMetadata(target, stashed.header, METADATA_ALL);
  }

  /** An entry naming the root itself ("", ".", "/", ".."): only a directory, for the root's metadata. */
  private rootEntry(h: TarHeader): void {
    if (h.typeflag === TYPE.dir) {
      checkHeader(h);
      this.setMetadata(this.root, h, METADATA_ALL);
      this.dirTimes.push({ dir: this.root, header: h });
      return;
    }
    if (h.typeflag === TYPE.global) return;
    throw new BadEntry(h, `names the layer root but has type ${describeType(h.typeflag)}; only a directory entry may describe the root`);
  }

  /**
   * A large file is checked against the space left: dockerd writes every
   * byte (holes as zeros too) and fails with ENOSPC once the layer is
   * full; dmthin says so before it writes, and does not spend minutes
   * expanding a hole of a terabyte first.
   */
  private checkRoomFor(h: TarHeader): void {
    if (h.size < LARGE_FILE) return;
    const st = statfsSync(fsPath(this.root));
    const free = st.bavail * st.bsize;
    if (h.size > free) {
      throw new DmthinError('ENOSPC', `layer tar entry #${h.index} ${describeName(h.name)} is a file of ${h.size} bytes, more than the ${free} bytes left in the layer`);
    }
  }

  /**
   * A hard link. Its name is cleaned as an entry's, inside the layer (in
   * dockerd's chroot too). The link's header describes the shared inode
   * and wins, as in the in-tree driver: mode and times only when that is
   * not a symlink.
   */
  private hardLink(h: TarHeader, target: string): void {
    const linkParts = entryParts(h.linkname);
    const last = linkParts.pop();
    if (last === undefined) throw new BadEntry(h, `is a hard link to the layer root (${describeName(h.linkname)})`);
    const source = `${resolveInRoot(this.root, linkParts).path}/${last}`;
    const st = lstatSync(fsPath(source), { throwIfNoEntry: false });
    if (st === undefined) throw new BadEntry(h, `is a hard link to ${describeName(h.linkname)}, which is not in the layer`);
    if (st.isDirectory()) throw new BadEntry(h, `is a hard link to ${describeName(h.linkname)}, which is a directory`);
    linkSync(fsPath(source), fsPath(target));
    this.made(target);
    this.setMetadata(target, h, st.isSymbolicLink() ? METADATA_OWNER_XATTRS : METADATA_ALL);
  }

  /**
   * dockerd's order: owner (chown clears setuid/setgid and
   * security.capability, so it goes first), xattrs, mode (not of a
   * symlink), times with atime = max(atime, mtime). A directory's times
   * wait for the end: its children change them.
   */
  private setMetadata(target: string, h: TarHeader, parts: MetadataParts): void {
    const p = fsPath(target);
    lchownSync(p, h.uid, h.gid);
    for (const [key, value] of h.pax) {
      // dockerd 20.10 sets the non-empty SCHILY.xattr.* records (Go's Header.Xattrs) and ignores ENOTSUP and EPERM.
      if (!key.startsWith(XATTR_PREFIX) || value.length === 0) continue;
      try {
        kfs.lsetxattrSync(p, fsPath(key.slice(XATTR_PREFIX.length)), value, 0);
      } catch (err) {
        if (!isErrno(err, 'ENOTSUP', 'EPERM')) throw err;
      }
    }
    if (parts.mode) chmodSync(p, h.mode & 0o7777);
    if (!parts.times || h.typeflag === TYPE.dir) return;
    const mtime = h.typeflag === TYPE.symlink ? h.mtime : chtimesClamp(h.mtime);
    const atime = h.typeflag === TYPE.symlink ? later(h.atime, h.mtime) : chtimesClamp(later(h.atime, h.mtime));
    // A symlink's zero time is left as it is (UTIME_OMIT), as dockerd's LUtimesNano does.
    kfs.lutimensSync(p, atime?.sec ?? 0, atime?.nsec ?? -1, mtime?.sec ?? 0, mtime?.nsec ?? -1);
  }

  /**
   * The real directory that holds an entry (symlinks on the way followed
   * inside the root), made if missing, as dockerd makes implied parents.
   */
  private parentOf(parts: readonly string[]): string {
    const key = parts.slice(0, -1).join('/');
    const known = this.parents.get(key);
    if (known !== undefined) return known;
    const resolved = resolveInRoot(this.root, parts.slice(0, -1));
    for (let i = resolved.missingFrom; i < resolved.parts.length; i++) {
      const dir = `${this.root}/${resolved.parts.slice(0, i + 1).join('/')}`;
      mkdirSync(fsPath(dir), { mode: MISSING_PARENT_MODE });
      this.madeDir(dir);
    }
    this.parents.set(key, resolved.path);
    return resolved.path;
  }

  private madeDir(dir: string): void {
    this.created.add(dir);
    this.fresh.add(dir);
  }

  private made(target: string): void {
    this.created.add(target);
    this.unpacked.add(target);
  }

  /** Whether something may be at target: not when this tar made its directory and has put nothing there. */
  private mayExist(parent: string, target: string): boolean {
    return !this.fresh.has(parent) || this.created.has(target);
  }

  /** Clears the way for a new entry: anything there goes, except a directory that stays a directory. */
  private makeRoom(target: string, isDir: boolean): void {
    // Anything but a directory is gone after this call.
    const found = binding.apply.removeNonDirSync(fsPath(target)) & fsConstants.S_IFMT;
    if (found === 0 || (isDir && found === fsConstants.S_IFDIR)) return;
    if (found === fsConstants.S_IFDIR) removeAll(target);
    // A directory or a symlink went: parents resolved through it may be stale.
    if (found === fsConstants.S_IFDIR || found === fsConstants.S_IFLNK) this.parents.clear();
  }

  /**
   * An opaque directory: every entry under it that this tar did not put
   * there goes, at any depth (a directory of this tar keeps only what the
   * tar put in it), as the in-tree driver's walk does.
   */
  private hideLowerEntries(dir: string): void {
    for (const name of readdirSync(fsPath(dir), { encoding: 'buffer' })) {
      const child = `${dir}/${name.toString('latin1')}`;
      if (!this.unpacked.has(child)) removeAll(child);
      else if (lstatSync(fsPath(child)).isDirectory()) this.hideLowerEntries(child);
    }
  }

}

const APPLIED_TYPES = new Set<number>(Object.values(TYPE));

/** What the header alone says is wrong: a type dockerd does not apply, an owner or device numbers Linux cannot take. */
function checkHeader(h: TarHeader): void {
  if (!APPLIED_TYPES.has(h.typeflag)) {
    throw new BadEntry(h, `has type ${describeType(h.typeflag)}, which dockerd does not apply either (unhandled tar header type ${h.typeflag})`);
  }
  if (h.typeflag === TYPE.global) return; // nothing of it is applied
  for (const [what, id] of [['uid', h.uid], ['gid', h.gid]] as const) {
    if (!(Number.isInteger(id) && id >= 0 && id <= MAX_ID)) throw new BadEntry(h, `has ${what} ${id}, outside 0 to ${MAX_ID}`);
  }
  if ((h.typeflag === TYPE.char || h.typeflag === TYPE.block) && !(h.devmajor >= 0 && h.devmajor <= 0xfff && h.devminor >= 0 && h.devminor <= 0xfffff)) {
    throw new BadEntry(h, `has device numbers ${h.devmajor},${h.devminor}; Linux takes majors 0 to 4095 and minors 0 to 1048575`);
  }
}

function describeType(typeflag: number): string {
  const c = String.fromCharCode(typeflag);
  return typeflag >= 0x20 && typeflag < 0x7f ? `'${c}'` : `byte ${typeflag}`;
}
