// The plugin's settings from its environment: defaults, and a clear
// ECONFIG naming the variable for every bad value, before anything runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { loadSettings } from '../../src/config';

const GiB = 1024 ** 3;

function rejects(env: Record<string, string>, message: RegExp): void {
  assert.throws(() => loadSettings(env), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'ECONFIG');
    assert.match((err as Error).message, message);
    return true;
  });
}

describe('settings (DMTHIN_*)', () => {
  it('has defaults for a plain process on the legacy plugin socket', () => {
    assert.deepEqual(loadSettings({}), {
      root: '/var/lib/dmthin',
      mountRoot: '/var/lib/dmthin',
      socket: '/run/docker/plugins/dmthin.sock',
      snapshotterSocket: '/run/dmthin/snapshotter.sock',
      drivers: { graph: true, volume: true },
      storageOpts: [],
      logLevel: 'info',
      logFormat: 'auto',
      volumeKind: 'auto',
      volumeSize: 10 * GiB,
      metrics: null,
    });
  });

  it('reads every variable; the mount root follows the root unless set; empty means default', () => {
    const s = loadSettings({
      DMTHIN_ROOT: '/srv/dmthin/',
      DMTHIN_SOCKET: '/run/docker/plugins/x.sock',
      DMTHIN_STORAGE_OPTS: ' dm.basesize=20G  dm.fs=ext4 ',
      DMTHIN_LOG_LEVEL: 'debug',
      DMTHIN_VOLUME_KIND: 'plain',
      DMTHIN_VOLUME_SIZE: '1.5G',
      DMTHIN_MOUNT_ROOT: '',
      UNRELATED: 'x',
    });
    assert.equal(s.root, '/srv/dmthin');
    assert.equal(s.mountRoot, '/srv/dmthin');
    assert.deepEqual(s.storageOpts, ['dm.basesize=20G', 'dm.fs=ext4']);
    assert.equal(s.logLevel, 'debug');
    assert.equal(s.volumeKind, 'plain');
    assert.equal(s.volumeSize, 1.5 * GiB);
    assert.equal(loadSettings({ DMTHIN_MOUNT_ROOT: '/mnt/dmthin' }).mountRoot, '/mnt/dmthin');
    assert.equal(loadSettings({ DMTHIN_SNAPSHOTTER_SOCKET: '/run/x/snap.sock' }).snapshotterSocket, '/run/x/snap.sock');
    assert.equal(loadSettings({ DMTHIN_SNAPSHOTTER_SOCKET: 'off' }).snapshotterSocket, null);
    assert.deepEqual(loadSettings({ DMTHIN_GRAPHDRIVER: 'off' }).drivers, { graph: false, volume: true });
    assert.deepEqual(loadSettings({ DMTHIN_VOLUMEDRIVER: 'off', DMTHIN_GRAPHDRIVER: 'on' }).drivers, { graph: true, volume: false });
    assert.deepEqual(loadSettings({ DMTHIN_METRICS: '/run/dmthin/metrics.sock' }).metrics, { socket: '/run/dmthin/metrics.sock' });
    assert.deepEqual(loadSettings({ DMTHIN_METRICS: '127.0.0.1:9323' }).metrics, { host: '127.0.0.1', port: 9323 });
    assert.deepEqual(loadSettings({ DMTHIN_METRICS: '[::1]:9323' }).metrics, { host: '::1', port: 9323 });
  });

  it('refuses bad values, naming the variable', () => {
    rejects({ DMTHIN_ROOT: 'relative/dir' }, /^DMTHIN_ROOT "relative\/dir" must match pattern/);
    rejects({ DMTHIN_MOUNT_ROOT: '/a\0b' }, /^DMTHIN_MOUNT_ROOT /);
    rejects({ DMTHIN_SOCKET: `/run/${'s'.repeat(120)}.sock` }, /^DMTHIN_SOCKET .* must NOT have more than 107 characters/);
    rejects({ DMTHIN_SNAPSHOTTER_SOCKET: 'run/snap.sock' }, /^DMTHIN_SNAPSHOTTER_SOCKET "run\/snap.sock" must match pattern/);
    rejects({ DMTHIN_GRAPHDRIVER: 'no' }, /^DMTHIN_GRAPHDRIVER "no" must be one of on, off$/);
    rejects({ DMTHIN_GRAPHDRIVER: 'off', DMTHIN_VOLUMEDRIVER: 'off', DMTHIN_SNAPSHOTTER_SOCKET: 'off' }, /nothing to serve/);
    rejects({ DMTHIN_LOG_LEVEL: 'loud' }, /^DMTHIN_LOG_LEVEL "loud" must be one of error, warn, info, debug$/);
    rejects({ DMTHIN_LOG_FORMAT: 'xml' }, /^DMTHIN_LOG_FORMAT "xml" must be one of auto, text, json$/);
    rejects({ DMTHIN_VOLUME_KIND: 'lvm' }, /^DMTHIN_VOLUME_KIND "lvm" must be one of auto, thin, plain$/);
    rejects({ DMTHIN_METRICS: '0.0.0.0:9323' }, /^DMTHIN_METRICS "0.0.0.0:9323" must match pattern/);
    rejects({ DMTHIN_METRICS: 'localhost:0' }, /^DMTHIN_METRICS "localhost:0": the port must be 1 to 65535/);
    rejects({ DMTHIN_VOLUME_SIZE: 'big' }, /^DMTHIN_VOLUME_SIZE: invalid size "big"/);
    rejects({ DMTHIN_STORAGE_OPTS: 'dm.basesize=10G dm.nosuch=1' }, /^DMTHIN_STORAGE_OPTS: unknown storage option dm\.nosuch$/);
  });

  it('stops the process with exit code 2 and the reason on stderr', () => {
    const main = path.join(__dirname, '..', '..', 'src', 'main.js');
    const result = spawnSync(process.execPath, [main], { env: { ...process.env, DMTHIN_LOG_LEVEL: 'loud' }, encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^dmthin: DMTHIN_LOG_LEVEL "loud" must be one of/);
    assert.equal(result.stdout, '', 'nothing started');
  });
});
