// The native layer scan on real directories: every file type, names that
// are not UTF-8, xattrs, entries that vanish, and a tree of 10,000 entries.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp, lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fs as kfs } from '../../src/devmapper';
import { rawChanges, rawChangesSize, ChangeKind } from '../../src/graphdriver/changes';
import { field, inodeKey, readEntries, StatField, walkTree } from '../../src/graphdriver/layer-scan';
import { requireRoot } from '../support/env';

/** A path made of raw bytes (for names that are not UTF-8). */
const bytesPath = (dir: string, ...names: Buffer[]): Buffer => Buffer.concat([Buffer.from(`${dir}/`), ...names.flatMap((n, i) => (i === 0 ? [n] : [Buffer.from('/'), n]))]);

describe('native layer scan (root)', function () {
  let top = '';

  before(function () {
    requireRoot(this);
  });

  beforeEach(async () => {
    top = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-scan-'));
  });

  afterEach(async () => {
    await fsp.rm(top, { recursive: true, force: true });
  });

  it('walks every file type in pre-order, children sorted by bytes, with lstat numbers that match', async () => {
    await fsp.mkdir(path.join(top, 'd/sub'), { recursive: true });
    await fsp.writeFile(path.join(top, 'd/sub/file'), 'hello');
    await fsp.writeFile(path.join(top, 'B'), 'x');
    await fsp.link(path.join(top, 'B'), path.join(top, 'd/hard'));
    await fsp.symlink('../B', path.join(top, 'd/link'));
    await kfs.mknod(path.join(top, 'fifo'), kfs.constants.S_IFIFO | 0o600);
    await kfs.mknod(path.join(top, 'chr'), kfs.constants.S_IFCHR | 0o640, 1, 3);
    await kfs.mknod(path.join(top, 'blk'), kfs.constants.S_IFBLK | 0o600, 7, 1048575);
    execFileSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path.join(top, 'sock'))})`]);
    await fsp.chown(path.join(top, 'd/sub/file'), 4_000_000, 12);
    await fsp.utimes(path.join(top, 'd/sub/file'), 1_600_000_000.5, 1_600_000_000.5);
    const walk = await walkTree(top);
    assert.deepEqual(walk.paths, ['B', 'blk', 'chr', 'd', 'd/hard', 'd/link', 'd/sub', 'd/sub/file', 'fifo', 'sock']);
    assert.deepEqual([...walk.ends], [1, 2, 3, 8, 5, 6, 8, 8, 9, 10]);
    walk.paths.forEach((p, i) => {
      const st = lstatSync(path.join(top, p), { bigint: true });
      const f = (k: StatField): number => field(walk.stats, i, k);
      assert.equal(f(StatField.Mode), Number(st.mode), `${p} mode`);
      assert.deepEqual([f(StatField.Uid), f(StatField.Gid), f(StatField.Size), f(StatField.Nlink)], [Number(st.uid), Number(st.gid), Number(st.size), Number(st.nlink)], p);
      assert.equal(BigInt(f(StatField.MtimeSec)) * 1_000_000_000n + BigInt(f(StatField.MtimeNsec)), st.mtimeNs, `${p} mtime`);
      assert.equal(BigInt(f(StatField.CtimeSec)) * 1_000_000_000n + BigInt(f(StatField.CtimeNsec)), st.ctimeNs, `${p} ctime`);
      assert.equal(BigInt(inodeKey(walk.stats, i)), st.ino, `${p} inode`);
    });
    const blk = walk.paths.indexOf('blk');
    assert.deepEqual([field(walk.stats, blk, StatField.RdevMajor), field(walk.stats, blk, StatField.RdevMinor)], [7, 1048575]);
  });

  it('keeps the bytes of names that are not UTF-8, through the walk, the entries and Changes', async () => {
    const dir = Buffer.from([0x64, 0xe9]); // "d" + latin1 e-acute: not UTF-8
    const file = Buffer.from([0xff, 0xfe, 0x2e, 0x74]);
    await fsp.mkdir(path.join(top, 'lower'));
    await fsp.mkdir(path.join(top, 'upper'));
    await fsp.mkdir(bytesPath(path.join(top, 'upper'), dir));
    await fsp.writeFile(bytesPath(path.join(top, 'upper'), dir, file), 'body');
    await fsp.writeFile(path.join(top, 'upper', 'é.txt'), 'utf-8 name');
    const walk = await walkTree(path.join(top, 'upper'));
    const binary = (b: Buffer): string => b.toString('latin1');
    assert.deepEqual(walk.paths, [binary(dir), `${binary(dir)}/${binary(file)}`, Buffer.from('é.txt').toString('latin1')]);
    const got = await readEntries(path.join(top, 'upper'), [walk.paths[1] ?? ''], { bodyLimit: 100, bodyBudget: 100 });
    assert.equal(got.bodies[0]?.toString(), 'body');
    const list = await rawChanges(path.join(top, 'upper'), path.join(top, 'lower'));
    assert.deepEqual(list.map((c) => [c.path, c.kind]), walk.paths.map((p) => [p, ChangeKind.Add]));
    assert.equal(rawChangesSize(path.join(top, 'upper'), list), 'body'.length + 'utf-8 name'.length, 'DiffSize counts them too');
  });

  it('reads the image xattrs (user.* and security.capability, sorted, binary), link targets and small bodies of a batch', async () => {
    const capability = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    await fsp.writeFile(path.join(top, 'ping'), 'ELF');
    await kfs.lsetxattr(path.join(top, 'ping'), 'security.capability', capability);
    await kfs.lsetxattr(path.join(top, 'ping'), 'user.b', Buffer.from([0, 1, 2, 0xff]));
    await kfs.lsetxattr(path.join(top, 'ping'), 'user.a', 'text');
    await kfs.lsetxattr(path.join(top, 'ping'), 'trusted.host', 'stays on the host');
    await fsp.symlink('a/target/far/away', path.join(top, 'link'));
    await fsp.writeFile(path.join(top, 'big'), Buffer.alloc(5000, 1));
    const got = await readEntries(top, ['ping', 'link', 'big', 'gone'], { bodyLimit: 4096, bodyBudget: 1 << 20 });
    assert.deepEqual(got.xattrs[0], [
      ['security.capability', capability],
      ['user.a', Buffer.from('text')],
      ['user.b', Buffer.from([0, 1, 2, 0xff])],
    ]);
    assert.deepEqual([got.links[1], got.bodies[0]?.toString(), got.bodies[2]], ['a/target/far/away', 'ELF', null], 'no body above bodyLimit');
    assert.equal(field(got.stats, 3, StatField.Mode), 0, 'an entry that is gone has a mode of 0');
    const onlyCapability = await readEntries(top, ['ping'], { capabilityOnly: true });
    assert.deepEqual(onlyCapability.xattrs[0], [['security.capability', capability]]);
  });

  it('stops reading bodies once the batch budget is spent', async () => {
    for (const n of ['a', 'b', 'c']) await fsp.writeFile(path.join(top, n), Buffer.alloc(1000, 7));
    const got = await readEntries(top, ['a', 'b', 'c'], { bodyLimit: 4096, bodyBudget: 2500 });
    assert.deepEqual(got.bodies.map((b) => b?.length ?? null), [1000, 1000, null]);
  });

  it('walks 10,000 entries in one call', async () => {
    for (let d = 0; d < 100; d++) {
      mkdirSync(path.join(top, `d${d}`));
      for (let f = 0; f < 99; f++) writeFileSync(path.join(top, `d${d}`, `f${f}`), '');
    }
    const walk = await walkTree(top);
    assert.equal(walk.paths.length, 10_000);
    assert.equal(walk.ends[0], 100, 'd0 and its 99 files');
    const sorted = [...walk.paths].sort((a, b) => (a < b ? -1 : 1));
    assert.deepEqual(walk.paths, sorted, 'pre-order with sorted children is sorted order here');
  });

  it('refuses bad arguments with a TypeError, before doing anything', async () => {
    assert.throws(() => void readEntries(top, ['/abs']), /scan\.entries: paths\[0\] must be a relative path/);
    assert.throws(() => void readEntries('relative', ['a']), /scan\.entries: root must be an absolute path/);
    assert.throws(() => void readEntries(top, ['a\0b']), /must not contain NUL/);
    await assert.rejects(walkTree(path.join(top, 'missing')), { code: 'ENOENT' });
  });
});
