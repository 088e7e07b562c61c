// GNU sparse files as Go's archive/tar reads them: the maps of the old GNU
// 'S' header, of PAX 0.0/0.1 records and of the 1.0 data prefix, checked
// (validateSparseEntries) and turned into holes (invertSparseEntries).
import { parseGoInt64, parseNumericField } from './go-strconv';
import { TarFault } from './tar-error';

/** A region of the file: data in a map, or a hole once inverted. */
export interface SparseRegion {
  offset: bigint;
  length: bigint;
}

const INT64_MAX = (1n << 63n) - 1n;
const ENTRY_BYTES = 24;

function bad(why: string): TarFault {
  return new TarFault('header', `sparse file: ${why}`);
}

function tooMany(limit: number): TarFault {
  return new TarFault('header', `sparse file: more than ${limit} map entries (dmthin's limit)`, true);
}

/**
 * The entries of an old GNU sparse array (4 in the header at 386, 21 in an
 * extension block): up to the first whose offset starts with a NUL.
 */
export function readOldGnuSparseArray(array: Buffer, into: SparseRegion[], limit: number): void {
  const count = Math.floor(array.length / ENTRY_BYTES);
  for (let i = 0; i < count; i++) {
    const entry = array.subarray(i * ENTRY_BYTES, (i + 1) * ENTRY_BYTES);
    if (entry[0] === 0) break;
    const offset = parseNumericField(entry.subarray(0, 12));
    const length = parseNumericField(entry.subarray(12, 24));
    if (offset === null || length === null) throw bad(`old GNU sparse entry ${into.length} is not a number`);
    if (into.length >= limit) throw tooMany(limit);
    into.push({ offset, length });
  }
}

/** Whether an old GNU sparse array says an extension block follows. */
export function oldGnuSparseExtended(array: Buffer): boolean {
  return (array[Math.floor(array.length / ENTRY_BYTES) * ENTRY_BYTES] ?? 0) > 0;
}

/** Go's native-int count check: non-negative and 2*n without overflow. */
function entryCount(text: string, what: string): bigint {
  const n = parseGoInt64(text);
  if (n === null || n < 0n || 2n * n > INT64_MAX) throw bad(`${what} ${JSON.stringify(text.slice(0, 40))} is not a count`);
  return n;
}

function pairs(tokens: string[], limit: number): SparseRegion[] {
  const regions: SparseRegion[] = [];
  for (let i = 0; i + 1 < tokens.length; i += 2) {
    const offset = parseGoInt64(tokens[i] ?? '');
    const length = parseGoInt64(tokens[i + 1] ?? '');
    if (offset === null || length === null) throw bad(`map entry ${i / 2} is not a pair of decimal numbers`);
    if (regions.length >= limit) throw tooMany(limit);
    regions.push({ offset, length });
  }
  return regions;
}

/** PAX GNU sparse 0.0/0.1: GNU.sparse.numblocks and the comma-separated GNU.sparse.map. */
export function readPaxSparseMap0x1(numBlocks: string, map: string, limit: number): SparseRegion[] {
  const n = entryCount(numBlocks, 'GNU.sparse.numblocks');
  const tokens = map === '' ? [] : map.split(',');
  if (BigInt(tokens.length) !== 2n * n) throw bad(`GNU.sparse.map has ${tokens.length} numbers for ${n} blocks`);
  return pairs(tokens, limit);
}

/**
 * PAX GNU sparse 1.0: the map at the start of the data, decimal lines in
 * whole 512-byte blocks. Fed block by block; says when it has enough.
 */
export class SparseMap1x0 {
  private readonly blocks: Buffer[] = [];
  private newlines = 0;
  private wanted: bigint | null = null;

  constructor(private readonly maxBytes: number) {}

  /** Takes the next block; true once every line of the map is in. */
  feed(block: Buffer): boolean {
    if ((this.blocks.length + 1) * block.length > this.maxBytes) {
      throw new TarFault('header', `sparse file: the 1.0 map is longer than ${this.maxBytes} bytes (dmthin's limit)`, true);
    }
    this.blocks.push(block);
    for (let at = block.indexOf(0x0a); at >= 0; at = block.indexOf(0x0a, at + 1)) this.newlines++;
    if (this.newlines < 1) return false;
    if (this.wanted === null) {
      const text = Buffer.concat(this.blocks).toString('latin1');
      this.wanted = 1n + 2n * entryCount(text.slice(0, text.indexOf('\n')), 'the 1.0 map entry count');
    }
    return BigInt(this.newlines) >= this.wanted;
  }

  regions(limit: number): SparseRegion[] {
    const lines = Buffer.concat(this.blocks).toString('latin1').split('\n');
    const count = Number(((this.wanted ?? 1n) - 1n) / 2n);
    if (count > limit) throw tooMany(limit);
    return pairs(lines.slice(1, 1 + 2 * count), limit);
  }
}

/** Go's validateSparseEntries: in order, not overlapping, inside the size. */
export function validSparseMap(regions: SparseRegion[], size: bigint): boolean {
  if (size < 0n) return false;
  let previousEnd = 0n;
  for (const { offset, length } of regions) {
    if (offset < 0n || length < 0n) return false;
    if (offset > INT64_MAX - length) return false;
    if (offset + length > size) return false;
    if (previousEnd > offset) return false;
    previousEnd = offset + length;
  }
  return true;
}

/** Go's invertSparseEntries: the holes between data regions; the last one may be empty. */
export function sparseHoles(regions: SparseRegion[], size: bigint): SparseRegion[] {
  const holes: SparseRegion[] = [];
  let offset = 0n;
  for (const region of regions) {
    if (region.length === 0n) continue;
    if (region.offset - offset > 0n) holes.push({ offset, length: region.offset - offset });
    offset = region.offset + region.length;
  }
  holes.push({ offset, length: size - offset });
  return holes;
}
