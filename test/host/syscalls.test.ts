// The non-device-mapper half of the addon against the host kernel: loop
// devices, block ioctls, mounts, device nodes and xattrs. Needs root.
import assert from 'node:assert/strict';
import { promises as fsp, constants as fsc } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { blockdev, fs, loop } from '../../src/devmapper';
import { isErrno } from '../../src/shared/errors';
import { requireRoot } from '../support/env';

const MiB = 1024 * 1024;
const TMPFS_MAGIC = 0x01021994;
const ST_RDONLY = 1;

async function sparseFile(dir: string, name: string, size: number): Promise<string> {
  const file = path.join(dir, name);
  const handle = await fsp.open(file, 'w');
  await handle.truncate(size);
  await handle.close();
  return file;
}

describe('host syscalls (root)', function () {
  let dir = '';

  before(async function () {
    requireRoot(this);
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-host-'));
  });

  after(async () => {
    if (dir !== '') await fsp.rm(dir, { recursive: true, force: true });
  });

  describe('loop devices', () => {
    it('attaches a sparse file, reports its size and backing file, and detaches it', async () => {
      const file = await sparseFile(dir, 'data', 64 * MiB);
      const device = await loop.attach(file);
      try {
        assert.match(device, /^\/dev\/loop\d+$/);
        assert.equal(await blockdev.size(device), 64 * MiB);
        const status = await loop.status(device);
        assert.ok(status !== null);
        assert.equal(status.backingFile, file);
        assert.equal(status.readOnly, false);
        assert.equal(status.autoclear, false);
        assert.equal(await loop.find(file), device);
      } finally {
        await loop.detach(device);
      }
      assert.equal(await loop.status(device), null);
      assert.equal(await loop.find(file), null);
    });

    it('attaches read-only when asked, and writes then fail', async () => {
      const file = await sparseFile(dir, 'ro', 4 * MiB);
      const device = await loop.attach(file, { readOnly: true });
      try {
        assert.equal((await loop.status(device))?.readOnly, true);
        const handle = await fsp.open(device, fsc.O_RDONLY);
        try {
          assert.equal((await handle.read(Buffer.alloc(512), 0, 512, 0)).bytesRead, 512);
        } finally {
          await handle.close();
        }
        // Depending on the kernel, the open or the write itself is refused.
        const write = async (): Promise<void> => {
          const w = await fsp.open(device, fsc.O_WRONLY);
          try {
            await w.write(Buffer.alloc(512), 0, 512, 0);
          } finally {
            await w.close();
          }
        };
        await assert.rejects(write(), (err: unknown) => isErrno(err, 'EROFS', 'EACCES', 'EPERM'));
      } finally {
        await loop.detach(device);
      }
    });

    it('detaches an autoclear device once its last user closes it', async () => {
      const file = await sparseFile(dir, 'auto', 4 * MiB);
      const held = await loop.attachAutoclear(file);
      const device = held.device;
      const handle = await fsp.open(device, 'r');
      await held.release();
      assert.equal((await loop.status(device))?.autoclear, true, 'still attached while a user has it open');
      await handle.close();
      // The kernel clears the device in the release path of the last close.
      let status = await loop.status(device);
      for (let i = 0; i < 50 && status !== null; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        status = await loop.status(device);
      }
      assert.equal(status, null);
    });

    it('sees a grown backing file after setCapacity', async () => {
      const file = await sparseFile(dir, 'grow', 8 * MiB);
      const device = await loop.attach(file);
      try {
        await fsp.truncate(file, 24 * MiB);
        assert.equal(await blockdev.size(device), 8 * MiB);
        await loop.setCapacity(device);
        assert.equal(await blockdev.size(device), 24 * MiB);
      } finally {
        await loop.detach(device);
      }
    });

    it('discards a range of a loop device, which punches a hole in the file', async () => {
      const file = path.join(dir, 'discard');
      await fsp.writeFile(file, Buffer.alloc(4 * MiB, 0xab));
      const device = await loop.attach(file);
      try {
        await blockdev.discard(device, MiB, 2 * MiB);
        const handle = await fsp.open(device, 'r');
        const { buffer } = await handle.read(Buffer.alloc(4096), 0, 4096, MiB);
        await handle.close();
        assert.ok(buffer.every((b) => b === 0), 'discarded range reads as zeroes');
      } finally {
        await loop.detach(device);
      }
      const { blocks } = await fsp.stat(file);
      assert.ok(blocks * 512 <= 2 * MiB + 64 * 1024, `file keeps only the undiscarded half, has ${blocks * 512} bytes`);
    });

    it('fails with ENOENT for a missing file and ENXIO for detaching an unbound device', async () => {
      await assert.rejects(loop.attach(path.join(dir, 'missing')), { code: 'ENOENT', syscall: 'open', path: path.join(dir, 'missing') });
      const file = await sparseFile(dir, 'once', MiB);
      const device = await loop.attach(file);
      await loop.detach(device);
      await assert.rejects(loop.detach(device), { code: 'ENXIO', path: device });
    });
  });

  describe('mounts', () => {
    it('mounts a tmpfs with data, reads it with statfs, remounts read-only and unmounts', async () => {
      const target = path.join(dir, 'mnt');
      await fsp.mkdir(target);
      await fs.mount('dmthin-test', target, 'tmpfs', fs.constants.MS_NOSUID, 'size=8m,mode=0750');
      try {
        const st = await fs.statfs(target);
        assert.equal(st.type, TMPFS_MAGIC);
        assert.equal(st.blocks * st.bsize, 8 * MiB);
        assert.equal((await fsp.stat(target)).mode & 0o7777, 0o750);
        await fsp.writeFile(path.join(target, 'f'), 'x');
        await fs.mount(null, target, null, fs.constants.MS_REMOUNT | fs.constants.MS_RDONLY, null);
        assert.equal((await fs.statfs(target)).flags & ST_RDONLY, ST_RDONLY);
        await assert.rejects(fsp.writeFile(path.join(target, 'g'), 'y'), { code: 'EROFS' });
      } finally {
        await fs.umount2(target);
      }
      assert.notEqual((await fs.statfs(target)).type, TMPFS_MAGIC);
      await assert.rejects(fs.umount2(target), { code: 'EINVAL', syscall: 'umount2', path: target });
    });

    it('detaches a busy mount lazily with MNT_DETACH', async () => {
      const target = path.join(dir, 'busy');
      await fsp.mkdir(target);
      await fs.mount('dmthin-test', target, 'tmpfs', 0, null);
      const handle = await fsp.open(path.join(target, 'open'), 'w');
      try {
        await assert.rejects(fs.umount2(target), { code: 'EBUSY' });
        await fs.umount2(target, fs.constants.MNT_DETACH);
        assert.notEqual((await fs.statfs(target)).type, TMPFS_MAGIC);
      } finally {
        await handle.close();
      }
    });

    it('fails to mount an unknown filesystem type with ENODEV', async () => {
      await assert.rejects(fs.mount('none', dir, 'nosuchfs', 0, null), { code: 'ENODEV', syscall: 'mount' });
    });
  });

  describe('device nodes', () => {
    it('makes a fifo and a character device with the given numbers', async () => {
      const fifo = path.join(dir, 'fifo');
      await fs.mknod(fifo, fs.constants.S_IFIFO | 0o600);
      assert.ok((await fsp.stat(fifo)).isFIFO());

      const chr = path.join(dir, 'null');
      await fs.mknod(chr, fs.constants.S_IFCHR | 0o666, 1, 3);
      const st = await fsp.stat(chr);
      assert.ok(st.isCharacterDevice());
      assert.equal(st.rdev, (1 << 8) | 3);
      await fsp.writeFile(chr, 'swallowed');
      assert.equal((await fsp.readFile(chr)).length, 0);

      await assert.rejects(fs.mknod(fifo, fs.constants.S_IFIFO | 0o600), { code: 'EEXIST', path: fifo });
    });
  });

  describe('xattrs', () => {
    it('sets, reads, lists and removes attributes on a file', async () => {
      const file = path.join(dir, 'xattr-file');
      await fsp.writeFile(file, '');
      const value = Buffer.from([0, 1, 2, 255]);
      await fs.lsetxattr(file, 'user.dmthin', value);
      await fs.lsetxattr(file, 'trusted.overlay.opaque', 'y');
      assert.deepEqual(await fs.lgetxattr(file, 'user.dmthin'), value);
      assert.deepEqual((await fs.llistxattr(file)).sort(), ['trusted.overlay.opaque', 'user.dmthin']);
      await assert.rejects(fs.lsetxattr(file, 'user.dmthin', 'again', fs.constants.XATTR_CREATE), { code: 'EEXIST' });
      await assert.rejects(fs.lsetxattr(file, 'user.absent', 'v', fs.constants.XATTR_REPLACE), { code: 'ENODATA' });
      await fs.lremovexattr(file, 'user.dmthin');
      await assert.rejects(fs.lgetxattr(file, 'user.dmthin'), { code: 'ENODATA', syscall: 'lgetxattr', path: file });
      assert.deepEqual(await fs.llistxattr(file), ['trusted.overlay.opaque']);
    });

    it('works on the symlink itself, not its target', async () => {
      const target = path.join(dir, 'xattr-target');
      const link = path.join(dir, 'xattr-link');
      await fsp.writeFile(target, '');
      await fsp.symlink(target, link);
      await fs.lsetxattr(link, 'trusted.dmthin', 'on-link');
      assert.equal((await fs.lgetxattr(link, 'trusted.dmthin')).toString(), 'on-link');
      assert.deepEqual(await fs.llistxattr(target), []);
      // user.* attributes are not allowed on symlinks at all.
      await assert.rejects(fs.lsetxattr(link, 'user.dmthin', 'x'), (err: unknown) => isErrno(err, 'EPERM'));
    });

    it('reads an empty value as an empty buffer', async () => {
      const file = path.join(dir, 'xattr-empty');
      await fsp.writeFile(file, '');
      await fs.lsetxattr(file, 'user.empty', Buffer.alloc(0));
      assert.equal((await fs.lgetxattr(file, 'user.empty')).length, 0);
    });
  });
});
