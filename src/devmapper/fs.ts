// mount(2), umount2(2), statfs(2), mknod(2) and the l*xattr(2) calls.
import { binding, type FsConstants, type Statfs } from '../native/binding';

export type { FsConstants, Statfs };

/** MS_*, MNT_* and S_IF* as the addon was built with them; read from the addon at first use, not at import. */
export const constants: FsConstants = new Proxy({} as FsConstants, {
  get: (_target, key: string) => binding.fs.constants[key as keyof FsConstants],
});

/** `mount [-t FSTYPE] [-o DATA] SOURCE TARGET`, with MS_* flags. */
export function mount(source: string | null, target: string, fstype: string | null, flags = 0, data: string | null = null): Promise<void> {
  return binding.fs.mount(source, target, fstype, flags, data);
}

/** `umount [--force] [--lazy] TARGET`: umount2 with MNT_* flags. */
export function umount2(target: string, flags = 0): Promise<void> {
  return binding.fs.umount2(target, flags);
}

/** `stat --file-system PATH`, including the mount flags (ST_RDONLY, ...). */
export function statfs(path: string): Promise<Statfs> {
  return binding.fs.statfs(path);
}

/** `mknod PATH TYPE MAJOR MINOR`; mode holds the S_IF* type and the permission bits. */
export function mknod(path: string, mode: number, major = 0, minor = 0): Promise<void> {
  return binding.fs.mknod(path, mode, major, minor);
}

/**
 * mknod on the calling thread, for ApplyDiff's many small calls: a
 * thread-pool round trip costs more than the syscall. Path as raw bytes.
 * Throws a Node-style system error.
 */
export function mknodSync(path: Buffer | string, mode: number, major = 0, minor = 0): void {
  binding.fs.mknodSync(path, mode, major, minor);
}

/** lsetxattr on the calling thread (see mknodSync); path and name as raw bytes. */
export function lsetxattrSync(path: Buffer | string, name: Buffer | string, value: Buffer, flags = 0): void {
  binding.fs.lsetxattrSync(path, name, value, flags);
}

/**
 * utimensat(AT_SYMLINK_NOFOLLOW) on the calling thread, to the nanosecond
 * (Node's lutimes goes through a double); nsec -1 leaves that time as it is.
 */
export function lutimensSync(path: Buffer | string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void {
  binding.fs.lutimensSync(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec);
}

/** `getfattr --no-dereference -n NAME PATH`; ENODATA when the attribute is absent. */
export function lgetxattr(path: string, name: string): Promise<Buffer> {
  return binding.fs.lgetxattr(path, name);
}

/** `setfattr --no-dereference -n NAME -v VALUE PATH`; flags XATTR_CREATE or XATTR_REPLACE. */
export function lsetxattr(path: string, name: string, value: Buffer | string, flags = 0): Promise<void> {
  return binding.fs.lsetxattr(path, name, value, flags);
}

/** `getfattr --no-dereference --match=- PATH`: every attribute name. */
export function llistxattr(path: string): Promise<string[]> {
  return binding.fs.llistxattr(path);
}

/** `setfattr --no-dereference -x NAME PATH`. */
export function lremovexattr(path: string, name: string): Promise<void> {
  return binding.fs.lremovexattr(path, name);
}
