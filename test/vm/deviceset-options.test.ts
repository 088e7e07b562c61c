// DeviceSet options that change how the pool and devices are made.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { dm, fs as kfs, loop, thin } from '../../src/devmapper';
import { requireRoot, requireVm } from '../support/env';
import { mountLayer, openSet, tempHome } from '../support/deviceset';
import { run } from '../support/exec';

const MiB = 1024 * 1024;
const ST_NOATIME = 1024;

describe('DeviceSet options (VM)', function () {
  before(function () {
    requireVm(this);
    requireRoot(this);
  });

  it('grows the loop files and the pool when dm.loopdatasize is raised, and never shrinks them', async () => {
    const home = await tempHome('grow');
    let set = await openSet(home);
    await set.shutdown();
    set = await openSet(home, ['dm.loopdatasize=6G']);
    try {
      assert.equal((await fsp.stat(path.join(home, 'devicemapper', 'data'))).size, 6 * 1024 * MiB);
      assert.equal(Object.fromEntries(await set.status())['Data Space Total'], '6.442GB');
    } finally {
      await set.shutdown();
    }
    set = await openSet(home, ['dm.loopdatasize=5G']);
    await set.shutdown();
    assert.equal((await fsp.stat(path.join(home, 'devicemapper', 'data'))).size, 6 * 1024 * MiB);
  });

  it('makes the pool with dm.blocksize and mounts layers with dm.mountopt, on ext4 with dm.mkfsarg', async () => {
    const home = await tempHome('opts');
    const set = await openSet(home, ['dm.blocksize=128K', 'dm.mountopt=noatime', 'dm.fs=ext4', 'dm.mkfsarg=-L', 'dm.mkfsarg=dmthinbase']);
    try {
      const rows = Object.fromEntries(await set.status());
      assert.equal(rows['Pool Blocksize'], '131.1kB');
      assert.equal(rows['Backing Filesystem'], 'ext4');
      await set.addDevice('l', '');
      const rootfs = await mountLayer(set, 'l');
      try {
        assert.equal((await kfs.statfs(rootfs)).flags & ST_NOATIME, ST_NOATIME);
        const label = await run('blkid', ['-p', '-s', 'LABEL', '-o', 'value', dm.devicePath(set.deviceName('l'))]);
        assert.equal(label.trim(), 'dmthinbase', 'dm.mkfsarg reached mkfs');
      } finally {
        await set.unmountDevice('l');
      }
    } finally {
      await set.shutdown();
    }
  });

  it('sets dm.xfs_nospace_max_retries on every xfs layer it mounts', async () => {
    const home = await tempHome('xfsretry');
    const set = await openSet(home, ['dm.xfs_nospace_max_retries=3', 'dm.fs=xfs']);
    try {
      await set.addDevice('x', '');
      await mountLayer(set, 'x');
      try {
        const minor = (await dm.info(set.deviceName('x'))).minor ?? -1;
        assert.equal((await fsp.readFile(`/sys/fs/xfs/dm-${minor}/error/metadata/ENOSPC/max_retries`, 'utf8')).trim(), '3');
      } finally {
        await set.unmountDevice('x');
      }
    } finally {
      await set.shutdown();
    }
  });

  it('builds its pool on block devices given by dm.datadev and dm.metadatadev', async () => {
    const home = await tempHome('datadev');
    const data = path.join(home, 'data.img');
    const meta = path.join(home, 'meta.img');
    await fsp.writeFile(data, '');
    await fsp.truncate(data, 2048 * MiB);
    await fsp.writeFile(meta, Buffer.alloc(4096));
    await fsp.truncate(meta, 64 * MiB);
    const dataDev = await loop.attach(data);
    const metaDev = await loop.attach(meta);
    try {
      const set = await openSet(home, [`dm.datadev=${dataDev}`, `dm.metadatadev=${metaDev}`]);
      try {
        const rows = Object.fromEntries(await set.status());
        assert.equal(rows['Data file'], dataDev);
        assert.equal(rows['Metadata file'], metaDev);
        assert.equal(rows['Data loop file'], undefined);
        await set.addDevice('on-block', '');
      } finally {
        await set.shutdown();
      }
      const again = await openSet(home, [`dm.datadev=${dataDev}`, `dm.metadatadev=${metaDev}`]);
      assert.ok(again.hasDevice('on-block'), 'the pool on block devices keeps its devices across restarts');
      await again.shutdown();
    } finally {
      await loop.detach(dataDev);
      await loop.detach(metaDev);
    }
  });

  it('defers the deletion of a device still open elsewhere, and finishes it once it is closed', async () => {
    const home = await tempHome('deferred');
    const set = await openSet(home);
    try {
      await set.addDevice('leaky', '');
      const rootfs = await mountLayer(set, 'leaky');
      // A copy of the mount that escaped, as into a container's mount namespace.
      const leak = path.join(home, 'leak');
      await fsp.mkdir(leak);
      await kfs.mount(rootfs, leak, null, kfs.constants.MS_BIND, null);
      await set.unmountDevice('leaky');
      const id = Number(set.deviceMetadata('leaky')['DeviceId']);
      await set.deleteDevice('leaky');
      assert.equal(Object.fromEntries(await set.status())['Deferred Deleted Device Count'], '1');
      await kfs.umount2(leak);
      await set.retryDeferredDeletions();
      assert.equal(Object.fromEntries(await set.status())['Deferred Deleted Device Count'], '0');
      assert.equal(set.hasDevice('leaky'), false);
      // The pool no longer has the id: creating it again works.
      await thin.createThin(set.pool.name, id);
      await thin.deleteThin(set.pool.name, id);
    } finally {
      await set.shutdown();
    }
  });
});
