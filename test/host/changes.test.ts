// Changes, DiffSize and Diff on plain directories: what `docker diff`,
// `docker ps -s` and `docker commit` get, checked by applying the diff to
// a copy of the parent and comparing the result with the layer.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyTar } from '../../src/graphdriver/apply';
import { ChangeKind, changes, changesSize } from '../../src/graphdriver/changes';
import { exportChanges } from '../../src/graphdriver/diff';
import { fs as kfs } from '../../src/devmapper';
import { requireRoot } from '../support/env';
import { listTar } from '../support/tar-listing';

/** Every path under dir with type, mode, owner, link target and content, for comparing trees. */
async function describeTree(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await fsp.readdir(path.join(dir, rel))).sort()) {
    const p = path.join(rel, name);
    const st = await fsp.lstat(path.join(dir, p));
    let extra = '';
    if (st.isSymbolicLink()) extra = `-> ${await fsp.readlink(path.join(dir, p))}`;
    else if (st.isFile()) extra = `${await fsp.readFile(path.join(dir, p), 'utf8')} nlink=${st.nlink}`;
    out.push(`${p} ${(st.mode & 0o177777).toString(8)} ${st.uid}:${st.gid} ${extra}`);
    if (st.isDirectory()) out.push(...(await describeTree(dir, p)));
  }
  return out;
}

describe('layer changes and diffs (root)', function () {
  let top = '';
  let parent = '';
  let layer = '';

  before(function () {
    requireRoot(this);
  });

  beforeEach(async () => {
    top = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-changes-'));
    parent = path.join(top, 'parent');
    layer = path.join(top, 'layer');
    await fsp.mkdir(parent);
    for (const d of ['etc', 'usr/bin', 'var/cache/old', 'keep']) await fsp.mkdir(path.join(parent, d), { recursive: true });
    await fsp.writeFile(path.join(parent, 'etc/passwd'), 'root\n');
    await fsp.writeFile(path.join(parent, 'etc/hosts'), 'localhost\n');
    await fsp.writeFile(path.join(parent, 'usr/bin/tool'), 'v1');
    await fsp.writeFile(path.join(parent, 'var/cache/old/junk'), 'j');
    await fsp.writeFile(path.join(parent, 'keep/same'), 's');
    execFileSync('cp', ['-a', parent, layer]);
    // The layer's own changes.
    await fsp.writeFile(path.join(layer, 'etc/passwd'), 'root\nuser\n');
    await fsp.rm(path.join(layer, 'etc/hosts'));
    await fsp.rm(path.join(layer, 'var/cache/old'), { recursive: true });
    await fsp.chmod(path.join(layer, 'usr/bin'), 0o700);
    await fsp.mkdir(path.join(layer, 'new/deep'), { recursive: true });
    await fsp.writeFile(path.join(layer, 'new/deep/a'), 'aaaa');
    await fsp.link(path.join(layer, 'new/deep/a'), path.join(layer, 'new/b'));
    await fsp.symlink('deep/a', path.join(layer, 'new/link'));
    await fsp.chown(path.join(layer, 'new/deep/a'), 1000, 1000);
  });

  afterEach(async () => {
    await fsp.rm(top, { recursive: true, force: true });
  });

  it('lists what changed, as docker diff shows it', async () => {
    const list = await changes(layer, parent);
    assert.deepEqual(list, [
      { Path: '/etc', Kind: ChangeKind.Modify },
      { Path: '/etc/hosts', Kind: ChangeKind.Delete },
      { Path: '/etc/passwd', Kind: ChangeKind.Modify },
      { Path: '/new', Kind: ChangeKind.Add },
      { Path: '/new/b', Kind: ChangeKind.Add },
      { Path: '/new/deep', Kind: ChangeKind.Add },
      { Path: '/new/deep/a', Kind: ChangeKind.Add },
      { Path: '/new/link', Kind: ChangeKind.Add },
      { Path: '/usr', Kind: ChangeKind.Modify },
      { Path: '/usr/bin', Kind: ChangeKind.Modify },
      { Path: '/var', Kind: ChangeKind.Modify },
      { Path: '/var/cache', Kind: ChangeKind.Modify },
      { Path: '/var/cache/old', Kind: ChangeKind.Delete },
    ]);
  });

  it('lists a file whose only change is its file capability', async () => {
    await kfs.lsetxattr(path.join(layer, 'keep/same'), 'security.capability', Buffer.from('0100000200040000000000000000000000000000', 'hex'));
    assert.ok((await changes(layer, parent)).some((c) => c.Path === '/keep/same' && c.Kind === ChangeKind.Modify));
  });

  it('takes times that differ below the second, one of them whole (from a tar), as the same, as the in-tree driver does', async () => {
    await fsp.utimes(path.join(parent, 'keep/same'), 1_600_000_000, 1_600_000_000);
    await fsp.utimes(path.join(layer, 'keep/same'), 1_600_000_000.25, 1_600_000_000.25);
    assert.ok(!(await changes(layer, parent)).some((c) => c.Path.startsWith('/keep')));
    await fsp.utimes(path.join(layer, 'keep/same'), 1_600_000_001, 1_600_000_001);
    assert.ok((await changes(layer, parent)).some((c) => c.Path === '/keep/same'));
  });

  it('sizes the added and modified files, hard links once', async () => {
    assert.equal(changesSize(layer, await changes(layer, parent)), 'root\nuser\n'.length + 4);
  });

  it('lists every file as added when there is no parent', async () => {
    const list = await changes(layer, '');
    assert.ok(list.every((c) => c.Kind === ChangeKind.Add));
    assert.ok(list.some((c) => c.Path === '/keep/same'));
  });

  it('exports a diff that, applied to the parent, rebuilds the layer', async () => {
    const copy = path.join(top, 'copy');
    execFileSync('cp', ['-a', parent, copy]);
    const size = await applyTar(copy, exportChanges(layer, await changes(layer, parent)));
    assert.ok(size > 0);
    assert.deepEqual(await describeTree(copy), await describeTree(layer));
  });

  it('carries a binary file capability through Diff and ApplyDiff unchanged', async () => {
    const capability = Buffer.from('0100000200200000000000000000000000000000ff', 'hex').subarray(0, 20);
    await fsp.writeFile(path.join(layer, 'new/ping'), 'ELF');
    await kfs.lsetxattr(path.join(layer, 'new/ping'), 'security.capability', capability);
    const copy = path.join(top, 'copy');
    execFileSync('cp', ['-a', parent, copy]);
    await applyTar(copy, exportChanges(layer, await changes(layer, parent)));
    assert.deepEqual(await kfs.lgetxattr(path.join(copy, 'new/ping'), 'security.capability'), capability);
  });

  it('keeps hard links of fifos and symlinks, and a mode of 0000, through Diff and ApplyDiff', async () => {
    execFileSync('mkfifo', [path.join(layer, 'new/fifo')]);
    await fsp.link(path.join(layer, 'new/fifo'), path.join(layer, 'new/fifo-hard'));
    await fsp.link(path.join(layer, 'new/link'), path.join(layer, 'new/link-hard'));
    await fsp.writeFile(path.join(layer, 'new/zero'), 'z');
    await fsp.chmod(path.join(layer, 'new/zero'), 0);
    const copy = path.join(top, 'copy');
    execFileSync('cp', ['-a', parent, copy]);
    await applyTar(copy, exportChanges(layer, await changes(layer, parent)));
    const ino = async (p: string) => (await fsp.lstat(path.join(copy, p))).ino;
    assert.equal(await ino('new/fifo-hard'), await ino('new/fifo'));
    assert.equal(await ino('new/link-hard'), await ino('new/link'));
    assert.equal((await fsp.stat(path.join(copy, 'new/zero'))).mode & 0o7777, 0);
  });

  it('writes whiteouts as the in-tree driver does: permissions 0, root, empty, dated when the diff is made', async () => {
    const start = Math.floor(Date.now() / 1000);
    const tar = await listTar(exportChanges(layer, await changes(layer, parent)));
    const whiteout = tar.items.get('etc/.wh.hosts');
    assert.ok(whiteout !== undefined, `a whiteout for /etc/hosts among ${tar.order.join(', ')}`);
    assert.deepEqual([whiteout.type, whiteout.mode, whiteout.uid, whiteout.gid, whiteout.size], ['file', 0, 0, 0, 0]);
    assert.ok(whiteout.mtime >= start && whiteout.mtime <= Date.now() / 1000 + 1, `dated now, not ${whiteout.mtime}`);
  });

  it('exports the whole layer when there is no parent', async () => {
    const fresh = path.join(top, 'fresh');
    await fsp.mkdir(fresh);
    await applyTar(fresh, exportChanges(layer, await changes(layer, '')));
    assert.deepEqual(await describeTree(fresh), await describeTree(layer));
  });
});
