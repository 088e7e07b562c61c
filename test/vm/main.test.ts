// `npm start`: the plugin process as a user runs it, driven over its
// socket the way dockerd drives it, then stopped with SIGTERM.
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { dm } from '../../src/devmapper';
import { requireRoot, requireVm } from '../support/env';
import { tempHome } from '../support/deviceset';
import { LISTENING, startPlugin, type PluginProcess } from '../support/plugin-process';
import { makeTar } from '../support/tar';
import { postUnix } from '../support/unix-http';

async function post(socketPath: string, method: string, body: unknown): Promise<Record<string, unknown>> {
  return (await postUnix(socketPath, method, body)).body;
}

/** One test's own dmthin: socket, state directory, and dockerd's Home for the driver. */
interface MainRun {
  socket: string;
  root: string;
  home: string;
  env: NodeJS.ProcessEnv;
}

async function mainRun(name: string): Promise<MainRun> {
  const dir = await tempHome(name);
  const socket = path.join(dir, 'plugins', 'dmthin.sock');
  const root = path.join(dir, 'state');
  const env = { DMTHIN_SOCKET: socket, DMTHIN_ROOT: root, DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=2G dm.loopmetadatasize=64M dm.basesize=512M' };
  return { socket, root, home: path.join(dir, 'docker', 'dmthin'), env };
}

/** Starts dmthin as `npm start` does and waits until it listens. */
async function startMain(run: MainRun): Promise<PluginProcess> {
  const plugin = startPlugin(run.env);
  await plugin.waitFor(LISTENING);
  return plugin;
}

/** GraphDriver.Init as dockerd 20.10 sends it. */
async function init(run: MainRun): Promise<void> {
  assert.deepEqual(await post(run.socket, 'GraphDriver.Init', { Home: run.home, Opts: null, UIDMaps: null, GIDMaps: null }), {});
}

describe('the dmthin process (VM)', function () {
  before(function () {
    requireVm(this);
    requireRoot(this);
  });

  it('serves the plugin socket, makes its pool under DMTHIN_ROOT, keeps a layer in use mounted across a restart, and leaves nothing behind', async () => {
    const run = await mainRun('main');
    const { socket, root } = run;
    const plugin = await startMain(run);
    assert.deepEqual(await post(socket, 'Plugin.Activate', {}), { Implements: ['GraphDriver', 'VolumeDriver'] });
    await init(run);
    assert.ok(existsSync(path.join(root, 'devicemapper', 'data')), 'the default pool lives in sparse files under DMTHIN_ROOT');
    const id = 'e'.repeat(64);
    assert.deepEqual(await post(socket, 'GraphDriver.Create', { ID: id }), {});
    const dir2 = String((await post(socket, 'GraphDriver.Get', { ID: id }))['Dir']);
    await fsp.writeFile(path.join(dir2, 'hello'), 'world');
    const status = Object.fromEntries((await post(socket, 'GraphDriver.Status', {}))['Status'] as Array<[string, string]>);
    const pool = status['Pool Name'] ?? '';
    assert.equal((await dm.info(pool)).exists, true);

    // SIGTERM with the layer still in use (a Get without its Put, as for a
    // running container): it stays mounted, and so does the pool.
    assert.equal((await plugin.stop()).code, 0, plugin.output());
    assert.equal(await fsp.readFile(path.join(dir2, 'hello'), 'utf8'), 'world', 'the layer in use stays mounted');
    assert.equal((await dm.info(pool)).exists, true, 'the pool stays while a layer is in use');

    // Started again, it adopts the mount with its user: a Get shares it, the last Put unmounts it.
    const again = await startMain(run);
    assert.equal((await post(socket, 'GraphDriver.Get', { ID: id }))['Dir'], dir2);
    assert.deepEqual(await post(socket, 'GraphDriver.Put', { ID: id }), {});
    assert.equal(existsSync(path.join(dir2, 'hello')), true, 'one user left');
    assert.deepEqual(await post(socket, 'GraphDriver.Put', { ID: id }), {});
    assert.equal(existsSync(path.join(dir2, 'hello')), false, 'the last Put unmounts it');
    assert.equal((await again.stop()).code, 0, again.output());
    assert.equal((await dm.info(pool)).exists, false, 'with nothing in use the pool is removed on shutdown');
  });

  it('after a SIGKILL, adopts a layer left mounted where the GraphDriver mounts it, and lets dockerd remove one nothing holds', async () => {
    const run = await mainRun('main-kill');
    const { socket } = run;
    const plugin = await startMain(run);
    await init(run);
    const [held, cutShort] = ['a'.repeat(64), 'b'.repeat(64)];
    for (const id of [held, cutShort]) assert.deepEqual(await post(socket, 'GraphDriver.Create', { ID: id }), {});
    const heldDir = String((await post(socket, 'GraphDriver.Get', { ID: held }))['Dir']);
    await fsp.writeFile(path.join(heldDir, 'hello'), 'world');
    const cutDir = String((await post(socket, 'GraphDriver.Get', { ID: cutShort }))['Dir']);
    await plugin.kill();

    const again = await startMain(run);
    assert.equal(await fsp.readFile(path.join(heldDir, 'hello'), 'utf8'), 'world', 'the running container keeps its rootfs on the host');
    assert.equal((await post(socket, 'GraphDriver.Get', { ID: held }))['Dir'], heldDir);
    assert.deepEqual(await post(socket, 'GraphDriver.Put', { ID: held }), {});
    assert.equal(existsSync(path.join(heldDir, 'hello')), true, 'the adopted user is left');
    assert.deepEqual(await post(socket, 'GraphDriver.Put', { ID: held }), {});
    assert.equal(existsSync(path.join(heldDir, 'hello')), false, 'the last Put unmounts it');
    // dockerd removes a layer whose ApplyDiff failed: the adopted mount goes with it.
    assert.deepEqual(await post(socket, 'GraphDriver.Remove', { ID: cutShort }), {});
    assert.deepEqual(await post(socket, 'GraphDriver.Exists', { ID: cutShort }), { Exists: false });
    assert.equal(existsSync(cutDir), false, 'nothing is left mounted there');
    assert.equal((await again.stop()).code, 0, again.output());
  });

  it('finishes a request in flight on SIGTERM, takes no new ones, and keeps what it wrote', async () => {
    const run = await mainRun('main-inflight');
    const { socket } = run;
    let plugin = await startMain(run);
    await init(run);
    const id = 'f'.repeat(64);
    assert.deepEqual(await post(socket, 'GraphDriver.Create', { ID: id }), {});

    // An ApplyDiff whose body is still coming when SIGTERM arrives.
    const tar = await makeTar([{ name: 'big', body: 'x'.repeat(2 * 1024 * 1024) }]);
    let answer = '';
    const answered = new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: socket, path: `/GraphDriver.ApplyDiff?id=${id}&parent=`, method: 'POST' }, (res) => {
        res.on('data', (c: Buffer) => (answer += c.toString()));
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write(tar.subarray(0, 1024 * 1024));
      setTimeout(() => {
        void plugin.stop();
        setTimeout(() => req.end(tar.subarray(1024 * 1024)), 1500);
      }, 1500);
    });
    assert.equal(await answered, 200);
    assert.deepEqual(JSON.parse(answer), { Size: 2 * 1024 * 1024 });
    assert.equal((await plugin.exited).code, 0);
    await assert.rejects(post(socket, 'GraphDriver.Status', {}), /ENOENT|ECONNREFUSED/, 'no new requests once stopped');

    // Started again, it serves the layer without a new Init: the file is there.
    plugin = await startMain(run);
    try {
      const rootfs = String((await post(socket, 'GraphDriver.Get', { ID: id }))['Dir']);
      assert.equal((await fsp.stat(path.join(rootfs, 'big'))).size, 2 * 1024 * 1024);
      await post(socket, 'GraphDriver.Put', { ID: id });
    } finally {
      await plugin.stop();
    }
  });
});
