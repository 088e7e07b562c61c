// ApplyDiff: unpack a layer tar (AUFS whiteouts, as dockerd sends them)
// onto a directory that already holds the parent's files. One parse, by
// TarReader, as the bytes arrive: each input chunk is parsed and applied
// synchronously, then the event loop has its turn. Never holds the tar.
import type { Readable } from 'node:stream';
import { DmthinError } from '../shared/errors';
import { LayerApplier } from './layer-applier';
import { TarReader } from './tar/reader';

export { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './layer-applier';

/** Diff reads files up to this size in one call. */
export const SMALL_BODY = 1024 * 1024;

/**
 * Body bytes applied before the event loop gets a turn: a sparse file's
 * holes come out of the reader from a few input bytes.
 */
const BODY_BYTES_PER_TURN = 64 * 1024 * 1024;

/** Applies what the reader has parsed so far; true once the archive has ended. */
async function applyParsed(reader: TarReader, applier: LayerApplier): Promise<boolean> {
  let spent = 0;
  for (let event = reader.next(); event !== null; event = reader.next()) {
    switch (event.kind) {
      case 'entry':
        applier.entry(event.header);
        break;
      case 'data':
        applier.data(event.chunk);
        spent += event.chunk.length;
        if (spent >= BODY_BYTES_PER_TURN) {
          spent = 0;
          await new Promise((resolve) => setImmediate(resolve));
        }
        break;
      case 'entry-end':
        applier.entryEnd();
        break;
      case 'end':
        return true;
    }
  }
  return false;
}

/** Applies the tar stream to root; resolves to the sum of the entries' sizes, as dockerd computes a layer's size. */
export async function applyTar(root: string, input: Readable): Promise<number> {
  const reader = new TarReader();
  const applier = new LayerApplier(root);
  let failure: unknown = null;
  let ended = false;
  let bytes = 0;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      // After an error, and after the end of the archive (dockerd ignores what
      // follows), the rest is drained, not destroyed: an HTTP caller still
      // gets the error as an answer.
      if (failure !== null || ended) continue;
      try {
        reader.push(chunk);
        ended = await applyParsed(reader, applier);
      } catch (err) {
        failure = err;
      }
    }
  } catch (err) {
    failure ??= new DmthinError('EBADTAR', `the layer tar stream broke off after ${bytes} bytes: ${(err as Error).message}`, { cause: err });
  }
  if (failure === null && !ended) {
    try {
      reader.finish();
      ended = await applyParsed(reader, applier);
    } catch (err) {
      failure = err;
    }
  }
  if (failure !== null) {
    applier.abort();
    throw failure;
  }
  applier.finish();
  return applier.size;
}
