// Diff as it was before the native scan and tar writer (tar-stream, one
// xattr call per file through the thread pool), kept only as
// bench/layer-diff's baseline.
// Diff: a tar of a layer's changes against its parent, with AUFS
// whiteouts for deletions, streamed file by file.
import { createReadStream, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { fs as kfs } from '../../src/devmapper';
import { WHITEOUT_PREFIX } from '../../src/graphdriver/layer-applier';
import { ChangeKind, type Change } from '../../src/graphdriver/changes';
import { paxHeaderEntry, paxRecord } from '../../src/graphdriver/pax-header';

const SMALL_BODY = 1024 * 1024;

type EntryHeader = Partial<tar.Header> & { name: string };

const S_IFREG = 0o100000;

/** The tar stream of `list` (from changes()), read from the mounted layer. */
export function exportChanges(layer: string, list: readonly Change[]): Readable {
  const pack = tar.pack();
  // Whiteouts are dated like the in-tree driver's: when the diff is made.
  const now = new Date();
  void (async () => {
    const links = new Map<bigint, string>();
    try {
      for (const change of list) await addEntry(pack, layer, change, links, now);
      pack.finalize();
    } catch (err) {
      pack.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  })();
  return pack as unknown as Readable;
}

function entry(pack: tar.Pack, header: EntryHeader, body?: Readable | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null): void => (err ? reject(err) : resolve());
    // An entry without content still needs its (empty) body, or the pack waits forever.
    if (body === undefined || Buffer.isBuffer(body)) {
      pack.entry(header, body ?? '', done);
      return;
    }
    const sink = pack.entry(header, done);
    body.on('error', reject);
    body.pipe(sink as unknown as NodeJS.WritableStream);
  });
}

async function addEntry(pack: tar.Pack, layer: string, change: Change, links: Map<bigint, string>, now: Date): Promise<void> {
  const name = change.Path.replace(/^\//, '');
  if (change.Kind === ChangeKind.Delete) {
    // Permissions 0, root, empty: the in-tree driver's whiteout header. The
    // mode is S_IFREG alone because tar-stream reads a mode of 0 as unset.
    const whiteout = path.posix.join(path.posix.dirname(name), `${WHITEOUT_PREFIX}${path.posix.basename(name)}`);
    await entry(pack, { name: whiteout, type: 'file', size: 0, mode: S_IFREG, uid: 0, gid: 0, mtime: now });
    return;
  }
  const file = path.join(layer, change.Path);
  // Synchronous stat, readlink and small reads: a thread-pool round trip per call costs more than the call.
  const st = lstatSync(file, { bigint: true, throwIfNoEntry: false });
  // Gone since Changes saw it (a running container's file): left out, as the in-tree driver does.
  if (st === undefined) return;
  const header: EntryHeader = {
    name,
    // With the type bits, as the in-tree driver writes it; tar-stream keeps
    // the low 12 bits, and would read permissions 0 alone as unset.
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtime: new Date(Number(st.mtimeMs)),
  };
  const xattrs = await readXattrs(file);
  if (xattrs.length > 0) {
    // Pushed as raw bytes between entries: tar-stream would write binary values as UTF-8.
    const records = Buffer.concat(xattrs.map(([n, v]) => paxRecord(`SCHILY.xattr.${n}`, v)));
    (pack as unknown as { push(chunk: Buffer): boolean }).push(paxHeaderEntry(records));
  }
  if (st.isDirectory()) return entry(pack, { ...header, type: 'directory' });
  if (st.nlink > 1n) {
    // Any inode with more names, fifos and symlinks too: the first name
    // carries it, the others link to that name, so the links survive.
    const first = links.get(st.ino);
    if (first !== undefined) return entry(pack, { ...header, type: 'link', linkname: first });
    links.set(st.ino, name);
  }
  if (st.isSymbolicLink()) return entry(pack, { ...header, type: 'symlink', linkname: readlinkSync(file) });
  if (st.isFIFO()) return entry(pack, { ...header, type: 'fifo' });
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    const rdev = Number(st.rdev);
    const devmajor = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfff);
    const devminor = (rdev & 0xff) | ((rdev >> 12) & ~0xff);
    return entry(pack, { ...header, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor, devminor });
  }
  if (st.size <= SMALL_BODY) {
    const data = readFileSync(file);
    // A running container may change a file between stat and read: the header takes what was read.
    return entry(pack, { ...header, type: 'file', size: data.length }, data);
  }
  return entry(pack, { ...header, type: 'file', size: Number(st.size) }, createReadStream(file));
}

async function readXattrs(file: string): Promise<Array<[string, Buffer]>> {
  const out: Array<[string, Buffer]> = [];
  const names = await kfs.llistxattr(file).catch(() => [] as string[]);
  for (const n of names.sort()) {
    // Only the namespaces an image carries; trusted.* and system.* stay with the host.
    if (!n.startsWith('user.') && n !== 'security.capability') continue;
    out.push([n, await kfs.lgetxattr(file, n)]);
  }
  return out;
}
