// dm.mountopt entries become mount(2) flags and data as mount(8) would make them.
import assert from 'node:assert/strict';
import { fs } from '../../src/devmapper';
import { mountArguments } from '../../src/deviceset/filesystem';

describe('mount arguments for thin devices', () => {
  const c = fs.constants;

  it('turns generic options into flags and passes the rest as data', () => {
    assert.deepEqual(mountArguments('ext4', ['noatime', 'nodev,nosuid', 'discard'], ''), {
      flags: c.MS_NOATIME | c.MS_NODEV | c.MS_NOSUID,
      data: 'discard',
    });
  });

  it('adds nouuid for xfs, so snapshots of one filesystem mount side by side', () => {
    assert.deepEqual(mountArguments('xfs', [], ''), { flags: 0, data: 'nouuid' });
  });

  it('lets a later option undo an earlier one and adds the mount label', () => {
    assert.deepEqual(mountArguments('ext4', ['ro', 'rw', 'defaults'], 'system_u:object_r:container_file_t:s0'), {
      flags: 0,
      data: 'context="system_u:object_r:container_file_t:s0"',
    });
  });
});
