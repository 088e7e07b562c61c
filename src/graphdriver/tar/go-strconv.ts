// Go's number syntaxes as archive/tar reads them (strconv.go): header
// fields in octal or base-256, PAX decimal integers and times. Values are
// bigint (Go's int64); null means Go reports an error.
const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const DECIMAL = /^[+-]?[0-9]+$/;

/** Go's strconv.ParseInt(s, 10, 64): an optional sign, then decimal digits only. */
export function parseGoInt64(s: string): bigint | null {
  if (!DECIMAL.test(s)) return null;
  // More than 19 significant digits always overflows; BigInt() of a huge string would be slow.
  const digits = s.replace(/^[+-]?0*/, '');
  if (digits.length > 19) return null;
  const value = BigInt(s);
  return value > INT64_MAX || value < INT64_MIN ? null : value;
}

/** The text of a C string field: up to the first NUL. */
export function cString(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.toString('latin1', 0, nul < 0 ? field.length : nul);
}

/**
 * Go's parseOctal: spaces and NULs trimmed at both ends, cut at a NUL, then
 * octal digits. Header fields are at most 12 bytes (36 bits), exact in a double.
 */
export function parseOctalField(field: Buffer): bigint | null {
  let start = 0;
  let end = field.length;
  const blank = (b: number | undefined): boolean => b === 0x20 || b === 0;
  while (start < end && blank(field[start])) start++;
  while (end > start && blank(field[end - 1])) end--;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = field[i] ?? 0;
    if (c === 0) break;
    if (c < 0x30 || c > 0x37) return null;
    value = value * 8 + (c - 0x30);
  }
  return BigInt(value);
}

/** Go's parseNumeric: base-256 (two's complement) when the first byte has 0x80 set, else octal. */
export function parseNumericField(field: Buffer): bigint | null {
  const first = field[0];
  if (first === undefined || (first & 0x80) === 0) return parseOctalField(field);
  const invert = (first & 0x40) !== 0 ? 0xff : 0;
  let x = 0n;
  for (let i = 0; i < field.length; i++) {
    let c = (field[i] ?? 0) ^ invert;
    if (i === 0) c &= 0x7f;
    if (x >> 56n > 0n) return null;
    x = (x << 8n) | BigInt(c);
  }
  if (x >> 63n > 0n) return null;
  return invert === 0xff ? -x - 1n : x;
}

/** A time as Go's time.Unix(sec, nsec) holds it: nsec normalised into 0..999999999. */
export interface GoTime {
  sec: bigint;
  nsec: number;
}

export function goUnixTime(sec: bigint, nsec: number): GoTime {
  return nsec < 0 ? { sec: sec - 1n, nsec: nsec + 1e9 } : { sec, nsec };
}

/** Go's parsePAXTime: decimal seconds, optionally "." and digits (cut to nanoseconds). */
export function parsePaxTime(s: string): GoTime | null {
  const dot = s.indexOf('.');
  const secText = dot < 0 ? s : s.slice(0, dot);
  const fraction = dot < 0 ? '' : s.slice(dot + 1);
  const sec = parseGoInt64(secText);
  if (sec === null) return null;
  if (fraction === '') return goUnixTime(sec, 0);
  if (!/^[0-9]+$/.test(fraction)) return null;
  const nsec = Number(fraction.slice(0, 9).padEnd(9, '0'));
  return goUnixTime(sec, secText.startsWith('-') ? -nsec : nsec);
}
