// Paths inside a layer root that can never lead outside it. Tar names are
// binary strings (one UTF-16 unit per byte, latin1): every path here is
// one too, and reaches the filesystem as Buffer.from(path, 'latin1'), so
// that names which are not UTF-8 are applied byte for byte.
//
// dockerd's in-tree driver applies a layer chrooted into it, at "/": a
// name is cleaned as filepath.Join("/", name), so ".." stops at the root
// ("../x" and "a/../../x" land at "/x" inside the layer), and symlinks on
// the way resolve as the kernel does in the chroot, inside the layer.
// dmthin does the same without a chroot: names are cleaned the same way
// and symlinks met on the way are followed as if the root were "/". This
// is dockerd's behaviour exactly, and it cannot reach outside the layer,
// so there is no reason to refuse such names.
import { lstatSync, readlinkSync } from 'node:fs';
import { DmthinError } from '../shared/errors';

const MAX_LINKS = 255;

/** A binary-string path as the filesystem takes it. */
export function fsPath(binary: string): Buffer {
  return Buffer.from(binary, 'latin1');
}

/** A path of ours as a binary string. */
export function binaryPath(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/**
 * The components of a tar name under the layer root, as filepath.Join("/",
 * name) leaves them: "", "." and "//" vanish, ".." removes the component
 * before it and stops at the root. [] is the root itself.
 */
export function entryParts(name: string): string[] {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts;
}

/** Where resolveInRoot ended: the real path, and how many of its last components do not exist yet. */
export interface Resolved {
  /** binary string, inside root */
  path: string;
  /** the components of path below root */
  parts: string[];
  /** parts[missingFrom...] do not exist (the caller may create them) */
  missingFrom: number;
}

/**
 * The real path, inside root, of the directory made of `parts`, following
 * symlinks within the root as if it were "/". root and parts are binary
 * strings. Components from the first missing one on are returned as they
 * are.
 */
export function resolveInRoot(root: string, parts: readonly string[]): Resolved {
  const resolved: string[] = [];
  const pending = [...parts];
  let links = 0;
  let missingFrom = -1;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      resolved.pop(); // at the root, ".." stays at the root
      // Back above the first missing component: what follows exists again, maybe as a symlink.
      if (resolved.length <= missingFrom) missingFrom = -1;
      continue;
    }
    if (part === '.' || part === '') continue;
    resolved.push(part);
    if (missingFrom !== -1) continue;
    const candidate = fsPath(`${root}/${resolved.join('/')}`);
    const st = lstatSync(candidate, { throwIfNoEntry: false });
    if (st === undefined) {
      missingFrom = resolved.length - 1;
      continue;
    }
    if (!st.isSymbolicLink()) continue;
    if (++links > MAX_LINKS) {
      throw new DmthinError('ELOOP', `too many symlinks under ${Buffer.from(`${root}/${parts.join('/')}`, 'latin1').toString()}`);
    }
    resolved.pop();
    const target = readlinkSync(candidate, { encoding: 'buffer' }).toString('latin1');
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/'));
  }
  return {
    path: resolved.length === 0 ? root : `${root}/${resolved.join('/')}`,
    parts: resolved,
    missingFrom: missingFrom === -1 ? resolved.length : missingFrom,
  };
}
