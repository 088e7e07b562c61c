// Docker with its containerd image store on dmthin: Debian 13's dockerd 26
// with "features": {"containerd-snapshotter": true} and --storage-driver
// dmthin (dockerd hands the name to containerd as is: the key of
// [proxy_plugins.dmthin]), over Debian 13's containerd 1.7 with dmthin as
// its proxy snapshotter. The GraphDriver tests' workload (import, legacy
// build, run, commit) runs on it and on Docker's in-tree devicemapper
// driver of dockerd 20.10: every snapshot of the moby namespace is a
// dmthin snapshot, and the exports are the same entry for entry but for
// what containerd and block snapshots do otherwise (asserted as such).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Containerd } from '../support/containerd';
import { tempHome } from '../support/deviceset';
import { Dockerd, DOCKERD_20, DOCKERD_26, engineMissing } from '../support/dockerd';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { LISTENING, startPlugin, type PluginProcess } from '../support/plugin-process';
import { SnapshotsClient } from '../support/snapshots-client';
import { compareListings, listTarFile, type TarListing } from '../support/tar-listing';
import { CONTAINERS, Workload, inTreeWorkload, prepareAssets } from '../support/workload';

describe('dockerd 26 with the containerd image store on dmthin (VM)', function () {
  before(function () {
    requireVm(this);
    requireRoot(this);
    // About 6 minutes under emulation (an in-tree dockerd 20.10 beside it); runs by default, DMTHIN_DOCKERD_SNAPSHOTTER=0 leaves it out.
    if (process.env['DMTHIN_DOCKERD_SNAPSHOTTER'] === '0') skipBecause(this, 'DMTHIN_DOCKERD_SNAPSHOTTER=0 leaves out dockerd 26 on the dmthin snapshotter');
    for (const engine of [DOCKERD_26, DOCKERD_20]) {
      const missing = engineMissing(engine);
      if (missing !== null) skipBecause(this, missing);
    }
  });

  it('runs the GraphDriver tests\' workload (import, legacy build, run, commit, export) with every snapshot in dmthin, exports as the in-tree driver\'s but for the hard links a snapshot keeps', async function () {
    this.timeout(1_800_000);
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
    // Times before this came from a tar and must be kept; later ones were made by this run.
    const stableBefore = Math.floor(Date.now() / 1000);
    const assets = await prepareAssets(dir);
    const reference = inTreeWorkload(path.join(dir, 'in-tree'), assets);
    const snap = new Workload(dockerd, path.join(dir, 'dockerd'), assets);
    try {
      await plugin.waitFor(LISTENING);
      await containerd.start();
      await dockerd.start();
      await reference.daemon.start();
      // The GraphDriver tests' workload, step for step, on both sides; the
      // reference is Docker's in-tree devicemapper driver of dockerd 20.10.
      for (const w of [reference, snap]) {
        await w.importBase();
        await w.build();
        await w.run();
        await w.commit();
        await w.createFromCommit();
      }
      // Two differences are containerd's and block snapshots', not dmthin's, and
      // are asserted as such below: containerd's layer applier makes a directory
      // that a tar implies without an entry with 0755 where moby's makes it 0600;
      // and a build step's commit keeps the container's snapshot, so the hard
      // link the build made to a lower layer's /etc/group stays one inode (the
      // run's chmod reaches both names), where the GraphDriver's layer tar
      // turns it into a copy; so does docker commit with the run's hard link
      // to a file of a lower layer.
      const snapshotSemantics = new Set(['opt/implicit', 'etc/group', 'app/group-link', 'app/rundir/f-link']);
      const differences: string[] = [];
      const exported = new Map<string, [TarListing, TarListing]>();
      for (const container of [CONTAINERS.run, CONTAINERS.fromCommit]) {
        const expected = await listTarFile(await reference.exportContainer(container));
        const got = await listTarFile(await snap.exportContainer(container));
        exported.set(container, [expected, got]);
        const labels: [string, string] = [`in-tree 20.10 ${container}`, `dmthin snapshotter 26 ${container}`];
        differences.push(...compareListings(expected, got, { labels, stableBefore, ignore: (name) => snapshotSemantics.has(name) }));
      }
      assert.deepEqual(differences, [], `docker export differs:\n  ${differences.join('\n  ')}`);
      const [inTreeRun, snapRun] = exported.get(CONTAINERS.run) ?? assert.fail('exported');
      assert.deepEqual([inTreeRun.items.get('opt/implicit')?.mode, snapRun.items.get('opt/implicit')?.mode], [0o600, 0o755]);
      const group = snapRun.items.get('etc/group');
      assert.deepEqual([group?.type, group?.linkname, snapRun.items.get('app/group-link')?.mode], ['link', 'app/group-link', 0o600], 'one inode under both names');
      assert.equal(snapRun.items.get('app/group-link')?.sha256, inTreeRun.items.get('etc/group')?.sha256, 'the same content');
      const [inTreeCommit, snapCommit] = exported.get(CONTAINERS.fromCommit) ?? assert.fail('exported');
      const runLink = (listing: TarListing): Array<string | undefined> => {
        const item = listing.items.get('app/rundir/f-link');
        return [item?.type, item?.linkname, item?.type === 'file' ? item.sha256 : listing.items.get(item?.linkname ?? '')?.sha256];
      };
      assert.deepEqual(runLink(snapCommit), ['link', 'app/data/f', runLink(inTreeCommit)[2]], 'the commit keeps the run\'s hard link, with the same content');
      assert.equal(runLink(inTreeCommit)[0], 'file');
      const committed = await listTarFile(await snap.exportContainer(CONTAINERS.fromCommit));
      assert.equal(committed.items.get('app/run-file')?.sha256, createHash('sha256').update('run\n').digest('hex'), 'the commit holds what the container wrote');

      // containerd's moby namespace: its snapshots are dmthin's, the image layers committed.
      const infos = await client.list();
      assert.ok(infos.some((i) => i.kind === 'COMMITTED' && i.name.startsWith('moby/')), `committed layers in dmthin: ${infos.map((i) => i.name).join(', ')}`);
      assert.ok(infos.some((i) => i.kind === 'ACTIVE' && i.name.startsWith('moby/')), 'the containers have their active snapshots in dmthin');
      assert.match(await containerd.ctr('--namespace', 'moby', 'snapshots', '--snapshotter', 'dmthin', 'ls'), /Committed/);

      await snap.rm();
      await snap.rmi();
      assert.deepEqual(await snap.images(), [], 'every image removed');
    } finally {
      client.close();
      await reference.daemon.stop();
      await dockerd.stop();
      await containerd.stop();
      await plugin?.stop();
      plugin = undefined;
    }
  });
});
