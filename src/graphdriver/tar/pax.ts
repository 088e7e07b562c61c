// PAX extended headers as Go's archive/tar reads them (parsePAX,
// parsePAXRecord, validPAXRecord, mergePAX): records of "%d %s=%s\n",
// keys and values kept byte for byte (binary strings and Buffers).
import { parseGoInt64, parsePaxTime, type GoTime } from './go-strconv';
import { TarFault } from './tar-error';

export const GNU_SPARSE_MAP = 'GNU.sparse.map';
const GNU_SPARSE_OFFSET = 'GNU.sparse.offset';
const GNU_SPARSE_NUMBYTES = 'GNU.sparse.numbytes';
/** Keys whose value is a C string in the ustar header: a NUL is refused. */
const STRING_KEYS = new Set(['path', 'linkpath', 'uname', 'gname']);

function bad(why: string): TarFault {
  return new TarFault('header', `PAX header: ${why}`);
}

/**
 * Every record of a PAX body (last one wins per key). The GNU sparse 0.0
 * offset/numbytes pairs are folded into GNU.sparse.map, as Go does.
 * Each record consumes at least 5 bytes, and each scan stays inside it.
 */
export function parsePaxRecords(body: Buffer): Map<string, Buffer> {
  const text = body.toString('latin1');
  const records = new Map<string, Buffer>();
  const sparseMap: string[] = [];
  let at = 0;
  while (at < text.length) {
    const space = text.indexOf(' ', at);
    if (space < 0) throw bad(`record at byte ${at} has no length field`);
    const lengthText = text.slice(at, space);
    const length = parseGoInt64(lengthText);
    const left = text.length - at;
    if (length === null || length < 5n || length > BigInt(left)) {
      throw bad(`record at byte ${at} has a bad length ${JSON.stringify(lengthText.slice(0, 40))} (${left} bytes left)`);
    }
    const end = at + Number(length);
    if (end - (space + 1) <= 0) throw bad(`record at byte ${at} is shorter than its own length field`);
    if (text.charCodeAt(end - 1) !== 0x0a) throw bad(`record at byte ${at} does not end in a newline`);
    const record = text.slice(space + 1, end - 1);
    const eq = record.indexOf('=');
    if (eq < 0) throw bad(`record at byte ${at} has no "="`);
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === '') throw bad(`record at byte ${at} has an empty key`);
    if (STRING_KEYS.has(key) ? value.includes('\0') : key.includes('\0')) {
      throw bad(`record ${JSON.stringify(key.replace(/\0/g, '\\0'))} holds a NUL byte`);
    }
    if (key === GNU_SPARSE_OFFSET || key === GNU_SPARSE_NUMBYTES) {
      const expected = sparseMap.length % 2 === 0 ? GNU_SPARSE_OFFSET : GNU_SPARSE_NUMBYTES;
      if (key !== expected || value.includes(',')) throw bad(`GNU sparse 0.0 records out of order or with a comma`);
      sparseMap.push(value);
    } else {
      records.set(key, Buffer.from(value, 'latin1'));
    }
    at = end;
  }
  if (sparseMap.length > 0) records.set(GNU_SPARSE_MAP, Buffer.from(sparseMap.join(','), 'latin1'));
  return records;
}

/** The header fields PAX records can override. */
export interface PaxTarget {
  name: string;
  linkname: string;
  uname: string;
  gname: string;
  uid: bigint;
  gid: bigint;
  size: bigint;
  mtime: GoTime | null;
  atime: GoTime | null;
  ctime: GoTime | null;
}

/**
 * Go's mergePAX: each non-empty record of a known key overrides its field;
 * a number or time Go cannot parse is ErrHeader.
 */
export function mergePax(target: PaxTarget, records: Map<string, Buffer>): void {
  for (const [key, raw] of records) {
    if (raw.length === 0) continue;
    const value = raw.toString('latin1');
    const int = (): bigint => {
      const n = parseGoInt64(value);
      if (n === null) throw bad(`record ${key}=${JSON.stringify(value.slice(0, 40))} is not a decimal integer`);
      return n;
    };
    const time = (): GoTime => {
      const t = parsePaxTime(value);
      if (t === null) throw bad(`record ${key}=${JSON.stringify(value.slice(0, 40))} is not a time (seconds[.fraction])`);
      return t;
    };
    switch (key) {
      case 'path':
        target.name = value;
        break;
      case 'linkpath':
        target.linkname = value;
        break;
      case 'uname':
        target.uname = value;
        break;
      case 'gname':
        target.gname = value;
        break;
      case 'uid':
        target.uid = int();
        break;
      case 'gid':
        target.gid = int();
        break;
      case 'size':
        target.size = int();
        break;
      case 'mtime':
        target.mtime = time();
        break;
      case 'atime':
        target.atime = time();
        break;
      case 'ctime':
        target.ctime = time();
        break;
      default:
    }
  }
}
