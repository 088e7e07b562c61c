// A `docker save` tar made by hand for `docker load`: one layer of many
// files whose sizes and bytes come from a fixed seed, so every run loads
// the same image. Written to disk as it is made; nothing is held whole.
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export interface LoadImageSpec {
  files: number;
  totalBytes: number;
  /** repository:tag the loaded image gets */
  tag: string;
}

const MTIME = new Date(1_600_000_000_000);
const FILES_PER_DIR = 100;

/** Sizes between 10% and 190% of the mean, summing to exactly totalBytes. */
function fileSizes(files: number, totalBytes: number): number[] {
  let x = 0x9e3779b9;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  const weights = Array.from({ length: files }, () => 0.1 + 1.8 * next());
  const scale = totalBytes / weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.floor(w * scale));
  // Rounding down left a few bytes over, fewer than one per file.
  sizes[files - 1] = (sizes[files - 1] ?? 0) + totalBytes - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

function addEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, body ?? '', (err) => (err ? reject(err) : resolve())));
}

/** The layer tar; resolves to its sha256 (the layer's DiffID). */
async function writeLayer(file: string, spec: LoadImageSpec): Promise<string> {
  // AES-CTR over zeros: fast, incompressible, the same bytes for the same key.
  const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  const pack = tar.pack();
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const writing = pipeline(pack as unknown as NodeJS.ReadableStream, hashing, createWriteStream(file));
  await addEntry(pack, { name: 'data/', type: 'directory', mode: 0o755, mtime: MTIME });
  for (const [i, size] of fileSizes(spec.files, spec.totalBytes).entries()) {
    const dir = `data/d${String(Math.floor(i / FILES_PER_DIR)).padStart(3, '0')}`;
    if (i % FILES_PER_DIR === 0) await addEntry(pack, { name: `${dir}/`, type: 'directory', mode: 0o755, mtime: MTIME });
    await addEntry(pack, { name: `${dir}/f${String(i).padStart(5, '0')}`, mode: 0o644, mtime: MTIME, size }, keystream.update(Buffer.alloc(size)));
  }
  pack.finalize();
  await writing;
  return hash.digest('hex');
}

/** Writes the image as `docker save` would into `out`, working in `dir`. */
export async function writeLoadImage(dir: string, out: string, spec: LoadImageSpec): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const layerFile = path.join(dir, 'layer.tar');
  const diffId = await writeLayer(layerFile, spec);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: MTIME.toISOString(),
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created: MTIME.toISOString(), created_by: `dmthin bench: ${spec.files} files, ${spec.totalBytes} bytes` }],
  }));
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [spec.tag], Layers: [`${diffId}/layer.tar`] }]));

  const pack = tar.pack();
  const writing = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(out));
  await addEntry(pack, { name: `${diffId}/`, type: 'directory', mode: 0o755, mtime: MTIME });
  await addEntry(pack, { name: `${diffId}/VERSION`, mode: 0o644, mtime: MTIME }, Buffer.from('1.0'));
  const { size } = await fsp.stat(layerFile);
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry({ name: `${diffId}/layer.tar`, mode: 0o644, mtime: MTIME, size }, (err) => (err ? reject(err) : resolve()));
    pipeline(createReadStream(layerFile), sink as unknown as NodeJS.WritableStream).catch(reject);
  });
  await addEntry(pack, { name: configName, mode: 0o644, mtime: MTIME }, config);
  await addEntry(pack, { name: 'manifest.json', mode: 0o644, mtime: MTIME }, manifest);
  pack.finalize();
  await writing;
  await fsp.rm(layerFile);
}
