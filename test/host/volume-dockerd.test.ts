// End to end on the host: Debian's dockerd 20.10 uses dmthin (a legacy
// plugin on /run/docker/plugins/<name>.sock, a name unique to this run)
// as a volume driver for plain volumes: create, ls, inspect, run -v, data
// kept across containers, the local driver's tmpfs options, a plugin
// killed with SIGKILL and restarted under a running container, a dockerd
// restart, and rm.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { mountpointsUnder, unmountAll } from '../../src/volume/mounts';
import { Dockerd, haveDockerd } from '../support/dockerd';
import { kernelHasDeviceMapper, requireRoot, skipBecause } from '../support/env';
import { LISTENING, startPlugin, type PluginProcess } from '../support/plugin-process';
import { waitUntil } from '../support/processes';

interface Inspected {
  Name: string;
  Driver: string;
  Mountpoint: string;
  Scope: string;
  CreatedAt: string;
  Options: Record<string, string> | null;
  Status: Record<string, unknown>;
}

describe('dockerd 20.10 with dmthin volumes (host)', function () {
  const driver = `dmthin-e2e-${randomBytes(4).toString('hex')}`;
  const socket = `/run/docker/plugins/${driver}.sock`;
  let dir = '';
  let root = '';
  let plugin: PluginProcess | undefined;
  let dockerd: Dockerd;

  const startDmthin = async (): Promise<void> => {
    // Plain volumes whatever the kernel: this suite is about the local store.
    plugin = startPlugin({ DMTHIN_ROOT: root, DMTHIN_SOCKET: socket, DMTHIN_VOLUME_KIND: 'plain', DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=2G dm.loopmetadatasize=64M dm.basesize=512M' }, path.join(dir, 'dmthin.log'));
    await plugin.waitFor(LISTENING);
  };
  const docker = (...args: string[]): Promise<string> => dockerd.docker(...args);
  const inspect = async (name: string): Promise<Inspected> => (JSON.parse(await docker('volume', 'inspect', name)) as Inspected[])[0] as Inspected;
  const ours = async (): Promise<string[]> =>
    (await docker('volume', 'ls', '--format', '{{.Driver}} {{.Name}}')).split('\n').filter((l) => l.startsWith(`${driver} `)).map((l) => l.split(' ')[1] ?? '').sort();

  before(async function () {
    requireRoot(this);
    if (!haveDockerd()) skipBecause(this, 'dockerd is not installed (scripts/setup --test installs docker.io)');
    dir = await fsp.mkdtemp('/var/tmp/dmthin-vole2e-');
    root = path.join(dir, 'state');
    await startDmthin();
    dockerd = new Dockerd(path.join(dir, 'd'));
    await dockerd.start();
    await dockerd.importBusybox();
  });

  after(async () => {
    if (dir === '') return;
    await docker('rm', '-f', 'long').catch(() => undefined);
    await dockerd?.stop();
    await plugin?.stop();
    await fsp.rm(socket, { force: true });
    await unmountAll(mountpointsUnder(dir));
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('creates a volume, lists it, and inspects it with its Status', async () => {
    assert.equal((await docker('volume', 'create', '-d', driver, 'v1')).trim(), 'v1');
    assert.deepEqual(await ours(), ['v1']);
    const v = await inspect('v1');
    assert.equal(v.Driver, driver);
    assert.equal(v.Scope, 'local');
    assert.equal(v.Mountpoint, path.join(root, 'volumes', 'v1', '_data'));
    assert.deepEqual(v.Status, { Kind: 'plain', Mounts: 0 });
    assert.ok(Math.abs(Date.parse(v.CreatedAt) - Date.now()) < 10 * 60_000, `CreatedAt ${v.CreatedAt}`);
  });

  it('keeps a volume\'s data from one container to the next', async () => {
    await docker('run', '--rm', '--network', 'none', '-v', 'v1:/data', 'bb:latest', 'sh', '-c', 'echo hello > /data/f');
    assert.equal((await docker('run', '--rm', '--network', 'none', '-v', 'v1:/data', 'bb:latest', 'cat', '/data/f')).trim(), 'hello');
    assert.equal(await fsp.readFile(path.join(root, 'volumes', 'v1', '_data', 'f'), 'utf8'), 'hello\n');
    assert.equal((await inspect('v1')).Status['Mounts'], 0, 'every mount was unmounted');
  });

  it('creates a volume that docker run names with --volume-driver (no options: Opts null)', async () => {
    await docker('run', '--rm', '--network', 'none', '--volume-driver', driver, '-v', 'auto1:/data', 'bb:latest', 'sh', '-c', 'echo x > /data/y');
    assert.deepEqual(await ours(), ['auto1', 'v1']);
    assert.equal(await fsp.readFile(path.join(root, 'volumes', 'auto1', '_data', 'y'), 'utf8'), 'x\n');
  });

  it('mounts a tmpfs volume with the local driver\'s options for as long as a container uses it', async () => {
    await docker('volume', 'create', '-d', driver, '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=1m', 't1');
    assert.deepEqual((await inspect('t1')).Status['Options'], { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });
    const full = await dockerd.dockerFails('run', '--rm', '--network', 'none', '-v', 't1:/data', 'bb:latest', 'dd', 'if=/dev/zero', 'of=/data/z', 'bs=1k', 'count=2048');
    assert.match(full, /No space left on device/);
    assert.deepEqual(mountpointsUnder(path.join(root, 'volumes')), [], 'unmounted when the container ended');
  });

  it('keeps a volume mounted at two paths of one container until the container ends', async () => {
    await docker('run', '-d', '--name', 'twice', '--network', 'none', '-v', 't1:/a', '-v', 't1:/b', 'bb:latest', 'sh', '-c', 'echo both > /a/f; sleep 600');
    await waitUntil('the container to write', async () => (await docker('exec', 'twice', 'cat', '/b/f')).trim() === 'both');
    const mp = path.join(root, 'volumes', 't1', '_data');
    assert.deepEqual(mountpointsUnder(mp), [mp]);
    assert.equal((await inspect('t1')).Status['Mounts'], 2, 'one Mount per path');
    await docker('rm', '-f', 'twice');
    assert.equal((await inspect('t1')).Status['Mounts'], 0);
    assert.deepEqual(mountpointsUnder(mp), [], 'unmounted once both paths were');
  });

  it('refuses bad options and names with dmthin\'s message, and creates nothing', async () => {
    assert.match(await dockerd.dockerFails('volume', 'create', '-d', driver, '-o', 'bogus=1', 'bad1'), /invalid option: "bogus"/);
    assert.match(await dockerd.dockerFails('volume', 'create', '-d', driver, '-o', 'type=tmpfs', 'bad2'), /missing required option: "device"/);
    assert.match(await dockerd.dockerFails('volume', 'create', '-d', driver, 'x y'), /"x y" includes invalid characters for a local volume name, only "\[a-zA-Z0-9\]\[a-zA-Z0-9_.-\]" are allowed/);
    assert.match(await dockerd.dockerFails('volume', 'create', '-d', driver, 'z'), /volume name is too short, names should be at least two alphanumeric characters/);
    if (!kernelHasDeviceMapper()) {
      assert.match(await dockerd.dockerFails('volume', 'create', '-d', driver, '-o', 'size=1G', 'bad3'), /thin volumes are unavailable: device-mapper is not available in this kernel/);
    }
    assert.deepEqual(await ours(), ['auto1', 't1', 'v1']);
    assert.deepEqual((await fsp.readdir(path.join(root, 'volumes'))).sort(), ['auto1', 't1', 'v1']);
  });

  it('survives a SIGKILL of the plugin: a running container keeps its mount, the restart unmounts the stale one', async () => {
    await docker('run', '-d', '--name', 'long', '--network', 'none', '-v', 't1:/data', 'bb:latest', 'sh', '-c', 'echo before > /data/f; sleep 600');
    await waitUntil('the container to write', async () => (await docker('exec', 'long', 'cat', '/data/f')).trim() === 'before');
    const mp = path.join(root, 'volumes', 't1', '_data');
    assert.deepEqual(mountpointsUnder(mp), [mp]);
    assert.equal((await plugin?.kill())?.signal, 'SIGKILL');
    await startDmthin();
    assert.deepEqual(mountpointsUnder(mp), [], 'the stale tmpfs is unmounted at start');
    assert.equal((await docker('exec', 'long', 'cat', '/data/f')).trim(), 'before', 'the container keeps its own copy of the mount');
    assert.equal((await inspect('t1')).Driver, driver);
    // dockerd's Unmount carries a mount ID of the killed process: a success.
    await docker('rm', '-f', 'long');
    assert.doesNotMatch(plugin?.output() ?? '', /"method":"VolumeDriver\.Unmount"/, 'no Unmount failed');
    assert.equal((await docker('run', '--rm', '--network', 'none', '-v', 'v1:/data', 'bb:latest', 'cat', '/data/f')).trim(), 'hello');
    await docker('volume', 'rm', 't1');
  });

  it('keeps its volumes across a dockerd restart', async () => {
    await dockerd.stop();
    await dockerd.start();
    assert.deepEqual(await ours(), ['auto1', 'v1'], 'dockerd found them again through Get');
    assert.equal((await docker('run', '--rm', '--network', 'none', '-v', 'v1:/data', 'bb:latest', 'cat', '/data/f')).trim(), 'hello');
  });

  it('removes volumes with docker volume rm, and their directories with them', async () => {
    await docker('volume', 'rm', 'v1', 'auto1');
    assert.deepEqual(await ours(), []);
    assert.deepEqual(await fsp.readdir(path.join(root, 'volumes')), []);
    assert.match(await dockerd.dockerFails('volume', 'inspect', 'v1'), /no such volume/i);
    assert.ok(existsSync(socket));
  });
});
