// Tar archives built block by block, for tests of the tar reader: every
// field under the test's control (formats, base-256, bad checksums, PAX
// records of any length), which no tar writer library allows.
const BLOCK = 512;

/** A numeric field: a number (octal, NUL-terminated), a bigint (base-256), raw text, or raw bytes. */
export type NumericField = number | bigint | string | Buffer;

export interface BlockSpec {
  name?: string | Buffer;
  mode?: NumericField;
  uid?: NumericField;
  gid?: NumericField;
  size?: NumericField;
  mtime?: NumericField;
  /** a character such as '0', or the byte */
  typeflag?: string | number;
  linkname?: string | Buffer;
  format?: 'ustar' | 'gnu' | 'v7' | 'star';
  uname?: string;
  gname?: string;
  devmajor?: NumericField;
  devminor?: NumericField;
  /** ustar (155 bytes) or star (131 bytes) prefix */
  prefix?: string | Buffer;
  /** star or GNU */
  atime?: NumericField;
  ctime?: NumericField;
  /** old GNU sparse: real size, up to 4 [offset, length] pairs, extension flag */
  realsize?: NumericField;
  sparse?: Array<[NumericField, NumericField]>;
  extended?: boolean;
  /** how to write the checksum; 'signed' makes a byte >= 0x80 count as negative */
  checksum?: 'unsigned' | 'signed' | 'zero' | 'wrong' | string;
  /** changes the block just before its checksum is computed */
  edit?: (block: Buffer) => void;
}

function put(block: Buffer, at: number, length: number, value: string | Buffer): void {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  bytes.copy(block, at, 0, Math.min(length, bytes.length));
}

/** Writes a numeric field the way the spec says (see NumericField). */
export function putNumeric(block: Buffer, at: number, length: number, value: NumericField): void {
  if (typeof value === 'number') {
    put(block, at, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
  } else if (typeof value === 'bigint') {
    let x = BigInt.asUintN(8 * length, value);
    for (let i = length - 1; i >= 0; i--) {
      block[at + i] = Number(x & 0xffn);
      x >>= 8n;
    }
    block[at] = (block[at] ?? 0) | 0x80;
  } else {
    block.fill(0, at, at + length);
    put(block, at, length, value);
  }
}

export function headerBlock(spec: BlockSpec): Buffer {
  const block = Buffer.alloc(BLOCK);
  put(block, 0, 100, spec.name ?? 'file');
  putNumeric(block, 100, 8, spec.mode ?? 0o644);
  putNumeric(block, 108, 8, spec.uid ?? 0);
  putNumeric(block, 116, 8, spec.gid ?? 0);
  putNumeric(block, 124, 12, spec.size ?? 0);
  putNumeric(block, 136, 12, spec.mtime ?? 1_600_000_000);
  const typeflag = spec.typeflag ?? '0';
  block[156] = typeof typeflag === 'number' ? typeflag : typeflag.charCodeAt(0);
  put(block, 157, 100, spec.linkname ?? '');
  const format = spec.format ?? 'ustar';
  if (format !== 'v7') {
    put(block, 257, 8, format === 'gnu' ? 'ustar  \0' : 'ustar\x0000');
    put(block, 265, 32, spec.uname ?? '');
    put(block, 297, 32, spec.gname ?? '');
    putNumeric(block, 329, 8, spec.devmajor ?? 0);
    putNumeric(block, 337, 8, spec.devminor ?? 0);
  }
  if (format === 'ustar' && spec.prefix !== undefined) put(block, 345, 155, spec.prefix);
  if (format === 'star') {
    if (spec.prefix !== undefined) put(block, 345, 131, spec.prefix);
    putNumeric(block, 476, 12, spec.atime ?? 1_600_000_001);
    putNumeric(block, 488, 12, spec.ctime ?? 1_600_000_002);
    put(block, 508, 4, 'tar\0');
  }
  if (format === 'gnu') {
    if (spec.atime !== undefined) putNumeric(block, 345, 12, spec.atime);
    if (spec.ctime !== undefined) putNumeric(block, 357, 12, spec.ctime);
    (spec.sparse ?? []).forEach(([offset, length], i) => {
      putNumeric(block, 386 + i * 24, 12, offset);
      putNumeric(block, 386 + i * 24 + 12, 12, length);
    });
    if (spec.extended) block[482] = 1;
    if (spec.realsize !== undefined) putNumeric(block, 483, 12, spec.realsize);
  }
  spec.edit?.(block);
  writeChecksum(block, spec.checksum ?? 'unsigned');
  return block;
}

/** Writes the checksum field of a block (after any change to it). */
export function writeChecksum(block: Buffer, how: BlockSpec['checksum'] = 'unsigned'): void {
  block.fill(0x20, 148, 156);
  let unsigned = 0;
  let signed = 0;
  for (const c of block) {
    unsigned += c;
    signed += c >= 0x80 ? c - 0x100 : c;
  }
  let text: string;
  if (how === 'unsigned') text = `${unsigned.toString(8).padStart(6, '0')}\0 `;
  else if (how === 'signed') text = `${signed.toString(8).padStart(6, '0')}\0 `;
  else if (how === 'zero') text = '\0\0\0\0\0\0\0\0';
  else if (how === 'wrong') text = `${(unsigned + 1).toString(8).padStart(6, '0')}\0 `;
  else text = how;
  block.fill(0, 148, 156);
  put(block, 148, 8, text);
}

/** A body padded to whole blocks. */
export function padded(body: Buffer | string): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const pad = (BLOCK - (bytes.length % BLOCK)) % BLOCK;
  return Buffer.concat([bytes, Buffer.alloc(pad)]);
}

/** A header and its padded body; the size field is the body's length unless the spec says otherwise. */
export function entry(spec: BlockSpec, body: Buffer | string = ''): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  return Buffer.concat([headerBlock({ size: bytes.length, ...spec }), padded(bytes)]);
}

/** One well-formed PAX record "%d %s=%s\n". */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const kv = Buffer.concat([Buffer.from(`${key}=`, 'latin1'), Buffer.from(value as string, typeof value === 'string' ? 'latin1' : undefined), Buffer.from('\n')]);
  let length = kv.length + 2;
  while (String(length).length + 1 + kv.length !== length) length = String(length).length + 1 + kv.length;
  return Buffer.concat([Buffer.from(`${length} `), kv]);
}

/** A PAX 'x' (or 'g') header with these records (or this raw body). */
export function paxEntry(records: Array<[string, string | Buffer]> | Buffer, spec: BlockSpec = {}): Buffer {
  const body = Buffer.isBuffer(records) ? records : Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  return entry({ name: 'PaxHeaders.0/file', typeflag: 'x', ...spec }, body);
}

/** A GNU long name ('L') or long link ('K') header. */
export function gnuLong(kind: 'L' | 'K', value: string | Buffer, spec: BlockSpec = {}): Buffer {
  const body = Buffer.concat([typeof value === 'string' ? Buffer.from(value, 'latin1') : value, Buffer.alloc(1)]);
  return entry({ name: '././@LongLink', typeflag: kind, format: 'gnu', ...spec }, body);
}

/** The end-of-archive marker: two zero blocks. */
export function endMarker(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

export function tarOf(...parts: Buffer[]): Buffer {
  return Buffer.concat(parts);
}
