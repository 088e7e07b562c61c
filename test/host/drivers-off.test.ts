// Each of dmthin's fronts can be turned off: DMTHIN_GRAPHDRIVER=off and
// DMTHIN_VOLUMEDRIVER=off leave the driver out of Plugin.Activate and
// refuse its calls naming the setting; both off leave no plugin socket,
// the containerd snapshotter alone serving; all three off is refused at
// start. The real process, on the host (no device-mapper needed).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, LISTENING, startPlugin, type PluginProcess } from '../support/plugin-process';
import { SnapshotsClient } from '../support/snapshots-client';
import { postUnix } from '../support/unix-http';

describe('turning fronts off', () => {
  let dir = '';
  let plugin: PluginProcess | undefined;
  const socket = (): string => path.join(dir, 'plugin.sock');

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-fronts-'));
  });
  afterEach(async () => {
    await plugin?.stop();
    plugin = undefined;
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const start = async (env: NodeJS.ProcessEnv): Promise<void> => {
    plugin = startPlugin({ DMTHIN_ROOT: path.join(dir, 'root'), DMTHIN_SOCKET: socket(), DMTHIN_LOG_FORMAT: 'json', ...env });
    await plugin.waitFor(LISTENING, 60_000);
  };

  it('DMTHIN_VOLUMEDRIVER=off: Plugin.Activate names only the GraphDriver, and volume calls are refused with the setting named', async () => {
    await start({ DMTHIN_VOLUMEDRIVER: 'off' });
    assert.deepEqual((await postUnix(socket(), 'Plugin.Activate')).body, { Implements: ['GraphDriver'] });
    const create = await postUnix(socket(), 'VolumeDriver.Create', { Name: 'v1' });
    assert.equal(create.status, 404);
    assert.match(String(create.body['Err']), /VolumeDriver\.Create: .*DMTHIN_VOLUMEDRIVER=off/);
    assert.deepEqual((await postUnix(socket(), 'VolumeDriver.List')).status, 404);
    assert.equal(existsSync(path.join(dir, 'root', 'volumes', 'v1')), false, 'no volume was made');
    // The GraphDriver still answers (without device-mapper here, Capabilities still does).
    assert.equal((await postUnix(socket(), 'GraphDriver.Capabilities')).status, 200);
  });

  it('DMTHIN_GRAPHDRIVER=off: Plugin.Activate names only the VolumeDriver, layer calls are refused, volumes work', async () => {
    await start({ DMTHIN_GRAPHDRIVER: 'off', DMTHIN_VOLUME_KIND: 'plain' });
    assert.deepEqual((await postUnix(socket(), 'Plugin.Activate')).body, { Implements: ['VolumeDriver'] });
    const init = await postUnix(socket(), 'GraphDriver.Init', { Home: path.join(dir, 'home'), Opts: [] });
    assert.equal(init.status, 404);
    assert.match(String(init.body['Err']), /GraphDriver\.Init: .*DMTHIN_GRAPHDRIVER=off/);
    const applyDiff = await postUnix(socket(), 'GraphDriver.ApplyDiff?id=abc', 'not a tar');
    assert.equal(applyDiff.status, 404);
    const created = await postUnix(socket(), 'VolumeDriver.Create', { Name: 'v1' });
    assert.equal(created.body['Err'] ?? '', '', String(created.body['Err']));
    assert.deepEqual(((await postUnix(socket(), 'VolumeDriver.List')).body['Volumes'] as Array<{ Name: string }>).map((v) => v.Name), ['v1']);
  });

  it('both drivers off: no plugin socket, the containerd snapshotter alone serves', async () => {
    const snapshotterSocket = path.join(dir, 'snapshotter.sock');
    await start({ DMTHIN_GRAPHDRIVER: 'off', DMTHIN_VOLUMEDRIVER: 'off', DMTHIN_SNAPSHOTTER_SOCKET: snapshotterSocket });
    assert.equal(existsSync(socket()), false, 'the plugin socket is not made');
    const client = new SnapshotsClient(snapshotterSocket);
    try {
      assert.deepEqual(await client.list(), []);
    } finally {
      client.close();
    }
  });

  it('all three off: refused at start with exit code 2, naming the settings', () => {
    const result = spawnSync(process.execPath, [CLI, 'serve'], {
      env: { ...process.env, DMTHIN_ROOT: path.join(dir, 'root'), DMTHIN_SOCKET: socket(), DMTHIN_GRAPHDRIVER: 'off', DMTHIN_VOLUMEDRIVER: 'off', DMTHIN_SNAPSHOTTER_SOCKET: 'off' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /DMTHIN_GRAPHDRIVER, DMTHIN_VOLUMEDRIVER and DMTHIN_SNAPSHOTTER_SOCKET are all off: nothing to serve/);
    assert.equal(existsSync(path.join(dir, 'root')), false, 'nothing was made');
  });
});
