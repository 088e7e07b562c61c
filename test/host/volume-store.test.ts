// The volume store on the host, with real directories and real mounts
// (tmpfs, bind): what Docker's local driver does, counted per mount ID,
// surviving a restart that finds stale mounts, half-made volumes and a
// corrupt opts.json. No thin pool here: thin options must say so.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { DeviceSetHolder } from '../../src/deviceset';
import type { GraphDriverApi } from '../../src/graphdriver/types';
import { createLogger } from '../../src/shared/log';
import { createApp } from '../../src/server/app';
import { mountpointsUnder, unmountAll } from '../../src/volume/mounts';
import { volumeDeviceId } from '../../src/volume/names';
import { VolumeStore, type VolumeStoreConfig } from '../../src/volume/store';
import type { VolumeInfo } from '../../src/volume/types';
import { requireRoot } from '../support/env';
import { notUsed } from '../support/not-used';

const log = createLogger('error');
// The corrupt-volume cases log errors on purpose.
log.silent = true;
const MiB = 1024 * 1024;

/** A store as main.ts makes it, on a kernel without device-mapper: its holder never opens a pool. */
function makeStore(root: string, overrides: Partial<VolumeStoreConfig> = {}): VolumeStore {
  return new VolumeStore({
    root,
    mountRoot: root,
    volumeKind: 'auto',
    volumeSize: 64 * MiB,
    pool: new DeviceSetHolder({ root, pluginOptions: [], log }),
    log,
    ...overrides,
  });
}

function mounted(dir: string): boolean {
  return mountpointsUnder(dir).length > 0;
}

/** Every path under dir, with its type, for "nothing changed" checks. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    out.push(`${path.relative(dir, path.join(entry.parentPath, entry.name))}${entry.isDirectory() ? '/' : ''}`);
  }
  return out.sort();
}

describe('volume store on the host (real mounts)', function () {
  let dir = '';
  let root = '';
  let store: VolumeStore;

  before(function () {
    requireRoot(this);
  });

  beforeEach(async () => {
    dir = await fsp.mkdtemp('/var/tmp/dmthin-volstore-');
    root = path.join(dir, 'state');
    store = makeStore(root);
    await store.load();
  });

  afterEach(async () => {
    if (dir === '') return;
    await unmountAll(mountpointsUnder(dir));
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('keeps a plain volume as Docker\'s local driver does: _data and opts.json, nothing mounted', async () => {
    await store.create('plain1', null);
    const vdir = path.join(root, 'volumes', 'plain1');
    assert.equal((await fsp.stat(path.join(vdir, 'opts.json'))).mode & 0o777, 0o600);
    assert.equal((await fsp.stat(path.join(vdir, '_data'))).mode & 0o777, 0o755);
    assert.deepEqual(await tree(path.join(root, 'volumes')), ['plain1/', 'plain1/_data/', 'plain1/opts.json']);
    const mp = await store.mount('plain1', 'id-1');
    assert.equal(mp, path.join(vdir, '_data'));
    assert.equal(mounted(mp), false, 'a plain directory is not mounted: dockerd binds it');
    await fsp.writeFile(path.join(mp, 'f'), 'kept');
    await store.unmount('plain1', 'id-1');
    assert.equal(await fsp.readFile(path.join(mp, 'f'), 'utf8'), 'kept');
    const info = (await store.get('plain1')) as VolumeInfo;
    assert.equal(info.Mountpoint, mp);
    assert.equal(new Date(info.CreatedAt).toISOString(), info.CreatedAt);
    assert.deepEqual(info.Status, { Kind: 'plain', Mounts: 0 });
    await store.remove('plain1');
    assert.deepEqual(await tree(path.join(root, 'volumes')), []);
    assert.equal(await store.get('plain1'), null);
  });

  it('mounts a tmpfs volume at the first mount ID and unmounts it at the last', async () => {
    await store.create('tmp1', { type: 'tmpfs', device: 'tmpfs', o: 'size=1m,mode=0750' });
    const mp = await store.mount('tmp1', 'a');
    assert.equal(mounted(mp), true);
    assert.equal((await fsp.stat(mp)).mode & 0o777, 0o750, 'the o= options reach the mount');
    await fsp.writeFile(path.join(mp, 'f'), 'in tmpfs');
    assert.equal(await store.mount('tmp1', 'b'), mp);
    assert.equal(mountpointsUnder(mp).length, 1, 'a second ID does not mount again');
    await assert.rejects(store.remove('tmp1'), /volume tmp1 is in use: mounted for 2 container mount\(s\)/);
    await store.unmount('tmp1', 'a');
    assert.equal(await fsp.readFile(path.join(mp, 'f'), 'utf8'), 'in tmpfs', 'still mounted for b');
    await store.unmount('tmp1', 'never-mounted');
    assert.equal(mounted(mp), true, 'an unknown ID changes nothing');
    await store.unmount('tmp1', 'b');
    assert.equal(mounted(mp), false);
    await assert.rejects(store.mount('tmp1', 'c').then(async (p) => fsp.writeFile(path.join(p, 'big'), Buffer.alloc(2 * MiB))), { code: 'ENOSPC' });
    await store.unmount('tmp1', 'c');
    await store.remove('tmp1');
  });

  it('counts two Mounts under one ID (one volume at two paths of a container) and unmounts at the second Unmount', async () => {
    await store.create('twice', { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });
    const mp = await store.mount('twice', 'c1');
    await fsp.writeFile(path.join(mp, 'f'), 'kept');
    assert.equal(await store.mount('twice', 'c1'), mp);
    assert.equal((await store.get('twice'))?.Status['Mounts'], 2);
    await store.unmount('twice', 'c1');
    assert.equal(await fsp.readFile(path.join(mp, 'f'), 'utf8'), 'kept', 'still mounted for the second path');
    await assert.rejects(store.remove('twice'), /mounted for 1 container mount/);
    await store.unmount('twice', 'c1');
    assert.equal(mounted(mp), false);
    await store.unmount('twice', 'c1');
    assert.equal((await store.get('twice'))?.Status['Mounts'], 0, 'a third Unmount is an unknown ID: nothing to do');
    await store.remove('twice');
  });

  it('bind-mounts a host directory read-only, and never removes the host\'s files with the volume', async () => {
    const host = path.join(dir, 'host-data');
    await fsp.mkdir(host);
    await fsp.writeFile(path.join(host, 'keep.txt'), 'host file');
    await store.create('bind1', { type: 'none', device: host, o: 'bind,ro' });
    const mp = await store.mount('bind1', 'x');
    assert.equal(await fsp.readFile(path.join(mp, 'keep.txt'), 'utf8'), 'host file');
    await assert.rejects(fsp.writeFile(path.join(mp, 'new'), 'x'), { code: 'EROFS' });
    await store.unmount('bind1', 'x');
    await store.remove('bind1');
    assert.equal(await fsp.readFile(path.join(host, 'keep.txt'), 'utf8'), 'host file');
  });

  it('says why a mount failed, secrets masked, and records no mount', async () => {
    await store.create('bad1', { type: 'tmpfs', device: 'tmpfs', o: 'nosuchopt=1,password=hunter2' });
    await assert.rejects(store.mount('bad1', 'x'), (err: Error) => /failed to mount volume bad1 \(type=tmpfs, device=tmpfs, o=nosuchopt=1,password=\*{8}\): EINVAL/.test(err.message) && !err.message.includes('hunter2'));
    assert.deepEqual(((await store.get('bad1')) as VolumeInfo).Status['Options'], { type: 'tmpfs', device: 'tmpfs', o: 'nosuchopt=1,password=********' });
    await store.remove('bad1');
  });

  it('treats a create of an existing name with the same options as done, and refuses other options', async () => {
    await store.create('same', { type: 'tmpfs', device: 'tmpfs' });
    await store.create('same', { type: 'tmpfs', device: 'tmpfs' });
    await assert.rejects(store.create('same', { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' }), /volume same already exists with other options/);
    await Promise.all([store.create('race', null), store.create('race', null), store.create('race', null)]);
    assert.deepEqual((await store.list()).map((v) => v.Name), ['race', 'same']);
  });

  it('unmounts stale mounts, drops half-made and half-removed volumes, and keeps the rest at a restart', async () => {
    await store.create('tmp2', { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });
    await store.create('plain2', null);
    const mp = await store.mount('tmp2', 'before-crash');
    await fsp.writeFile(path.join(mp, 'f'), 'x');
    await fsp.writeFile(path.join(root, 'volumes', 'plain2', '_data', 'g'), 'data');
    // What a SIGKILL in the middle of a create and of a remove leaves.
    const creating = path.join(root, 'volumes', `.creating-${volumeDeviceId('half')}`);
    await fsp.mkdir(path.join(creating, '_data'), { recursive: true });
    await fsp.writeFile(path.join(creating, 'opts.json'), '{}');
    const removing = path.join(root, 'volumes', `.removing-${volumeDeviceId('gone')}-0011`);
    await fsp.mkdir(path.join(removing, '_data'), { recursive: true });

    // The old store is dropped without unmounting, as a killed process would leave it.
    store = makeStore(root);
    await store.load();
    assert.equal(mounted(mp), false, 'the stale tmpfs is unmounted at start');
    assert.deepEqual((await store.list()).map((v) => v.Name), ['plain2', 'tmp2']);
    assert.deepEqual(await tree(path.join(root, 'volumes')), ['plain2/', 'plain2/_data/', 'plain2/_data/g', 'plain2/opts.json', 'tmp2/', 'tmp2/_data/', 'tmp2/opts.json']);
    await store.unmount('tmp2', 'before-crash');
    const again = await store.mount('tmp2', 'after');
    assert.deepEqual(await fsp.readdir(again), [], 'a fresh tmpfs');
    await store.unmount('tmp2', 'after');
  });

  it('lists a volume whose opts.json is corrupt, says why in Status, and refuses to mount it', async () => {
    await store.create('broken', { type: 'tmpfs', device: 'tmpfs' });
    await store.create('odd', null);
    await fsp.writeFile(path.join(root, 'volumes', 'broken', 'opts.json'), '{"Version":1,');
    await fsp.writeFile(path.join(root, 'volumes', 'odd', 'opts.json'), '{"Version":1,"Kind":"thin","CreatedAt":"2026-11-23T10:00:00Z","Options":{}}');
    // A volume directory without opts.json is a plain one, as Docker's local driver has them.
    await fsp.mkdir(path.join(root, 'volumes', 'fromdocker', '_data'), { recursive: true });
    store = makeStore(root);
    await store.load();
    assert.deepEqual((await store.list()).map((v) => v.Name), ['broken', 'fromdocker', 'odd']);
    const broken = (await store.get('broken')) as VolumeInfo;
    assert.equal(broken.Status['Kind'], 'unknown');
    assert.match(String(broken.Status['Error']), /^opts\.json is corrupt: /);
    assert.match(broken.CreatedAt, /^\d{4}-\d\d-\d\dT/);
    await assert.rejects(store.mount('broken', 'x'), /volume broken cannot be mounted: opts\.json is corrupt/);
    assert.match(String(((await store.get('odd')) as VolumeInfo).Status['Error']), /a thin volume without its thin record/);
    assert.deepEqual(((await store.get('fromdocker')) as VolumeInfo).Status, { Kind: 'plain', Mounts: 0 });
    assert.equal(await store.mount('fromdocker', 'x'), path.join(root, 'volumes', 'fromdocker', '_data'));
    await store.remove('broken');
    assert.equal(await store.get('broken'), null);
  });

  it('says thin volumes need device-mapper here, and still makes plain ones', async () => {
    const before = await tree(root);
    await assert.rejects(store.create('thin1', { size: '64M' }), (err: Error & { code?: string }) => err.code === 'ENODM' && /thin volumes are unavailable: device-mapper is not available in this kernel: load it with `modprobe dm_thin_pool`/.test(err.message));
    await assert.rejects(store.create('thin2', { from: 'thin1' }), /modprobe dm_thin_pool/);
    assert.deepEqual(await tree(root), before, 'nothing is left of a refused create');
    await store.create('auto1', null);
    assert.equal(((await store.get('auto1')) as VolumeInfo).Status['Kind'], 'plain', 'auto without a pool is plain');
    const thinOnly = makeStore(root, { volumeKind: 'thin' });
    await thinOnly.load();
    await assert.rejects(thinOnly.create('auto2', null), /thin volumes are unavailable/);
  });

  it('mounts under the mount root when it differs from the state directory (the managed plugin)', async () => {
    const mountRoot = path.join(dir, 'propagated');
    store = makeStore(root, { mountRoot });
    await store.load();
    await store.create('m1', null);
    await store.create('m2', { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });
    const mp1 = await store.mount('m1', 'a');
    assert.equal(mp1, path.join(mountRoot, 'volumes', 'm1'));
    assert.equal(mounted(mp1), true, 'plain data is bind-mounted at the mountpoint');
    await fsp.writeFile(path.join(mp1, 'through-bind'), 'y');
    assert.equal(await fsp.readFile(path.join(root, 'volumes', 'm1', '_data', 'through-bind'), 'utf8'), 'y');
    const mp2 = await store.mount('m2', 'b');
    assert.equal(mp2, path.join(mountRoot, 'volumes', 'm2'));
    assert.deepEqual(await store.list(), [{ Name: 'm1', Mountpoint: mp1 }, { Name: 'm2', Mountpoint: mp2 }]);
    // Restart with both mounted: both are stale, unmounted, and their mountpoints removed.
    store = makeStore(root, { mountRoot });
    await store.load();
    assert.equal(mounted(mountRoot), false);
    assert.deepEqual(await fsp.readdir(path.join(mountRoot, 'volumes')), []);
    await store.mount('m1', 'c');
    await store.unmount('m1', 'c');
    assert.deepEqual(await fsp.readdir(path.join(mountRoot, 'volumes')), [], 'the last unmount removes the mountpoint');
    await store.remove('m1');
    assert.deepEqual(await tree(path.join(root, 'volumes')), ['m2/', 'm2/_data/', 'm2/opts.json']);
  });

  it('answers hostile requests over HTTP with an Err and writes nothing anywhere', async () => {
    const app = createApp({ graph: notUsed<GraphDriverApi>('graph'), volumes: store, log });
    const before = await tree(dir);
    const hostile: Array<[string, unknown]> = [
      ['VolumeDriver.Create', { Name: '../../escape', Opts: null }],
      ['VolumeDriver.Create', { Name: '..', Opts: null }],
      ['VolumeDriver.Create', { Name: 'a/b', Opts: null }],
      ['VolumeDriver.Create', { Name: 'nul\u0000', Opts: null }],
      ['VolumeDriver.Create', { Name: 'x'.repeat(256), Opts: null }],
      ['VolumeDriver.Create', { Name: '', Opts: null }],
      ['VolumeDriver.Create', { Name: 'ok', Opts: { bogus: '1' } }],
      ['VolumeDriver.Create', { Name: 'ok', Opts: { type: 'tmpfs' } }],
      ['VolumeDriver.Create', { Name: 'ok', Opts: { size: '1G', type: 'tmpfs', device: 'tmpfs' } }],
      ['VolumeDriver.Create', { Name: 'ok', Opts: { type: 'none', device: '../..', o: 'bind' } }],
      ['VolumeDriver.Create', { Name: 'ok', Opts: { size: '10' } }],
      ['VolumeDriver.Remove', { Name: '../state' }],
      ['VolumeDriver.Mount', { Name: '../../etc', ID: 'x' }],
      ['VolumeDriver.Unmount', { Name: 'ghost', ID: 'x' }],
      ['VolumeDriver.Path', { Name: '/etc/passwd' }],
    ];
    for (const [method, body] of hostile) {
      const res = await request(app).post(`/${method}`).send(`${JSON.stringify(body)}\n`).unset('Content-Type');
      assert.equal(res.status, 200);
      assert.equal(typeof (res.body as { Err?: unknown }).Err, 'string', `${method} ${JSON.stringify(body).slice(0, 60)} gets an Err`);
    }
    const malformed = await request(app).post('/VolumeDriver.Create').send('{"Name":"x","Opts":{').unset('Content-Type');
    assert.match(String((malformed.body as { Err?: string }).Err), /malformed JSON/);
    assert.deepEqual(await tree(dir), before);
    assert.deepEqual((await store.list()), []);
  });
});
