// The containerd snapshotter: dmthin's snapshots gRPC service over a real
// thin pool, first driven directly as containerd's proxy client drives it
// (semantics, error codes, restarts and a SIGKILL), then behind Debian 13's
// containerd 1.7 with ctr: import, run, commit, restarts in both orders,
// garbage collection.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { dm } from '../../src/devmapper';
import { Containerd } from '../support/containerd';
import { tempHome } from '../support/deviceset';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { run } from '../support/exec';
import { writeBusyboxImage } from '../support/oci-image';
import { LISTENING, startPlugin, type PluginProcess } from '../support/plugin-process';
import { waitUntil } from '../support/processes';
import { codeOf, SnapshotsClient, type WireMount } from '../support/snapshots-client';
import { trixieMissing } from '../support/trixie';

interface Run {
  dir: string;
  socket: string;
  env: NodeJS.ProcessEnv;
}

async function makeRun(name: string): Promise<Run> {
  const dir = await tempHome(name);
  const socket = path.join(dir, 'snapshotter.sock');
  const env = {
    DMTHIN_SOCKET: path.join(dir, 'plugin.sock'),
    DMTHIN_SNAPSHOTTER_SOCKET: socket,
    DMTHIN_ROOT: path.join(dir, 'state'),
    DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=4G dm.loopmetadatasize=64M dm.basesize=512M',
  };
  return { dir, socket, env };
}

async function startDmthin(r: Run): Promise<PluginProcess> {
  const plugin = startPlugin(r.env, path.join(r.dir, 'dmthin.log'));
  await plugin.waitFor(LISTENING);
  return plugin;
}

/** Mounts what the snapshotter returned, as containerd's mount.All does, and returns the directory. */
async function mountAt(mounts: WireMount[], dir: string): Promise<string> {
  assert.equal(mounts.length, 1);
  const [m] = mounts as [WireMount];
  await fsp.mkdir(dir, { recursive: true });
  await run('mount', ['-t', m.type, ...(m.options.length > 0 ? ['-o', m.options.join(',')] : []), m.source, dir]);
  return dir;
}

async function rejectsWith(promise: Promise<unknown>, code: grpc.status, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.equal(codeOf(err), code, `expected ${grpc.status[code]}, got ${String(err)}`);
    if (message !== undefined) assert.match((err as Error).message, message);
    return true;
  });
}

/** Active snapshot devices of the run's pool, the empty template excluded. */
async function snapshotDevices(): Promise<string[]> {
  return (await dm.list()).map((d) => d.name).filter((n) => /-snap-[0-9]+$/.test(n));
}

describe('containerd snapshotter (VM)', function () {
  before(function () {
    requireVm(this);
    requireRoot(this);
  });

  it('serves containerd\'s snapshot semantics over thin devices, with containerd\'s error codes, across a restart and a SIGKILL', async function () {
    this.timeout(900_000);
    const r = await makeRun('snap');
    let plugin = await startDmthin(r);
    const client = new SnapshotsClient(r.socket);
    const mnt = path.join(r.dir, 'mnt');
    try {
      // An empty filesystem: root 0755, nothing in it (no lost+found).
      const baseMounts = await client.prepare('ns/1/extract base', '', { 'containerd.io/snapshot.ref': 'sha256:base' });
      assert.match(baseMounts[0]?.source ?? '', /^\/dev\/mapper\/.*-snap-[0-9]+$/);
      // Thin snapshots of one xfs share its UUID: xfs mounts them only with nouuid.
      const fsOptions = baseMounts[0]?.type === 'xfs' ? ['nouuid'] : [];
      assert.deepEqual(baseMounts[0]?.options, fsOptions);
      await mountAt(baseMounts, mnt);
      assert.equal((await fsp.stat(mnt)).mode & 0o7777, 0o755);
      assert.deepEqual(await fsp.readdir(mnt), []);
      await fsp.writeFile(path.join(mnt, 'hello.txt'), 'hello');
      await run('umount', [mnt]);
      assert.deepEqual(await client.mounts('ns/1/extract base'), baseMounts, 'Mounts returns the same mounts again');

      await client.commit('ns/2/base', 'ns/1/extract base', { l: '1' });
      const base = await client.stat('ns/2/base');
      assert.equal(base.kind, 'COMMITTED');
      assert.equal(base.parent, '');
      assert.deepEqual(base.labels, { l: '1' }, 'Commit replaces the labels');
      assert.deepEqual(base.created_at, base.updated_at);
      await rejectsWith(client.stat('ns/1/extract base'), grpc.status.NOT_FOUND);

      // A child sees the parent's files and writes its own; the parent does not change.
      await mountAt(await client.prepare('child', 'ns/2/base'), mnt);
      assert.equal(await fsp.readFile(path.join(mnt, 'hello.txt'), 'utf8'), 'hello');
      await fsp.writeFile(path.join(mnt, 'child.txt'), Buffer.alloc(1024 * 1024, 7));
      await run('umount', [mnt]);
      const viewMounts = await client.view('view', 'ns/2/base');
      assert.deepEqual(viewMounts[0]?.options, [...fsOptions, 'ro']);
      await mountAt(viewMounts, mnt);
      assert.deepEqual(await fsp.readdir(mnt), ['hello.txt']);
      await assert.rejects(fsp.writeFile(path.join(mnt, 'x'), 'x'), /EROFS/);
      await run('umount', [mnt]);
      assert.deepEqual(await client.stat('ns/2/base'), base, 'a parent does not change when it gains children');

      // The codes containerd's errdefs expect.
      await rejectsWith(client.prepare('child', 'ns/2/base'), grpc.status.ALREADY_EXISTS);
      await rejectsWith(client.view('ns/2/base', ''), grpc.status.ALREADY_EXISTS, /already exists/);
      await rejectsWith(client.prepare('x', 'no-such-parent'), grpc.status.NOT_FOUND);
      await rejectsWith(client.prepare('x', 'child'), grpc.status.INVALID_ARGUMENT);
      await rejectsWith(client.commit('n', 'view'), grpc.status.FAILED_PRECONDITION);
      await rejectsWith(client.commit('ns/2/base', 'child'), grpc.status.ALREADY_EXISTS);
      await rejectsWith(client.mounts('ns/2/base'), grpc.status.FAILED_PRECONDITION);
      await rejectsWith(client.remove('ns/2/base'), grpc.status.FAILED_PRECONDITION, /remove/);
      await rejectsWith(client.remove('nothing'), grpc.status.NOT_FOUND);
      await rejectsWith(client.update({ name: 'child', labels: {} }, ['parent']), grpc.status.INVALID_ARGUMENT);
      await rejectsWith(client.prepare('big', '', { k: 'v'.repeat(4096) }), grpc.status.INVALID_ARGUMENT);
      await rejectsWith(client.list(['kind==']), grpc.status.INVALID_ARGUMENT);

      // Update: labels only, by path; an empty value deletes.
      await client.update({ name: 'child', labels: { a: '1', b: '2' } });
      const updated = await client.update({ name: 'child', labels: { b: '', c: '3' } }, ['labels.b', 'labels.c']);
      assert.deepEqual(updated.labels, { a: '1', c: '3' });
      assert.equal(updated.parent, 'ns/2/base');
      assert.equal(updated.kind, 'ACTIVE');

      // List with containerd's filters; Stat and List agree exactly.
      const names = async (filters: string[]): Promise<string[]> => (await client.list(filters)).map((i) => i.name).sort();
      assert.deepEqual(await names([]), ['child', 'ns/2/base', 'view']);
      assert.deepEqual(await names(['kind==committed']), ['ns/2/base']);
      assert.deepEqual(await names(['parent==ns/2/base,kind==view']), ['view']);
      assert.deepEqual(await names(['labels.a==1', 'kind==view']), ['child', 'view']);
      assert.deepEqual(await names(['labels."containerd.io/snapshot.ref"']), []);
      assert.deepEqual(await names(['name~=^ns/']), ['ns/2/base']);
      for (const info of await client.list()) assert.deepEqual(await client.stat(info.name), info);
      // Another `snapshotter` value is another store.
      assert.deepEqual(await new SnapshotsClient(r.socket, 'other').list(), []);

      const usage = await client.usage('child');
      assert.ok(usage.size >= 1024 * 1024, `the child's own 1 MiB is counted: ${usage.size}`);
      assert.ok(usage.size < 64 * 1024 * 1024, `not its parent's: ${usage.size}`);
      const before = await client.list();

      // A clean restart, then a SIGKILL: everything is still there.
      assert.deepEqual(await plugin.stop(), { code: 0, signal: null });
      plugin = await startDmthin(r);
      assert.deepEqual(await client.list(), before);
      await plugin.kill();
      plugin = await startDmthin(r);
      assert.deepEqual(await client.list(), before);
      await mountAt(await client.mounts('child'), mnt);
      assert.deepEqual((await fsp.readdir(mnt)).sort(), ['child.txt', 'hello.txt']);
      await run('umount', [mnt]);

      // Children first; keys are free again at once.
      await client.remove('child');
      await client.remove('view');
      await client.remove('ns/2/base');
      await client.cleanup();
      assert.deepEqual(await client.list(), []);
      await client.prepare('child', '');
      await client.remove('child');
      assert.deepEqual(await snapshotDevices(), [], 'no snapshot device is left active');
    } finally {
      client.close();
      await run('umount', [mnt]).catch(() => undefined);
      await plugin.stop();
    }
  });

  it('is containerd 1.7\'s proxy snapshotter: ctr imports, runs and commits on it, through restarts of either, and its GC removes what it no longer needs', async function () {
    this.timeout(900_000);
    const missing = trixieMissing();
    if (missing !== null) skipBecause(this, missing);
    const r = await makeRun('ctrd');
    let plugin = await startDmthin(r);
    const containerd = new Containerd(path.join(r.dir, 'containerd'), r.socket);
    const client = new SnapshotsClient(r.socket);
    try {
      await containerd.start();
      assert.match(await containerd.ctr('plugins', 'ls', 'id==dmthin'), /io\.containerd\.snapshotter\.v1\s+dmthin\s+.*ok/);
      const image = path.join(r.dir, 'bb.tar');
      await writeBusyboxImage(image, 'docker.io/library/bb:latest');
      await containerd.ctr('images', 'import', '--snapshotter', 'dmthin', image);
      assert.match(await containerd.ctr('snapshots', '--snapshotter', 'dmthin', 'ls'), /sha256:[0-9a-f]{64}\s+Committed/);

      await containerd.ctr('run', '--snapshotter', 'dmthin', 'docker.io/library/bb:latest', 'c1', 'sh', '-c', 'echo written > /data.txt');
      await containerd.ctr('snapshots', '--snapshotter', 'dmthin', 'commit', 'c1-done', 'c1');
      await containerd.ctr('containers', 'rm', 'c1');
      const committed = async (): Promise<string> => {
        const info = (await client.list(['kind==committed'])).find((i) => i.name.endsWith('/c1-done'));
        assert.ok(info !== undefined, 'the committed container snapshot is in dmthin');
        return info.name;
      };
      const content = async (): Promise<string> => {
        const mnt = path.join(r.dir, 'mnt');
        await mountAt(await client.view('check', await committed()), mnt);
        try {
          return await fsp.readFile(path.join(mnt, 'data.txt'), 'utf8');
        } finally {
          await run('umount', [mnt]);
          await client.remove('check');
        }
      };
      assert.equal(await content(), 'written\n');

      // dmthin first, then containerd; then containerd first, then dmthin.
      await plugin.stop();
      await containerd.stop();
      plugin = await startDmthin(r);
      await containerd.start();
      assert.match(await containerd.ctr('snapshots', '--snapshotter', 'dmthin', 'ls'), /c1-done\s+sha256:[0-9a-f]{64}\s+Committed/);
      await containerd.stop();
      await plugin.stop();
      await containerd.start();
      plugin = await startDmthin(r);
      // containerd reconnects on its own backoff (at most about 3.6 s), not at once.
      await containerd.waitForSnapshotter('dmthin');
      assert.match(await containerd.ctr('snapshots', '--snapshotter', 'dmthin', 'ls'), /c1-done\s+sha256:[0-9a-f]{64}\s+Committed/);
      assert.equal(await content(), 'written\n');
      await containerd.ctr('run', '--rm', '--snapshotter', 'dmthin', 'docker.io/library/bb:latest', 'c2', 'sh', '-c', 'test ! -e /data.txt');

      // containerd's GC removes backend snapshots nothing references any more.
      await containerd.ctr('snapshots', '--snapshotter', 'dmthin', 'rm', 'c1-done');
      await containerd.ctr('images', 'rm', '--sync', 'docker.io/library/bb:latest');
      await waitUntil('containerd to garbage-collect every dmthin snapshot', async () => (await client.list()).length === 0, 60_000);
    } finally {
      client.close();
      await containerd.stop();
      await plugin.stop();
    }
  });
});
