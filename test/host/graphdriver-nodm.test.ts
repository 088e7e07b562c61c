// On a kernel without device-mapper the plugin still runs, and Init says
// what is missing and how to fix it.
import assert from 'node:assert/strict';
import request from 'supertest';
import { DeviceSetDriver } from '../../src/graphdriver/driver';
import { createLogger } from '../../src/log';
import { createApp } from '../../src/server/app';
import { kernelHasDeviceMapper, skipBecause } from '../support/env';

describe('GraphDriver.Init without device-mapper', () => {
  it('answers with an Err that names the missing module', async function () {
    if (kernelHasDeviceMapper()) skipBecause(this, 'this kernel has device-mapper');
    const log = createLogger('error');
    const app = createApp({ graph: new DeviceSetDriver({ pluginOptions: [], log }), log });
    const res = await request(app).post('/GraphDriver.Init').send('{"Home":"/var/tmp/dmthin-nodm","Opts":null}\n').unset('Content-Type');
    assert.equal(res.status, 200);
    assert.match(String((res.body as { Err?: string }).Err), /device-mapper is not available in this kernel: load it with `modprobe dm_thin_pool`/);
  });
});
