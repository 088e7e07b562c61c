// On a kernel without device-mapper the plugin still runs, and Init says
// what is missing and how to fix it.
import assert from 'node:assert/strict';
import request from 'supertest';
import { DeviceSetHolder } from '../../src/deviceset';
import { DeviceSetDriver } from '../../src/graphdriver/driver';
import { createLogger } from '../../src/shared/log';
import { createApp } from '../../src/server/app';
import type { VolumeDriverApi } from '../../src/volume/types';
import { notUsed } from '../support/not-used';
import { kernelHasDeviceMapper, skipBecause } from '../support/env';

describe('GraphDriver.Init without device-mapper', () => {
  it('answers with an Err that names the missing module', async function () {
    if (kernelHasDeviceMapper()) skipBecause(this, 'this kernel has device-mapper');
    const log = createLogger('error');
    const root = '/var/tmp/dmthin-nodm';
    const holder = new DeviceSetHolder({ root, pluginOptions: [], log });
    holder.start([]);
    const app = createApp({ graph: new DeviceSetDriver({ holder, root, log }), volumes: notUsed<VolumeDriverApi>('volumes'), log });
    const res = await request(app).post('/GraphDriver.Init').send('{"Home":"/var/tmp/dmthin-nodm","Opts":null}\n').unset('Content-Type');
    assert.equal(res.status, 200);
    assert.match(String((res.body as { Err?: string }).Err), /device-mapper is not available in this kernel: load it with `modprobe dm_thin_pool`/);
    const create = await request(app).post('/GraphDriver.Create').send(`{"ID":"${'a'.repeat(64)}"}\n`).unset('Content-Type');
    assert.match(String((create.body as { Err?: string }).Err), /GraphDriver\.Init has not been called/, 'nothing is served without a successful Init');
  });
});
