// What a layer changed against its parent, both mounted as directories:
// the list `docker diff` shows, the tar `docker commit` stores, and the
// size `docker ps -s` prints. The rules follow dockerd's own
// (pkg/archive/changes.go): a file changed if its type, mode, owner,
// device, size, mtime or file capability differ; a directory only if its
// mode, owner or capability differ, or if something inside it changed.
import { promises as fsp, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { fs as kfs } from '../devmapper';
import { isErrno } from '../errors';

export const enum ChangeKind {
  Modify = 0,
  Add = 1,
  Delete = 2,
}

export interface Change {
  /** absolute inside the layer, e.g. "/etc/passwd" */
  Path: string;
  Kind: ChangeKind;
}

interface Node {
  st: BigIntStats;
  capability: Buffer | null;
}

async function node(file: string): Promise<Node | null> {
  let st: BigIntStats;
  try {
    st = await fsp.lstat(file, { bigint: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  let capability: Buffer | null = null;
  if (st.isFile()) {
    capability = await kfs.lgetxattr(file, 'security.capability').catch(() => null);
  }
  return { st, capability };
}

function differs(a: Node, b: Node): boolean {
  const x = a.st;
  const y = b.st;
  if (x.mode !== y.mode || x.uid !== y.uid || x.gid !== y.gid || x.rdev !== y.rdev) return true;
  if (!x.isDirectory() && (x.mtimeNs !== y.mtimeNs || x.size !== y.size)) return true;
  const ca = a.capability;
  const cb = b.capability;
  return ca === null ? cb !== null : cb === null || !ca.equals(cb);
}

/** Every change of `layer` against `parent` ('' for none: everything is added), sorted by path. */
export async function changes(layer: string, parent: string): Promise<Change[]> {
  const out: Change[] = [];
  await compareDir(layer, parent === '' ? null : parent, '/', out);
  return out.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
}

async function compareDir(layer: string, parent: string | null, rel: string, out: Change[]): Promise<void> {
  const here = path.join(layer, rel);
  const names = new Set(await fsp.readdir(here));
  const lowerNames = parent === null ? new Set<string>() : new Set(await fsp.readdir(path.join(parent, rel)).catch(() => [] as string[]));
  for (const name of lowerNames) {
    if (!names.has(name)) out.push({ Path: path.posix.join(rel, name), Kind: ChangeKind.Delete });
  }
  for (const name of names) {
    const childRel = path.posix.join(rel, name);
    const upper = await node(path.join(layer, childRel));
    if (upper === null) continue;
    const lower = parent === null || !lowerNames.has(name) ? null : await node(path.join(parent, childRel));
    if (lower === null) {
      out.push({ Path: childRel, Kind: ChangeKind.Add });
      if (upper.st.isDirectory()) await compareDir(layer, null, childRel, out);
      continue;
    }
    const bothDirs = upper.st.isDirectory() && lower.st.isDirectory();
    if (!bothDirs) {
      if (differs(upper, lower)) out.push({ Path: childRel, Kind: ChangeKind.Modify });
      if (upper.st.isDirectory()) await compareDir(layer, null, childRel, out);
      continue;
    }
    const before = out.length;
    await compareDir(layer, parent, childRel, out);
    // A directory whose contents changed is listed too, so its own metadata travels with them.
    if (differs(upper, lower) || out.length > before) out.push({ Path: childRel, Kind: ChangeKind.Modify });
  }
}

/** `docker ps -s`: bytes of the files added or modified, each inode once. */
export async function changesSize(layer: string, list: readonly Change[]): Promise<number> {
  const seen = new Set<bigint>();
  let size = 0;
  for (const change of list) {
    if (change.Kind === ChangeKind.Delete) continue;
    const st = await fsp.lstat(path.join(layer, change.Path), { bigint: true });
    if (!st.isFile() || seen.has(st.ino)) continue;
    seen.add(st.ino);
    size += Number(st.size);
  }
  return size;
}
