// End to end: Debian's dockerd 20.10 with dmthin as its storage driver
// (a legacy socket plugin, `dockerd --experimental -s dmthin`), running
// containers from a busybox image made here.
import assert from 'node:assert/strict';
import path from 'node:path';
import { dm } from '../../src/devmapper';
import { tempHome } from '../support/deviceset';
import { Dockerd, haveDockerd } from '../support/dockerd';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { DmthinProcess } from '../support/plugin-process';
import { waitUntil } from '../support/processes';

describe('dockerd 20.10 on dmthin (VM)', function () {
  let dir = '';
  let dmthin: DmthinProcess | undefined;
  let dockerd: Dockerd | undefined;
  const docker = (...args: string[]): Promise<string> => (dockerd as Dockerd).docker(...args);

  before(async function () {
    requireVm(this);
    requireRoot(this);
    if (!haveDockerd()) skipBecause(this, 'dockerd is not installed (scripts/setup --test installs docker.io)');
    dir = await tempHome('dockerd');
    dmthin = new DmthinProcess(path.join(dir, 'dmthin'), path.join(dir, 'dmthin.log'), {
      DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=8G dm.loopmetadatasize=256M dm.basesize=1G',
    });
    await dmthin.start();
    dockerd = new Dockerd(dir, { driver: 'dmthin', args: ['--experimental', '-s', 'dmthin'] });
    await dockerd.start();
    // A busybox image, made here: no registry is reachable.
    await dockerd.importBusybox();
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
    await dockerd?.restart();
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
