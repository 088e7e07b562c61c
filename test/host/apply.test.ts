// ApplyDiff's tar engine on plain directories (root needed for owners,
// device nodes and trusted xattrs): every kind of entry, AUFS whiteouts,
// and tars that try to write outside the layer.
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fs as kfs } from '../../src/devmapper';
import { applyTar } from '../../src/graphdriver/apply';
import { paxHeaderEntry, paxRecord } from '../../src/graphdriver/pax-header';
import { requireRoot } from '../support/env';
import { makeTar as makeTarBuffer, type TarEntry } from '../support/tar';
import { endMarker, entry as blockEntry, paxEntry, tarOf } from '../support/tar-blocks';
import { treeState } from '../support/tree-state';

/** A layer tar as the stream ApplyDiff receives. */
function makeTar(entries: TarEntry[]): Readable {
  return Readable.from((async function* () {
    yield await makeTarBuffer(entries);
  })());
}

describe('ApplyDiff tar engine (root)', function () {
  let root = '';
  let outside = '';

  before(function () {
    requireRoot(this);
  });

  beforeEach(async () => {
    const top = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-apply-'));
    root = path.join(top, 'layer');
    outside = path.join(top, 'outside');
    await fsp.mkdir(root);
    await fsp.mkdir(outside);
  });

  afterEach(async () => {
    await fsp.rm(path.dirname(root), { recursive: true, force: true });
  });

  it('unpacks every kind of entry with owners, modes, xattrs and times, and sums the sizes', async () => {
    const mtime = new Date(1_500_000_000_000);
    const size = await applyTar(
      root,
      makeTar([
        { name: 'etc/', type: 'directory', mode: 0o755, mtime },
        { name: 'etc/passwd', body: 'root:x:0:0\n', mode: 0o644, uid: 0, gid: 0 },
        { name: 'bin/', type: 'directory', mode: 0o755 },
        { name: 'bin/su', body: 'ELF', mode: 0o4755, uid: 0, gid: 0 },
        { name: 'bin/ping', body: 'ELF2', mode: 0o755, pax: { 'SCHILY.xattr.user.note': 'hello' } },
        { name: 'tmp/', type: 'directory', mode: 0o1777 },
        { name: 'home/u/', type: 'directory', mode: 0o750, uid: 1000, gid: 1000 },
        { name: 'home/u/f', body: 'mine', mode: 0o2640, uid: 1000, gid: 100 },
        { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
        { name: 'bin/hard', type: 'link', linkname: 'bin/su', mode: 0o4755 }, // a link entry describes the inode too
        { name: 'run/fifo', type: 'fifo', mode: 0o600 },
        { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      ]),
    );
    assert.equal(size, 'root:x:0:0\n'.length + 3 + 4 + 4);
    assert.equal(await fsp.readFile(path.join(root, 'etc/passwd'), 'utf8'), 'root:x:0:0\n');
    assert.equal((await fsp.stat(path.join(root, 'bin/su'))).mode & 0o7777, 0o4755);
    assert.equal((await fsp.stat(path.join(root, 'tmp'))).mode & 0o7777, 0o1777);
    const f = await fsp.stat(path.join(root, 'home/u/f'));
    assert.deepEqual([f.uid, f.gid, f.mode & 0o7777], [1000, 100, 0o2640]);
    assert.equal((await kfs.lgetxattr(path.join(root, 'bin/ping'), 'user.note')).toString(), 'hello');
    assert.equal(await fsp.readlink(path.join(root, 'bin/sh')), 'busybox');
    assert.equal((await fsp.stat(path.join(root, 'bin/hard'))).ino, (await fsp.stat(path.join(root, 'bin/su'))).ino);
    assert.ok((await fsp.stat(path.join(root, 'run/fifo'))).isFIFO());
    assert.equal((await fsp.stat(path.join(root, 'dev/null'))).rdev, 0x103);
    assert.equal((await fsp.stat(path.join(root, 'etc'))).mtimeMs, mtime.getTime(), 'directory times are set after their children');
    assert.equal((await fsp.lstat(path.join(root, 'etc/passwd'))).mtimeMs, 1_600_000_000_000);
  });

  it('keeps a binary security.capability value byte for byte, from a PAX record', async () => {
    // cap_net_raw+ep as Go's archive/tar writes it: raw bytes in the record.
    const capability = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const rest = await makeTarBuffer([
      { name: 'bin/ping', body: 'ELF', mode: 0o755 },
      { name: 'bin/other', body: 'x', mode: 0o755 },
    ]);
    const fixed = Buffer.concat([paxHeaderEntry(paxRecord('SCHILY.xattr.security.capability', capability)), rest]);
    await applyTar(root, Readable.from([fixed]));
    assert.deepEqual(await kfs.lgetxattr(path.join(root, 'bin/ping'), 'security.capability'), capability);
    await assert.rejects(kfs.lgetxattr(path.join(root, 'bin/other'), 'security.capability'), { code: 'ENODATA' }, 'the record belongs to one entry only');
  });

  it('applies AUFS whiteouts: a file, a directory, and an opaque directory that keeps what this layer adds', async () => {
    await applyTar(root, makeTar([
      { name: 'a/', type: 'directory', mode: 0o755 },
      { name: 'a/keep', body: '1' },
      { name: 'a/gone', body: '2' },
      { name: 'b/', type: 'directory', mode: 0o755 },
      { name: 'b/deep/x', body: '3' },
      { name: 'c/', type: 'directory', mode: 0o755 },
      { name: 'c/old', body: '4' },
    ]));
    await applyTar(root, makeTar([
      { name: 'a/.wh.gone', body: '' },
      { name: '.wh.b', body: '' },
      { name: 'c/', type: 'directory', mode: 0o755 },
      { name: 'c/new', body: '5' },
      { name: 'c/.wh..wh..opq', body: '' },
    ]));
    assert.deepEqual((await fsp.readdir(path.join(root, 'a'))).sort(), ['keep']);
    assert.equal(existsSync(path.join(root, 'b')), false);
    assert.deepEqual(await fsp.readdir(path.join(root, 'c')), ['new']);
  });

  it('replaces entries of another type, and hard-links to files of lower layers', async () => {
    await applyTar(root, makeTar([{ name: 'x/', type: 'directory', mode: 0o755 }, { name: 'x/inner', body: 'i' }, { name: 'lower', body: 'L' }]));
    await applyTar(root, makeTar([{ name: 'x', body: 'now a file' }, { name: 'up', type: 'link', linkname: 'lower' }]));
    assert.equal(await fsp.readFile(path.join(root, 'x'), 'utf8'), 'now a file');
    assert.equal((await fsp.stat(path.join(root, 'up'))).ino, (await fsp.stat(path.join(root, 'lower'))).ino);
  });

  it('reads ".." as dockerd does in its chroot, stopping at the layer root: "../x" lands at "/x" inside it', async () => {
    const before = treeState(path.dirname(root), 'layer');
    await applyTar(root, makeTar([
      { name: '../outside/evil', body: 'x' },
      { name: 'a/../../outside/evil2', body: 'y' },
      { name: '..', type: 'directory', mode: 0o751 },
      { name: 'h', type: 'link', linkname: '../../outside/evil' },
      { name: '/abs/file', body: 'in' },
    ]));
    assert.deepEqual(treeState(path.dirname(root), 'layer').filter((l) => !l.startsWith('"layer"')), before.filter((l) => !l.startsWith('"layer"')), 'nothing outside the layer changed');
    assert.equal(await fsp.readFile(path.join(root, 'outside/evil'), 'utf8'), 'x');
    assert.equal(await fsp.readFile(path.join(root, 'outside/evil2'), 'utf8'), 'y');
    assert.equal((await fsp.stat(path.join(root, 'h'))).ino, (await fsp.stat(path.join(root, 'outside/evil'))).ino);
    assert.equal(await fsp.readFile(path.join(root, 'abs/file'), 'utf8'), 'in');
    assert.equal((await fsp.stat(root)).mode & 0o7777, 0o751, '".." as a directory entry is the root\'s metadata');
  });

  it('keeps every write inside the layer through symlinked parents, absolute or relative', async () => {
    await applyTar(root, makeTar([
      { name: 'escape', type: 'symlink', linkname: outside },
      { name: 'escape/evil', body: 'x' },
      { name: 'rel', type: 'symlink', linkname: '../../../../outside' },
      { name: 'rel/evil2', body: 'y' },
      { name: 'gone', type: 'symlink', linkname: 'missing/../../../outside' },
      { name: 'gone/evil3', body: 'z' },
    ]));
    assert.deepEqual(await fsp.readdir(outside), [], 'nothing was written outside the layer');
    assert.equal(await fsp.readFile(path.join(root, outside, 'evil'), 'utf8'), 'x');
    assert.equal(await fsp.readFile(path.join(root, 'outside', 'evil2'), 'utf8'), 'y');
    assert.equal(await fsp.readFile(path.join(root, 'outside', 'evil3'), 'utf8'), 'z');
    assert.equal(await fsp.readlink(path.join(root, 'escape')), outside, 'the symlink itself is kept as it was');
  });

  describe('refuses entries that would delete or replace the layer root or what is above it, changing nothing', () => {
    const cases: Array<[string, TarEntry, RegExp]> = [
      ['whiteout of an empty name', { name: '.wh.', body: '' }, /entry #1 "\.wh\.": is a whiteout of an empty name, which would delete its own directory/],
      ['whiteout of "."', { name: '.wh..', body: '' }, /entry #1 "\.wh\.\.": is a whiteout of "\.", which would delete its own directory/],
      ['whiteout of ".."', { name: '.wh...', body: '' }, /entry #1 "\.wh\.\.\.": is a whiteout of "\.\.", which would delete the directory above it/],
      ['whiteout of ".." below a directory', { name: 'lower/.wh...', body: '' }, /entry #1 "lower\/\.wh\.\.\.": is a whiteout of "\.\."/],
      ['whiteout of "." below a directory', { name: 'lower/.wh..', body: '' }, /entry #1 "lower\/\.wh\.\.": is a whiteout of "\."/],
      ['file named "."', { name: '.', body: 'x' }, /entry #1 "\.": names the layer root but has type '0'/],
      ['symlink named ".."', { name: '..', type: 'symlink', linkname: '/' }, /entry #1 "\.\.": names the layer root but has type '2'/],
      ['fifo named "./"', { name: './', type: 'fifo' }, /entry #1 "\.\/": names the layer root but has type '6'/],
      ['hard link to the root', { name: 'l', type: 'link', linkname: '..' }, /entry #1 "l": is a hard link to the layer root/],
      ['hard link to a directory', { name: 'l', type: 'link', linkname: 'lower' }, /entry #1 "l": is a hard link to "lower", which is a directory/],
      ['hard link to nothing', { name: 'l', type: 'link', linkname: 'nothing' }, /entry #1 "l": is a hard link to "nothing", which is not in the layer/],
      ['device number out of range', { name: 'dev/x', type: 'character-device', devmajor: 5000, devminor: 1 }, /entry #1 "dev\/x": has device numbers 5000,1; Linux takes majors 0 to 4095/],
      ['contiguous file', { name: 'c', type: 'contiguous-file', body: 'x' }, /entry #1 "c": has type '7', which dockerd does not apply either \(unhandled tar header type 55\)/],
    ];
    for (const [what, entry, message] of cases) {
      it(what, async () => {
        await applyTar(root, makeTar([{ name: 'lower/', type: 'directory', mode: 0o755 }, { name: 'lower/f', body: 'lower' }]));
        await fsp.writeFile(path.join(outside, 'sibling'), 'keep');
        const before = treeState(path.dirname(root));
        // The hostile entry comes second, after one that changes nothing visible.
        await assert.rejects(applyTar(root, makeTar([{ name: 'lower/', type: 'directory', mode: 0o755 }, entry])), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'EBADTAR');
          assert.match(err.message, message);
          return true;
        });
        assert.deepEqual(treeState(path.dirname(root)).filter((l) => !l.startsWith('"layer/lower"')), before.filter((l) => !l.startsWith('"layer/lower"')));
        assert.equal(await fsp.readFile(path.join(root, 'lower/f'), 'utf8'), 'lower');
      });
    }
  });

  it('refuses an owner Linux cannot take, naming the entry, before writing anything', async () => {
    const tarBytes = tarOf(blockEntry({ name: 'ok', mode: 0o644 }, 'x'), paxEntry([['uid', '4294967296']]), blockEntry({ name: 'big-uid', mode: 0o644 }, 'y'), endMarker());
    await assert.rejects(applyTar(root, Readable.from([tarBytes])), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EBADTAR');
      assert.match(err.message, /^layer tar entry #1 "big-uid": has uid 4294967296, outside 0 to 4294967294$/);
      return true;
    });
    assert.deepEqual(await fsp.readdir(root), ['ok']);
  });

  it('dates a file from before 1970 or past 2262 at the epoch, as dockerd\'s Chtimes does', async () => {
    await applyTar(root, Readable.from([tarOf(blockEntry({ name: 'future', mtime: 1n << 40n }, 'x'), blockEntry({ name: 'past', mtime: -(1n << 40n) }, 'y'), blockEntry({ name: 'fine', mtime: 1_000_000_000 }, 'z'), endMarker())]));
    assert.equal((await fsp.lstat(path.join(root, 'future'))).mtimeMs, 0);
    assert.equal((await fsp.lstat(path.join(root, 'past'))).mtimeMs, 0);
    assert.equal((await fsp.lstat(path.join(root, 'fine'))).mtimeMs, 1_000_000_000_000);
  });

  it('applies names that are not UTF-8 byte for byte', async () => {
    const name = Buffer.from([0x64, 0xe9, 0xff, 0x2f, 0x66, 0x80]); // "d\xe9\xff/f\x80"
    await applyTar(root, Readable.from([tarOf(blockEntry({ name, mode: 0o600 }, 'latin'), blockEntry({ name: 'link', typeflag: '2', linkname: name }), endMarker())]));
    const [dir] = await fsp.readdir(root, { encoding: 'buffer' }).then((l) => l.filter((n) => n.toString() !== 'link'));
    assert.deepEqual(dir, name.subarray(0, 3));
    assert.deepEqual(await fsp.readdir(Buffer.concat([Buffer.from(`${root}/`), name.subarray(0, 3)]), { encoding: 'buffer' }), [name.subarray(4)]);
    assert.equal((await fsp.readFile(Buffer.concat([Buffer.from(`${root}/`), name]))).toString(), 'latin');
    assert.deepEqual(await fsp.readlink(path.join(root, 'link'), { encoding: 'buffer' }), name);
  });

  it('says which entry a truncated tar broke in, and drains the input rather than destroying it', async () => {
    const whole = tarOf(blockEntry({ name: 'a' }, 'x'), blockEntry({ name: 'b' }, 'y'.repeat(1000)), endMarker());
    const input = Readable.from([whole.subarray(0, 1024 + 600)]);
    await assert.rejects(applyTar(root, input), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EBADTAR');
      assert.match(err.message, /"b"/);
      return true;
    });
    assert.equal(input.destroyed && !input.readableEnded, false, 'read to its end');
  });

  it('reports a stream that breaks off as EBADTAR, not as a raw stream error', async () => {
    const input = new Readable({ read() {} });
    input.push(tarOf(blockEntry({ name: 'a' }, 'x')));
    setImmediate(() => input.destroy(new Error('aborted')));
    await assert.rejects(applyTar(root, input), { code: 'EBADTAR', message: /the layer tar stream broke off after 1024 bytes: aborted/ });
  });

  it('applies a PAX global header as dockerd 20.10 does: nothing made, a path of its name removed', async () => {
    await applyTar(root, makeTar([{ name: 'pax_global_header', body: 'lower' }, { name: 'keep', body: 'k' }]));
    const size = await applyTar(root, Readable.from([tarOf(paxEntry([['comment', 'abc']], { name: 'pax_global_header', typeflag: 'g' }), blockEntry({ name: 'f' }, 'x'), endMarker())]));
    assert.deepEqual((await fsp.readdir(root)).sort(), ['f', 'keep']);
    assert.equal(size, 1, 'Go returns it with Size 0, so only the file counts, as in dockerd');
  });

  it('keeps the holes of a sparse file, and refuses one larger than the space left with ENOSPC', async () => {
    const sparse = (size: bigint): Buffer => tarOf(paxEntry([['GNU.sparse.size', String(size)], ['GNU.sparse.numblocks', '1'], ['GNU.sparse.map', '0,5']]), blockEntry({ name: 's' }, 'dense'), endMarker());
    await applyTar(root, Readable.from([sparse(10n * 1024n * 1024n)]));
    const st = await fsp.stat(path.join(root, 's'));
    assert.equal(st.size, 10 * 1024 * 1024);
    assert.ok(st.blocks * 512 < 1024 * 1024, `${st.blocks} blocks: the hole takes no space`);
    assert.equal((await fsp.readFile(path.join(root, 's'))).subarray(0, 6).toString('latin1'), 'dense\0');
    await assert.rejects(applyTar(root, Readable.from([sparse(1n << 50n)])), { code: 'ENOSPC', message: /entry #0 "s" is a file of 1125899906842624 bytes, more than the \d+ bytes left in the layer/ });
  });

  it('turns hard links into AUFS\'s .wh..wh.plnk into copies of the stashed file, as dockerd does', async () => {
    await applyTar(root, makeTar([
      { name: '.wh..wh.plnk/', type: 'directory', mode: 0o700 },
      { name: '.wh..wh.plnk/1234.5678', body: 'stashed', mode: 0o750, uid: 1000, gid: 100 },
      { name: 'bin/copy', type: 'link', linkname: '.wh..wh.plnk/1234.5678', mode: 0o644 },
    ]));
    const copy = await fsp.stat(path.join(root, 'bin/copy'));
    assert.deepEqual([copy.mode & 0o7777, copy.uid, copy.gid, copy.nlink], [0o750, 1000, 100, 1], 'the stashed file\'s header, a file of its own');
    assert.equal(await fsp.readFile(path.join(root, 'bin/copy'), 'utf8'), 'stashed');
    assert.deepEqual(await fsp.readdir(path.join(root, '.wh..wh.plnk')), [], 'the stash directory stays empty, as dockerd leaves it');
    await assert.rejects(applyTar(root, makeTar([{ name: 'l', type: 'link', linkname: '.wh..wh.plnk/9.9' }])), {
      code: 'EBADTAR',
      message: /entry #0 "l": is a hard link into AUFS's \.wh\.\.wh\.plnk to a file the tar did not have before it/,
    });
  });

  it('still applies whiteouts and opaque directories at the top of the layer', async () => {
    await applyTar(root, makeTar([{ name: 'a', body: '1' }, { name: 'b', body: '2' }]));
    await applyTar(root, makeTar([{ name: '.wh.a', body: '' }, { name: 'c', body: '3' }]));
    assert.deepEqual((await fsp.readdir(root)).sort(), ['b', 'c']);
    await applyTar(root, makeTar([{ name: 'd', body: '4' }, { name: '.wh..wh..opq', body: '' }]));
    assert.deepEqual(await fsp.readdir(root), ['d']);
    assert.deepEqual(await fsp.readdir(outside), []);
  });

  it('stays inside the layer when a directory it wrote through becomes a symlink later in the same tar', async () => {
    const old = new Date(1_000_000_000_000);
    await fsp.utimes(outside, old, old);
    await applyTar(root, makeTar([
      { name: 'd/', type: 'directory', mode: 0o755 },
      { name: 'd/first', body: '1' },
      { name: 'd', type: 'symlink', linkname: outside },
      { name: 'd/second', body: '2' },
      { name: 'w/', type: 'directory', mode: 0o755 },
      { name: 'w/first', body: '1' },
      { name: '.wh.w', body: '' },
      { name: 'w', type: 'symlink', linkname: '../../outside' },
      { name: 'w/second', body: '2' },
    ]));
    assert.deepEqual(await fsp.readdir(outside), [], 'nothing was written outside the layer');
    assert.equal((await fsp.stat(outside)).mtimeMs, old.getTime(), 'nor dated through the symlink');
    assert.equal(await fsp.readFile(path.join(root, outside, 'second'), 'utf8'), '2');
    assert.equal(await fsp.readFile(path.join(root, 'outside', 'second'), 'utf8'), '2');
  });

  it('writes bodies on either side of the streaming threshold whole', async () => {
    const small = 'a'.repeat(1024 * 1024);
    const large = 'b'.repeat(1024 * 1024 + 1);
    const size = await applyTar(root, makeTar([{ name: 'small', body: small }, { name: 'large', body: large }, { name: 'empty', body: '' }]));
    assert.equal(size, small.length + large.length);
    assert.equal(await fsp.readFile(path.join(root, 'small'), 'utf8'), small);
    assert.equal(await fsp.readFile(path.join(root, 'large'), 'utf8'), large);
    assert.equal((await fsp.stat(path.join(root, 'empty'))).size, 0);
  });

  it('makes a directory the tar skipped as the in-tree driver does: mode 0600, root\'s', async () => {
    await applyTar(root, makeTar([{ name: 'opt/implicit/deeper/child', body: 'c', uid: 1000, gid: 1000 }]));
    for (const dir of ['opt', 'opt/implicit', 'opt/implicit/deeper']) {
      const st = await fsp.stat(path.join(root, dir));
      assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o600, 0, 0], dir);
    }
    assert.equal((await fsp.stat(path.join(root, 'opt/implicit/deeper/child'))).uid, 1000);
  });

  it('gives the shared inode the owner, mode and time of a hard link entry, as the in-tree driver does', async () => {
    const late = new Date(1_700_000_000_000);
    await applyTar(root, makeTar([
      { name: 'bin/', type: 'directory', mode: 0o755 },
      { name: 'bin/su', body: 'ELF', mode: 0o755 },
      { name: 'bin/su2', type: 'link', linkname: 'bin/su', mode: 0o4755, uid: 1000, gid: 100, mtime: late },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
      { name: 'bin/sh2', type: 'link', linkname: 'bin/sh', uid: 1000, gid: 100, mode: 0o600, mtime: late },
    ]));
    const su = await fsp.stat(path.join(root, 'bin/su'));
    assert.deepEqual([su.mode & 0o7777, su.uid, su.gid, su.mtimeMs, su.nlink], [0o4755, 1000, 100, late.getTime(), 2]);
    const sh = await fsp.lstat(path.join(root, 'bin/sh'));
    assert.deepEqual([sh.isSymbolicLink(), sh.uid, sh.gid, sh.nlink], [true, 1000, 100, 2], 'a hard link to a symlink takes its owner');
    assert.equal(sh.mtimeMs, 1_600_000_000_000, 'but not its time');
  });

  it('hides lower entries of an opaque directory at any depth, keeping what the tar put there', async () => {
    await applyTar(root, makeTar([
      { name: 'c/', type: 'directory', mode: 0o755 },
      { name: 'c/old', body: 'o' },
      { name: 'c/sub/', type: 'directory', mode: 0o755 },
      { name: 'c/sub/lower', body: 'l' },
    ]));
    await applyTar(root, makeTar([
      { name: 'c/', type: 'directory', mode: 0o755 },
      { name: 'c/sub/', type: 'directory', mode: 0o700 },
      { name: 'c/sub/upper', body: 'u' },
      { name: 'c/.wh..wh..opq', body: '' },
    ]));
    assert.deepEqual(await fsp.readdir(path.join(root, 'c')), ['sub']);
    assert.deepEqual(await fsp.readdir(path.join(root, 'c/sub')), ['upper'], 'the lower file inside a directory the tar re-sent is hidden too');
  });

  it('dates the root directory from its entry, after its children', async () => {
    const mtime = new Date(1_400_000_000_000);
    await applyTar(root, makeTar([{ name: './', type: 'directory', mode: 0o755, mtime }, { name: 'f', body: 'x' }]));
    assert.equal((await fsp.stat(root)).mtimeMs, mtime.getTime());
  });

  it('refuses a NUL smuggled into a name through a PAX path record, writing nothing', async () => {
    await assert.rejects(applyTar(root, makeTar([{ name: 'plain', pax: { path: 'a\u0000b' }, body: 'x' }])), { code: 'EBADTAR' });
    assert.deepEqual(await fsp.readdir(root), []);
  });
});
