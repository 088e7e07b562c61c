// Volume names, -o options and opts.json as the store checks them: every
// refusal says what is wrong, and nothing hostile gets through.
import assert from 'node:assert/strict';
import { checkVolumeName, volumeDeviceId } from '../../src/volume/names';
import { maskSecrets, parseVolumeOptions, plainMountArguments, shownOptions } from '../../src/volume/options';
import { checkRecord, newRecord } from '../../src/volume/record';
import { binarySize, volumeStatus } from '../../src/volume/status';
import { checkHash } from '../../src/deviceset/metadata';
import { deviceHashOf } from '../../src/deviceset/namespaces';
import { fs } from '../../src/devmapper';

const MiB = 1024 * 1024;

describe('volume names', () => {
  it('takes new names as Docker\'s local driver does: two characters at least', () => {
    for (const name of ['ab', 'vol1', 'my_vol.2-x', 'a..b', 'A'.repeat(255), '0'.repeat(64)]) checkVolumeName(name, true);
  });

  it('refuses a one-letter new name with Docker\'s words, and still finds a one-letter volume made before', () => {
    assert.throws(
      () => checkVolumeName('a', true),
      (err: Error & { code?: string }) => err.code === 'EINVALIDNAME' && err.message === 'volume name is too short, names should be at least two alphanumeric characters',
    );
    checkVolumeName('a');
  });

  it('refuses bad characters with Docker\'s message, word for word', () => {
    assert.throws(
      () => checkVolumeName('hello world', true),
      (err: Error) => err.message === '"hello world" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path',
    );
  });

  const hostile: Array<[string, RegExp]> = [
    ['', /invalid volume name "": it is empty/],
    ['a/b', /includes invalid characters/],
    ['/etc', /includes invalid characters/],
    ['..', /includes invalid characters/],
    ['a\u0000b', /NUL/],
    ['x'.repeat(256), /longer than 255/],
    ['.hidden', /includes invalid characters/],
    ['-dash', /includes invalid characters/],
    ['sp ace', /includes invalid characters/],
    ['ünï', /includes invalid characters/],
  ];
  for (const [name, why] of hostile) {
    it(`refuses ${JSON.stringify(name.slice(0, 20))}, new or looked up`, () => {
      for (const creating of [true, false]) {
        assert.throws(() => checkVolumeName(name, creating), (err: Error & { code?: string }) => err.code === 'EINVALIDNAME' && why.test(err.message));
      }
    });
  }

  it('derives a device id the volume namespace takes, the same for the same name, different for others', () => {
    const hash = deviceHashOf('volume', volumeDeviceId('x'.repeat(255)));
    assert.match(hash, /^vol-[0-9a-f]{64}$/);
    checkHash(hash);
    assert.equal(volumeDeviceId('a'), volumeDeviceId('a'));
    assert.notEqual(volumeDeviceId('a'), volumeDeviceId('b'));
  });
});

describe('volume options', () => {
  it('makes no options, {} and null the default kind', () => {
    assert.deepEqual(parseVolumeOptions(null), { kind: 'default' });
    assert.deepEqual(parseVolumeOptions({}), { kind: 'default' });
  });

  it('takes the local driver\'s type/device/o', () => {
    assert.deepEqual(parseVolumeOptions({ type: 'tmpfs', device: 'tmpfs', o: 'size=10m,uid=1000' }), { kind: 'plain', type: 'tmpfs', device: 'tmpfs', o: 'size=10m,uid=1000' });
    assert.deepEqual(parseVolumeOptions({ type: 'none', device: '/srv/data', o: 'bind,ro' }), { kind: 'plain', type: 'none', device: '/srv/data', o: 'bind,ro' });
    assert.deepEqual(parseVolumeOptions({ type: 'nfs', device: ':/export', o: 'addr=10.0.0.1,rw' }), { kind: 'plain', type: 'nfs', device: ':/export', o: 'addr=10.0.0.1,rw' });
  });

  it('takes size, fs and from, rounding a size up to whole sectors', () => {
    assert.deepEqual(parseVolumeOptions({ size: '1G' }), { kind: 'thin', size: 1024 * MiB });
    assert.deepEqual(parseVolumeOptions({ size: '20000001', fs: 'ext4' }), { kind: 'thin', size: 20000256, fs: 'ext4' });
    assert.deepEqual(parseVolumeOptions({ size: '1.5GiB', fs: 'xfs' }), { kind: 'thin', size: 1536 * MiB, fs: 'xfs' });
    assert.deepEqual(parseVolumeOptions({ from: 'src' }), { kind: 'thin', from: 'src' });
    assert.deepEqual(parseVolumeOptions({ from: 'src', size: '2G' }), { kind: 'thin', from: 'src', size: 2048 * MiB });
    assert.deepEqual(parseVolumeOptions({ fs: 'ext4' }), { kind: 'thin', fs: 'ext4' });
  });

  const refused: Array<[Record<string, string>, RegExp]> = [
    [{ bogus: '1' }, /invalid option: "bogus"; dmthin volumes take type, device, o .* or size, fs, from/],
    [{ Size: '1G' }, /invalid option: "Size"/],
    [{ type: 'tmpfs' }, /missing required option: "device"/],
    [{ device: '/dev/sdb1' }, /missing required option: "type"/],
    [{ o: 'size=1m' }, /missing required option: "type" and "device"/],
    [{ type: 'tmpfs', device: 'tmpfs', size: '1G' }, /options type and size cannot be combined/],
    [{ o: 'ro', from: 'x' }, /options o and from cannot be combined/],
    [{ type: '' , device: 'x' }, /option "type" is empty/],
    [{ type: 'tmp fs', device: 'x' }, /invalid type "tmp fs"/],
    [{ type: 'none', device: '/srv' }, /type=none mounts nothing by itself: add o=bind/],
    [{ type: 'none', device: 'srv', o: 'bind' }, /must be an absolute path to bind-mount/],
    [{ type: 'tmpfs', device: 'tmpfs', o: 'remount,ro' }, /o=remount is not allowed/],
    [{ type: 'tmpfs', device: 'tmpfs', o: 'size=1m,rshared' }, /o=rshared is not allowed/],
    [{ type: 'tmpfs', device: 'tmpfs', o: 'a\u0000b' }, /NUL/],
    [{ type: 'tmpfs', device: 'tmpfs', o: 'x'.repeat(5000) }, /longer than 4096/],
    [{ size: 'lots' }, /size: invalid size "lots"/],
    [{ size: '-1G' }, /size: invalid size "-1G"/],
    [{ size: '1M' }, /size=1M is too small: a thin volume needs at least 16M/],
    [{ size: '0' }, /too small/],
    [{ size: '99999999999P' }, /too large/],
    [{ size: '100M', fs: 'xfs' }, /too small for xfs, which needs at least 300M/],
    [{ size: '1G', fs: 'btrfs' }, /unsupported filesystem fs=btrfs: thin volumes take ext4 or xfs/],
    [{ from: '../etc' }, /from: "\.\.\/etc" includes invalid characters/],
    [{ from: 'src', fs: 'xfs' }, /fs cannot be given with from/],
  ];
  for (const [opts, why] of refused) {
    it(`refuses ${JSON.stringify(opts).slice(0, 70)}`, () => {
      assert.throws(() => parseVolumeOptions(opts), (err: Error & { code?: string }) => err.code === 'EVOLOPTION' && why.test(err.message));
    });
  }

  it('turns o into mount(2) flags and data, bind included', () => {
    const c = fs.constants;
    assert.deepEqual(plainMountArguments({ kind: 'plain', type: 'tmpfs', device: 'tmpfs', o: 'size=1m,noexec,nosuid' }), {
      source: 'tmpfs', fstype: 'tmpfs', flags: c.MS_NOEXEC | c.MS_NOSUID, data: 'size=1m', bind: false,
    });
    assert.deepEqual(plainMountArguments({ kind: 'plain', type: 'none', device: '/srv', o: 'rbind,ro' }), {
      source: '/srv', fstype: 'none', flags: c.MS_BIND | c.MS_REC | c.MS_RDONLY, data: null, bind: true,
    });
  });

  it('masks secrets in o, and only in o', () => {
    assert.equal(maskSecrets('addr=10.0.0.1,username=me,password=s3cr=t,vers=3'), 'addr=10.0.0.1,username=me,password=********,vers=3');
    assert.equal(maskSecrets('PASSWORD=x,token=y,ro'), 'PASSWORD=********,token=********,ro');
    assert.deepEqual(shownOptions({ type: 'cifs', device: '//h/s', o: 'password=hunter2' }), { type: 'cifs', device: '//h/s', o: 'password=********' });
  });
});

describe('opts.json records', () => {
  it('reads back what it writes, with the spec its options give', () => {
    const plain = checkRecord(JSON.parse(JSON.stringify(newRecord('plain', { type: 'tmpfs', device: 'tmpfs' }))));
    assert.ok(plain.ok);
    assert.deepEqual(plain.spec, { kind: 'plain', type: 'tmpfs', device: 'tmpfs' });
    const thin = checkRecord(JSON.parse(JSON.stringify(newRecord('thin', {}, { Size: 64 * MiB, Filesystem: 'ext4' }))));
    assert.ok(thin.ok);
    assert.deepEqual(thin.spec, { kind: 'thin' });
  });

  const corrupt: Array<[unknown, RegExp]> = [
    [[], /opts\.json is corrupt: must be object/],
    [{ Version: 2, Kind: 'plain', CreatedAt: '2026-01-01T00:00:00Z', Options: {} }, /at Version: must be equal to constant/],
    [{ Version: 1, Kind: 'other', CreatedAt: '2026-01-01T00:00:00Z', Options: {} }, /at Kind/],
    [{ Version: 1, Kind: 'plain', CreatedAt: 'yesterday', Options: {} }, /at CreatedAt/],
    [{ Version: 1, Kind: 'plain', CreatedAt: '2026-01-01T00:00:00Z', Options: { type: 'tmpfs' } }, /holds options dmthin refuses: missing required option: "device"/],
    [{ Version: 1, Kind: 'thin', CreatedAt: '2026-01-01T00:00:00Z', Options: {} }, /a thin volume without its thin record/],
    [{ Version: 1, Kind: 'plain', CreatedAt: '2026-01-01T00:00:00Z', Options: { size: '1G' } }, /a plain volume with thin options/],
  ];
  for (const [json, why] of corrupt) {
    it(`says why ${JSON.stringify(json).slice(0, 60)} cannot be used`, () => {
      const state = checkRecord(json);
      assert.equal(state.ok, false);
      assert.match(state.ok ? '' : state.problem, why);
    });
  }
});

describe('volume Status', () => {
  it('prints sizes in the binary units -o size takes', () => {
    assert.equal(binarySize(0), '0B');
    assert.equal(binarySize(64 * MiB), '64MiB');
    assert.equal(binarySize(1536 * MiB), '1.5GiB');
    assert.equal(binarySize(100 * 1024 * MiB), '100GiB');
    assert.equal(binarySize(10 * 1024 * MiB + 1), '10GiB');
  });

  it('shows a thin volume\'s size, use, device and origin, and a corrupt one\'s reason', () => {
    const thin = checkRecord(newRecord('thin', { from: 'src' }, { Size: 64 * MiB, Filesystem: 'xfs', From: 'src' }));
    const status = volumeStatus(thin, 1, { kind: 'usage', usage: { deviceId: 7, size: 64 * MiB, filesystem: 'xfs', mappedBytes: 16 * MiB }, deviceName: 'dmthin-1:2-3-vol-x' });
    assert.deepEqual(status, {
      Kind: 'thin', Options: { from: 'src' }, Size: '64MiB', Filesystem: 'xfs', ClonedFrom: 'src', Used: '16MiB (25.0%)',
      UsedBytes: 16 * MiB, SizeBytes: 64 * MiB, DeviceId: 7, DeviceName: 'dmthin-1:2-3-vol-x', Mounts: 1,
    });
    assert.deepEqual(volumeStatus({ ok: false, problem: 'opts.json is corrupt: x' }, 0, null), { Kind: 'unknown', Error: 'opts.json is corrupt: x', Mounts: 0 });
    assert.deepEqual(volumeStatus(null, 0, null), { Kind: 'plain', Mounts: 0 });
  });
});
