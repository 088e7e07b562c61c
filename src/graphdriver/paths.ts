// Paths inside a layer root that can never lead outside it: tar entry
// names are cleaned, and symlinks met on the way are followed as if the
// root were "/" (FollowSymlinkInScope), so neither "..", an absolute
// name nor a symlinked parent directory escapes.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DmthinError } from '../errors';

const MAX_LINKS = 255;

/** Splits a tar entry name into its components; refuses "..", NUL and empty names. */
export function entryParts(name: string): string[] {
  if (name.includes('\0')) throw new DmthinError('EBADTAR', `tar entry name contains NUL: ${JSON.stringify(name)}`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new DmthinError('EBADTAR', `tar entry ${JSON.stringify(name)} tries to leave the layer with ".."`);
  return parts;
}

/**
 * The real path, inside root, of the directory made of `parts`, following
 * symlinks within the root. Missing components are returned as they are
 * (the caller creates them).
 */
export async function resolveInRoot(root: string, parts: readonly string[]): Promise<string> {
  const resolved: string[] = [];
  const pending = [...parts];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      resolved.pop(); // at the root, ".." stays at the root
      continue;
    }
    if (part === '.' || part === '') continue;
    const candidate = path.join(root, ...resolved, part);
    let target: string | null = null;
    try {
      const st = await fsp.lstat(candidate);
      if (st.isSymbolicLink()) target = await fsp.readlink(candidate);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (target === null) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new DmthinError('ELOOP', `too many symlinks under ${path.join(root, ...parts)}`);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/'));
  }
  return path.join(root, ...resolved);
}
