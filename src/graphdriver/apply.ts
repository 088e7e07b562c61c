// ApplyDiff: unpack a layer tar (AUFS whiteouts, as dockerd sends them)
// onto a directory that already holds the parent's files. Streams: the
// tar is never held in memory.
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { DmthinError } from '../errors';
import { LayerApplier, type ApplyHeader, type TarTime } from './layer-applier';
import { PaxXattrTap } from './pax-xattrs';

export { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './layer-applier';

/** Diff reads files up to this size in one call. */
export const SMALL_BODY = 1024 * 1024;

const TYPEFLAGS: Record<string, number> = {
  file: 0x30,
  link: 0x31,
  symlink: 0x32,
  'character-device': 0x33,
  'block-device': 0x34,
  directory: 0x35,
  fifo: 0x36,
  'contiguous-file': 0x37,
};

function tarTime(d: Date | undefined): TarTime | null {
  if (d === undefined || Number.isNaN(d.getTime())) return null;
  const ms = d.getTime();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

function applyHeader(h: tar.Header, index: number, xattrs: Map<string, Buffer>): ApplyHeader {
  const pax = new Map<string, Buffer>();
  for (const [name, value] of xattrs) pax.set(`SCHILY.xattr.${Buffer.from(name, 'utf8').toString('latin1')}`, value);
  return {
    index,
    name: Buffer.from(h.name, 'utf8').toString('latin1'),
    linkname: Buffer.from(h.linkname ?? '', 'utf8').toString('latin1'),
    typeflag: TYPEFLAGS[h.type ?? 'file'] ?? 0,
    size: h.size ?? 0,
    mode: h.mode ?? 0,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
    mtime: tarTime(h.mtime),
    atime: null,
    pax,
  };
}

/** Applies the tar stream to root; resolves to the sum of the entries' sizes, as dockerd computes a layer's size. */
export async function applyTar(root: string, input: Readable): Promise<number> {
  const extract = tar.extract();
  const applier = new LayerApplier(root);
  // Not pipeline(): on a bad entry the rest of the input is drained, not
  // destroyed, so that an HTTP caller still gets the error as an answer.
  const tap = new PaxXattrTap();
  input.once('error', (err) => extract.destroy(err));
  input.pipe(tap).pipe(extract as unknown as NodeJS.WritableStream);
  let index = 0;
  try {
    for await (const entry of extract) {
      applier.entry(applyHeader(entry.header, index++, tap.next()));
      for await (const chunk of entry as unknown as AsyncIterable<Buffer>) applier.data(chunk);
      applier.entryEnd();
    }
  } catch (err) {
    applier.abort();
    input.unpipe();
    input.resume();
    extract.destroy();
    if (err instanceof DmthinError) throw err;
    throw new DmthinError('EBADTAR', `layer tar after entry #${index - 1}: ${(err as Error).message}`, { cause: err });
  }
  applier.finish();
  return applier.size;
}
