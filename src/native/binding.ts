// The native addon (native/*.cc, built by node-gyp) and its typed surface.
// Every function that touches the kernel returns a Promise and rejects with
// a SystemError (see src/shared/errors.ts); argument mistakes throw a TypeError
// synchronously, before anything is done.
import path from 'node:path';

export interface DmTarget {
  start: number; // in 512-byte sectors
  length: number; // in 512-byte sectors
  type: string;
  params: string;
}

export interface DmInfo {
  name: string;
  exists: boolean;
  uuid?: string;
  major?: number;
  minor?: number;
  openCount?: number;
  targetCount?: number;
  eventNr?: number;
  suspended?: boolean;
  readOnly?: boolean;
  liveTable?: boolean;
  inactiveTable?: boolean;
  deferredRemove?: boolean;
}

export interface DmDeviceNumber {
  major: number;
  minor: number;
}

export interface DmListEntry extends DmDeviceNumber {
  name: string;
}

/** syslog levels as libdevmapper uses them: 3 error, 4 warning, 5 notice, 6 info, 7 debug. */
export type DmLogger = (level: number, message: string, code: string | null) => void;

export interface DmBinding {
  version(): Promise<{ library: string; driver: string }>;
  create(name: string, table: DmTarget[], options?: { uuid?: string; readOnly?: boolean }): Promise<void>;
  reload(name: string, table: DmTarget[]): Promise<void>;
  remove(name: string, options?: { deferred?: boolean; retry?: boolean }): Promise<void>;
  suspend(name: string, options?: { noFlush?: boolean; skipLockfs?: boolean }): Promise<void>;
  resume(name: string): Promise<void>;
  message(name: string, sector: number, message: string): Promise<string | null>;
  info(name: string): Promise<DmInfo>;
  status(name: string): Promise<DmTarget[]>;
  table(name: string): Promise<DmTarget[]>;
  deps(name: string): Promise<DmDeviceNumber[]>;
  list(): Promise<DmListEntry[]>;
  setUdevSync(enabled: boolean): void;
  udevSync(): boolean;
  setLogger(logger: DmLogger | null): void;
  setLogLevel(level: number): void;
}

export interface LoopStatus {
  device: string;
  number: number;
  backingFile: string;
  backingMajor: number;
  backingMinor: number;
  backingInode: number;
  offset: number;
  sizeLimit: number;
  autoclear: boolean;
  readOnly: boolean;
}

export interface LoopBinding {
  /** fd is the open loop device when autoclear is set (the caller closes it), else -1. */
  attach(file: string, options?: { readOnly?: boolean; autoclear?: boolean }): Promise<{ device: string; fd: number }>;
  detach(device: string): Promise<void>;
  setCapacity(device: string): Promise<void>;
  status(device: string): Promise<LoopStatus | null>;
  find(file: string): Promise<string | null>;
}

export interface BlockdevBinding {
  size(path: string): Promise<number>;
  discard(path: string, offset: number, length: number): Promise<void>;
}

export interface Statfs {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namelen: number;
  frsize: number;
  flags: number;
}

export interface FsConstants {
  MS_RDONLY: number;
  MS_NOSUID: number;
  MS_NODEV: number;
  MS_NOEXEC: number;
  MS_SYNCHRONOUS: number;
  MS_REMOUNT: number;
  MS_DIRSYNC: number;
  MS_NOATIME: number;
  MS_NODIRATIME: number;
  MS_BIND: number;
  MS_MOVE: number;
  MS_REC: number;
  MS_SILENT: number;
  MS_UNBINDABLE: number;
  MS_PRIVATE: number;
  MS_SLAVE: number;
  MS_SHARED: number;
  MS_RELATIME: number;
  MS_STRICTATIME: number;
  MS_LAZYTIME: number;
  MNT_FORCE: number;
  MNT_DETACH: number;
  MNT_EXPIRE: number;
  UMOUNT_NOFOLLOW: number;
  XATTR_CREATE: number;
  XATTR_REPLACE: number;
  S_IFIFO: number;
  S_IFCHR: number;
  S_IFBLK: number;
  S_IFREG: number;
  S_IFSOCK: number;
}

export interface FsBinding {
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): Promise<void>;
  umount2(target: string, flags?: number): Promise<void>;
  statfs(path: string): Promise<Statfs>;
  mknod(path: string, mode: number, major?: number, minor?: number): Promise<void>;
  lgetxattr(path: string, name: string): Promise<Buffer>;
  lsetxattr(path: string, name: string, value: Buffer | string, flags?: number): Promise<void>;
  /** On the calling thread; path and name as raw bytes (a Buffer) or UTF-8 (a string). */
  mknodSync(path: Buffer | string, mode: number, major: number, minor: number): void;
  lsetxattrSync(path: Buffer | string, name: Buffer | string, value: Buffer, flags: number): void;
  /** utimensat(AT_SYMLINK_NOFOLLOW); a nanosecond count of -1 leaves that time unchanged. */
  lutimensSync(path: Buffer | string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  llistxattr(path: string): Promise<string[]>;
  lremovexattr(path: string, name: string): Promise<void>;
  constants: FsConstants;
}

/**
 * A whole tree, pre-order, each directory's children sorted by name bytes.
 * Paths are relative (no leading "/") binary strings: one char per byte.
 */
export interface ScanWalk {
  paths: string[];
  /** ends[i]: the index after entry i's last descendant (i + 1 for a non-directory) */
  ends: Uint32Array;
  /** STAT_FIELDS numbers per entry, in the order of StatField */
  stats: Float64Array;
}

/** The numbers a scan keeps per entry, in this order (native/scan.cc). */
export const enum StatField {
  Mode = 0,
  Uid,
  Gid,
  RdevMajor,
  RdevMinor,
  Size,
  MtimeSec,
  MtimeNsec,
  InoHigh,
  InoLow,
  CtimeSec,
  CtimeNsec,
  Nlink,
  Count,
}

export interface ScanEntriesOptions {
  /** bodies of regular files of at most this many bytes are read (0: none) */
  bodyLimit?: number;
  /** ...while the bodies read in this call stay within this many bytes */
  bodyBudget?: number;
  /** read xattrs (user.* and security.capability); default true */
  xattrs?: boolean;
  /** only security.capability */
  capabilityOnly?: boolean;
}

/** One batch of entries; an entry gone since it was listed has a Mode of 0. */
export interface ScanEntries {
  stats: Float64Array;
  /** symlink targets, binary strings */
  links: Array<string | null>;
  bodies: Array<Buffer | null>;
  /** [name (binary string), value], sorted by name; null when none */
  xattrs: Array<Array<[string, Buffer]> | null>;
}

export interface ScanBinding {
  walk(root: string): Promise<ScanWalk>;
  entries(root: string, paths: string[], options?: ScanEntriesOptions): Promise<ScanEntries>;
  STAT_FIELDS: number;
}

/** ApplyDiff's per-entry work, one call each, on the calling thread; paths as raw bytes. */
export interface ApplyBinding {
  /** lstat, then unlink unless a directory; the st_mode found, 0 when nothing was there */
  removeNonDirSync(path: Buffer): number;
  /** a new file (O_EXCL) with the whole body, then fchown, fchmod, futimens on its descriptor */
  createFileSync(path: Buffer, body: Buffer, uid: number, gid: number, mode: number, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
}

export interface Binding {
  dm: DmBinding;
  loop: LoopBinding;
  blockdev: BlockdevBinding;
  fs: FsBinding;
  scan: ScanBinding;
  apply: ApplyBinding;
}

/** Where node-gyp puts the addon, from dist/src/native/. */
const ADDON_FILE = path.resolve(__dirname, '..', '..', '..', 'build', 'Release', 'dmthin.node');

let loaded: Binding | null = null;

/**
 * The addon, loaded at its first use rather than at import: option
 * parsing, --help and pure unit tests run without it. Loading fails with
 * a message that says how to build it.
 */
export function loadBinding(): Binding {
  if (loaded !== null) return loaded;
  try {
    loaded = require(ADDON_FILE) as Binding;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `dmthin: cannot load the native addon ${ADDON_FILE} (${reason}); ` +
        'build it with `npm run build` (needs libdevmapper-dev, python3, make and g++)',
    );
  }
  return loaded;
}

/** The addon's parts, each loading the addon when first reached. */
export const binding: Binding = {
  get dm() {
    return loadBinding().dm;
  },
  get loop() {
    return loadBinding().loop;
  },
  get blockdev() {
    return loadBinding().blockdev;
  },
  get fs() {
    return loadBinding().fs;
  },
  get scan() {
    return loadBinding().scan;
  },
  get apply() {
    return loadBinding().apply;
  },
};
