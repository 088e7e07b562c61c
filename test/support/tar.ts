// Layer tars made in memory for tests: the small layers here need no more.
import type { Response } from 'superagent';
import tar from 'tar-stream';

export type TarEntry = Partial<tar.Header> & { name: string; body?: string };

/** A tar of the given entries, each dated 2020-09-13 unless it says otherwise. */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { body, ...header } of entries) pack.entry({ mtime: new Date(1_600_000_000_000), ...header }, body ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** supertest parser that keeps a response body (a tar) as one Buffer. */
export function bufferBody(res: Response, done: (err: Error | null, body: Buffer) => void): void {
  // At run time supertest hands the parser Node's response stream.
  const stream = res as unknown as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => done(null, Buffer.concat(chunks)));
}
