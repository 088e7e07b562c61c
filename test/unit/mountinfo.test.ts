// /proc/self/mountinfo as the store and the DeviceSet read it to find stale mounts.
import assert from 'node:assert/strict';
import { parseMountinfo } from '../../src/devmapper/mountinfo';

describe('mountinfo', () => {
  it('reads device, mountpoint, type and source, past optional fields and octal escapes', () => {
    const text = [
      '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
      '90 22 0:45 / /var/lib/dmthin/volumes/my\\040vol/_data rw,relatime shared:40 master:2 - tmpfs tmpfs rw,size=1024k',
      '91 22 253:3 / /var/lib/dmthin/volumes/t/_data rw - ext4 /dev/mapper/dmthin-8:1-12-vol-ab rw',
      'garbage line',
      '',
    ].join('\n');
    assert.deepEqual(parseMountinfo(text), [
      { device: '0:21', mountpoint: '/', fstype: 'ext4', source: '/dev/vda1' },
      { device: '0:45', mountpoint: '/var/lib/dmthin/volumes/my vol/_data', fstype: 'tmpfs', source: 'tmpfs' },
      { device: '253:3', mountpoint: '/var/lib/dmthin/volumes/t/_data', fstype: 'ext4', source: '/dev/mapper/dmthin-8:1-12-vol-ab' },
    ]);
  });
});
