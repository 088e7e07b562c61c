// An OCI image layout tarball made here (no registry is reachable), for
// `ctr images import`: one layer with a static busybox and its sh, and as
// many layers of files on top as a benchmark asks for.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import tar from 'tar-stream';

const BUSYBOX = '/bin/busybox';

function digestOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The busybox layer: /bin/busybox, /bin/sh, and the directories a container needs. */
async function busyboxLayer(): Promise<Buffer> {
  const pack = tar.pack();
  const mtime = new Date(1_600_000_000_000);
  for (const dir of ['bin/', 'etc/', 'tmp/', 'proc/', 'sys/', 'dev/']) pack.entry({ name: dir, type: 'directory', mode: dir === 'tmp/' ? 0o1777 : 0o755, mtime });
  pack.entry({ name: 'bin/busybox', mode: 0o755, mtime }, await fsp.readFile(BUSYBOX));
  pack.entry({ name: 'bin/sh', type: 'symlink', linkname: 'busybox', mode: 0o777, mtime });
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Layer `n` of a layered image: /layers/<n>/ with `files` files of `fileBytes` each (distinct contents). */
async function filesLayer(n: number, files: number, fileBytes: number): Promise<Buffer> {
  const pack = tar.pack();
  const mtime = new Date(1_600_000_000_000);
  if (n === 1) pack.entry({ name: 'layers/', type: 'directory', mode: 0o755, mtime });
  pack.entry({ name: `layers/${n}/`, type: 'directory', mode: 0o755, mtime });
  for (let i = 0; i < files; i++) {
    const body = Buffer.alloc(fileBytes, `${n}-${i}-`);
    pack.entry({ name: `layers/${n}/file-${i}`, mode: 0o644, mtime }, body);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Writes an OCI layout tar of image `name` (e.g. docker.io/library/bb:latest) to file. */
export async function writeBusyboxImage(file: string, name: string): Promise<void> {
  await writeImage(file, name, [await busyboxLayer()]);
}

/** The busybox image with `layers - 1` layers of files on top (see filesLayer). */
export async function writeLayeredImage(file: string, name: string, layers: number, filesPerLayer: number, fileBytes: number): Promise<void> {
  const all = [await busyboxLayer()];
  for (let n = 1; n < layers; n++) all.push(await filesLayer(n, filesPerLayer, fileBytes));
  await writeImage(file, name, all);
}

async function writeImage(file: string, name: string, layers: Buffer[]): Promise<void> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map(digestOf) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length })),
    }),
  );
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: digestOf(manifest),
        size: manifest.length,
        platform: { architecture: 'amd64', os: 'linux' },
        annotations: { 'io.containerd.image.name': name },
      },
    ],
  };
  const blobName = (data: Buffer): string => `blobs/sha256/${digestOf(data).slice('sha256:'.length)}`;
  const out = await makeTar([
    { name: 'oci-layout', body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', body: Buffer.from(JSON.stringify(index)) },
    ...[...layers, config, manifest].map((body) => ({ name: blobName(body), body })),
  ]);
  await fsp.writeFile(file, out);
}

async function makeTar(entries: { name: string; body: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { name, body } of entries) pack.entry({ name, mode: 0o644, mtime: new Date(1_600_000_000_000) }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
