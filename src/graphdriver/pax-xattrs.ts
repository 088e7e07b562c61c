// tar-stream decodes PAX records as UTF-8, which mangles binary xattr
// values such as security.capability. This tap reads the same bytes on
// their way to tar-stream, decodes the SCHILY.xattr.* records of each
// entry byte for byte, and queues them in entry order for the applier.
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;
const XATTR = 'SCHILY.xattr.';

type Mode = 'header' | 'skip' | 'pax';

export class PaxXattrTap extends Transform {
  private readonly queue: Array<Map<string, Buffer>> = [];
  private pending = new Map<string, Buffer>();
  private pendingSize: number | null = null;
  private buffered: Buffer = Buffer.alloc(0);
  private mode: Mode = 'header';
  private left = 0;
  private pax: Buffer[] = [];

  /** The binary xattrs of the next entry, in the order entries come. */
  next(): Map<string, Buffer> {
    return this.queue.shift() ?? new Map();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.push(chunk);
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    try {
      this.scan();
    } catch {
      // A malformed tar is tar-stream's to report; the tap just stops looking.
      this.buffered = Buffer.alloc(0);
      this.mode = 'skip';
      this.left = Number.POSITIVE_INFINITY;
    }
    done();
  }

  private scan(): void {
    for (;;) {
      if (this.mode === 'skip' || this.mode === 'pax') {
        if (this.left === 0) {
          if (this.mode === 'pax') this.parsePax(Buffer.concat(this.pax));
          this.mode = 'header';
          continue;
        }
        const take = Math.min(this.left, this.buffered.length);
        if (take === 0) return;
        if (this.mode === 'pax') this.pax.push(this.buffered.subarray(0, take));
        this.buffered = this.buffered.subarray(take);
        this.left -= take;
        continue;
      }
      if (this.buffered.length < BLOCK) return;
      const header = this.buffered.subarray(0, BLOCK);
      this.buffered = this.buffered.subarray(BLOCK);
      if (header.every((b) => b === 0)) continue;
      const type = String.fromCharCode(header[156] ?? 0);
      let size = parseSize(header.subarray(124, 136));
      const padded = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;
      if (type === 'x') {
        this.mode = 'pax';
        this.pax = [];
        // The records themselves are `size` bytes; the padding is skipped with them and ignored by the parser.
        this.left = padded(size);
        continue;
      }
      if (type !== 'g' && type !== 'L' && type !== 'K') {
        // A real entry: it owns the xattrs collected since the last one.
        this.queue.push(this.pending);
        if (this.pendingSize !== null) size = this.pendingSize;
        this.pending = new Map();
        this.pendingSize = null;
        const hasBody = type === '0' || type === '\0' || type === '7';
        this.mode = 'skip';
        this.left = hasBody ? padded(size) : 0;
        continue;
      }
      this.mode = 'skip';
      this.left = padded(size);
    }
  }

  private parsePax(buf: Buffer): void {
    let at = 0;
    while (at < buf.length) {
      const space = buf.indexOf(0x20, at);
      if (space === -1) return;
      const length = Number(buf.subarray(at, space).toString('latin1'));
      if (!Number.isInteger(length) || length <= 0 || at + length > buf.length) return;
      const record = buf.subarray(space + 1, at + length - 1); // drop the trailing newline
      const eq = record.indexOf(0x3d);
      if (eq !== -1) {
        const key = record.subarray(0, eq).toString('utf8');
        const value = record.subarray(eq + 1);
        if (key.startsWith(XATTR)) this.pending.set(key.slice(XATTR.length), Buffer.from(value));
        if (key === 'size') this.pendingSize = Number(value.toString('latin1'));
      }
      at += length;
    }
  }
}

/** A tar size field: octal text, or base-256 when the top bit is set. */
function parseSize(field: Buffer): number {
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] ?? 0);
    return n;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}
