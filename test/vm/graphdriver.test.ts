// The GraphDriver endpoints on a real DeviceSet, through the HTTP app,
// with the request shapes dockerd 20.10 sends.
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { DeviceSetHolder } from '../../src/deviceset';
import { DeviceSetDriver } from '../../src/graphdriver/driver';
import { loadInitRecord } from '../../src/graphdriver/init-record';
import { createApp } from '../../src/server/app';
import { requireRoot, requireVm } from '../support/env';
import { quietLog, SMALL, tempHome } from '../support/deviceset';
import { bufferBody, makeTar } from '../support/tar';
import { notUsed } from '../support/not-used';
import type { VolumeDriverApi } from '../../src/volume/types';

const IMAGE = '1'.repeat(64);
const CONTAINER = '2'.repeat(64);
const INIT = `${CONTAINER}-init`;

interface Answer {
  Err?: string;
  Dir?: string;
  Exists?: boolean;
  Status?: Array<[string, string]>;
  Metadata?: Record<string, string>;
  Capabilities?: { ReproducesExactDiffs: boolean };
}

/** The app as main.ts composes it: a holder opening the set under root, the driver restored from the last Init. */
async function startPlugin(root: string): Promise<{ app: ReturnType<typeof createApp>; holder: DeviceSetHolder }> {
  const restored = await loadInitRecord(root);
  const holder = new DeviceSetHolder({ root, pluginOptions: SMALL, log: quietLog });
  holder.start(restored?.opts ?? []);
  return { app: createApp({ graph: new DeviceSetDriver({ holder, root, log: quietLog, restored }), volumes: notUsed<VolumeDriverApi>('volumes'), log: quietLog }), holder };
}

describe('GraphDriver on a thin pool (VM)', function () {
  let app: ReturnType<typeof createApp>;
  let holder: DeviceSetHolder | undefined;
  let root = '';
  let home = '';

  const call = async (method: string, body: unknown): Promise<Answer> => {
    const res = await request(app).post(`/GraphDriver.${method}`).send(`${JSON.stringify(body)}\n`).unset('Content-Type');
    assert.equal(res.status, 200);
    return res.body as Answer;
  };

  before(async function () {
    requireVm(this);
    requireRoot(this);
    const dir = await tempHome('graph');
    root = path.join(dir, 'state');
    home = path.join(dir, 'docker', 'dmthin');
    ({ app, holder } = await startPlugin(root));
  });

  after(async () => {
    if (app !== undefined) await call('Cleanup', {});
    await holder?.shutdown();
  });

  it('refuses calls before Init, with an error that says so', async () => {
    assert.match(String((await call('Create', { ID: IMAGE })).Err), /GraphDriver\.Init has not been called/);
  });

  it('refuses an unknown storage option in Init, naming it', async () => {
    assert.match(String((await call('Init', { Home: home, Opts: ['dm.nosuch=1'], UIDMaps: null, GIDMaps: null })).Err), /unknown storage option dm\.nosuch/);
  });

  it('initializes with dockerd\'s --storage-opt winning over the plugin\'s settings', async () => {
    assert.deepEqual(await call('Init', { Home: home, Opts: ['dm.basesize=768M'], UIDMaps: null, GIDMaps: null }), {});
    const status = Object.fromEntries((await call('Status', {})).Status ?? []);
    assert.equal(status['Base Device Size'], '805.3MB');
    assert.equal(status['Data loop file'], path.join(root, 'devicemapper', 'data'), 'the pool lives in the plugin\'s state directory, not in Home');
    assert.deepEqual(await call('Capabilities', {}), { Capabilities: { ReproducesExactDiffs: false } });
  });

  it('makes an image layer, then a container\'s init and read-write layers as dockerd does', async () => {
    assert.deepEqual(await call('Create', { ID: IMAGE }), {});
    const dir = String((await call('Get', { ID: IMAGE })).Dir);
    assert.equal(dir, path.join(home, 'mnt', IMAGE, 'rootfs'));
    await fsp.writeFile(path.join(dir, 'from-image'), 'image\n');
    assert.deepEqual(await call('Put', { ID: IMAGE }), {});

    assert.deepEqual(await call('CreateReadWrite', { ID: INIT, Parent: IMAGE, MountLabel: '', StorageOpt: { size: '1G' } }), {});
    const initDir = String((await call('Get', { ID: INIT })).Dir);
    await fsp.writeFile(path.join(initDir, '.dockerenv'), '');
    await call('Put', { ID: INIT });
    assert.deepEqual(await call('CreateReadWrite', { ID: CONTAINER, Parent: INIT, StorageOpt: { size: '1G' } }), {});

    const rootfs = String((await call('Get', { ID: CONTAINER, MountLabel: '' })).Dir);
    try {
      assert.equal(await fsp.readFile(path.join(rootfs, 'from-image'), 'utf8'), 'image\n');
      assert.ok(existsSync(path.join(rootfs, '.dockerenv')));
    } finally {
      await call('Put', { ID: CONTAINER });
    }
    const meta = (await call('GetMetadata', { ID: CONTAINER })).Metadata ?? {};
    assert.equal(meta['DeviceSize'], String(1024 * 1024 * 1024));
    assert.match(meta['DeviceName'] ?? '', new RegExp(`^dmthin-\\d+:\\d+-\\d+-${CONTAINER}$`));
    assert.match(meta['DeviceId'] ?? '', /^\d+$/);
    assert.deepEqual(await call('Exists', { ID: CONTAINER }), { Exists: true });
  });

  it('answers errors as Err: a size option it does not know, an existing id, an unknown layer', async () => {
    assert.match(String((await call('CreateReadWrite', { ID: 'x1', Parent: IMAGE, StorageOpt: { iops: '5' } })).Err), /unknown storage option iops/);
    assert.match(String((await call('Create', { ID: IMAGE })).Err), /already exists/);
    assert.match(String((await call('Get', { ID: '3'.repeat(64) })).Err), /unknown device/);
    assert.deepEqual(await call('Exists', { ID: '3'.repeat(64) }), { Exists: false });
  });

  it('removes layers like docker rm and rmi, unknown ids included', async () => {
    for (const id of [CONTAINER, INIT, IMAGE, '4'.repeat(64)]) assert.deepEqual(await call('Remove', { ID: id }), {});
    assert.deepEqual(await call('Exists', { ID: IMAGE }), { Exists: false });
  });

  it('applies layer tars, lists changes, sizes them, and exports a diff that rebuilds the layer', async () => {
    const base = '5'.repeat(64);
    const top = '6'.repeat(64);
    const copy = '7'.repeat(64);
    await call('Create', { ID: base });
    const baseTar = makeTar([
      { name: 'etc/', type: 'directory', mode: 0o755 },
      { name: 'etc/passwd', body: 'root:x:0:0\n', mode: 0o644 },
      { name: 'bin/', type: 'directory', mode: 0o755 },
      { name: 'bin/busybox', body: 'BB', mode: 0o4755 },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
      { name: 'tmp/', type: 'directory', mode: 0o1777 },
    ]);
    let res = await request(app).post(`/GraphDriver.ApplyDiff?id=${base}&parent=`).send(await baseTar).unset('Content-Type');
    assert.deepEqual(res.body, { Size: 'root:x:0:0\n'.length + 2 });

    await call('Create', { ID: top, Parent: base });
    const topTar = makeTar([
      { name: 'etc/.wh.passwd', body: '' },
      { name: 'etc/hostname', body: 'box\n', mode: 0o644 },
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
      // As a tar writer makes it: a hard link's header carries its inode's
      // mode, which ApplyDiff gives the shared inode, as the in-tree driver does.
      { name: 'bin/ln', type: 'link', linkname: 'bin/busybox', mode: 0o4755 },
    ]);
    res = await request(app).post(`/GraphDriver.ApplyDiff?id=${top}&parent=${base}`).send(await topTar).unset('Content-Type');
    assert.deepEqual(res.body, { Size: 4 });

    const changes = (await call('Changes', { ID: top, Parent: base })) as { Changes?: Array<{ Path: string; Kind: number }> };
    const byPath = Object.fromEntries((changes.Changes ?? []).map((c) => [c.Path, c.Kind]));
    assert.equal(byPath['/etc/passwd'], 2);
    assert.equal(byPath['/etc/hostname'], 1);
    assert.equal(byPath['/run/fifo'], 1);
    assert.equal(byPath['/bin/ln'], 1);
    assert.deepEqual(await call('DiffSize', { ID: top, Parent: base }), { Size: 4 + 2 });

    const diff = await request(app).post('/GraphDriver.Diff').send(`${JSON.stringify({ ID: top, Parent: base })}\n`).unset('Content-Type').buffer(true).parse(bufferBody);
    assert.equal(diff.status, 200);
    await call('Create', { ID: copy, Parent: base });
    res = await request(app).post(`/GraphDriver.ApplyDiff?id=${copy}&parent=${base}`).send(diff.body as Buffer).unset('Content-Type');
    assert.equal(typeof (res.body as { Size?: number }).Size, 'number');
    assert.deepEqual(await call('Changes', { ID: copy, Parent: base }), await call('Changes', { ID: top, Parent: base }));
    const dir = String((await call('Get', { ID: copy })).Dir);
    try {
      assert.equal(await fsp.readFile(path.join(dir, 'etc/hostname'), 'utf8'), 'box\n');
      assert.equal(existsSync(path.join(dir, 'etc/passwd')), false);
      assert.equal((await fsp.stat(path.join(dir, 'bin/busybox'))).mode & 0o7777, 0o4755);
    } finally {
      await call('Put', { ID: copy });
    }
    for (const id of [copy, top, base]) await call('Remove', { ID: id });
  });

  it('keeps a hostile layer tar inside the layer, and refuses one that would delete above a directory with an Err', async () => {
    const evil = '8'.repeat(64);
    await call('Create', { ID: evil });
    // As dockerd's chrooted apply reads it: ".." stops at the layer root.
    const climbing = await request(app).post(`/GraphDriver.ApplyDiff?id=${evil}&parent=`).send(await makeTar([{ name: '../../../../etc/dmthin-evil', body: 'x' }])).unset('Content-Type');
    assert.deepEqual(climbing.body, { Size: 1 });
    assert.equal(existsSync('/etc/dmthin-evil'), false);
    const dir = String((await call('Get', { ID: evil })).Dir);
    assert.equal(await fsp.readFile(path.join(dir, 'etc/dmthin-evil'), 'utf8'), 'x');
    await call('Put', { ID: evil });
    const res = await request(app).post(`/GraphDriver.ApplyDiff?id=${evil}&parent=`).send(await makeTar([{ name: 'etc/.wh...', body: '' }])).unset('Content-Type');
    assert.match(String((res.body as { Err?: string }).Err), /layer tar entry #0 "etc\/\.wh\.\.\.": is a whiteout of "\.\.", which would delete the directory above it/);
    await call('Remove', { ID: evil });
  });

  it('keeps layers across Cleanup and a new Init, as across a dockerd restart', async () => {
    await call('Create', { ID: IMAGE });
    assert.deepEqual(await call('Cleanup', {}), {});
    assert.deepEqual(await call('Init', { Home: home, Opts: ['dm.basesize=768M'], UIDMaps: null, GIDMaps: null }), {});
    assert.deepEqual(await call('Exists', { ID: IMAGE }), { Exists: true });
    // A smaller base size than the pool already has is refused, as by the in-tree driver.
    await call('Cleanup', {});
    assert.match(String((await call('Init', { Home: home, Opts: null, UIDMaps: null, GIDMaps: null })).Err), /can only grow/);
    await call('Init', { Home: home, Opts: ['dm.basesize=768M'], UIDMaps: null, GIDMaps: null });
  });

  it('serves dockerd again after a plugin restart, without a new Init', async () => {
    const dir = String((await call('Get', { ID: IMAGE })).Dir);
    await fsp.writeFile(path.join(dir, 'before-restart'), 'kept\n');
    await call('Put', { ID: IMAGE });
    await holder?.shutdown();
    ({ app, holder } = await startPlugin(root));
    const again = String((await call('Get', { ID: IMAGE })).Dir);
    assert.equal(again, dir, 'the same Home as dockerd gave before the restart');
    assert.equal(await fsp.readFile(path.join(again, 'before-restart'), 'utf8'), 'kept\n');
    const status = Object.fromEntries((await call('Status', {})).Status ?? []);
    assert.equal(status['Base Device Size'], '805.3MB', 'dockerd\'s --storage-opt from the last Init still apply');
    await call('Put', { ID: IMAGE });
  });

  it('refuses ids that belong to thin volumes', async () => {
    assert.match(String((await call('Create', { ID: 'vol-abc' })).Err), /ids starting with vol- are dmthin's volumes/);
    assert.match(String((await call('Remove', { ID: 'vol-abc' })).Err), /vol-/);
  });
});
