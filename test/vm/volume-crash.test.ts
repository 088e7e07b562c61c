// Crash safety of volumes: the plugin process (npm start) is killed with
// SIGKILL at each step of a thin volume's create, of a clone of a mounted
// volume, and of a remove. Each restart must find every volume whole or
// not there at all, no staging directory, no stale mount, and exactly one
// thin device per thin volume; at the end the pool must agree with its
// metadata and pass thin_check.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { listThinIds } from '../../src/deviceset/pool';
import { deviceHashOf } from '../../src/deviceset/namespaces';
import { volumeDeviceId } from '../../src/volume/names';
import { mountpointsUnder } from '../../src/volume/mounts';
import { requireRoot, requireVm } from '../support/env';
import { openSet, SMALL, tempHome } from '../support/deviceset';
import { run } from '../support/exec';
import { LISTENING, startPlugin, type PluginProcess } from '../support/plugin-process';
import { postUnix } from '../support/unix-http';

const RECONCILED = 'thin volumes reconciled with the pool';

describe('volume crash safety (VM)', function () {
  let root = '';
  let socket = '';
  let logFile = '';
  /** volumes that must exist, with a file each must hold (null: none) */
  const expected = new Map<string, string | null>();
  let kills = 0;

  const env = (failpoint = ''): Record<string, string> => ({
    DMTHIN_ROOT: root,
    DMTHIN_SOCKET: socket,
    DMTHIN_STORAGE_OPTS: SMALL.join(' '),
    DMTHIN_FAILPOINT: failpoint,
  });

  async function post(method: string, body: unknown = {}): Promise<Record<string, unknown>> {
    const res = await postUnix(socket, method, body);
    if (typeof res.body['Err'] === 'string') throw new Error(`${method}: ${res.body['Err']}`);
    return res.body;
  }

  async function started(failpoint = ''): Promise<PluginProcess> {
    const plugin = startPlugin(env(failpoint), logFile);
    await plugin.waitFor(LISTENING);
    return plugin;
  }

  before(async function () {
    requireVm(this);
    requireRoot(this);
    const dir = await tempHome('volcrash');
    root = path.join(dir, 'state');
    socket = path.join(dir, 'dmthin.sock');
    logFile = path.join(dir, 'dmthin.log');
    const plugin = await started();
    try {
      await post('VolumeDriver.Create', { Name: 'src', Opts: { size: '32M', fs: 'ext4' } });
      const mp = String((await post('VolumeDriver.Mount', { Name: 'src', ID: 'setup' }))['Mountpoint']);
      await fsp.writeFile(path.join(mp, 'src.txt'), 'src');
      await post('VolumeDriver.Unmount', { Name: 'src', ID: 'setup' });
      await post('VolumeDriver.Create', { Name: 'keep', Opts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });
      // Mounted when dmthin dies: the restart must unmount it.
      await post('VolumeDriver.Mount', { Name: 'keep', ID: 'setup' });
    } finally {
      await plugin.kill();
    }
    expected.set('src', 'src.txt').set('keep', null);
  });

  after(() => {
    process.stdout.write(`      (${kills} SIGKILLs in all)\n`);
  });

  /**
   * In a freshly started dmthin, once it has reconciled: the volumes and
   * their devices are what must be there; the volumes given mount with their data.
   */
  async function verify(plugin: PluginProcess, toMount: readonly string[]): Promise<void> {
    await plugin.waitFor(RECONCILED);
    assert.deepEqual(mountpointsUnder(path.join(root, 'volumes'), { includeSelf: false }), [], 'no stale mount survives the start');
    const listed = ((await post('VolumeDriver.List'))['Volumes'] as Array<{ Name: string }>).map((v) => v.Name).sort();
    assert.deepEqual(listed, [...expected.keys()].sort(), 'exactly the volumes that were finished');
    const entries = await fsp.readdir(path.join(root, 'volumes'));
    assert.deepEqual(entries.filter((e) => e.startsWith('.')), [], 'no staging directory is left');
    const thin = new Set<string>();
    for (const name of listed) {
      const status = ((await post('VolumeDriver.Get', { Name: name }))['Volume'] as { Status: Record<string, unknown> }).Status;
      assert.equal(status['Error'], undefined, `${name}: ${String(status['Error'])}`);
      if (status['Kind'] === 'thin') {
        thin.add(deviceHashOf('volume', volumeDeviceId(name)));
        assert.equal(typeof status['DeviceId'], 'number');
      }
    }
    const devices = (await fsp.readdir(path.join(root, 'metadata'))).filter((f) => f.startsWith('vol-'));
    assert.deepEqual(devices.sort(), [...thin].sort(), 'one thin device per thin volume, none without a volume');
    for (const name of toMount) {
      const file = expected.get(name) ?? null;
      const mp = String((await post('VolumeDriver.Mount', { Name: name, ID: 'verify' }))['Mountpoint']);
      if (file !== null) assert.equal(await fsp.readFile(path.join(mp, file), 'utf8'), 'src', `${name} holds its data`);
      await post('VolumeDriver.Unmount', { Name: name, ID: 'verify' });
    }
  }

  /** What the last kill must have left, checked by the next start; the setup leaves keep's tmpfs mounted. */
  let pending: { after: string; toMount: string[] } = { after: 'the setup', toMount: ['keep'] };

  /**
   * Starts dmthin with `failpoint` armed; it first checks what the last
   * kill left (one start serves both: each one costs seconds under
   * emulation), then runs `action`, which must kill it. `made` is the
   * volume that must exist afterwards, if any; the next start mounts it,
   * and src when asked.
   */
  async function killAt(failpoint: string, action: () => Promise<unknown>, made?: [string, string | null], mountSrc = false): Promise<void> {
    const plugin = await started(failpoint);
    try {
      await verify(plugin, pending.toMount);
    } catch (err) {
      await plugin.kill();
      throw new Error(`after the kill at ${pending.after}: ${(err as Error).message}`, { cause: err });
    }
    // The request dies with the process: its error is the expected outcome.
    await action().catch(() => undefined);
    const { signal } = await plugin.exited;
    assert.equal(signal, 'SIGKILL', `dmthin must die at ${failpoint}: ${plugin.output().slice(-1500)}`);
    kills++;
    if (made !== undefined) expected.set(...made);
    pending = { after: failpoint, toMount: [...(made === undefined ? [] : [made[0]]), ...(mountSrc ? ['src'] : [])] };
  }

  const slug = (point: string): string => point.replace(/^volume:/, '').replace(/[^a-z]+/g, '-');

  for (const point of ['volume:create:staged', 'create-device:formatted', 'volume:create:device-made', 'volume:create:renamed']) {
    it(`a thin create killed at ${point}`, async () => {
      const name = `n-${slug(point)}`;
      // The rename is the commit: from there on the volume is whole.
      const made: [string, null] | undefined = point === 'volume:create:renamed' ? [name, null] : undefined;
      await killAt(point, () => post('VolumeDriver.Create', { Name: name, Opts: { size: '32M', fs: 'ext4' } }), made);
    });
  }

  for (const point of ['add-device:origin-suspended', 'volume:create:renamed']) {
    it(`a clone of a mounted volume killed at ${point}`, async () => {
      const name = `c-${slug(point)}`;
      const made: [string, string] | undefined = point === 'volume:create:renamed' ? [name, 'src.txt'] : undefined;
      await killAt(point, async () => {
        await post('VolumeDriver.Mount', { Name: 'src', ID: 'in-use' });
        await post('VolumeDriver.Create', { Name: name, Opts: { from: 'src' } });
      }, made, true);
    });
  }

  // delete-device:discarded comes after a kill that leaves no orphan device: the
  // start that checks it must not reach a delete-device:* failpoint while reconciling.
  for (const point of ['volume:remove:renamed', 'volume:remove:device-deleted', 'delete-device:discarded']) {
    it(`a remove killed at ${point}`, async () => {
      const name = `r-${slug(point)}`;
      // Once Remove has begun, the restart finishes it, whatever the step.
      await killAt(point, async () => {
        await post('VolumeDriver.Create', { Name: name, Opts: { size: '32M', fs: 'ext4' } });
        await post('VolumeDriver.Remove', { Name: name });
      });
    });
  }

  it('restarts cleanly after the last kill, and stops cleanly', async () => {
    const plugin = await started();
    try {
      await verify(plugin, pending.toMount);
    } finally {
      assert.equal((await plugin.stop()).code, 0, 'a clean stop');
    }
  });

  it('leaves a pool whose thin devices are exactly those its metadata names, and thin_check passes', async () => {
    assert.ok(kills >= 9, `${kills} kills`);
    const set = await openSet(root);
    try {
      const known = [...set.listDevices(), ''].map((h) => Number(set.deviceMetadata(h)['DeviceId'])).sort((a, b) => a - b);
      assert.deepEqual([...(await listThinIds(set.pool))].sort((a, b) => a - b), known);
      assert.deepEqual(set.faultyDevices(), []);
      assert.deepEqual(set.listDevices().sort(), [...expected.keys()].filter((n) => n !== 'keep').map((n) => deviceHashOf('volume', volumeDeviceId(n))).sort());
    } finally {
      await set.shutdown();
    }
    await run('thin_check', [path.join(root, 'devicemapper', 'metadata')]);
  });
});
