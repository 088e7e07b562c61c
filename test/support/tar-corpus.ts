// The tar corpus: deterministic tars of every header format, entry type
// and PAX/GNU record, and hostile ones for every item of the checklist in
// go-archive-tar.md §10 and more. The Go differential test lists each with
// Go's archive/tar and with dmthin's reader; the apply tests apply each.
import {
  endMarker,
  entry,
  gnuLong,
  headerBlock,
  padded,
  paxEntry,
  paxRecord,
  tarOf,
  type BlockSpec,
} from './tar-blocks';

export interface CorpusTar {
  /** unique and stable: tests and reports refer to tars by it */
  name: string;
  bytes: Buffer;
  /** made to break a reader or an applier (vs. a tar some tool writes) */
  hostile: boolean;
  /** set where dmthin refuses what Go reads, and why (checked in the differential test) */
  divergence?: string;
}

/** A deterministic byte generator (mulberry32), so every run builds the same corpus. */
export function seededBytes(seed: number, length: number): Buffer {
  let a = seed >>> 0;
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

const CAP_V2 = Buffer.from('0100000200000000200000000000000000000000', 'hex');
const END = endMarker();

function file(name: string | Buffer, body: string | Buffer, spec: BlockSpec = {}): Buffer {
  return entry({ name, ...spec }, body);
}

function dir(name: string, spec: BlockSpec = {}): Buffer {
  return entry({ name, typeflag: '5', mode: 0o755, ...spec });
}

export function tarCorpus(): CorpusTar[] {
  const corpus: CorpusTar[] = [];
  const add = (name: string, hostile: boolean, ...parts: Buffer[]): void => {
    corpus.push({ name, bytes: tarOf(...parts), hostile });
  };
  const valid = (name: string, ...parts: Buffer[]): void => add(name, false, ...parts);
  const hostile = (name: string, ...parts: Buffer[]): void => add(name, true, ...parts);
  const diverges = (name: string, why: string, ...parts: Buffer[]): void => {
    corpus.push({ name, bytes: tarOf(...parts), hostile: true, divergence: why });
  };

  // --- every format with every entry type ----------------------------------
  const formats = ['v7', 'ustar', 'gnu', 'star'] as const;
  const types: Array<[string, BlockSpec, string]> = [
    ['reg', { typeflag: '0' }, 'hello\n'],
    ['rega', { typeflag: 0 }, 'old style\n'],
    ['hardlink', { typeflag: '1', linkname: 'dir/file' }, ''],
    ['symlink', { typeflag: '2', linkname: '../target' }, ''],
    ['char', { typeflag: '3', devmajor: 1, devminor: 3, mode: 0o666 }, ''],
    ['block', { typeflag: '4', devmajor: 7, devminor: 0, mode: 0o660 }, ''],
    ['dir', { typeflag: '5', mode: 0o755 }, ''],
    ['fifo', { typeflag: '6', mode: 0o600 }, ''],
    ['contiguous', { typeflag: '7' }, 'contiguous body'],
  ];
  for (const format of formats) {
    for (const [kind, spec, body] of types) {
      const name = kind === 'dir' ? 'dir/' : `dir/${kind}`;
      valid(`format-${format}-${kind}`, dir('dir/', { format }), file(name, body, { format, uid: 1000, gid: 100, uname: 'user', gname: 'staff', ...spec }), END);
    }
  }
  for (const [kind, spec] of types.slice(0, 2)) {
    valid(`format-pax-${kind}`, paxEntry([['path', `päx/${kind}`], ['mtime', '1600000000.123456789']]), file('pax', 'body', spec), END);
  }

  // --- names ---------------------------------------------------------------
  valid('ustar-prefix', file('name-part', 'x', { prefix: 'a/very/long/prefix/directory' }), END);
  valid('ustar-prefix-full-fields', file('n'.repeat(100), 'x', { prefix: 'p'.repeat(155) }), END);
  valid('star-prefix', file('name-part', 'x', { format: 'star', prefix: 'star/prefix' }), END);
  valid('gnu-prefix-ignored', file('name', 'x', { format: 'gnu', edit: (b) => b.write('ignored', 345 + 41, 'latin1') }), END);
  valid('gnu-longname', gnuLong('L', `long/${'n'.repeat(300)}`), file('short', 'x', { format: 'gnu' }), END);
  valid('gnu-longlink', gnuLong('K', `target/${'l'.repeat(300)}`), file('link', '', { format: 'gnu', typeflag: '2', linkname: 'short' }), END);
  valid('gnu-longname-and-link', gnuLong('L', 'n'.repeat(200)), gnuLong('K', 'k'.repeat(200)), file('x', '', { format: 'gnu', typeflag: '1', linkname: 'y' }), END);
  valid('gnu-longname-beats-pax-path', paxEntry([['path', 'from-pax']]), gnuLong('L', 'from-gnu'), file('raw', 'x'), END);
  valid('gnu-longname-empty-ignored', gnuLong('L', ''), file('kept', 'x', { format: 'gnu' }), END);
  valid('gnu-longname-inner-nul', gnuLong('L', Buffer.from('cut\0here')), file('raw', 'x', { format: 'gnu' }), END);
  valid('gnu-two-longnames-last-wins', gnuLong('L', 'first'), gnuLong('L', 'second'), file('raw', 'x', { format: 'gnu' }), END);
  valid('name-100-bytes-no-nul', file('a'.repeat(100), 'x'), END);
  valid('name-non-utf8', file(Buffer.from([0x66, 0xff, 0xfe, 0x80, 0x2e, 0x74]), 'x'), END);
  valid('name-control-bytes', file('tab\there\x01\x1b', 'x'), END);
  hostile('name-nul-inside', file(Buffer.from('short\0hidden'), 'x'), END);
  hostile('name-dotdot-parent', file('../x', 'escape'), END);
  hostile('name-dotdot-deep', file('a/../../x', 'escape'), END);
  hostile('name-exactly-dotdot', dir('..'), END);
  hostile('name-absolute', file('/etc/x', 'abs'), END);
  hostile('name-dot-dir', dir('.', { mode: 0o700, uid: 1234 }), END);
  hostile('name-empty-dir', dir(''), END);
  hostile('name-dot-file', file('.', 'not a dir'), END);
  hostile('name-double-slash', file('a//b', 'x'), END);
  hostile('name-dot-slash', file('./a/./b', 'x'), END);

  // --- links ---------------------------------------------------------------
  hostile('hardlink-outside', file('link', '', { typeflag: '1', linkname: '../../etc/passwd' }), END);
  hostile('hardlink-absolute', file('link', '', { typeflag: '1', linkname: '/etc/passwd' }), END);
  hostile('hardlink-sibling-prefix', file('link', '', { typeflag: '1', linkname: '../diffX/f' }), END);
  hostile('hardlink-missing-target', file('link', '', { typeflag: '1', linkname: 'nothing-here' }), END);
  hostile('hardlink-to-dir', dir('d/'), file('link', '', { typeflag: '1', linkname: 'd' }), END);
  hostile('symlink-absolute', file('sl', '', { typeflag: '2', linkname: '/etc/shadow' }), END);
  hostile('symlink-relative-escape', file('a/sl', '', { typeflag: '2', linkname: '../../../../etc' }), END);
  hostile('symlink-then-file-through-it', file('sl', '', { typeflag: '2', linkname: '/tmp' }), file('sl/x', 'through'), END);
  hostile('dir-over-symlink', file('d', '', { typeflag: '2', linkname: '/' }), dir('d/'), file('d/x', 'x'), END);
  hostile('plnk-link-without-stash', file('l', '', { typeflag: '1', linkname: '.wh..wh.plnk/1234.5678' }), END);
  valid('plnk-stash-and-link', dir('.wh..wh.plnk/'), file('.wh..wh.plnk/1.2', 'stashed'), file('copy', '', { typeflag: '1', linkname: '.wh..wh.plnk/1.2' }), END);

  // --- whiteouts -------------------------------------------------------------
  valid('whiteout-file', file('etc/.wh.passwd', ''), END);
  valid('whiteout-opaque-dir', dir('etc/'), file('etc/.wh..wh..opq', ''), file('etc/new', 'x'), END);
  for (const [label, name] of [
    ['wh-dot', '.wh.'],
    ['wh-dotdot', '.wh..'],
    ['wh-dotdotdot', '.wh...'],
    ['a-wh-dotdotdot', 'a/.wh...'],
    ['a-wh-dot', 'a/.wh.'],
    ['ab-wh-dotdotdot', 'a/b/.wh...'],
    ['wh-opaque-top', '.wh..wh..opq'],
    ['wh-wh-other-top', '.wh..wh.other'],
    ['wh-slash-in-target', 'a/.wh.b/../../c'],
  ] as const) {
    hostile(`whiteout-${label}`, file(name, ''), END);
  }
  hostile('whiteout-as-dir', dir('.wh.x/'), END);
  hostile('whiteout-as-symlink', file('.wh.etc', '', { typeflag: '2', linkname: '/' }), END);
  hostile('dir-then-its-whiteout', dir('d/'), file('d/f', 'x'), file('.wh.d', ''), END);
  hostile('plnk-dir-child', file('.wh..wh.plnk/x/y', 'z'), END);

  // --- repeated paths ----------------------------------------------------------
  hostile('same-file-twice', file('f', 'first'), file('f', 'second'), END);
  hostile('dir-then-file-same-path', dir('d/'), dir('d/sub/'), file('d', 'now a file'), END);
  hostile('file-then-dir-same-path', file('d', 'file'), dir('d/'), END);

  // --- PAX records ---------------------------------------------------------------
  const paxFile = (records: Array<[string, string | Buffer]>, spec: BlockSpec = {}, body = 'body'): Buffer[] => [paxEntry(records), file('raw-name', body, spec), END];
  valid('pax-path-linkpath', ...paxFile([['path', 'pax/path'], ['linkpath', 'pax/link']], { typeflag: '2' }, ''));
  valid('pax-uname-gname', ...paxFile([['uname', 'ünïcode'], ['gname', 'grp']]));
  valid('pax-uid-gid-large', ...paxFile([['uid', '4000000000'], ['gid', '+70000']]));
  valid('pax-uid-negative', ...paxFile([['uid', '-5']]));
  valid('pax-mtime-fraction', ...paxFile([['mtime', '1600000000.5'], ['atime', '1600000001.123456789123'], ['ctime', '1.']]));
  valid('pax-mtime-negative-fraction', ...paxFile([['mtime', '-1.5'], ['atime', '-0.25']]));
  valid('pax-mtime-zero-time', ...paxFile([['mtime', '-62135596800']]));
  valid('pax-size-override', paxEntry([['size', '5']]), file('f', '', { size: 0, edit: () => undefined }), padded('12345'), END);
  valid('pax-size-plus', paxEntry([['size', '+2']]), headerBlock({ name: 'f', size: 0 }), padded('ab'), END);
  valid('pax-size-empty-keeps-header', ...paxFile([['size', '']]));
  valid('pax-empty-path-keeps-header', ...paxFile([['path', '']]));
  valid('pax-xattr-capability', ...paxFile([['SCHILY.xattr.security.capability', CAP_V2], ['SCHILY.xattr.user.k', 'v']]));
  valid('pax-xattr-empty-value', ...paxFile([['SCHILY.xattr.user.empty', '']]));
  valid('pax-xattr-unknown-namespace', ...paxFile([['SCHILY.xattr.bogus.ns', 'v']]));
  valid('pax-xattr-nul-in-value', ...paxFile([['SCHILY.xattr.user.bin', Buffer.from([0, 1, 0, 0xff])]]));
  valid('pax-libarchive-xattr', ...paxFile([['LIBARCHIVE.xattr.user.k', 'dg==']]));
  valid('pax-comment-and-unknown', ...paxFile([['comment', 'hello = world'], ['vendor.key', 'x=y=z']]));
  valid('pax-duplicate-key-last-wins', ...paxFile([['path', 'first'], ['path', 'second']]));
  valid('pax-two-x-only-last', paxEntry([['path', 'first-x'], ['uid', '7']]), paxEntry([['gid', '8']]), file('raw', 'x'), END);
  valid('pax-length-leading-zeros', paxEntry(Buffer.from('0000016 path=abc\n')), file('raw', 'x'), END);
  valid('pax-length-plus', paxEntry(Buffer.from('+15 path=abcd\n')), file('raw', 'x'), END);
  valid('pax-value-with-newline', paxEntry(Buffer.from('14 path=a\nb\n\n')), file('raw', 'x'), END);
  valid('pax-global-then-file', paxEntry([['comment', 'global'], ['uid', '5']], { typeflag: 'g', name: 'global' }), file('f', 'x'), END);
  valid('pax-global-path', paxEntry([['path', 'gpath']], { typeflag: 'g' }), file('f', 'x'), END);
  valid('pax-x-then-global-loses-x', paxEntry([['path', 'lost']]), paxEntry([['comment', 'g']], { typeflag: 'g' }), file('f', 'x'), END);
  hostile('pax-global-bad-uid', paxEntry([['uid', 'zz']], { typeflag: 'g', name: 'g' }), file('f', 'x'), END);
  hostile('pax-then-end', paxEntry([['path', 'nothing follows']]), END);
  hostile('gnu-longname-then-end', gnuLong('L', 'nothing follows'), END);
  hostile('pax-then-eof', paxEntry([['path', 'nothing follows']]));
  for (const [label, value] of [
    ['abc', 'abc'],
    ['hex', '0x10'],
    ['space', ' 2'],
    ['float', '1.5'],
    ['overflow', '9223372036854775808'],
    ['underscore', '1_0'],
  ] as const) {
    hostile(`pax-size-${label}`, ...paxFile([['size', value]]));
  }
  hostile('pax-size-negative', ...paxFile([['size', '-5']]));
  hostile('pax-size-negative-dir', paxEntry([['size', '-5']]), dir('d/'), END);
  hostile('pax-uid-abc', ...paxFile([['uid', 'abc']]));
  hostile('pax-gid-overflow', ...paxFile([['gid', '99999999999999999999']]));
  for (const [label, value] of [
    ['leading-dot', '.5'],
    ['two-dots', '1.2.3'],
    ['letters', '12a'],
    ['empty-seconds-neg', '-.5'],
    ['fraction-sign', '1.-5'],
  ] as const) {
    hostile(`pax-mtime-${label}`, ...paxFile([['mtime', value]]));
  }
  const badRecords: Array<[string, string | Buffer]> = [
    ['short-length', '0005 a=b\n'],
    ['length-4', '4 a\n'],
    ['length-zero', '0 a=b\n'],
    ['length-negative', '-9 a=b\n'],
    ['length-huge', '99999999999999999999 a=b\n'],
    ['length-past-body', '20 a=b\n'],
    ['length-short-of-record', '6 a=bc\n'],
    ['no-space', '10path=x\n'],
    ['no-newline', '9 path=ab'],
    ['no-equals', '9 pathab\n'],
    ['empty-key', '6 =ab\n'],
    ['trailing-nuls', Buffer.concat([paxRecord('path', 'x'), Buffer.alloc(10)])],
    ['nul-in-path', Buffer.concat([paxRecord('path', 'a\0b')])],
    ['nul-in-linkpath', paxRecord('linkpath', 'a\0b')],
    ['nul-in-uname', paxRecord('uname', 'a\0b')],
    ['nul-in-key', paxRecord('ke\0y', 'v')],
    ['garbage', seededBytes(19, 300)],
    ['length-hex', '0xa a=bcd\n'],
    ['length-space-first', ' 9 a=bcd\n'],
  ];
  for (const [label, body] of badRecords) {
    hostile(`pax-record-${label}`, paxEntry(Buffer.from(body as string, typeof body === 'string' ? 'latin1' : undefined)), file('raw', 'x'), END);
  }
  hostile('pax-sparse-offset-alone', ...paxFile([['GNU.sparse.numbytes', '5']]));
  hostile('pax-sparse-offset-comma', ...paxFile([['GNU.sparse.offset', '1,2']]));

  // --- limits ---------------------------------------------------------------------
  const MiB = 1 << 20;
  hostile('pax-body-over-1mib', paxEntry([['comment', 'c'.repeat(MiB)]]), file('raw', 'x'), END);
  valid('pax-body-just-under-1mib', paxEntry(Buffer.concat([paxRecord('comment', 'c'.repeat(MiB - 20)), Buffer.from('')]).subarray(0, MiB)), file('raw', 'x'), END);
  hostile('gnu-longname-over-1mib', gnuLong('L', 'n'.repeat(MiB + 1)), file('raw', 'x', { format: 'gnu' }), END);
  hostile('pax-size-huge-truncated', headerBlock({ name: 'x', typeflag: 'x', size: 5000 * MiB }), Buffer.alloc(4096));
  hostile('pax-size-over-1mib-truncated', headerBlock({ name: 'x', typeflag: 'x', size: 2 * MiB }), Buffer.alloc(MiB / 2));
  hostile('pax-size-base256-huge', headerBlock({ name: 'x', typeflag: 'x', size: (1n << 62n) }), Buffer.alloc(MiB + 512));

  // --- numbers ----------------------------------------------------------------
  valid('base256-size', file('f', 'base256 body', { size: 12n }), END);
  valid('base256-uid-gid-mtime', file('f', 'x', { uid: 0x7fffffffn, gid: 1n << 40n, mtime: -1n }), END);
  valid('base256-mode-negative', file('f', 'x', { mode: -1n }), END);
  valid('base256-negative-size-dir', dir('d/', { size: -1n }), END);
  valid('base256-devs', file('c', '', { typeflag: '3', devmajor: 1n << 33n, devminor: 5n }), END);
  valid('octal-leading-spaces', file('f', 'x', { mode: '  644  ', uid: ' 0\0', size: '   1 ' }), END);
  valid('octal-no-terminator', file('f', 'x', { uid: '77777777', gid: '12345670' }), END);
  valid('octal-text-after-nul', file('f', 'x', { mode: '644\0zz' }), END);
  valid('octal-all-blank', file('f', '', { uid: '        ', size: '\0\0\0\0' }), END);
  hostile('octal-digit-8', file('f', 'x', { mode: '0000648' }), END);
  hostile('octal-inner-space', file('f', 'x', { uid: '12 34' }), END);
  hostile('octal-sign', file('f', 'x', { gid: '+1234' }), END);
  hostile('octal-0x', file('f', 'x', { size: '0x10' }), END);
  hostile('octal-bad-mtime', file('f', 'x', { mtime: 'yesterday' }), END);
  hostile('octal-bad-devmajor-ustar', file('f', 'x', { devmajor: 'zz' }), END);
  valid('octal-bad-devmajor-v7-unread', file('f', 'x', { format: 'v7', edit: (b) => b.write('zz', 329, 'latin1') }), END);
  hostile('size-negative-regular', file('f', 'x', { size: -1n }), END);
  hostile('size-negative-raw-with-pax-size', paxEntry([['size', '1']]), headerBlock({ name: 'f', size: -1n }), padded('x'), END);
  hostile('base256-overflow', file('f', 'x', { size: Buffer.from([0x80, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) }), END);
  hostile('base256-size-2-40-short', headerBlock({ name: 'f', size: 1n << 40n }), Buffer.alloc(2048, 0x41));
  hostile('base256-size-2-63', headerBlock({ name: 'f', size: Buffer.from([0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0]) }), END);
  diverges('base256-dir-size-2-60', 'sizes past 2^53 are refused', dir('d/', { size: 1n << 60n }), END);
  diverges('base256-uid-2-55', 'ids past 2^53 are refused', file('f', 'x', { uid: 1n << 55n }), END);
  diverges('pax-uid-2-60', 'ids past 2^53 are refused', ...paxFile([['uid', String(2n ** 60n)]]));

  // --- header-only types and sizes -------------------------------------------------
  hostile('symlink-size-100-no-body', file('sl', '', { typeflag: '2', linkname: 't', size: 100 }), END);
  hostile('dir-size-with-body', entry({ name: 'd/', typeflag: '5', size: 600 }, seededBytes(3, 600)), file('after', 'x'), END);
  hostile('symlink-size-with-zero-body', entry({ name: 's', typeflag: '2', linkname: 't', size: 512 }, Buffer.alloc(512)), file('hidden', 'never read'), END);
  hostile('fifo-size-body-is-header', headerBlock({ name: 'fifo', typeflag: '6', size: 512 }), file('smuggled', 'read as the next header'), END);
  hostile('hardlink-size-body-is-header', headerBlock({ name: 'l', typeflag: '1', linkname: 'x', size: 1024 }), file('smuggled', 'x'), END);
  for (const t of ['7', 'D', 'Z', 'V', 'M', 'N', 'A']) hostile(`type-${t}-with-body`, file(`t${t}`, `body of ${t}`, { typeflag: t }), END);
  valid('rega-trailing-slash-is-dir', file('d/', '', { typeflag: 0 }), END);
  valid('reg-trailing-slash-stays-file', file('f/', 'x', { typeflag: '0' }), END);
  valid('rega-trailing-slash-from-pax', paxEntry([['path', 'paxdir/']]), file('f', '', { typeflag: 0 }), END);
  valid('rega-trailing-slash-from-longname', gnuLong('L', 'gnudir/'), file('f', '', { typeflag: 0, format: 'gnu' }), END);

  // --- checksums and magic ------------------------------------------------------------
  valid('checksum-signed', file('f\xe9\xff', 'x', { checksum: 'signed' }), END);
  valid('checksum-odd-format', file('f', 'x', { edit: (b) => b.write('x', 0, 'latin1') }), END);
  hostile('checksum-wrong', file('f', 'x', { checksum: 'wrong' }), END);
  hostile('checksum-zero', file('f', 'x', { checksum: 'zero' }), END);
  hostile('checksum-not-octal', file('f', 'x', { checksum: '12345z\0 ' }), END);
  valid('magic-gnu-bad-version-is-v7', file('f', 'x', { format: 'gnu', uname: 'unread', edit: (b) => b.write('00', 263, 'latin1') }), END);
  valid('gnu-times', file('f', 'x', { format: 'gnu', atime: 1_600_000_010, ctime: 1_600_000_020 }), END);
  valid('gnu-bad-atime-tolerated', file('f', 'x', { format: 'gnu', atime: 'bad', edit: (b) => b.write('pre', 400, 'latin1') }), END);
  valid('gnu-bad-ctime-prefix-ascii', file('f', 'x', { format: 'gnu', ctime: 'x', edit: (b) => b.write('ascii', 345 + 20, 'latin1') }), END);
  valid('gnu-bad-atime-prefix-nonascii', file('f', 'x', { format: 'gnu', atime: '\xff', edit: (b) => b.write('pre', 400, 'latin1') }), END);
  hostile('star-bad-atime', file('f', 'x', { format: 'star', atime: 'bad' }), END);
  valid('ustar-non-ascii-fields', file('f', 'x', { uname: 'ü', gname: '\xff' }), END);

  // --- end of archive -------------------------------------------------------------------
  valid('empty-stream');
  valid('end-marker-only', END);
  valid('no-end-marker', file('f', 'x'));
  valid('one-zero-block', file('f', 'x'), Buffer.alloc(512));
  valid('no-final-padding', headerBlock({ name: 'f', size: 3 }), Buffer.from('abc'));
  valid('partial-padding', headerBlock({ name: 'f', size: 3 }), Buffer.from('abc'), Buffer.alloc(100));
  valid('junk-after-end', file('f', 'x'), END, seededBytes(5, 3000));
  valid('junk-header-after-end', file('f', 'x'), END, file('hidden', 'never read'));
  hostile('zero-block-then-header', file('f', 'x'), Buffer.alloc(512), file('after', 'y'), END);
  hostile('zero-block-then-partial', file('f', 'x'), Buffer.alloc(512), Buffer.alloc(100));
  hostile('partial-header', file('f', 'x'), headerBlock({ name: 'g' }).subarray(0, 300));
  hostile('partial-zero-block', file('f', 'x'), Buffer.alloc(100));
  hostile('truncated-body', headerBlock({ name: 'f', size: 2000 }), seededBytes(6, 1000));
  hostile('truncated-pax-body', headerBlock({ name: 'x', typeflag: 'x', size: 100 }), Buffer.from('30 path='));
  hostile('truncated-longname', headerBlock({ name: '././@LongLink', typeflag: 'L', format: 'gnu', size: 100 }), Buffer.from('abc'));
  hostile('garbage-only', seededBytes(7, 4096));
  hostile('garbage-after-file', file('f', 'x'), seededBytes(8, 512));
  hostile('text-file-not-tar', Buffer.from('this is not a tar archive\n'.repeat(40)));

  // --- bodies -------------------------------------------------------------------------
  valid('body-100k-random', file('big', seededBytes(9, 100_000)), file('after', 'x'), END);
  valid('body-exact-block', file('block', seededBytes(10, 512)), END);
  valid('body-empty', file('empty', ''), END);

  // --- sparse ----------------------------------------------------------------------------
  const dense = (n: number): Buffer => seededBytes(11 + n, n);
  valid('sparse-old-gnu', file('s', dense(1024), { format: 'gnu', typeflag: 'S', realsize: 10_000, sparse: [[0, 512], [8192, 512]] }), END);
  valid(
    'sparse-old-gnu-extended',
    headerBlock({ name: 's', format: 'gnu', typeflag: 'S', size: 6 * 10, realsize: 100_000, sparse: [[0, 10], [1000, 10], [2000, 10], [3000, 10]], extended: true }),
    (() => {
      const ext = Buffer.alloc(512);
      const put = (i: number, o: number, l: number): void => {
        ext.write(`${o.toString(8).padStart(11, '0')}\0`, i * 24, 'latin1');
        ext.write(`${l.toString(8).padStart(11, '0')}\0`, i * 24 + 12, 'latin1');
      };
      put(0, 4000, 10);
      put(1, 99_990, 10);
      return ext;
    })(),
    padded(dense(60)),
    END,
  );
  valid('sparse-old-gnu-no-entries', file('s', '', { format: 'gnu', typeflag: 'S', realsize: 5000 }), END);
  hostile('sparse-old-gnu-not-gnu-format', file('s', dense(10), { typeflag: 'S', realsize: 100 }), END);
  hostile('sparse-old-gnu-ext-truncated', headerBlock({ name: 's', format: 'gnu', typeflag: 'S', size: 0, realsize: 100, sparse: [[0, 0]], extended: true }), Buffer.alloc(100, 1));
  hostile('sparse-old-gnu-overlap', file('s', dense(20), { format: 'gnu', typeflag: 'S', realsize: 100, sparse: [[0, 10], [5, 10]] }), END);
  hostile('sparse-old-gnu-past-size', file('s', dense(20), { format: 'gnu', typeflag: 'S', realsize: 15, sparse: [[10, 20]] }), END);
  hostile('sparse-old-gnu-missing-data', file('s', dense(10), { format: 'gnu', typeflag: 'S', realsize: 100, sparse: [[0, 20]] }), END);
  hostile('sparse-old-gnu-unreferenced-data', file('s', dense(30), { format: 'gnu', typeflag: 'S', realsize: 100, sparse: [[0, 20]] }), END);
  hostile('sparse-old-gnu-bad-realsize', file('s', '', { format: 'gnu', typeflag: 'S', realsize: 'zz' }), END);
  const sparse00: Array<[string, string]> = [
    ['GNU.sparse.size', '50000'],
    ['GNU.sparse.numblocks', '2'],
    ['GNU.sparse.offset', '0'],
    ['GNU.sparse.numbytes', '100'],
    ['GNU.sparse.offset', '40000'],
    ['GNU.sparse.numbytes', '200'],
    ['GNU.sparse.name', 'sparse/real-name'],
  ];
  valid('sparse-pax-0.0', paxEntry(sparse00), file('GNUSparseFile.0/x', dense(300)), END);
  valid('sparse-pax-0.1', paxEntry([['GNU.sparse.realsize', '9000'], ['GNU.sparse.numblocks', '2'], ['GNU.sparse.map', '10,5,8000,1000'], ['GNU.sparse.name', 'n01']]), file('x', dense(1005)), END);
  valid('sparse-pax-0.1-versioned', paxEntry([['GNU.sparse.major', '0'], ['GNU.sparse.minor', '1'], ['GNU.sparse.size', '100'], ['GNU.sparse.numblocks', '0'], ['GNU.sparse.map', '']]), file('x', ''), END);
  const map10 = padded('2\n0\n100\n5000\n50\n');
  valid('sparse-pax-1.0', paxEntry([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.realsize', '6000'], ['GNU.sparse.name', 'one-oh']]), file('x', Buffer.concat([map10, dense(150)])), END);
  valid('sparse-pax-unknown-version', paxEntry([['GNU.sparse.major', '2'], ['GNU.sparse.minor', '0'], ['GNU.sparse.map', '0,1']]), file('plain', 'x'), END);
  hostile('sparse-pax-1.0-map-truncated', paxEntry([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.realsize', '6000']]), file('x', Buffer.from('2\n0\n100\n')), END);
  hostile('sparse-pax-1.0-bad-count', paxEntry([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.realsize', '6000']]), file('x', padded('x\n')), END);
  hostile('sparse-pax-1.0-bad-entry', paxEntry([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.realsize', '6000']]), file('x', padded('1\n0\nabc\n')), END);
  hostile('sparse-pax-1.0-huge-count', paxEntry([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.realsize', '6000']]), file('x', padded('4611686018427387904\n')), END);
  hostile('sparse-pax-0.1-count-mismatch', paxEntry([['GNU.sparse.numblocks', '3'], ['GNU.sparse.map', '0,1']]), file('x', 'a'), END);
  hostile('sparse-pax-0.1-bad-number', paxEntry([['GNU.sparse.numblocks', '1'], ['GNU.sparse.map', '0,x']]), file('x', 'a'), END);
  hostile('sparse-pax-bad-size', paxEntry([['GNU.sparse.size', '0x10'], ['GNU.sparse.numblocks', '0'], ['GNU.sparse.map', ',']]), file('x', ''), END);
  hostile('sparse-pax-on-symlink', paxEntry([['GNU.sparse.numblocks', '1'], ['GNU.sparse.map', '0,1']]), file('s', '', { typeflag: '2', linkname: 't' }), END);
  hostile('sparse-pax-missing-data', paxEntry([['GNU.sparse.size', '100'], ['GNU.sparse.numblocks', '1'], ['GNU.sparse.map', '0,50']]), file('x', dense(20)), END);
  hostile('sparse-pax-unreferenced-data', paxEntry([['GNU.sparse.size', '100'], ['GNU.sparse.numblocks', '1'], ['GNU.sparse.map', '0,10']]), file('x', dense(20)), END);
  hostile('sparse-pax-huge-hole', paxEntry([['GNU.sparse.size', String(1n << 40n)], ['GNU.sparse.numblocks', '1'], ['GNU.sparse.map', '0,1']]), file('x', 'a'), END);
  hostile('sparse-pax-truncated-dense', paxEntry([['GNU.sparse.size', '100'], ['GNU.sparse.numblocks', '1'], ['GNU.sparse.map', '0,50']]), headerBlock({ name: 'x', size: 50 }), dense(30));

  // --- moby-level oddities that parse fine ---------------------------------------------------
  hostile('xattr-security-capability-on-dir', paxEntry([['SCHILY.xattr.security.capability', CAP_V2]]), dir('d/'), END);
  hostile('device-nodes', file('dev/sda', '', { typeflag: '4', devmajor: 8, devminor: 0 }), file('dev/mem', '', { typeflag: '3', devmajor: 1, devminor: 1 }), END);
  hostile('setuid-root-file', file('bin/su', '#!/bin/sh\n', { mode: 0o4755 }), END);
  hostile('mtime-far-future-past', file('a', 'x', { mtime: 1n << 40n }), file('b', 'x', { mtime: -(1n << 40n) }), END);

  // --- paths an applier must keep inside the layer -------------------------------------------
  hostile('pax-path-over-path-max', ...paxFile([['path', `${'d/'.repeat(2100)}f`]]));
  hostile('name-component-over-name-max', ...paxFile([['path', `a/${'n'.repeat(300)}`]]));
  hostile('deep-nesting', ...Array.from({ length: 60 }, (_, i) => dir(`${'x/'.repeat(i + 1)}`)), file(`${'x/'.repeat(60)}f`, 'deep'), END);
  hostile('symlink-loop-then-file', file('a', '', { typeflag: '2', linkname: 'b' }), file('b', '', { typeflag: '2', linkname: 'a' }), file('a/x', 'loop'), END);
  hostile('symlink-dotdot-then-file', file('up', '', { typeflag: '2', linkname: '..' }), file('up/escaped', 'x'), END);
  hostile('symlink-chain-escape', file('s1', '', { typeflag: '2', linkname: 's2/..' }), file('s2', '', { typeflag: '2', linkname: '../..' }), file('s1/x', 'x'), END);
  hostile('hardlink-to-escaping-symlink', file('s', '', { typeflag: '2', linkname: '/etc/passwd' }), file('h', '', { typeflag: '1', linkname: 's' }), END);
  hostile('hardlink-through-symlinked-dir', file('d', '', { typeflag: '2', linkname: '/etc' }), file('h', '', { typeflag: '1', linkname: 'd/passwd' }), END);
  hostile('whiteout-through-symlinked-dir', file('d', '', { typeflag: '2', linkname: '/etc' }), file('d/.wh.passwd', ''), END);
  hostile('opaque-through-symlinked-dir', file('d', '', { typeflag: '2', linkname: '/' }), file('d/.wh..wh..opq', ''), END);
  hostile('file-over-fifo', file('p', '', { typeflag: '6' }), file('p', 'now a file'), END);
  hostile('dir-mode-000-then-child', dir('locked/', { mode: 0 }), file('locked/f', 'x'), END);
  hostile('xattr-other-namespaces', ...paxFile([['SCHILY.xattr.trusted.k', 'v'], ['SCHILY.xattr.security.selinux', 'system_u:object_r:etc_t:s0'], ['SCHILY.xattr.system.posix_acl_access', 'x']]));
  hostile('setuid-setgid-sticky-dir', dir('s/', { mode: 0o7777 }), END);
  hostile('many-entries', ...Array.from({ length: 2000 }, (_, i) => file(`many/${i}`, String(i))), END);
  hostile('uid-gid-huge-32bit', file('f', 'x', { uid: 0xfffffffen, gid: 0xffffffffn }), END);

  const names = new Set<string>();
  for (const t of corpus) {
    if (names.has(t.name)) throw new Error(`tar corpus: duplicate name ${t.name}`);
    names.add(t.name);
  }
  return corpus;
}
