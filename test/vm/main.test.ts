// `npm start`: the plugin process as a user runs it, driven over its
// socket the way dockerd drives it, then stopped with SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { dm } from '../../src/devmapper';
import { requireRoot, requireVm } from '../support/env';
import { tempHome } from '../support/deviceset';
import { postUnix } from '../support/unix-http';

const MAIN = path.join(__dirname, '..', '..', 'src', 'main.js');

async function post(socketPath: string, method: string, body: unknown): Promise<Record<string, unknown>> {
  return (await postUnix(socketPath, method, body)).body;
}

describe('the dmthin process (VM)', function () {
  before(function () {
    requireVm(this);
    requireRoot(this);
  });

  it('serves the plugin socket, makes its pool under DMTHIN_ROOT, and leaves nothing behind on SIGTERM', async () => {
    const dir = await tempHome('main');
    const socket = path.join(dir, 'plugins', 'dmthin.sock');
    const root = path.join(dir, 'state');
    const home = path.join(dir, 'docker', 'dmthin');
    const child = spawn(process.execPath, [MAIN], {
      env: { ...process.env, DMTHIN_SOCKET: socket, DMTHIN_ROOT: root, DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=2G dm.loopmetadatasize=64M dm.basesize=512M' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('"dmthin listening"')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`exited ${String(code)} before listening: ${out}${err}`)));
    });
    assert.deepEqual(await post(socket, 'Plugin.Activate', {}), { Implements: ['GraphDriver'] });
    assert.deepEqual(await post(socket, 'GraphDriver.Init', { Home: home, Opts: null, UIDMaps: null, GIDMaps: null }), {});
    assert.ok(existsSync(path.join(root, 'devicemapper', 'data')), 'the default pool lives in sparse files under DMTHIN_ROOT');
    const id = 'e'.repeat(64);
    assert.deepEqual(await post(socket, 'GraphDriver.Create', { ID: id }), {});
    const dir2 = String((await post(socket, 'GraphDriver.Get', { ID: id }))['Dir']);
    await fsp.writeFile(path.join(dir2, 'hello'), 'world');
    const status = Object.fromEntries((await post(socket, 'GraphDriver.Status', {}))['Status'] as Array<[string, string]>);
    const pool = status['Pool Name'] ?? '';
    assert.equal((await dm.info(pool)).exists, true);

    // SIGTERM with the layer still mounted: shutdown unmounts it and removes the pool.
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, err);
    assert.equal((await dm.info(pool)).exists, false, 'the pool is removed on shutdown');
    assert.equal(existsSync(path.join(dir2, 'hello')), false, 'the layer is unmounted');
  });
});
