// The plugin socket: where dockerd finds a legacy plugin.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import { createApp } from '../../src/server/app';
import { listenOnSocket } from '../../src/server/listen';
import type { GraphDriverApi } from '../../src/graphdriver/types';
import { createLogger } from '../../src/log';
import { notUsed } from '../support/not-used';
import { postUnix } from '../support/unix-http';
import type { VolumeDriverApi } from '../../src/volume/types';


const post = (socketPath: string, method: string) => postUnix(socketPath, method);

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('plugin socket', () => {
  let dir = '';
  const app = createApp({ graph: notUsed<GraphDriverApi>('graph'), volumes: notUsed<VolumeDriverApi>('volumes'), log: createLogger('error') });

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-sock-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('serves Plugin.Activate on a unix socket that only its owner and group may use', async () => {
    const socketPath = path.join(dir, 'plugins', 'dmthin.sock');
    const server = await listenOnSocket(app, socketPath);
    try {
      assert.equal((await fsp.stat(socketPath)).mode & 0o777, 0o660);
      const res = await post(socketPath, 'Plugin.Activate');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { Implements: ['GraphDriver', 'VolumeDriver'] });
    } finally {
      await close(server);
    }
  });

  it('replaces a stale socket left by a dead process', async () => {
    const socketPath = path.join(dir, 'dmthin.sock');
    // A process that listens there and dies by SIGKILL leaves the socket file behind.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('up'))`]);
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.ok((await fsp.lstat(socketPath)).isSocket(), 'the stale socket file is there');
    const server = await listenOnSocket(app, socketPath);
    try {
      assert.equal((await post(socketPath, 'Plugin.Activate')).status, 200);
    } finally {
      await close(server);
    }
  });

  it('refuses to take over a socket another process serves, or a path that is not a socket', async () => {
    const socketPath = path.join(dir, 'dmthin.sock');
    const first = await listenOnSocket(app, socketPath);
    try {
      await assert.rejects(listenOnSocket(app, socketPath), { code: 'EADDRINUSE' });
      assert.equal((await post(socketPath, 'Plugin.Activate')).status, 200, 'the first server still serves');
    } finally {
      await close(first);
    }
    const file = path.join(dir, 'not-a-socket');
    await fsp.writeFile(file, 'data');
    await assert.rejects(listenOnSocket(app, file), { code: 'EEXIST' });
    assert.equal(await fsp.readFile(file, 'utf8'), 'data');
  });
});
