// A raw PAX extended header ('x' entry), for xattr values that must stay
// binary: tar-stream only writes PAX records as UTF-8 text.
const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** One PAX record, "<length> <key>=<value>\n", where length counts the whole record, its own digits included. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/** The bytes of a PAX header entry (ustar header block plus padded records) that applies to the next entry. */
export function paxHeaderEntry(records: Buffer): Buffer {
  const header = Buffer.alloc(BLOCK);
  header.write('PaxHeader', 0, 100, 'latin1');
  header.write(octal(0o644, 8), 100, 'latin1');
  header.write(octal(0, 8), 108, 'latin1');
  header.write(octal(0, 8), 116, 'latin1');
  header.write(octal(records.length, 12), 124, 'latin1');
  header.write(octal(0, 12), 136, 'latin1');
  header.write('        ', 148, 'latin1'); // checksum field counts as spaces while summing
  header.write('x', 156, 'latin1');
  header.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  const padding = Buffer.alloc((BLOCK - (records.length % BLOCK)) % BLOCK);
  return Buffer.concat([header, records, padding]);
}
