// mount(2), umount2(2), statfs(2), mknod(2) and the l*xattr(2) calls.
import { binding, type FsConstants, type Statfs } from '../native/binding';

export type { FsConstants, Statfs };

export const constants: FsConstants = binding.fs.constants;

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
