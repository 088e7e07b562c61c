// A Diff whose answer starts before its layers are mounted. A client that
// pipes Diff into ApplyDiff (moby's proxy under `docker commit`, graphtest's
// DiffApply) sends ApplyDiff once Diff's headers arrive: with the headers
// out first, the target layer is mounted while the source is mounted and
// read, instead of after. The ids are checked before (an unknown layer is
// still an Err answer); a mount that fails after the headers can only cut
// the stream, and is logged by the route.
import { Readable } from 'node:stream';
import { rawChanges } from './changes';
import { tarChunks } from './diff';

export interface MountedPair {
  layer: string;
  /** '' when there is no parent */
  lower: string;
  release: () => Promise<void>;
}

export interface LazyDiff {
  stream: Readable;
  /** Unmounts what the stream mounted, once it is consumed or abandoned. */
  release: () => Promise<void>;
}

/** The tar of the pair that `mount` mounts when the stream is first read. */
export function diffAfterMount(mount: () => Promise<MountedPair>): LazyDiff {
  let mounting: Promise<MountedPair> | null = null;
  let released = false;
  async function* chunks(): AsyncGenerator<Buffer> {
    if (released) throw new Error('diff released before it was read');
    mounting = mount();
    const { layer, lower } = await mounting;
    yield* tarChunks(layer, await rawChanges(layer, lower));
  }
  const release = async (): Promise<void> => {
    released = true;
    const pair = await mounting?.catch(() => null);
    await pair?.release();
  };
  return { stream: Readable.from(chunks(), { objectMode: false, highWaterMark: 1024 * 1024 }), release };
}
