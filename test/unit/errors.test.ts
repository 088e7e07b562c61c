// Failures reach JavaScript as Node-style system errors: code, negative
// errno, syscall and the path they concern, in a message that says all four.
import assert from 'node:assert/strict';
import { binding } from '../../src/native/binding';
import { isErrno, isSystemError } from '../../src/shared/errors';
import { kernelHasDeviceMapper, skipBecause } from '../support/env';

describe('native errors', () => {
  it('carries code, errno, syscall and path', async () => {
    const err: unknown = await binding.fs.statfs('/nonexistent/dmthin').then(() => undefined, (e: unknown) => e);
    assert.ok(isSystemError(err), `expected a system error, got ${String(err)}`);
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.errno, -2);
    assert.equal(err.syscall, 'statfs');
    assert.equal(err.path, '/nonexistent/dmthin');
    assert.equal(err.message, "ENOENT: no such file or directory, statfs '/nonexistent/dmthin'");
    assert.ok(isErrno(err, 'EBUSY', 'ENOENT'));
    assert.ok(!isErrno(err, 'EBUSY'));
  });

  it('names the ioctl that a file refused', async () => {
    await assert.rejects(binding.blockdev.size('/proc/self/status'), (err: unknown) => {
      assert.ok(isSystemError(err));
      assert.equal(err.code, 'ENOTTY');
      assert.equal(err.syscall, 'ioctl(BLKGETSIZE64)');
      assert.equal(err.path, '/proc/self/status');
      return true;
    });
  });

  it('turns a libdevmapper failure into an errno with its message as detail', async function () {
    if (kernelHasDeviceMapper()) skipBecause(this, 'this kernel has device-mapper; the VM suites cover its errors');
    await assert.rejects(binding.dm.version(), (err: unknown) => {
      assert.ok(isSystemError(err));
      assert.equal(err.code, 'ENODEV');
      assert.equal(err.syscall, 'dm_task_run(version)');
      assert.match(err.detail ?? '', /kernel driver/);
      return true;
    });
  });

  it('rejects every call of a burst independently', async () => {
    const paths = Array.from({ length: 64 }, (_, i) => `/nonexistent/dmthin-${i}`);
    const results = await Promise.allSettled(paths.map((p) => binding.fs.statfs(p)));
    results.forEach((result, i) => {
      assert.equal(result.status, 'rejected');
      assert.equal((result.reason as { path: string }).path, paths[i]);
    });
  });
});
