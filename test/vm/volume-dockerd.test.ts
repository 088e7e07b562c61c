// End to end in the VM: dockerd 20.10 (vfs for layers) uses dmthin as a
// volume driver for thin volumes: `docker volume create -o size=...` is a
// quota a container runs into, `-o from=...` clones a volume a running
// container is writing to, a volume without options is thin, and
// `docker volume rm` leaves no device behind. (Names have two letters or
// more: the CLI reads `-v q:/data` as a Windows drive q:.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { dm } from '../../src/devmapper';
import { Dockerd, haveDockerd } from '../support/dockerd';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { SMALL, tempHome } from '../support/deviceset';
import { startPlugin, type PluginProcess } from '../support/plugin-process';
import { waitUntil } from '../support/processes';

describe('dockerd 20.10 with dmthin thin volumes (VM)', function () {
  const driver = `dmthin-vol-${randomBytes(4).toString('hex')}`;
  let dir = '';
  let plugin: PluginProcess | undefined;
  let dockerd: Dockerd | undefined;

  const docker = (...args: string[]): Promise<string> => (dockerd as Dockerd).docker(...args);
  const status = async (name: string): Promise<Record<string, unknown>> =>
    (JSON.parse(await docker('volume', 'inspect', name)) as Array<{ Status: Record<string, unknown> }>)[0]?.Status ?? {};
  const volumeDevices = async (): Promise<string[]> => (await dm.list()).map((d) => d.name).filter((n) => /-vol-[0-9a-f]{64}$/.test(n));

  before(async function () {
    requireVm(this);
    requireRoot(this);
    if (!haveDockerd()) skipBecause(this, 'dockerd is not installed (scripts/setup --test installs docker.io)');
    dir = await tempHome('voldockerd');
    plugin = startPlugin({
      DMTHIN_ROOT: path.join(dir, 'state'),
      DMTHIN_SOCKET: `/run/docker/plugins/${driver}.sock`,
      DMTHIN_STORAGE_OPTS: SMALL.join(' '),
      DMTHIN_VOLUME_SIZE: '512M',
      DMTHIN_LOG_LEVEL: 'debug',
    }, path.join(dir, 'dmthin.log'));
    await plugin.waitFor('thin volumes reconciled with the pool');
    dockerd = new Dockerd(path.join(dir, 'd'));
    await dockerd.start();
    await dockerd.importBusybox();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stdout.write(`dmthin's log:\n${plugin?.output().slice(-6000) ?? ''}\n`);
  });

  after(async () => {
    await dockerd?.docker('rm', '-f', 'writer').catch(() => undefined);
    await dockerd?.stop();
    if (plugin !== undefined) assert.equal((await plugin.stop()).code, 0, 'dmthin stops cleanly');
  });

  it('makes -o size a quota that a container runs into, and shows size and use', async () => {
    await docker('volume', 'create', '-d', driver, '-o', 'size=64M', '-o', 'fs=ext4', 'quota1');
    const before = await status('quota1');
    assert.equal(before['Kind'], 'thin');
    assert.equal(before['Size'], '64MiB');
    assert.equal(before['Filesystem'], 'ext4');
    assert.equal(typeof before['DeviceId'], 'number');
    const full = await (dockerd as Dockerd).dockerFails('run', '--rm', '--network', 'none', '-v', 'quota1:/data', 'bb:latest', 'dd', 'if=/dev/zero', 'of=/data/big', 'bs=1M', 'count=100');
    assert.match(full, /No space left on device/);
    const after = await status('quota1');
    assert.ok(Number(after['UsedBytes']) > 40 * 1024 * 1024, `Used: ${String(after['Used'])}`);
  });

  it('clones a volume while a container writes to it', async () => {
    await docker('run', '-d', '--name', 'writer', '--network', 'none', '-v', 'quota1:/data', 'bb:latest', 'sh', '-c', 'rm /data/big; echo hello > /data/f; sleep 600');
    await waitUntil('the container to write', async () => (await docker('exec', 'writer', 'cat', '/data/f')).trim() === 'hello');
    await docker('volume', 'create', '-d', driver, '-o', 'from=quota1', 'clone1');
    assert.equal((await docker('run', '--rm', '--network', 'none', '-v', 'clone1:/d', 'bb:latest', 'cat', '/d/f')).trim(), 'hello');
    const st = await status('clone1');
    assert.equal(st['ClonedFrom'], 'quota1');
    assert.equal(st['Size'], '64MiB');
    assert.match(await (dockerd as Dockerd).dockerFails('volume', 'create', '-d', driver, '-o', 'from=nope', 'c2'), /from=nope: no such volume/);
    await docker('rm', '-f', 'writer');
  });

  it('makes a volume without options thin, of DMTHIN_VOLUME_SIZE', async () => {
    await docker('volume', 'create', '-d', driver, 'plain1');
    const st = await status('plain1');
    assert.equal(st['Kind'], 'thin');
    assert.equal(st['Size'], '512MiB');
  });

  it('removes thin volumes with docker volume rm, devices and all', async () => {
    await docker('volume', 'rm', 'quota1', 'clone1', 'plain1');
    assert.equal((await docker('volume', 'ls', '-q', '--filter', `driver=${driver}`)).trim(), '');
    assert.deepEqual(await volumeDevices(), []);
    assert.deepEqual((await fsp.readdir(path.join(dir, 'state', 'metadata'))).filter((f) => f.startsWith('vol-')), [], 'no thin device of a volume is left in the pool');
  });
});
