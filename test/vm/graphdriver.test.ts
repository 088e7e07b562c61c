// The GraphDriver endpoints on a real DeviceSet, through the HTTP app,
// with the request shapes dockerd 20.10 sends.
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { DeviceSetDriver } from '../../src/graphdriver/driver';
import { createApp } from '../../src/server/app';
import { requireRoot, requireVm } from '../support/env';
import { quietLog, SMALL, tempHome } from '../support/deviceset';

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

describe('GraphDriver on a thin pool (VM)', function () {
  let app: ReturnType<typeof createApp>;
  let home = '';

  const call = async (method: string, body: unknown): Promise<Answer> => {
    const res = await request(app).post(`/GraphDriver.${method}`).send(`${JSON.stringify(body)}\n`).unset('Content-Type');
    assert.equal(res.status, 200);
    return res.body as Answer;
  };

  before(async function () {
    requireVm(this);
    requireRoot(this);
    home = path.join(await tempHome('graph'), 'dmthin');
    app = createApp({ graph: new DeviceSetDriver({ pluginOptions: SMALL, log: quietLog }), log: quietLog });
  });

  after(async () => {
    if (app !== undefined) await call('Cleanup', {});
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
    assert.equal(status['Data loop file'], path.join(home, 'devicemapper', 'data'));
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
});
