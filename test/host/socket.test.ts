// The plugin socket: where dockerd finds a legacy plugin.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstatSync, promises as fsp, watch } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import { createApp } from '../../src/server/app';
import { listenOnSocket } from '../../src/server/listen';
import type { GraphDriverApi } from '../../src/graphdriver/types';
import { createLogger } from '../../src/shared/log';
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

  it('never shows the socket with a wider mode than 0660, even under umask 0, and removes it when it closes', async () => {
    const socketPath = path.join(dir, 'dmthin.sock');
    const seen: number[] = [];
    // Every time the name appears, its mode at once (a socket created in place would show 0777 under umask 0 until chmod).
    const watcher = watch(dir, (_event, name) => {
      const st = name === 'dmthin.sock' ? lstatSync(socketPath, { throwIfNoEntry: false }) : undefined;
      if (st !== undefined) seen.push(st.mode & 0o777);
    });
    const script = `
      process.umask(0);
      const { listenOnSocket } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'server', 'listen.js'))});
      listenOnSocket((req, res) => res.end('{}'), ${JSON.stringify(socketPath)}).then((server) => {
        console.log('serving');
        process.stdin.once('data', () => server.close(() => console.log('closed')));
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    const line = (want: string): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (lines.includes(want)) resolve();
          else child.stdout.once('data', (d: Buffer) => (lines.push(...d.toString().trim().split('\n')), check()));
        };
        check();
      });
    try {
      await line('serving');
      assert.equal((await fsp.lstat(socketPath)).mode & 0o777, 0o660);
      assert.deepEqual(await fsp.readdir(dir), ['dmthin.sock'], 'nothing else left beside it');
      child.stdin.write('close\n');
      await line('closed');
      assert.deepEqual(await fsp.readdir(dir), [], 'the socket goes with the server');
    } finally {
      child.kill();
      watcher.close();
    }
    assert.ok(seen.length > 0, 'the watcher saw the socket appear');
    assert.deepEqual([...new Set(seen)], [0o660]);
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
