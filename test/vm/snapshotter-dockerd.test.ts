// Docker with its containerd image store on dmthin: Debian 13's dockerd 26
// with "features": {"containerd-snapshotter": true} and --storage-driver
// dmthin (dockerd hands the name to containerd as is: the key of
// [proxy_plugins.dmthin]), over Debian 13's containerd 1.7 with dmthin as
// its proxy snapshotter. import, run (writing), commit, export: every
// snapshot of the moby namespace is a dmthin snapshot, and the export
// holds what the container wrote.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Containerd } from '../support/containerd';
import { tempHome } from '../support/deviceset';
import { Dockerd, DOCKERD_26, engineMissing } from '../support/dockerd';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { LISTENING, startPlugin, type PluginProcess } from '../support/plugin-process';
import { SnapshotsClient } from '../support/snapshots-client';

const execFileAsync = promisify(execFile);

describe('dockerd 26 with the containerd image store on dmthin (VM)', function () {
  before(function () {
    requireVm(this);
    requireRoot(this);
    // About a minute and a half under emulation; runs by default, DMTHIN_DOCKERD_SNAPSHOTTER=0 leaves it out.
    if (process.env['DMTHIN_DOCKERD_SNAPSHOTTER'] === '0') skipBecause(this, 'DMTHIN_DOCKERD_SNAPSHOTTER=0 leaves out dockerd 26 on the dmthin snapshotter');
    const missing = engineMissing(DOCKERD_26);
    if (missing !== null) skipBecause(this, missing);
  });

  it('imports, runs, commits and exports with every snapshot in dmthin', async function () {
    this.timeout(900_000);
    const dir = await tempHome('d26snap');
    const socket = path.join(dir, 'snapshotter.sock');
    let plugin: PluginProcess | undefined = startPlugin(
      {
        DMTHIN_ROOT: path.join(dir, 'state'),
        DMTHIN_GRAPHDRIVER: 'off',
        DMTHIN_VOLUMEDRIVER: 'off',
        DMTHIN_SNAPSHOTTER_SOCKET: socket,
        DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=4G dm.loopmetadatasize=64M dm.basesize=512M',
      },
      path.join(dir, 'dmthin.log'),
    );
    const containerd = new Containerd(path.join(dir, 'containerd'), socket);
    const daemonJson = path.join(dir, 'daemon.json');
    await fsp.writeFile(daemonJson, JSON.stringify({ features: { 'containerd-snapshotter': true } }));
    const dockerd = new Dockerd(
      path.join(dir, 'dockerd'),
      { driver: 'dmthin', args: ['--storage-driver=dmthin', `--config-file=${daemonJson}`, `--containerd=${containerd.address}`] },
      DOCKERD_26,
    );
    const client = new SnapshotsClient(socket);
    try {
      await plugin.waitFor(LISTENING);
      await containerd.start();
      await dockerd.start();
      await dockerd.importBusybox('bb:latest');
      await dockerd.docker('run', '--name', 'c1', '--network', 'none', 'bb:latest', 'sh', '-c', 'mkdir /data && echo written > /data/file.txt');
      await dockerd.docker('commit', 'c1', 'bb:committed');
      assert.equal((await dockerd.docker('run', '--rm', '--network', 'none', 'bb:committed', 'cat', '/data/file.txt')).trim(), 'written');
      const exported = path.join(dir, 'c1.tar');
      await dockerd.docker('export', '-o', exported, 'c1');
      const { stdout: listing } = await execFileAsync('tar', ['-tf', exported]);
      assert.ok(listing.split('\n').includes('data/file.txt'), 'the export holds what the container wrote');
      const { stdout: content } = await execFileAsync('tar', ['-xOf', exported, 'data/file.txt']);
      assert.equal(content, 'written\n');

      // containerd's moby namespace: its snapshots are dmthin's, the image layers committed.
      const infos = await client.list();
      assert.ok(infos.some((i) => i.kind === 'COMMITTED' && i.name.startsWith('moby/')), `committed layers in dmthin: ${infos.map((i) => i.name).join(', ')}`);
      assert.ok(infos.some((i) => i.kind === 'ACTIVE' && i.name.startsWith('moby/')), 'the container c1 has its active snapshot in dmthin');
      assert.match(await containerd.ctr('--namespace', 'moby', 'snapshots', '--snapshotter', 'dmthin', 'ls'), /Committed/);

      await dockerd.docker('rm', 'c1');
      await dockerd.docker('rmi', 'bb:committed', 'bb:latest');
    } finally {
      client.close();
      await dockerd.stop();
      await containerd.stop();
      await plugin?.stop();
      plugin = undefined;
    }
  });
});
