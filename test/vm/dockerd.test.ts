// End to end: Debian's dockerd 20.10 with dmthin as its storage driver
// (a legacy socket plugin, `dockerd --experimental -s dmthin`), running
// containers from a busybox image made here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { dm } from '../../src/devmapper';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { tempHome } from '../support/deviceset';
import { startLogged, waitUntil, type Started } from '../support/processes';

const execFileAsync = promisify(execFile);
const MAIN = path.join(__dirname, '..', '..', 'src', 'main.js');
const SOCKET = '/run/docker/plugins/dmthin.sock';

describe('dockerd 20.10 on dmthin (VM)', function () {
  let dir = '';
  let dmthin: Started | undefined;
  let dockerd: Started | undefined;
  const host = () => `unix://${path.join(dir, 'docker.sock')}`;
  const docker = async (...args: string[]): Promise<string> => {
    try {
      return (await execFileAsync('docker', ['-H', host(), ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout;
    } catch (err) {
      throw new Error(`docker ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? String(err)}`);
    }
  };

  const startDockerd = async (): Promise<void> => {
    dockerd = startLogged(
      'dockerd',
      ['--experimental', '-s', 'dmthin', '--data-root', path.join(dir, 'docker'), '--exec-root', path.join(dir, 'exec'),
        '-H', host(), '--pidfile', path.join(dir, 'dockerd.pid'), '--iptables=false', '--bridge=none'],
      path.join(dir, 'dockerd.log'),
    );
    await waitUntil('dockerd to answer', async () => (await docker('info', '--format', '{{.Driver}}')).trim() === 'dmthin');
  };

  before(async function () {
    requireVm(this);
    requireRoot(this);
    if (!existsSync('/usr/sbin/dockerd')) skipBecause(this, 'dockerd is not installed (scripts/setup --test installs docker.io)');
    dir = await tempHome('dockerd');
    dmthin = startLogged(process.execPath, [MAIN], path.join(dir, 'dmthin.log'), {
      ...process.env,
      DMTHIN_SOCKET: SOCKET,
      DMTHIN_ROOT: path.join(dir, 'dmthin'),
      DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=8G dm.loopmetadatasize=256M dm.basesize=1G',
    });
    await waitUntil('the dmthin socket', async () => existsSync(SOCKET));
    await startDockerd();
    // A busybox image, made here: no registry is reachable.
    const rootfs = path.join(dir, 'rootfs');
    await fsp.mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await fsp.copyFile('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
    for (const cmd of ['sh', 'echo', 'ls', 'cat', 'rm', 'mkdir']) await fsp.symlink('busybox', path.join(rootfs, 'bin', cmd));
    await execFileAsync('sh', ['-c', `tar -C ${rootfs} -c . | docker -H ${host()} import - bb:latest`]);
  });

  after(async () => {
    await dockerd?.stop();
    const code = await dmthin?.stop();
    if (dmthin !== undefined) assert.equal(code, 0, 'dmthin stops cleanly on SIGTERM');
  });

  it('shows dmthin and its Status rows in docker info', async () => {
    const info = await docker('info');
    assert.match(info, /Storage Driver: dmthin/);
    assert.match(info, /Pool Name: dmthin-/);
    assert.match(info, /Backing Filesystem: xfs/);
    assert.match(info, new RegExp(`Data loop file: ${path.join(dir, 'dmthin', 'devicemapper', 'data')}`));
  });

  it('runs a container from an imported image', async () => {
    assert.equal((await docker('run', '--rm', '--network', 'none', 'bb:latest', 'echo', 'hello from dmthin')).trim(), 'hello from dmthin');
  });

  it('shows a container\'s changes, commits them, and runs the committed image', async () => {
    await docker('run', '--name', 'c1', '--network', 'none', 'bb:latest', 'sh', '-c', 'echo data > /newfile; rm /bin/cat; mkdir -p /d/e');
    const diff = (await docker('diff', 'c1')).trim().split('\n').sort();
    assert.deepEqual(diff, ['A /d', 'A /d/e', 'A /newfile', 'C /bin', 'D /bin/cat']);
    await docker('commit', 'c1', 'bb:two');
    assert.equal((await docker('run', '--rm', '--network', 'none', 'bb:two', 'busybox', 'cat', '/newfile')).trim(), 'data');
    assert.equal((await docker('run', '--rm', '--network', 'none', 'bb:two', 'ls', '/bin/cat').catch((e: unknown) => String(e))).includes('No such file'), true);
    const inspect = JSON.parse(await docker('inspect', 'c1')) as Array<{ GraphDriver: { Name: string; Data: Record<string, string> } }>;
    assert.equal(inspect[0]?.GraphDriver.Name, 'dmthin');
    assert.match(inspect[0]?.GraphDriver.Data['DeviceName'] ?? '', /^dmthin-/);
    await docker('rm', 'c1');
  });

  it('keeps images across a dockerd restart, and removes them with rmi', async () => {
    await dockerd?.stop();
    await startDockerd();
    assert.match(await docker('images', '--format', '{{.Repository}}:{{.Tag}}'), /bb:two/);
    assert.equal((await docker('run', '--rm', '--network', 'none', 'bb:two', 'busybox', 'cat', '/newfile')).trim(), 'data');
    await docker('rmi', 'bb:two');
    assert.doesNotMatch(await docker('images', '--format', '{{.Repository}}:{{.Tag}}'), /bb:two/);
  });

  it('leaves no device of a removed container behind', async () => {
    const before = (await dm.list()).length;
    await docker('run', '--rm', '--network', 'none', 'bb:latest', 'echo');
    // Removal may be deferred to the last close; it must still happen.
    await waitUntil('the container\'s devices to go', async () => (await dm.list()).length === before, 10_000);
  });
});
