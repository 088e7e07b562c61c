// One 512-byte tar header block as Go's archive/tar reads it (readHeader,
// getFormat): checksum, format by magic, then the fields that format has.
import { cString, parseNumericField, parseOctalField, type GoTime } from './go-strconv';
import { TarFault } from './tar-error';

export const BLOCK = 512;

/** The fields of one header block, numbers as Go's int64. */
export interface HeaderBlock {
  typeflag: number;
  name: string;
  linkname: string;
  size: bigint;
  mode: bigint;
  uid: bigint;
  gid: bigint;
  mtime: GoTime;
  uname: string;
  gname: string;
  devmajor: bigint;
  devminor: bigint;
  atime: GoTime | null;
  ctime: GoTime | null;
  /** magic "ustar " and version " \0": the only format an old GNU sparse header may have */
  gnu: boolean;
}

type Format = 'v7' | 'ustar' | 'gnu' | 'star';

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Go's getFormat; null when the checksum is unreadable or matches neither sum. */
function blockFormat(block: Buffer): Format | null {
  const stored = parseOctalField(block.subarray(148, 156));
  // The checksum field counts as eight spaces; the signed sum counts bytes >= 0x80 as negative.
  let unsigned = 8 * 0x20;
  let high = 0;
  for (let i = 0; i < BLOCK; i++) {
    if (i === 148) i = 156;
    const c = block[i] as number;
    unsigned += c;
    if (c >= 0x80) high++;
  }
  const signed = unsigned - 0x100 * high;
  if (stored === null || (stored !== BigInt(unsigned) && stored !== BigInt(signed))) return null;
  const magic = block.toString('latin1', 257, 263);
  if (magic === 'ustar\0') return block.toString('latin1', 508, 512) === 'tar\0' ? 'star' : 'ustar';
  if (magic === 'ustar ' && block.toString('latin1', 263, 265) === ' \0') return 'gnu';
  return 'v7';
}

/**
 * Parses a header block that is not all zeros. Throws ErrHeader's fault
 * for a bad checksum or a number Go cannot read (GNU atime/ctime excepted:
 * Go tolerates those, as old Go wrote them badly).
 */
export function parseHeaderBlock(block: Buffer, onName: (name: string) => void): HeaderBlock {
  const format = blockFormat(block);
  const name = cString(block.subarray(0, 100));
  onName(name);
  if (format === null) throw new TarFault('header', 'header block checksum is wrong (not a tar header, or corrupt)');
  const badFields: string[] = [];
  const numeric = (field: string, start: number, length: number): bigint => {
    const value = parseNumericField(block.subarray(start, start + length));
    if (value !== null) return value;
    badFields.push(field);
    return 0n;
  };
  const header: HeaderBlock = {
    typeflag: block[156] ?? 0,
    name,
    linkname: cString(block.subarray(157, 257)),
    size: numeric('size', 124, 12),
    mode: numeric('mode', 100, 8),
    uid: numeric('uid', 108, 8),
    gid: numeric('gid', 116, 8),
    mtime: { sec: numeric('mtime', 136, 12), nsec: 0 },
    uname: '',
    gname: '',
    devmajor: 0n,
    devminor: 0n,
    atime: null,
    ctime: null,
    gnu: format === 'gnu',
  };
  if (format !== 'v7') {
    header.uname = cString(block.subarray(265, 297));
    header.gname = cString(block.subarray(297, 329));
    header.devmajor = numeric('devmajor', 329, 8);
    header.devminor = numeric('devminor', 337, 8);
    let prefix = '';
    if (format === 'ustar') {
      prefix = cString(block.subarray(345, 500));
    } else if (format === 'star') {
      prefix = cString(block.subarray(345, 476));
      header.atime = { sec: numeric('atime', 476, 12), nsec: 0 };
      header.ctime = { sec: numeric('ctime', 488, 12), nsec: 0 };
    } else {
      const atime = block[345] !== 0 ? parseNumericField(block.subarray(345, 357)) : undefined;
      const ctime = block[357] !== 0 ? parseNumericField(block.subarray(357, 369)) : undefined;
      if (atime === null || ctime === null) {
        // Go 1.8 and older wrote these badly: drop them, and take an ASCII prefix.
        const ustarPrefix = cString(block.subarray(345, 500));
        if (!/[^\x01-\x7f]/.test(ustarPrefix)) prefix = ustarPrefix;
      } else {
        if (atime !== undefined) header.atime = { sec: atime, nsec: 0 };
        if (ctime !== undefined) header.ctime = { sec: ctime, nsec: 0 };
      }
    }
    if (prefix !== '') header.name = `${prefix}/${header.name}`;
  }
  if (badFields.length > 0) {
    throw new TarFault('header', `header field${badFields.length > 1 ? 's' : ''} ${badFields.join(', ')} not a number (octal or base-256)`);
  }
  return header;
}
