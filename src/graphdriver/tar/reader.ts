// The layer tar reader: a synchronous pull parser that reads a tar exactly
// as Go's archive/tar (Go 1.19, the reader inside dockerd) does, PAX and
// GNU records included, in one pass. Bodies come out as subarrays of the
// pushed chunks (no copy); only a header block that straddles two chunks,
// a PAX body or a GNU long name (each at most maxSpecialFileBytes) is
// gathered. Every step consumes bytes or ends, so no input can make it
// loop or buffer without bound.
import { parseGoInt64, parseNumericField, type GoTime } from './go-strconv';
import { BLOCK, isZeroBlock, parseHeaderBlock, type HeaderBlock } from './header-block';
import { GNU_SPARSE_MAP, mergePax, parsePaxRecords, type PaxTarget } from './pax';
import {
  oldGnuSparseExtended,
  readOldGnuSparseArray,
  readPaxSparseMap0x1,
  sparseHoles,
  SparseMap1x0,
  validSparseMap,
  type SparseRegion,
} from './sparse';
import { printableName, TarError, TarFault } from './tar-error';

export { TarError, type GoTarError } from './tar-error';

export interface TarLimits {
  /** largest PAX header body or GNU long name/link (Go's maxSpecialFileSize) */
  maxSpecialFileBytes: number;
  /** most regions in one sparse file's map (Go has no limit) */
  maxSparseEntries: number;
}

export const DEFAULT_TAR_LIMITS: TarLimits = { maxSpecialFileBytes: 1 << 20, maxSparseEntries: 1 << 16 };

export interface TarTime {
  sec: number;
  nsec: number;
}

/** An entry's header as Go's tar.Header after Next(). Strings are binary (latin1). */
export interface TarHeader {
  index: number;
  name: string;
  linkname: string;
  typeflag: number;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  devmajor: number;
  devminor: number;
  uname: string;
  gname: string;
  mtime: TarTime | null;
  atime: TarTime | null;
  ctime: TarTime | null;
  pax: Map<string, Buffer>;
}

export type TarEvent =
  | { kind: 'entry'; header: TarHeader }
  | { kind: 'data'; chunk: Buffer }
  | { kind: 'entry-end' }
  | { kind: 'end' };

export const TYPE_REG = 0x30;
export const TYPE_LINK = 0x31;
export const TYPE_SYMLINK = 0x32;
export const TYPE_CHAR = 0x33;
export const TYPE_BLOCK = 0x34;
export const TYPE_DIR = 0x35;
export const TYPE_FIFO = 0x36;
export const TYPE_GNU_SPARSE = 0x53; // 'S'
const TYPE_REG_A = 0;
const TYPE_PAX = 0x78; // 'x'
const TYPE_PAX_GLOBAL = 0x67; // 'g'
const TYPE_GNU_LONGNAME = 0x4c; // 'L'
const TYPE_GNU_LONGLINK = 0x4b; // 'K'

/** Go's isHeaderOnlyType: these read no body, whatever their size says. */
export function isHeaderOnlyType(typeflag: number): boolean {
  return typeflag >= TYPE_LINK && typeflag <= TYPE_FIFO;
}

/** Holes come out as views of this, never as one allocation of the hole's size. */
const ZEROS = Buffer.alloc(64 * 1024);
/** Go's time.Time{} (year 1), which Go's IsZero() reports. */
const GO_ZERO_TIME_SEC = -62135596800n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function padding(size: bigint): number {
  return Number((BLOCK - Number(size % BigInt(BLOCK))) % BLOCK);
}

/** Where the reader is in the stream. */
type Phase =
  | { at: 'padding'; left: number }
  | { at: 'header' }
  | { at: 'second-zero-block' }
  | { at: 'special'; block: HeaderBlock; size: number; overLimit: boolean; skipped: number; pad: number }
  | { at: 'old-sparse-extension'; entry: PendingEntry }
  | { at: 'sparse-map'; entry: PendingEntry; map: SparseMap1x0 }
  | { at: 'body'; left: number; pad: number }
  | { at: 'sparse-body'; dense: number; holes: Array<{ offset: number; end: number }>; hole: number; pos: number; size: number; pad: number }
  | { at: 'entry-end'; pad: number }
  | { at: 'end' };

/** The real entry after its meta headers, while a sparse map is still being read. */
interface PendingEntry {
  fields: PaxTarget & HeaderBlock;
  pax: Map<string, Buffer>;
  /** dense body bytes still to read */
  dense: bigint;
  pad: number;
  regions: SparseRegion[];
}

export class TarReader {
  private readonly limits: TarLimits;
  private readonly chunks: Buffer[] = [];
  /** bytes of chunks[0] already consumed */
  private offset = 0;
  private buffered = 0;
  private finished = false;
  private phase: Phase = { at: 'header' };
  private failure: TarError | null = null;
  /** entries returned so far */
  private returned = 0;
  /** name of the entry being read, for errors */
  private currentName: string | null = null;
  /** meta headers seen since the last entry (Go's locals of one Next call) */
  private paxRecords: Map<string, Buffer> | null = null;
  private longName = '';
  private longLink = '';
  /** the last header block read (an old GNU sparse header's map is in it) */
  private lastBlock: Buffer = Buffer.alloc(BLOCK);

  constructor(limits?: Partial<TarLimits>) {
    this.limits = { ...DEFAULT_TAR_LIMITS, ...limits };
  }

  push(chunk: Buffer): void {
    if (this.finished) throw new Error('TarReader.push after finish');
    // After the end marker (dockerd ignores what follows) or an error, bytes are dropped, not kept.
    if (chunk.length === 0 || this.phase.at === 'end' || this.failure) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  finish(): void {
    this.finished = true;
  }

  next(): TarEvent | null {
    if (this.failure) throw this.failure;
    try {
      return this.step();
    } catch (err) {
      if (!(err instanceof TarFault)) throw err;
      this.failure = this.describe(err);
      this.chunks.length = 0;
      this.buffered = 0;
      throw this.failure;
    }
  }

  private describe(fault: TarFault): TarError {
    const index = this.returned - (this.phase.at === 'body' || this.phase.at === 'sparse-body' ? 1 : 0);
    const name = this.currentName;
    const where = `entry ${index}${name !== null && name !== '' ? ` (${printableName(name)})` : ''}`;
    const early = fault.goError === 'unexpected-eof' ? 'the tar ends early: ' : '';
    return new TarError(`layer tar is malformed at ${where}: ${early}${fault.message}`, fault.goError, index, name, fault.beyondGo);
  }

  // --- bytes -------------------------------------------------------------

  /** Exactly n bytes (a view when they lie in one chunk), or null until they are buffered. */
  private take(n: number): Buffer | null {
    if (this.buffered < n) return null;
    const first = this.chunks[0];
    if (first && first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.consume(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const view = this.takeUpTo(n - filled);
      if (!view) break;
      view.copy(out, filled);
      filled += view.length;
    }
    return out;
  }

  /** Up to n bytes from the first chunk, as a view; null when nothing is buffered. */
  private takeUpTo(n: number): Buffer | null {
    const first = this.chunks[0];
    if (!first || n <= 0) return null;
    const count = Math.min(n, first.length - this.offset);
    const out = first.subarray(this.offset, this.offset + count);
    this.consume(count);
    return out;
  }

  private consume(n: number): void {
    this.buffered -= n;
    this.offset += n;
    const first = this.chunks[0];
    if (first && this.offset === first.length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }

  private skip(n: number): number {
    let skipped = 0;
    while (skipped < n) {
      const view = this.takeUpTo(n - skipped);
      if (!view) break;
      skipped += view.length;
    }
    return skipped;
  }

  private short(what: string): TarFault {
    return new TarFault('unexpected-eof', what);
  }

  // --- the state machine -------------------------------------------------

  private step(): TarEvent | null {
    for (;;) {
      const phase = this.phase;
      switch (phase.at) {
        case 'end':
          return { kind: 'end' };
        case 'padding': {
          phase.left -= this.skip(phase.left);
          if (phase.left === 0) {
            this.phase = { at: 'header' };
            break;
          }
          // Go reads the padding with tryReadFull: a stream that stops inside it has ended cleanly.
          if (this.finished) return this.end();
          return null;
        }
        case 'header': {
          if (this.buffered < BLOCK) {
            if (!this.finished) return null;
            if (this.buffered === 0) return this.end();
            throw this.short(`${this.buffered} bytes where a 512-byte header block should be`);
          }
          const block = this.take(BLOCK) as Buffer;
          if (isZeroBlock(block)) {
            this.phase = { at: 'second-zero-block' };
            break;
          }
          const event = this.header(block);
          if (event) return event;
          break;
        }
        case 'second-zero-block': {
          if (this.buffered < BLOCK) {
            if (!this.finished) return null;
            if (this.buffered === 0) return this.end();
            throw this.short(`${this.buffered} bytes after the first zero block of the end marker`);
          }
          const block = this.take(BLOCK) as Buffer;
          if (!isZeroBlock(block)) {
            throw new TarFault('header', 'a zero block (end of archive) is followed by a header instead of a second zero block');
          }
          return this.end();
        }
        case 'special': {
          const event = this.special(phase);
          if (event === 'more') return null;
          if (event) return event;
          break;
        }
        case 'old-sparse-extension': {
          if (this.buffered < BLOCK) {
            if (!this.finished) return null;
            throw this.short('in an old GNU sparse extension block');
          }
          const block = this.take(BLOCK) as Buffer;
          readOldGnuSparseArray(block.subarray(0, 21 * 24 + 1), phase.entry.regions, this.limits.maxSparseEntries);
          if (!oldGnuSparseExtended(block.subarray(0, 21 * 24 + 1))) return this.sparseEntry(phase.entry);
          break;
        }
        case 'sparse-map': {
          const entry = phase.entry;
          if (entry.dense < BigInt(BLOCK)) throw this.short('in the sparse map at the start of the data (format 1.0)');
          if (this.buffered < BLOCK) {
            if (!this.finished) return null;
            throw this.short('in the sparse map at the start of the data (format 1.0)');
          }
          entry.dense -= BigInt(BLOCK);
          if (phase.map.feed(this.take(BLOCK) as Buffer)) {
            entry.regions = phase.map.regions(this.limits.maxSparseEntries);
            return this.sparseEntry(entry);
          }
          break;
        }
        case 'body': {
          if (phase.left === 0) {
            this.phase = { at: 'entry-end', pad: phase.pad };
            break;
          }
          const chunk = this.takeUpTo(phase.left);
          if (!chunk) {
            if (this.finished) throw this.short(`${phase.left} bytes of the body are missing`);
            return null;
          }
          phase.left -= chunk.length;
          return { kind: 'data', chunk };
        }
        case 'sparse-body': {
          const event = this.sparseData(phase);
          if (event === 'more') return null;
          if (event) return event;
          break;
        }
        case 'entry-end':
          this.phase = { at: 'padding', left: phase.pad };
          this.currentName = null;
          return { kind: 'entry-end' };
      }
    }
  }

  private end(): TarEvent {
    this.phase = { at: 'end' };
    this.chunks.length = 0;
    this.buffered = 0;
    return { kind: 'end' };
  }

  /** A header block: a meta header starts its body, a real entry is returned (or its sparse map read). */
  private header(raw: Buffer): TarEvent | null {
    this.lastBlock = raw;
    const block = parseHeaderBlock(raw, (name) => {
      this.currentName = name;
    });
    const nb = isHeaderOnlyType(block.typeflag) ? 0n : block.size;
    if (nb < 0n) throw new TarFault('header', `negative size ${block.size}`);
    switch (block.typeflag) {
      case TYPE_PAX:
      case TYPE_PAX_GLOBAL:
      case TYPE_GNU_LONGNAME:
      case TYPE_GNU_LONGLINK: {
        const limit = this.limits.maxSpecialFileBytes;
        const overLimit = nb > BigInt(limit);
        // Go reads at most limit+1 bytes of it: more is ErrFieldTooLong, never buffered.
        const size = overLimit ? limit + 1 : Number(nb);
        this.phase = { at: 'special', block, size, overLimit, skipped: 0, pad: padding(nb) };
        return null;
      }
      default:
        return this.realEntry(block);
    }
  }

  private special(phase: Extract<Phase, { at: 'special' }>): TarEvent | 'more' | null {
    const { block, size } = phase;
    const kind = block.typeflag === TYPE_GNU_LONGNAME ? 'GNU long name' : block.typeflag === TYPE_GNU_LONGLINK ? 'GNU long link' : 'PAX header';
    if (phase.overLimit) {
      phase.skipped += this.skip(size - phase.skipped);
      if (phase.skipped === size) {
        throw new TarFault('field-too-long', `${kind} is larger than ${this.limits.maxSpecialFileBytes} bytes`);
      }
      if (this.finished) throw this.short(`in a ${kind}`);
      return 'more';
    }
    if (this.buffered < size) {
      if (this.finished) throw this.short(`in a ${kind} (${size} bytes declared, ${this.buffered} left)`);
      return 'more';
    }
    const body = this.take(size) as Buffer;
    this.phase = { at: 'padding', left: phase.pad };
    switch (block.typeflag) {
      case TYPE_PAX:
        // A second 'x' replaces the first (Go assigns, never merges).
        this.paxRecords = parsePaxRecords(body);
        return null;
      case TYPE_GNU_LONGNAME:
        this.longName = body.toString('latin1', 0, body.indexOf(0) < 0 ? body.length : body.indexOf(0));
        if (this.longName !== '') this.currentName = this.longName;
        return null;
      case TYPE_GNU_LONGLINK:
        this.longLink = body.toString('latin1', 0, body.indexOf(0) < 0 ? body.length : body.indexOf(0));
        return null;
      default:
        return this.globalEntry(block, parsePaxRecords(body), phase.pad);
    }
  }

  /** A 'g' header comes back as an entry of its own with only a name and its records (Go 1.19). */
  private globalEntry(block: HeaderBlock, records: Map<string, Buffer>, pad: number): TarEvent {
    const fields = { ...block };
    let pax = records;
    try {
      mergePax(fields, records);
    } catch (err) {
      // Go 1.19 ignores the error here, and then keeps no records.
      if (!(err instanceof TarFault)) throw err;
      pax = new Map();
    }
    const header: TarHeader = {
      index: this.returned,
      name: fields.name,
      linkname: '',
      typeflag: TYPE_PAX_GLOBAL,
      size: 0,
      mode: 0,
      uid: 0,
      gid: 0,
      devmajor: 0,
      devminor: 0,
      uname: '',
      gname: '',
      mtime: null,
      atime: null,
      ctime: null,
      pax,
    };
    return this.returnEntry(header, { at: 'entry-end', pad });
  }

  /** Go's next() for a real entry: PAX, then GNU L/K, the '\0' fix-up, size, sparse. */
  private realEntry(block: HeaderBlock): TarEvent | null {
    const pax = this.paxRecords ?? new Map<string, Buffer>();
    const fields: PaxTarget & HeaderBlock = { ...block };
    mergePax(fields, pax);
    if (this.longName !== '') fields.name = this.longName;
    if (this.longLink !== '') fields.linkname = this.longLink;
    this.currentName = fields.name;
    if (fields.typeflag === TYPE_REG_A) fields.typeflag = fields.name.endsWith('/') ? TYPE_DIR : TYPE_REG;
    const nb = isHeaderOnlyType(fields.typeflag) ? 0n : fields.size;
    if (nb < 0n) throw new TarFault('header', `negative size ${fields.size}`);
    const entry: PendingEntry = { fields, pax, dense: nb, pad: padding(nb), regions: [] };
    if (fields.typeflag === TYPE_GNU_SPARSE) return this.oldGnuSparse(entry, block);
    return this.paxSparse(entry);
  }

  private oldGnuSparse(entry: PendingEntry, block: HeaderBlock): TarEvent | null {
    if (!block.gnu) throw new TarFault('header', "old GNU sparse entry ('S') in a header that is not GNU format");
    const raw = this.lastBlock;
    const realSize = parseNumericField(raw.subarray(483, 495));
    if (realSize === null) throw new TarFault('header', 'old GNU sparse real size is not a number');
    entry.fields.size = realSize;
    const array = raw.subarray(386, 386 + 4 * 24 + 1);
    readOldGnuSparseArray(array, entry.regions, this.limits.maxSparseEntries);
    if (oldGnuSparseExtended(array)) {
      this.phase = { at: 'old-sparse-extension', entry };
      return null;
    }
    return this.sparseEntry(entry);
  }

  /** Go's readGNUSparsePAXHeaders: which PAX sparse version, if any. */
  private paxSparse(entry: PendingEntry): TarEvent | null {
    const record = (key: string): string => entry.pax.get(key)?.toString('latin1') ?? '';
    const major = record('GNU.sparse.major');
    const minor = record('GNU.sparse.minor');
    let version: '0.x' | '1.0';
    if (major === '0' && (minor === '0' || minor === '1')) version = '0.x';
    else if (major === '1' && minor === '0') version = '1.0';
    else if (major !== '' || minor !== '') return this.plainEntry(entry);
    else if (record(GNU_SPARSE_MAP) !== '') version = '0.x';
    else return this.plainEntry(entry);

    const name = record('GNU.sparse.name');
    if (name !== '') {
      entry.fields.name = name;
      this.currentName = name;
    }
    const sizeText = record('GNU.sparse.size') || record('GNU.sparse.realsize');
    if (sizeText !== '') {
      const size = parseGoInt64(sizeText);
      if (size === null) throw new TarFault('header', `GNU.sparse.size ${JSON.stringify(sizeText.slice(0, 40))} is not a decimal integer`);
      entry.fields.size = size;
    }
    if (version === '1.0') {
      this.phase = { at: 'sparse-map', entry, map: new SparseMap1x0(this.limits.maxSpecialFileBytes) };
      return null;
    }
    entry.regions = readPaxSparseMap0x1(record('GNU.sparse.numblocks'), record(GNU_SPARSE_MAP), this.limits.maxSparseEntries);
    return this.sparseEntry(entry);
  }

  private sparseEntry(entry: PendingEntry): TarEvent {
    const { fields } = entry;
    if (isHeaderOnlyType(fields.typeflag)) throw new TarFault('header', `a ${String.fromCharCode(fields.typeflag)} entry cannot be sparse`);
    if (!validSparseMap(entry.regions, fields.size)) {
      throw new TarFault('header', 'sparse map regions overlap, are out of order, negative, or past the file size');
    }
    const holes = sparseHoles(entry.regions, fields.size).map((h) => ({
      offset: this.safe(h.offset, 'sparse offset'),
      end: this.safe(h.offset + h.length, 'sparse offset'),
    }));
    const header = this.toHeader(entry);
    return this.returnEntry(header, {
      at: 'sparse-body',
      dense: this.safe(entry.dense, 'size'),
      holes,
      hole: 0,
      pos: 0,
      size: header.size,
      pad: entry.pad,
    });
  }

  private plainEntry(entry: PendingEntry): TarEvent {
    const header = this.toHeader(entry);
    return this.returnEntry(header, { at: 'body', left: this.safe(entry.dense, 'size'), pad: entry.pad });
  }

  private returnEntry(header: TarHeader, next: Phase): TarEvent {
    this.returned++;
    this.paxRecords = null;
    this.longName = '';
    this.longLink = '';
    this.currentName = header.name;
    this.phase = next;
    return { kind: 'entry', header };
  }

  /** Sparse body: dense data between the holes, zeros (in bounded views) for the holes. */
  private sparseData(phase: Extract<Phase, { at: 'sparse-body' }>): TarEvent | 'more' | null {
    while (phase.pos < phase.size) {
      const hole = phase.holes[phase.hole] as { offset: number; end: number };
      if (phase.pos < hole.offset) {
        if (phase.dense === 0) throw new TarFault('missing-data', 'sparse file: the data is shorter than its map says');
        const chunk = this.takeUpTo(Math.min(hole.offset - phase.pos, phase.dense));
        if (!chunk) {
          if (this.finished) throw this.short(`${phase.dense} bytes of the sparse file's data are missing`);
          return 'more';
        }
        phase.pos += chunk.length;
        phase.dense -= chunk.length;
        this.nextHole(phase, hole);
        return { kind: 'data', chunk };
      }
      const count = Math.min(hole.end - phase.pos, ZEROS.length);
      phase.pos += count;
      this.nextHole(phase, hole);
      if (count > 0) return { kind: 'data', chunk: ZEROS.subarray(0, count) };
    }
    if (phase.dense > 0) throw new TarFault('unreferenced-data', "sparse file: the data is longer than its map says");
    this.phase = { at: 'entry-end', pad: phase.pad };
    return null;
  }

  private nextHole(phase: Extract<Phase, { at: 'sparse-body' }>, hole: { end: number }): void {
    if (phase.pos >= hole.end && phase.hole < phase.holes.length - 1) phase.hole++;
  }

  private toHeader(entry: PendingEntry): TarHeader {
    const f = entry.fields;
    return {
      index: this.returned,
      name: f.name,
      linkname: f.linkname,
      typeflag: f.typeflag,
      size: this.safe(f.size, 'size'),
      mode: this.safe(f.mode, 'mode'),
      uid: this.safe(f.uid, 'uid'),
      gid: this.safe(f.gid, 'gid'),
      devmajor: this.safe(f.devmajor, 'devmajor'),
      devminor: this.safe(f.devminor, 'devminor'),
      uname: f.uname,
      gname: f.gname,
      mtime: this.time(f.mtime, 'mtime'),
      atime: this.time(f.atime, 'atime'),
      ctime: this.time(f.ctime, 'ctime'),
      pax: entry.pax,
    };
  }

  /** A Go int64 as a JS number; past 2^53 dmthin refuses what Go would read (no apply could honour it). */
  private safe(value: bigint, field: string): number {
    if (value > MAX_SAFE || value < -MAX_SAFE) {
      throw new TarFault('header', `${field} ${value} is beyond 2^53, which dmthin does not accept`, true);
    }
    return Number(value);
  }

  private time(value: GoTime | null, field: string): TarTime | null {
    if (value === null || (value.sec === GO_ZERO_TIME_SEC && value.nsec === 0)) return null;
    return { sec: this.safe(value.sec, field), nsec: value.nsec };
  }
}
