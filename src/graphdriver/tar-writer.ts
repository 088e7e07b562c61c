// A small tar writer for Diff, following Go's archive/tar Writer as
// dockerd uses it (go-archive-tar.md §9): USTAR when the entry fits,
// otherwise a PAX 'x' entry first (long or non-ASCII names and link
// targets, big ids, sizes and times, and any xattr, whose values go out
// byte for byte). Headers and small bodies are written into large chunks,
// so a layer of many small files costs a few buffers, not one per entry.
import { paxRecord } from './pax-header';

const BLOCK = 512;
const CHUNK = 1024 * 1024;
/** Largest value of an octal field of `width` bytes (digits plus NUL). */
const maxOctal = (width: number): number => 8 ** (width - 1) - 1;

export type TarType = '0' | '1' | '2' | '3' | '4' | '5' | '6';

export interface TarHeader {
  /** a binary string (one char per byte), no leading "/"; directories end in "/" */
  name: string;
  type: TarType;
  /** with the S_IF* type bits, as dockerd 20.10 writes it */
  mode: number;
  uid: number;
  gid: number;
  /** of the body that follows; 0 for entries without one */
  size: number;
  /** whole seconds */
  mtime: number;
  /** a binary string: a hard link's first name or a symlink's target */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** [name (binary string), value], written as SCHILY.xattr.<name> PAX records */
  xattrs?: ReadonlyArray<readonly [string, Buffer]> | null;
}

const isAscii = (s: string): boolean => /^[\x00-\x7f]*$/.test(s);
/** Go's toASCII: the name with every byte above 0x7f left out. */
const toAscii = (s: string): string => (isAscii(s) ? s : s.replace(/[\x80-\xff]/g, ''));

/** Go's splitUSTARPath: a name over 100 bytes as prefix (≤155) and name (≤100), cut at a "/". */
function splitUstarPath(name: string): [string, string] | null {
  if (name.length <= 100 || !isAscii(name)) return null;
  let length = name.length;
  if (length > 156) length = 156;
  else if (name[length - 1] === '/') length--;
  const i = name.lastIndexOf('/', length - 1);
  const suffix = name.length - i - 1;
  if (i <= 0 || suffix > 100 || suffix === 0 || i > 155) return null;
  return [name.slice(0, i), name.slice(i + 1)];
}

/** Collects the tar's bytes into chunks; take() hands over what is ready. */
export class TarChunks {
  private chunk = Buffer.allocUnsafe(CHUNK);
  private at = 0;
  private ready: Buffer[] = [];
  private readyBytes = 0;

  /** Bytes written and not yet taken. */
  get pending(): number {
    return this.readyBytes + this.at;
  }

  /** An entry's header (and its PAX entry, if it needs one). */
  header(h: TarHeader): void {
    const pax = new Map<string, Buffer>();
    const ustarName = h.name.length <= 100 && isAscii(h.name) ? null : splitUstarPath(h.name);
    if (!(h.name.length <= 100 && isAscii(h.name))) pax.set('path', Buffer.from(h.name, 'latin1'));
    const link = h.linkname ?? '';
    if (link.length > 100 || !isAscii(link)) pax.set('linkpath', Buffer.from(link, 'latin1'));
    const big = (key: string, value: number, width: number): void => {
      if (value > maxOctal(width)) pax.set(key, Buffer.from(String(value)));
    };
    big('uid', h.uid, 8);
    big('gid', h.gid, 8);
    big('size', h.size, 12);
    if (h.mtime < 0 || h.mtime > maxOctal(12)) pax.set('mtime', Buffer.from(String(h.mtime)));
    for (const [name, value] of h.xattrs ?? []) pax.set(`SCHILY.xattr.${name}`, value);
    // USTAR when nothing but a splittable long name needs more.
    const ustar = pax.size === 0 || (pax.size === 1 && pax.has('path') && ustarName !== null);
    if (ustar) {
      const [prefix, name] = ustarName ?? ['', h.name];
      this.block(h, name, prefix);
      return;
    }
    const keys = [...pax.keys()].sort();
    const records = Buffer.concat(keys.map((k) => paxRecord(k, pax.get(k) ?? Buffer.alloc(0))));
    this.rawEntry(paxEntryName(h.name), 'x', records);
    this.block(h, cut(toAscii(h.name)), '', true);
  }

  /** Bytes of a body, as they come; pad() ends it. */
  body(data: Buffer): void {
    if (data.length >= CHUNK / 4) {
      // Large pieces go out as they are, not copied.
      this.seal();
      this.ready.push(data);
      this.readyBytes += data.length;
      return;
    }
    this.room(data.length);
    data.copy(this.chunk, this.at);
    this.at += data.length;
  }

  /** Zero padding after a body of `size` bytes, to the next block. */
  pad(size: number): void {
    this.zeros((BLOCK - (size % BLOCK)) % BLOCK);
  }

  /** The end of the archive: two zero blocks, as Go's Close writes. */
  end(): void {
    this.zeros(2 * BLOCK);
  }

  /** Everything written so far, in order. */
  take(): Buffer[] {
    this.seal();
    const out = this.ready;
    this.ready = [];
    this.readyBytes = 0;
    return out;
  }

  private seal(): void {
    if (this.at === 0) return;
    this.ready.push(this.chunk.subarray(0, this.at));
    this.readyBytes += this.at;
    this.chunk = this.chunk.length - this.at >= BLOCK * 8 ? this.chunk.subarray(this.at) : Buffer.allocUnsafe(CHUNK);
    this.at = 0;
  }

  private room(bytes: number): void {
    if (this.at + bytes <= this.chunk.length) return;
    this.seal();
    if (bytes > this.chunk.length) this.chunk = Buffer.allocUnsafe(Math.max(CHUNK, bytes));
  }

  private zeros(n: number): void {
    this.room(n);
    this.chunk.fill(0, this.at, this.at + n);
    this.at += n;
  }

  /** Go's writeRawFile: a special entry ('x') with zeroed fields and `data` as body. */
  private rawEntry(name: string, type: string, data: Buffer): void {
    this.room(BLOCK);
    const b = this.chunk.subarray(this.at, this.at + BLOCK).fill(0);
    b.write(name, 0, 100, 'latin1');
    octal(b, 100, 8, 0);
    octal(b, 108, 8, 0);
    octal(b, 116, 8, 0);
    octal(b, 124, 12, data.length);
    octal(b, 136, 12, 0);
    b.write(type, 156, 1, 'latin1');
    magic(b);
    checksum(b);
    this.at += BLOCK;
    this.body(data);
    this.pad(data.length);
  }

  /** The ustar block of an entry; `paxed` writes 0 for what does not fit (the 'x' entry has it). */
  private block(h: TarHeader, name: string, prefix: string, paxed = false): void {
    this.room(BLOCK);
    const b = this.chunk.subarray(this.at, this.at + BLOCK).fill(0);
    const fit = (value: number, width: number): number => (value >= 0 && value <= maxOctal(width) ? value : 0);
    b.write(name, 0, 100, 'latin1');
    octal(b, 100, 8, h.mode);
    octal(b, 108, 8, fit(h.uid, 8));
    octal(b, 116, 8, fit(h.gid, 8));
    octal(b, 124, 12, fit(h.size, 12));
    octal(b, 136, 12, fit(h.mtime, 12));
    b.write(h.type, 156, 1, 'latin1');
    b.write(paxed ? cut(toAscii(h.linkname ?? '')) : h.linkname ?? '', 157, 100, 'latin1');
    magic(b);
    octal(b, 329, 8, h.devmajor ?? 0);
    octal(b, 337, 8, h.devminor ?? 0);
    if (prefix !== '') b.write(prefix, 345, 155, 'latin1');
    checksum(b);
    this.at += BLOCK;
  }
}

/**
 * A name cut to the 100 bytes of its field, as Go's formatString does for
 * the ustar block of a PAX entry; a cut that ends in "/" loses its
 * slashes, so no reader takes a file for a directory.
 */
function cut(name: string): string {
  return name.length <= 100 ? name : name.slice(0, 100).replace(/\/+$/, '');
}

/** Go's name for the 'x' entry of `name`: dir/PaxHeaders.0/base, ASCII, at most 100 bytes. */
function paxEntryName(name: string): string {
  const slash = name.lastIndexOf('/');
  const dir = name.slice(0, slash + 1);
  const base = name.slice(slash + 1);
  return toAscii(`${dir}PaxHeaders.0${base === '' ? '' : `/${base}`}`).slice(0, 100).replace(/\/+$/, '');
}

/** Zero-padded octal ending in NUL, as Go's formatOctal. */
function octal(b: Buffer, offset: number, width: number, value: number): void {
  b.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'latin1');
  b[offset + width - 1] = 0;
}

function magic(b: Buffer): void {
  b.write('ustar\u000000', 257, 8, 'latin1');
}

/** Six octal digits, NUL, space; the field counts as spaces while summing. */
function checksum(b: Buffer): void {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i] ?? 0;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}
