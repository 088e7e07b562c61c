// Wrong arguments throw a TypeError at once, naming the function and the
// argument, and nothing is started.
import assert from 'node:assert/strict';
import { binding } from '../../src/native/binding';
import { thin } from '../../src/devmapper';

const { dm, loop, blockdev, fs } = binding;

function throwsType(call: () => unknown, message: RegExp): void {
  assert.throws(call, (err: unknown) => {
    assert.ok(err instanceof TypeError, `expected a TypeError, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}

describe('native arguments', () => {
  describe('dm', () => {
    it('rejects a missing or non-string device name', () => {
      throwsType(() => (dm.info as () => unknown)(), /^dm\.info: expected 1 argument, got 0$/);
      throwsType(() => dm.info(42 as unknown as string), /^dm\.info: name must be a string$/);
      throwsType(() => dm.remove(''), /^dm\.remove: name must not be empty$/);
    });

    it('rejects device names that are paths, NUL-laden or too long', () => {
      throwsType(() => dm.info('a/b'), /name must not contain '\/'/);
      throwsType(() => dm.info('..'), /name must not be '\.' or '\.\.'/);
      throwsType(() => dm.info('a\0b'), /name must not contain NUL bytes/);
      throwsType(() => dm.info('x'.repeat(128)), /name must be shorter than 128 bytes/);
    });

    it('checks every field of a table', () => {
      const good = { start: 0, length: 8, type: 'zero', params: '' };
      throwsType(() => dm.create('t', 'table' as unknown as []), /table must be an array of targets/);
      throwsType(() => dm.create('t', []), /table must have at least one target/);
      throwsType(() => dm.create('t', [{ ...good, length: 0 }]), /table\[0\]\.length must be greater than 0/);
      throwsType(() => dm.create('t', [good, { ...good, start: -1 }]), /table\[1\]\.start must be a non-negative safe integer/);
      throwsType(() => dm.create('t', [{ ...good, start: 2 ** 53 }]), /table\[0\]\.start must be a non-negative safe integer/);
      throwsType(() => dm.create('t', [{ ...good, type: 7 as unknown as string }]), /table\[0\]\.type must be a string/);
      throwsType(() => dm.create('t', [{ ...good, params: 'a\0b' }]), /table\[0\]\.params must not contain NUL bytes/);
    });

    it('checks options and their types', () => {
      throwsType(() => dm.remove('t', [] as unknown as object), /^dm\.remove: options must be an object$/);
      throwsType(() => dm.remove('t', { deferred: 'yes' as unknown as boolean }), /options\.deferred must be a boolean/);
      throwsType(() => dm.create('t', [{ start: 0, length: 8, type: 'zero', params: '' }], { uuid: 'u'.repeat(129) }), /options\.uuid must be shorter than 129 bytes/);
      throwsType(() => dm.message('pool', 1.5, 'create_thin 1'), /sector must be a non-negative safe integer/);
      throwsType(() => dm.setLogLevel(9), /level must be between 2 \(fatal\) and 7 \(debug\)/);
      throwsType(() => dm.setLogger('loud' as unknown as null), /logger must be a function or null/);
      throwsType(() => dm.setUdevSync(1 as unknown as boolean), /enabled must be a boolean/);
    });
  });

  describe('loop, blockdev and fs', () => {
    it('wants absolute paths', () => {
      throwsType(() => loop.attach('relative/file'), /^loop\.attach: file must be an absolute path$/);
      throwsType(() => blockdev.size('dev/sda'), /^blockdev\.size: path must be an absolute path$/);
      throwsType(() => fs.statfs(`/${'a'.repeat(5000)}`), /path is longer than PATH_MAX/);
    });

    it('checks numbers and ranges', () => {
      throwsType(() => blockdev.discard('/dev/null', -512, 512), /offset must be a non-negative safe integer/);
      throwsType(() => blockdev.discard('/dev/null', 0, Number.NaN), /length must be a non-negative safe integer/);
      throwsType(() => fs.mknod('/tmp/x', 0o10644, 0x1000, 0), /mode, major or minor out of range/);
      throwsType(() => fs.mount(null, '/mnt', null, -1, null), /flags must be a non-negative safe integer/);
    });

    it('checks xattr names and values', () => {
      throwsType(() => fs.lsetxattr('/tmp/x', 'user.k', 5 as unknown as string), /value must be a Buffer or a string/);
      throwsType(() => fs.lsetxattr('/tmp/x', 'user.k', Buffer.alloc(65537)), /value must be at most 65536 bytes/);
      throwsType(() => fs.lgetxattr('/tmp/x', `user.${'k'.repeat(300)}`), /name must be at most 255 bytes/);
    });
  });

  describe('thin messages', () => {
    it('refuses thin ids outside 24 bits before calling the pool', () => {
      assert.throws(() => thin.thinTable('/dev/mapper/pool', 2 ** 24, 8), /thin device id must be an integer from 0 to 16777215/);
      assert.throws(() => thin.thinTable('/dev/mapper/pool', -1, 8), TypeError);
    });

    it('rejects a bad transaction id without sending a message', async () => {
      await assert.rejects(thin.setTransactionId('pool', 0, -1), /next transaction id must be a non-negative integer/);
    });
  });
});
