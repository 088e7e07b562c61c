// The managed plugin's entrypoint preloads src/server/early.ts, so the
// socket takes dockerd's connections while dmthin is still loading.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { postUnix } from '../support/unix-http';
import { waitUntil } from '../support/processes';

const DIST_SRC = path.join(__dirname, '..', '..', 'src');
const EARLY = path.join(DIST_SRC, 'server', 'early.js');

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('early socket (managed plugin entrypoint)', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-early-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('accepts connections while the rest is loading, and answers requests made meanwhile once the app is there', async () => {
    const socketPath = path.join(dir, 'plugins', 'dmthin.sock');
    const go = path.join(dir, 'go');
    // The child blocks its event loop, as a slow require() does, until the test says go.
    const script = `
      const fs = require('node:fs');
      while (!fs.existsSync(${JSON.stringify(go)})) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      const { listenOnSocket } = require(${JSON.stringify(path.join(DIST_SRC, 'server', 'listen.js'))});
      const app = (req, res) => res.end(JSON.stringify({ Implements: ['GraphDriver'] }));
      listenOnSocket(app, process.env.DMTHIN_SOCKET).then(() => console.log('serving'));
      process.on('SIGTERM', () => process.exit(0));`;
    const child = spawn(process.execPath, ['--require', EARLY, '-e', script], { env: { ...process.env, DMTHIN_SOCKET: socketPath } });
    const exited = exitOf(child);
    try {
      await waitUntil('the early socket', async () => existsSync(socketPath), 10_000);
      assert.equal((await fsp.stat(socketPath)).mode & 0o777, 0o660);
      // dockerd's start-up check: a connection, nothing sent.
      await new Promise<void>((resolve, reject) => net.connect(socketPath).once('connect', function (this: net.Socket) {
        this.destroy();
        resolve();
      }).once('error', reject));
      const answer = postUnix(socketPath, 'Plugin.Activate');
      await new Promise((resolve) => setTimeout(resolve, 200));
      await fsp.writeFile(go, '');
      const res = await answer;
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { Implements: ['GraphDriver'] });
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('does not keep alive a process whose main gives up', async () => {
    const socketPath = path.join(dir, 'dmthin.sock');
    const child = spawn(process.execPath, ['--require', EARLY, '-e', 'process.exitCode = 2'], { env: { ...process.env, DMTHIN_SOCKET: socketPath } });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exitOf(child);
    clearTimeout(timer);
    assert.equal(code, 2, 'the process exits with main\'s code, not killed after 10 s');
  });

  it('leaves a socket already there to main, which replaces a stale one or refuses a live one', async () => {
    const socketPath = path.join(dir, 'dmthin.sock');
    const other = net.createServer().listen(socketPath);
    await new Promise((resolve) => other.once('listening', resolve));
    try {
      const script = `require(${JSON.stringify(path.join(DIST_SRC, 'server', 'listen.js'))})
        .listenOnSocket((req, res) => res.end('{}'), process.env.DMTHIN_SOCKET)
        .then(() => process.exit(0), (err) => { console.error(err.code); process.exit(3); });`;
      const child = spawn(process.execPath, ['--require', EARLY, '-e', script], { env: { ...process.env, DMTHIN_SOCKET: socketPath } });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      assert.equal(await exitOf(child), 3);
      assert.match(stderr, /EADDRINUSE/);
    } finally {
      other.close();
    }
  });
});
