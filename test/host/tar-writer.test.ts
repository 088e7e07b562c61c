// The Diff tar writer against Go's archive/tar writer (Go 1.19, dockerd
// 20.10's): for every kind of header Diff writes, the same bytes as
// dockerd's own Diff would put out (test/go/tarwrite).
import assert from 'node:assert/strict';
import { skipBecause } from '../support/env';
import { goMissing } from '../support/go-tarview';
import { goWriteTar, type GoTarEntry } from '../support/go-tarwrite';
import { TarChunks, type TarHeader, type TarType } from '../../src/graphdriver/tar-writer';

const T = 1_600_000_000;
const capability = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const latin1 = (b: Buffer): string => b.toString('latin1');

const CASES: Array<{ what: string; entry: GoTarEntry }> = [
  { what: 'a plain file', entry: { name: 'plain', typeflag: '0', mode: 0o100644, uid: 0, gid: 0, mtime: T, body: Buffer.from('hello') } },
  { what: 'a directory', entry: { name: 'etc/', typeflag: '5', mode: 0o40755, uid: 0, gid: 0, mtime: T } },
  { what: 'setuid, owned', entry: { name: 'usr/bin/su', typeflag: '0', mode: 0o104755, uid: 1000, gid: 50, mtime: T, body: Buffer.alloc(700, 1) } },
  { what: 'a symlink', entry: { name: 'lnk', typeflag: '2', mode: 0o120777, uid: 0, gid: 0, mtime: T, linkname: '../target' } },
  { what: 'a symlink with a long target', entry: { name: 'far', typeflag: '2', mode: 0o120777, uid: 0, gid: 0, mtime: T, linkname: 't/'.repeat(70) } },
  { what: 'a hard link', entry: { name: 'hard', typeflag: '1', mode: 0o100644, uid: 0, gid: 0, mtime: T, linkname: 'plain' } },
  { what: 'a character device', entry: { name: 'dev/null', typeflag: '3', mode: 0o20666, uid: 0, gid: 0, mtime: T, devmajor: 1, devminor: 3 } },
  { what: 'a block device, big minor', entry: { name: 'dev/loop', typeflag: '4', mode: 0o60660, uid: 0, gid: 6, mtime: T, devmajor: 7, devminor: 1048575 } },
  { what: 'a fifo', entry: { name: 'run/fifo', typeflag: '6', mode: 0o10600, uid: 0, gid: 0, mtime: T } },
  { what: 'a name of exactly 100 bytes', entry: { name: 'x'.repeat(100), typeflag: '0', mode: 0o100644, uid: 0, gid: 0, mtime: T } },
  { what: 'a long name split into prefix', entry: { name: `${'d'.repeat(60)}/${'e'.repeat(60)}/file`, typeflag: '0', mode: 0o100644, uid: 0, gid: 0, mtime: T } },
  { what: 'a long name split at the first slash', entry: { name: `a/${'b'.repeat(99)}`, typeflag: '0', mode: 0o100644, uid: 0, gid: 0, mtime: T } },
  { what: 'a long directory name', entry: { name: `${'d'.repeat(60)}/${'e'.repeat(60)}/`, typeflag: '5', mode: 0o40700, uid: 0, gid: 0, mtime: T } },
  { what: 'a long name that cannot split', entry: { name: 'n'.repeat(150), typeflag: '0', mode: 0o100644, uid: 0, gid: 0, mtime: T, body: Buffer.from('long') } },
  { what: 'a prefix too long to split', entry: { name: `${'p'.repeat(200)}/f`, typeflag: '0', mode: 0o100644, uid: 0, gid: 0, mtime: T } },
  { what: 'a long name whose cut ends in a slash', entry: { name: `${'a'.repeat(99)}/${'b'.repeat(150)}`, typeflag: '0', mode: 0o100644, uid: 0, gid: 0, mtime: T } },
  { what: 'a long directory name that cannot split', entry: { name: `${'p'.repeat(200)}/`, typeflag: '5', mode: 0o40755, uid: 0, gid: 0, mtime: T } },
  { what: 'a UTF-8 name', entry: { name: latin1(Buffer.from('etc/café')), typeflag: '0', mode: 0o100644, uid: 0, gid: 0, mtime: T } },
  { what: 'a name that is not UTF-8', entry: { name: latin1(Buffer.from([0x78, 0xe9, 0xff, 0x2f, 0x61])), typeflag: '0', mode: 0o100644, uid: 0, gid: 0, mtime: T } },
  { what: 'a non-ASCII link target', entry: { name: 'lnk2', typeflag: '2', mode: 0o120777, uid: 0, gid: 0, mtime: T, linkname: latin1(Buffer.from('ça')) } },
  { what: 'ids above 07777777', entry: { name: 'ids', typeflag: '0', mode: 0o100600, uid: 3_000_000, gid: 2_097_152, mtime: T } },
  { what: 'the largest ids USTAR holds', entry: { name: 'ids7', typeflag: '0', mode: 0o100600, uid: 2_097_151, gid: 2_097_151, mtime: T } },
  { what: 'a time before 1970', entry: { name: 'old', typeflag: '0', mode: 0o100644, uid: 0, gid: 0, mtime: -86_400 } },
  {
    what: 'binary xattrs',
    entry: { name: 'bin/ping', typeflag: '0', mode: 0o100755, uid: 0, gid: 0, mtime: T, body: Buffer.from('ELF'), xattrs: [['security.capability', capability], ['user.a', Buffer.from([0, 0xff, 0x0a])]] },
  },
  { what: 'xattrs on a directory', entry: { name: 'var/', typeflag: '5', mode: 0o40755, uid: 0, gid: 0, mtime: T, xattrs: [['user.note', Buffer.from('x')]] } },
  {
    what: 'xattrs with a long name and a big uid',
    entry: { name: `${'q'.repeat(120)}/${'r'.repeat(20)}`, typeflag: '0', mode: 0o100644, uid: 4_000_000, gid: 0, mtime: T, xattrs: [['user.z', Buffer.from('z')]] },
  },
  { what: 'a whiteout', entry: { name: 'etc/.wh.hosts', typeflag: '0', mode: 0, uid: 0, gid: 0, mtime: T + 5, whiteout: true } },
];

function dmthinTar(entries: GoTarEntry[]): Buffer {
  const tar = new TarChunks();
  for (const e of entries) {
    const body = e.body ?? Buffer.alloc(0);
    const header: TarHeader = { name: e.name, type: e.typeflag as TarType, mode: e.mode, uid: e.uid, gid: e.gid, size: body.length, mtime: e.mtime, xattrs: e.xattrs ?? null };
    if (e.linkname !== undefined) header.linkname = e.linkname;
    if (e.devmajor !== undefined) header.devmajor = e.devmajor;
    if (e.devminor !== undefined) header.devminor = e.devminor;
    tar.header(header);
    tar.body(body);
    tar.pad(body.length);
  }
  tar.end();
  return Buffer.concat(tar.take());
}

/** Where two tars first differ, in words. */
function firstDifference(ours: Buffer, go: Buffer): string {
  const n = Math.min(ours.length, go.length);
  for (let i = 0; i < n; i++) {
    if (ours[i] !== go[i]) {
      const block = Math.floor(i / 512) * 512;
      return `byte ${i} (offset ${i - block} of the block at ${block}): dmthin ${JSON.stringify(ours.toString('latin1', block, block + 512).replace(/\0+/g, '.'))} vs Go ${JSON.stringify(go.toString('latin1', block, block + 512).replace(/\0+/g, '.'))}`;
    }
  }
  return ours.length === go.length ? '' : `lengths ${ours.length} (dmthin) vs ${go.length} (Go)`;
}

describe("Diff tar writer against Go's archive/tar writer", function () {
  this.timeout(120_000);

  before(function () {
    const missing = goMissing();
    if (missing) skipBecause(this, missing);
  });

  for (const { what, entry } of CASES) {
    it(`writes ${what} byte for byte as dockerd does`, () => {
      assert.equal(firstDifference(dmthinTar([entry]), goWriteTar([entry])), '');
    });
  }

  it('writes them all in one tar byte for byte as dockerd does', () => {
    const all = CASES.map((c) => c.entry);
    assert.equal(firstDifference(dmthinTar(all), goWriteTar(all)), '');
  });
});
