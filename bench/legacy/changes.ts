// Changes as it was before the native scan (a JavaScript walk, lstat and
// capability reads per path), kept only as bench/layer-diff's baseline:
// the rules (dockerd's) and the list's shape are src/graphdriver/changes.ts's,
// only the way the list is found is the old one.
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { fs as kfs } from '../../src/devmapper';
import { ChangeKind, type Change } from '../../src/graphdriver/changes';

// The walk stats with synchronous calls: it makes two per path of the
// whole layer, and a thread-pool round trip each would cost many times
// the call (fifteen times under emulation, measured).

/** lstat, undefined when nothing is there. */
function lstatIfAny(file: string): BigIntStats | undefined {
  return lstatSync(file, { bigint: true, throwIfNoEntry: false });
}

/** Same time as the in-tree driver sees it: whole seconds match and either side has no nanoseconds (a tar's time). */
function sameTime(a: bigint, b: bigint): boolean {
  if (a === b) return true;
  const NS = 1_000_000_000n;
  return a / NS === b / NS && (a % NS === 0n || b % NS === 0n);
}

async function capability(file: string): Promise<Buffer | null> {
  return kfs.lgetxattr(file, 'security.capability').catch(() => null);
}

/** Whether upper (at upperPath) changed against lower (at lowerPath), both of the same type or not. */
async function differs(x: BigIntStats, y: BigIntStats, upperPath: string, lowerPath: string): Promise<boolean> {
  if (x.mode !== y.mode || x.uid !== y.uid || x.gid !== y.gid || x.rdev !== y.rdev) return true;
  if (!x.isDirectory() && (!sameTime(x.mtimeNs, y.mtimeNs) || x.size !== y.size)) return true;
  if (!x.isFile()) return false;
  // An inode the snapshot shares untouched (same number, same change time) has the same xattrs.
  if (x.ino === y.ino && x.ctimeNs === y.ctimeNs) return false;
  const [ca, cb] = [await capability(upperPath), await capability(lowerPath)];
  return ca === null ? cb !== null : cb === null || !ca.equals(cb);
}

/** Every change of `layer` against `parent` ('' for none: everything is added), sorted by path. */
export async function changes(layer: string, parent: string): Promise<Change[]> {
  const out: Change[] = [];
  await compareDir(layer, parent === '' ? null : parent, '/', out);
  return out.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
}

function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

async function compareDir(layer: string, parent: string | null, rel: string, out: Change[]): Promise<void> {
  const here = path.join(layer, rel);
  const names = new Set(readdirSync(here));
  const lowerNames = parent === null ? new Set<string>() : new Set(readdirOrEmpty(path.join(parent, rel)));
  for (const name of lowerNames) {
    if (!names.has(name)) out.push({ Path: path.posix.join(rel, name), Kind: ChangeKind.Delete });
  }
  for (const name of names) {
    const childRel = path.posix.join(rel, name);
    const upper = lstatIfAny(path.join(layer, childRel));
    if (upper === undefined) continue;
    const lower = parent === null || !lowerNames.has(name) ? undefined : lstatIfAny(path.join(parent, childRel));
    if (lower === undefined) {
      out.push({ Path: childRel, Kind: ChangeKind.Add });
      if (upper.isDirectory()) await compareDir(layer, null, childRel, out);
      continue;
    }
    const upperPath = path.join(layer, childRel);
    const lowerPath = path.join(parent ?? '', childRel);
    const bothDirs = upper.isDirectory() && lower.isDirectory();
    if (!bothDirs) {
      if (await differs(upper, lower, upperPath, lowerPath)) out.push({ Path: childRel, Kind: ChangeKind.Modify });
      if (upper.isDirectory()) await compareDir(layer, null, childRel, out);
      continue;
    }
    const before = out.length;
    await compareDir(layer, parent, childRel, out);
    // A directory whose contents changed is listed too, so its own metadata travels with them.
    if ((await differs(upper, lower, upperPath, lowerPath)) || out.length > before) out.push({ Path: childRel, Kind: ChangeKind.Modify });
  }
}

/** `docker ps -s`: bytes of the files added or modified, each inode once. */
export function changesSize(layer: string, list: readonly Change[]): number {
  const seen = new Set<bigint>();
  let size = 0;
  for (const change of list) {
    if (change.Kind === ChangeKind.Delete) continue;
    // A running container's file may be gone by now: the in-tree driver skips it too.
    const st = lstatIfAny(path.join(layer, change.Path));
    if (st === undefined || !st.isFile() || seen.has(st.ino)) continue;
    seen.add(st.ino);
    size += Number(st.size);
  }
  return size;
}
