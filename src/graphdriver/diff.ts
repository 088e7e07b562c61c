// Diff: a tar of a layer's changes against its parent, with AUFS
// whiteouts for deletions. Entries are read in batches by the native scan
// (lstat, xattrs, link target and small bodies in one worker-thread call
// per batch) and written by tar-writer.ts; large bodies are read 1 MiB at
// a time. The stream is pulled: nothing is read before the client wants
// it, and the event loop is never held for more than one batch.
import { constants, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { WHITEOUT_PREFIX } from './layer-applier';
import { ChangeKind, type Change, type RawChange } from './changes';
import {
  field, fileType, inodeKey, readEntries, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, StatField, toBinary, type ScanEntries,
} from './layer-scan';
import { TarChunks, type TarHeader, type TarType } from './tar-writer';

/** Entries per native call: enough to amortize the thread-pool hop, few enough to keep each JS step short. */
const BATCH = 256;
/** Batches read ahead: the syscalls, not the writing, take the time, and they overlap on the thread pool. */
const READ_AHEAD = 3;
/** Bodies up to this size come with their entry's batch; larger ones are read in pieces. */
const SMALL_BODY = 256 * 1024;
/** At most this many bytes of small bodies per batch. */
const BATCH_BODY_BUDGET = 4 * 1024 * 1024;
const READ_SIZE = 1024 * 1024;
/** Chunks handed to the stream once this many bytes are ready. */
const FLUSH_AT = 1024 * 1024;

const TYPES = new Map<number, TarType>([
  [S_IFREG, '0'],
  [S_IFLNK, '2'],
  [S_IFCHR, '3'],
  [S_IFBLK, '4'],
  [S_IFDIR, '5'],
  [S_IFIFO, '6'],
]);

/** The tar stream of `list` (from changes()), read from the mounted layer. */
export function exportChanges(layer: string, list: readonly Change[]): Readable {
  return exportRawChanges(
    layer,
    list.map((c) => ({ path: toBinary(c.Path.replace(/^\/+/, '')), kind: c.Kind })),
  );
}

/** The tar stream of `list` (from rawChanges(), paths as bytes). */
export function exportRawChanges(layer: string, list: readonly RawChange[]): Readable {
  return Readable.from(tarChunks(layer, list), { objectMode: false, highWaterMark: FLUSH_AT });
}

function fetchBatch(layer: string, list: readonly RawChange[], from: number): Promise<ScanEntries> {
  const paths: string[] = [];
  for (const change of list.slice(from, from + BATCH)) if (change.kind !== ChangeKind.Delete) paths.push(change.path);
  const batch = readEntries(layer, paths, { bodyLimit: SMALL_BODY, bodyBudget: BATCH_BODY_BUDGET });
  // Read ahead: if the client goes away first, nobody awaits it, and its failure must not crash the process.
  batch.catch(() => undefined);
  return batch;
}

/** The tar chunks of `list` read from the mounted layer (exportRawChanges' stream, or another's). */
export async function* tarChunks(layer: string, list: readonly RawChange[]): AsyncGenerator<Buffer> {
  const tar = new TarChunks();
  // Whiteouts are dated like the in-tree driver's: when the diff is made (Go rounds to the second).
  const now = Math.round(Date.now() / 1000);
  const links = new Map<number, string>();
  // The next batches are read, on worker threads of their own, while this one is written.
  const ahead: Array<Promise<ScanEntries>> = [];
  let fetched = 0;
  const fill = (): void => {
    while (ahead.length < READ_AHEAD && fetched < list.length) {
      ahead.push(fetchBatch(layer, list, fetched));
      fetched += BATCH;
    }
  };
  fill();
  for (let from = 0; from < list.length; from += BATCH) {
    const batch = await (ahead.shift() as Promise<ScanEntries>);
    fill();
    let k = 0;
    for (const change of list.slice(from, from + BATCH)) {
      if (change.kind === ChangeKind.Delete) {
        tar.header(whiteout(change.path, now));
        continue;
      }
      const index = k++;
      const large = addEntry(tar, change.path, batch, index, links);
      if (large !== null) {
        yield* tar.take();
        yield* readBody(Buffer.concat([Buffer.from(path.join(layer, '/')), Buffer.from(change.path, 'latin1')]), large);
        tar.pad(large);
      }
      if (tar.pending >= FLUSH_AT) yield* tar.take();
    }
    // Each batch goes out whole: a client that applies the tar as it comes
    // (dockerd piping Diff into ApplyDiff) works while the next batches are read.
    yield* tar.take();
  }
  tar.end();
  yield* tar.take();
}

/** Permissions 0, root, empty: the in-tree driver's whiteout header. */
function whiteout(rel: string, mtime: number): TarHeader {
  const slash = rel.lastIndexOf('/');
  const name = `${rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`;
  return { name, type: '0', mode: 0, uid: 0, gid: 0, size: 0, mtime };
}

/** Writes the entry of batch item i; returns the size of a body the caller must stream, else null. */
function addEntry(tar: TarChunks, rel: string, batch: ScanEntries, i: number, links: Map<number, string>): number | null {
  const s = batch.stats;
  const mode = field(s, i, StatField.Mode);
  // Gone since Changes saw it (a running container's file): left out, as the in-tree driver does.
  if (mode === 0) return null;
  const type = TYPES.get(fileType(s, i));
  // Sockets: the in-tree driver skips them too.
  if (type === undefined) return null;
  const header: TarHeader = {
    name: type === '5' ? `${rel}/` : rel,
    type,
    mode,
    uid: field(s, i, StatField.Uid),
    gid: field(s, i, StatField.Gid),
    size: 0,
    mtime: field(s, i, StatField.MtimeSec),
    xattrs: batch.xattrs[i] ?? null,
  };
  if (type !== '5' && field(s, i, StatField.Nlink) > 1) {
    // Any inode with more names, fifos and symlinks too: the first name
    // carries it, the others link to that name, so the links survive.
    const first = links.get(inodeKey(s, i));
    if (first !== undefined) {
      tar.header({ ...header, type: '1', linkname: first });
      return null;
    }
    links.set(inodeKey(s, i), rel);
  }
  if (type === '2') header.linkname = batch.links[i] ?? '';
  if (type === '3' || type === '4') {
    header.devmajor = field(s, i, StatField.RdevMajor);
    header.devminor = field(s, i, StatField.RdevMinor);
  }
  if (type !== '0') {
    tar.header(header);
    return null;
  }
  const body = batch.bodies[i];
  if (body !== null && body !== undefined) {
    // A running container may change a file between stat and read: the header takes what was read.
    tar.header({ ...header, size: body.length });
    tar.body(body);
    tar.pad(body.length);
    return null;
  }
  const size = field(s, i, StatField.Size);
  tar.header({ ...header, size });
  return size;
}

/** Exactly `size` bytes of a large file, 1 MiB a read; a file that shrank meanwhile is padded with zeros. */
async function* readBody(file: Buffer, size: number): AsyncGenerator<Buffer> {
  const handle = await fsp.open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  });
  let done = 0;
  try {
    while (handle !== null && done < size) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_SIZE, size - done));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, done);
      if (bytesRead === 0) break;
      done += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle?.close();
  }
  // The header is out already: the tar stays well-formed, with zeros where the file was cut short.
  while (done < size) {
    const zeros = Buffer.alloc(Math.min(READ_SIZE, size - done));
    done += zeros.length;
    yield zeros;
  }
}
