// dm.* storage options: the in-tree driver's names, defaults and checks,
// plus the few checks dmthin adds where Docker let a bad value reach the kernel.
import assert from 'node:assert/strict';
import {
  DEFAULT_OPTIONS,
  OPTION_NAMES,
  humanSize,
  parseOptions,
  parseSize,
  splitOptionList,
  storageOptions,
} from '../../src/deviceset/options';
import { lowWaterBlocks } from '../../src/deviceset/low-water';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** parseOptions(entries) fails with EDMOPTION, and the message matches every pattern. */
function rejects(entries: string[], ...patterns: RegExp[]): void {
  assert.throws(
    () => parseOptions(entries),
    (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal((err as { code?: unknown }).code, 'EDMOPTION');
      assert.equal(err.name, 'DmthinError');
      for (const pattern of patterns) assert.match(err.message, pattern);
      assert.doesNotMatch(err.message, /^devmapper:/);
      return true;
    },
  );
}

describe('dm.* storage options', () => {
  describe('defaults', () => {
    it('are the in-tree driver\'s', () => {
      // Its documented defaults, given as a user would give them, change nothing;
      // every option it leaves to be decided later (null: from the pool, the kernel) is unset.
      const documented = ['dm.basesize=10G', 'dm.loopdatasize=100G', 'dm.loopmetadatasize=2G', 'dm.blocksize=64K', 'dm.blkdiscard=true', 'dm.min_free_space=10%', 'dm.libdm_log_level=2'];
      const o = parseOptions([]);
      assert.deepEqual({ ...parseOptions(documented), baseSizeSet: false }, o);
      const given = new Set(['baseSize', 'loopDataSize', 'loopMetadataSize', 'blockSize', 'blkDiscard', 'minFreeSpacePercent', 'libdmLogLevel']);
      for (const [field, value] of Object.entries(o)) {
        if (given.has(field)) continue;
        assert.ok(value === null || value === false || (Array.isArray(value) && value.length === 0), `${field} is unset by default, not ${JSON.stringify(value)}`);
      }
      assert.deepEqual(o, DEFAULT_OPTIONS);
    });

    it('cannot be changed through DEFAULT_OPTIONS or a parsed result', () => {
      assert.ok(Object.isFrozen(DEFAULT_OPTIONS));
      assert.throws(() => DEFAULT_OPTIONS.mkfsArgs.push('-x'), TypeError);
      parseOptions([]).mountOptions.push('noatime');
      assert.deepEqual(parseOptions([]).mountOptions, []);
    });
  });

  describe('each option', () => {
    it('dm.basesize, in bytes, and remembers it was given', () => {
      const o = parseOptions(['dm.basesize=20G']);
      assert.equal(o.baseSize, 20 * GiB);
      assert.equal(o.baseSizeSet, true);
      assert.equal(parseOptions(['dm.basesize=10G']).baseSizeSet, true);
    });

    it('dm.loopdatasize and dm.loopmetadatasize', () => {
      const o = parseOptions(['dm.loopdatasize=200GB', 'dm.loopmetadatasize=4gib']);
      assert.equal(o.loopDataSize, 200 * GiB);
      assert.equal(o.loopMetadataSize, 4 * GiB);
      assert.equal(o.baseSizeSet, false);
    });

    it('dm.fs', () => {
      assert.equal(parseOptions(['dm.fs=ext4']).fs, 'ext4');
      assert.equal(parseOptions(['dm.fs=xfs']).fs, 'xfs');
    });

    it('dm.mkfsarg and dm.mountopt, repeatable, in order', () => {
      const o = parseOptions(['dm.mkfsarg=-O ^has_journal', 'dm.mountopt=nodiscard', 'dm.mkfsarg=-m0', 'dm.mountopt=noatime']);
      assert.deepEqual(o.mkfsArgs, ['-O ^has_journal', '-m0']);
      assert.deepEqual(o.mountOptions, ['nodiscard', 'noatime']);
    });

    it('dm.mkfsarg and dm.mountopt skip empty values', () => {
      const o = parseOptions(['dm.mkfsarg=', 'dm.mountopt=', 'dm.mountopt=noatime']);
      assert.deepEqual(o.mkfsArgs, []);
      assert.deepEqual(o.mountOptions, ['noatime']);
    });

    it('dm.datadev and dm.metadatadev', () => {
      const o = parseOptions(['dm.datadev=/dev/sdb', 'dm.metadatadev=/dev/sdc']);
      assert.equal(o.dataDevice, '/dev/sdb');
      assert.equal(o.metadataDevice, '/dev/sdc');
    });

    it('dm.thinpooldev, without /dev/mapper/', () => {
      assert.equal(parseOptions(['dm.thinpooldev=/dev/mapper/docker-thinpool']).thinPoolDevice, 'docker-thinpool');
      assert.equal(parseOptions(['dm.thinpooldev=docker-thinpool']).thinPoolDevice, 'docker-thinpool');
    });

    it('an empty device value means not given, as in Docker', () => {
      const o = parseOptions(['dm.datadev=/dev/sdb', 'dm.datadev=', 'dm.metadatadev=', 'dm.thinpooldev=/dev/mapper/']);
      assert.equal(o.dataDevice, null);
      assert.equal(o.metadataDevice, null);
      assert.equal(o.thinPoolDevice, null);
      assert.equal(o.blkDiscard, true);
    });

    it('dm.blocksize, in sectors', () => {
      assert.equal(parseOptions(['dm.blocksize=64K']).blockSize, 128);
      assert.equal(parseOptions(['dm.blocksize=512K']).blockSize, 1024);
      assert.equal(parseOptions(['dm.blocksize=2M']).blockSize, 4096);
      assert.equal(parseOptions(['dm.blocksize=1G']).blockSize, 2097152);
      assert.equal(parseOptions(['dm.blocksize=65536']).blockSize, 128);
      // Sectors are whole: a stray byte is dropped, as Docker's >>9 did.
      assert.equal(parseOptions(['dm.blocksize=65600']).blockSize, 128);
    });

    it('dm.blkdiscard, dm.override_udev_sync_check, dm.use_deferred_removal, dm.use_deferred_deletion', () => {
      const o = parseOptions([
        'dm.blkdiscard=false',
        'dm.override_udev_sync_check=1',
        'dm.use_deferred_removal=true',
        'dm.use_deferred_deletion=T',
      ]);
      assert.equal(o.blkDiscard, false);
      assert.equal(o.overrideUdevSyncCheck, true);
      assert.equal(o.useDeferredRemoval, true);
      assert.equal(o.useDeferredDeletion, true);
      const off = parseOptions(['dm.use_deferred_removal=0', 'dm.use_deferred_deletion=False']);
      assert.equal(off.useDeferredRemoval, false);
      assert.equal(off.useDeferredDeletion, false);
    });

    it('booleans accept what Go\'s strconv.ParseBool accepts', () => {
      for (const word of ['1', 't', 'T', 'TRUE', 'true', 'True']) {
        assert.equal(parseOptions([`dm.override_udev_sync_check=${word}`]).overrideUdevSyncCheck, true, word);
      }
      for (const word of ['0', 'f', 'F', 'FALSE', 'false', 'False']) {
        assert.equal(parseOptions([`dm.blkdiscard=${word}`]).blkDiscard, false, word);
      }
    });

    it('dm.low_water_mark: a share of the data space or a size; by default the in-tree 32768 blocks, at most a tenth', () => {
      assert.deepEqual(parseOptions(['dm.low_water_mark=15%']).lowWaterMark, { percent: 15 });
      assert.deepEqual(parseOptions(['dm.low_water_mark=5G']).lowWaterMark, { bytes: 5 * 1024 ** 3 });
      assert.equal(parseOptions([]).lowWaterMark, null);
      assert.throws(() => parseOptions(['dm.low_water_mark=100%']), /dm.low_water_mark must be below 100/);
      assert.throws(() => parseOptions(['dm.low_water_mark=lots']), /invalid size "lots" for dm.low_water_mark/);
      // 64 KiB blocks (128 sectors)
      assert.equal(lowWaterBlocks(parseOptions([]), 1_000_000, 128), 32768);
      assert.equal(lowWaterBlocks(parseOptions([]), 6400, 128), 640);
      assert.equal(lowWaterBlocks(parseOptions(['dm.low_water_mark=15%']), 1000, 128), 150);
      assert.equal(lowWaterBlocks(parseOptions(['dm.low_water_mark=100M']), 6400, 128), 1600);
      assert.equal(lowWaterBlocks(parseOptions(['dm.low_water_mark=1T']), 6400, 128), 6400, 'never more than the pool');
    });

    it('dm.min_free_space', () => {
      assert.equal(parseOptions(['dm.min_free_space=5%']).minFreeSpacePercent, 5);
      assert.equal(parseOptions(['dm.min_free_space=0%']).minFreeSpacePercent, 0);
      assert.equal(parseOptions(['dm.min_free_space=99%']).minFreeSpacePercent, 99);
    });

    it('dm.xfs_nospace_max_retries', () => {
      assert.equal(parseOptions(['dm.xfs_nospace_max_retries=0']).xfsNospaceMaxRetries, 0);
      assert.equal(parseOptions(['dm.xfs_nospace_max_retries=3']).xfsNospaceMaxRetries, 3);
    });

    it('dm.libdm_log_level, 2 to 7', () => {
      assert.equal(parseOptions(['dm.libdm_log_level=2']).libdmLogLevel, 2);
      assert.equal(parseOptions(['dm.libdm_log_level=7']).libdmLogLevel, 7);
      assert.equal(parseOptions(['dm.libdm_log_level=+5']).libdmLogLevel, 5);
    });

    it('dm.directlvm_device with Docker\'s defaults', () => {
      assert.deepEqual(parseOptions(['dm.directlvm_device=/dev/xvdf']).directLvm, {
        device: '/dev/xvdf',
        force: false,
        thinpPercent: 95,
        thinpMetaPercent: 1,
        autoextendThreshold: 80,
        autoextendPercent: 20,
      });
    });

    it('dm.directlvm_device with every direct-lvm setting', () => {
      const o = parseOptions([
        'dm.directlvm_device=/dev/xvdf',
        'dm.directlvm_device_force=true',
        'dm.thinp_percent=90',
        'dm.thinp_metapercent=2%',
        'dm.thinp_autoextend_threshold=100',
        'dm.thinp_autoextend_percent=25%',
      ]);
      assert.deepEqual(o.directLvm, {
        device: '/dev/xvdf',
        force: true,
        thinpPercent: 90,
        thinpMetaPercent: 2,
        autoextendThreshold: 100,
        autoextendPercent: 25,
      });
      // Docker leaves discard on for direct-lvm: its pool name is only set later.
      assert.equal(o.blkDiscard, true);
      assert.equal(o.thinPoolDevice, null);
    });

    it('direct-lvm percentages of 0 count as not given, as in Docker', () => {
      const lvm = parseOptions(['dm.directlvm_device=/dev/xvdf', 'dm.thinp_percent=0', 'dm.thinp_metapercent=0', 'dm.thinp_autoextend_percent=0']).directLvm;
      assert.equal(lvm?.thinpPercent, 95);
      assert.equal(lvm?.thinpMetaPercent, 1);
      assert.equal(lvm?.autoextendPercent, 20);
      assert.equal(parseOptions(['dm.directlvm_device_force=true']).directLvm, null);
    });

    it('reads keys case-insensitively and trims around key and value', () => {
      const o = parseOptions(['DM.BaseSize=20G', ' dm.fs = xfs ', 'dm.mountopt=a=b']);
      assert.equal(o.baseSize, 20 * GiB);
      assert.equal(o.fs, 'xfs');
      assert.deepEqual(o.mountOptions, ['a=b']);
    });

    it('lists every key it accepts in OPTION_NAMES, and nothing else', () => {
      assert.equal(new Set(OPTION_NAMES).size, OPTION_NAMES.length);
      assert.deepEqual([...OPTION_NAMES].sort(), [
        'dm.basesize', 'dm.blkdiscard', 'dm.blocksize', 'dm.datadev', 'dm.directlvm_device',
        'dm.directlvm_device_force', 'dm.fs', 'dm.libdm_log_level', 'dm.loopdatasize',
        'dm.loopmetadatasize', 'dm.low_water_mark', 'dm.metadatadev', 'dm.min_free_space', 'dm.mkfsarg', 'dm.mountopt',
        'dm.override_udev_sync_check', 'dm.thinp_autoextend_percent', 'dm.thinp_autoextend_threshold',
        'dm.thinp_metapercent', 'dm.thinp_percent', 'dm.thinpooldev', 'dm.use_deferred_deletion',
        'dm.use_deferred_removal', 'dm.xfs_nospace_max_retries',
      ]);
      for (const name of OPTION_NAMES) {
        try {
          parseOptions([`${name}=?`]);
        } catch (err) {
          assert.doesNotMatch(String(err), /unknown storage option/, name);
        }
      }
    });
  });

  describe('dm.blkdiscard default', () => {
    it('is on for loop files and direct-lvm', () => {
      assert.equal(parseOptions([]).blkDiscard, true);
      assert.equal(parseOptions(['dm.metadatadev=/dev/sdc']).blkDiscard, true);
    });

    it('is off with dm.datadev or dm.thinpooldev, unless dm.blkdiscard is given', () => {
      assert.equal(parseOptions(['dm.thinpooldev=pool']).blkDiscard, false);
      assert.equal(parseOptions(['dm.datadev=/dev/sdb', 'dm.metadatadev=/dev/sdc']).blkDiscard, false);
      assert.equal(parseOptions(['dm.thinpooldev=pool', 'dm.blkdiscard=true']).blkDiscard, true);
      assert.equal(parseOptions(['dm.blkdiscard=1', 'dm.datadev=/dev/sdb']).blkDiscard, true);
      assert.equal(parseOptions(['dm.datadev=/dev/sdb', 'dm.blkdiscard=false']).blkDiscard, false);
    });
  });

  describe('order', () => {
    it('lets later entries win', () => {
      const o = parseOptions([
        'dm.basesize=1G', 'dm.basesize=2G', 'dm.fs=ext4', 'dm.fs=xfs',
        'dm.thinpooldev=a', 'dm.thinpooldev=b', 'dm.blkdiscard=true', 'dm.blkdiscard=false',
      ]);
      assert.equal(o.baseSize, 2 * GiB);
      assert.equal(o.fs, 'xfs');
      assert.equal(o.thinPoolDevice, 'b');
      assert.equal(o.blkDiscard, false);
    });

    it('checks the whole list, so a later entry can settle an earlier conflict', () => {
      const o = parseOptions(['dm.use_deferred_removal=false', 'dm.use_deferred_deletion=true', 'dm.use_deferred_removal=true']);
      assert.equal(o.useDeferredDeletion, true);
      assert.equal(o.useDeferredRemoval, true);
    });

    it('puts the plugin\'s settings first and dockerd\'s --storage-opt last', () => {
      const o = storageOptions(splitOptionList(' dm.basesize=20G  dm.fs=xfs dm.mountopt=noatime\n'), ['dm.basesize=30G', 'dm.mountopt=nodiscard']);
      assert.equal(o.baseSize, 30 * GiB);
      assert.equal(o.fs, 'xfs');
      assert.deepEqual(o.mountOptions, ['noatime', 'nodiscard']);
      assert.deepEqual(splitOptionList(''), []);
    });
  });

  describe('errors', () => {
    it('an unknown key', () => {
      rejects(['dm.foo=1'], /^unknown storage option dm\.foo$/);
      rejects(['DM.Foo=1'], /unknown storage option dm\.foo/);
      rejects(['dm.no_warn_on_loop_devices=true'], /unknown storage option dm\.no_warn_on_loop_devices/);
      rejects(['dm.hasownproperty=1'], /unknown storage option dm\.hasownproperty/);
      rejects(['constructor=1'], /unknown storage option constructor/);
    });

    it('an entry that is not key=value', () => {
      rejects(['dm.basesize'], /^storage option "dm\.basesize" must be key=value$/);
      rejects(['=20G'], /storage option "=20G" must be key=value/);
      rejects([''], /must be key=value/);
    });

    it('a NUL byte in any value', () => {
      rejects(['dm.mountopt=a\0b'], /dm\.mountopt must not contain NUL/, /"a\\u0000b"/);
      rejects(['dm.datadev=/dev/sdb\0'], /dm\.datadev must not contain NUL/);
      rejects(['dm.mkfsarg=\0'], /dm\.mkfsarg/);
    });

    it('a bad size', () => {
      for (const key of ['dm.basesize', 'dm.loopdatasize', 'dm.loopmetadatasize', 'dm.blocksize']) {
        rejects([`${key}=ten`], new RegExp(`invalid size "ten" for ${key.replace('.', '\\.')}`));
        rejects([`${key}=-1G`], /invalid size "-1G"/);
        rejects([`${key}=`], /invalid size ""/);
        rejects([`${key}=10X`], /invalid size "10X"/);
      }
      rejects(['dm.loopdatasize=99999999P'], /invalid size "99999999P" for dm\.loopdatasize: too large/);
    });

    it('an unsupported dm.fs', () => {
      rejects(['dm.fs=btrfs'], /^unsupported filesystem btrfs for dm\.fs \(ext4 or xfs\)$/);
      rejects(['dm.fs=XFS'], /unsupported filesystem XFS for dm\.fs/);
      rejects(['dm.fs='], /unsupported filesystem  for dm\.fs/);
    });

    it('a bad boolean', () => {
      for (const key of ['dm.blkdiscard', 'dm.override_udev_sync_check', 'dm.use_deferred_removal', 'dm.use_deferred_deletion', 'dm.directlvm_device_force']) {
        rejects([`${key}=yes`], new RegExp(`invalid boolean "yes" for ${key.replace('.', '\\.')}`));
        rejects([`${key}=`], /invalid boolean ""/);
      }
    });

    it('dm.min_free_space without % or not below 100%', () => {
      rejects(['dm.min_free_space=10'], /dm\.min_free_space=10 needs a % suffix/);
      rejects(['dm.min_free_space=100%'], /invalid value 100% for dm\.min_free_space: it must be below 100%/);
      rejects(['dm.min_free_space=250%'], /invalid value 250% for dm\.min_free_space/);
      rejects(['dm.min_free_space=-1%'], /invalid number "-1" for dm\.min_free_space/);
      rejects(['dm.min_free_space=1.5%'], /invalid number "1\.5" for dm\.min_free_space/);
    });

    it('a bad dm.xfs_nospace_max_retries', () => {
      rejects(['dm.xfs_nospace_max_retries=-1'], /invalid number "-1" for dm\.xfs_nospace_max_retries/);
      rejects(['dm.xfs_nospace_max_retries=many'], /invalid number "many" for dm\.xfs_nospace_max_retries/);
      rejects(['dm.xfs_nospace_max_retries=99999999999999999999'], /dm\.xfs_nospace_max_retries/);
    });

    it('dm.libdm_log_level outside [2,7]', () => {
      rejects(['dm.libdm_log_level=9'], /^dm\.libdm_log_level must be in range \[2,7\], got 9$/);
      rejects(['dm.libdm_log_level=1'], /must be in range \[2,7\], got 1/);
      rejects(['dm.libdm_log_level=-3'], /must be in range \[2,7\], got -3/);
      rejects(['dm.libdm_log_level=debug'], /invalid number "debug" for dm\.libdm_log_level/);
    });

    it('dm.blocksize outside the kernel\'s thin-pool limits', () => {
      rejects(['dm.blocksize=32K'], /dm\.blocksize=32K is 64 sectors/, /multiple of 128 sectors from 128 \(64K\) to 2097152 \(1G\)/);
      rejects(['dm.blocksize=96K'], /dm\.blocksize=96K is 192 sectors/);
      rejects(['dm.blocksize=2G'], /dm\.blocksize=2G is 4194304 sectors/);
      rejects(['dm.blocksize=0'], /dm\.blocksize=0 is 0 sectors/);
    });

    it('a relative device path or a pool that is not a device-mapper name', () => {
      rejects(['dm.datadev=sdb'], /dm\.datadev must be an absolute device path, got "sdb"/);
      rejects(['dm.metadatadev=dev/sdc'], /dm\.metadatadev must be an absolute device path, got "dev\/sdc"/);
      rejects(['dm.directlvm_device=xvdf'], /dm\.directlvm_device must be an absolute device path, got "xvdf"/);
      rejects(['dm.thinpooldev=/dev/docker/thinpool'], /dm\.thinpooldev must name a device-mapper device/, /"\/dev\/docker\/thinpool"/);
    });

    it('deferred deletion without deferred removal', () => {
      rejects(['dm.use_deferred_removal=false', 'dm.use_deferred_deletion=true'], /dm\.use_deferred_deletion=true needs deferred removal/, /dm\.use_deferred_removal=false/);
      rejects(['dm.use_deferred_deletion=1', 'dm.use_deferred_removal=0'], /needs deferred removal/);
      // Left to the DeviceSet when removal is not given: it depends on the kernel.
      assert.equal(parseOptions(['dm.use_deferred_deletion=true']).useDeferredRemoval, null);
    });

    it('direct-lvm settings Docker refused', () => {
      const dev = 'dm.directlvm_device=/dev/xvdf';
      rejects([dev, 'dm.thinpooldev=/dev/mapper/pool'], /dm\.directlvm_device=\/dev\/xvdf cannot be combined with dm\.thinpooldev=pool/);
      rejects([dev, 'dm.thinp_percent=90'], /dm\.thinp_percent and dm\.thinp_metapercent must be given together/, /only dm\.thinp_percent=90/);
      rejects([dev, 'dm.thinp_metapercent=5'], /must be given together/, /only dm\.thinp_metapercent=5/);
      rejects([dev, 'dm.thinp_percent=90', 'dm.thinp_metapercent=20'], /dm\.thinp_percent=90 and dm\.thinp_metapercent=20 add up to more than 100/);
      rejects([dev, 'dm.thinp_percent=100'], /dm\.thinp_percent must be below 100, got 100/);
      rejects([dev, 'dm.thinp_metapercent=100%'], /dm\.thinp_metapercent must be below 100, got 100%/);
      rejects([dev, 'dm.thinp_autoextend_threshold=101'], /dm\.thinp_autoextend_threshold must be at most 100, got 101/);
      rejects([dev, 'dm.thinp_autoextend_percent=150%'], /dm\.thinp_autoextend_percent must be at most 100, got 150%/);
      rejects([dev, 'dm.thinp_percent=ninety'], /invalid number "ninety" for dm\.thinp_percent/);
      rejects(['dm.thinp_autoextend_percent=20'], /dm\.thinp_autoextend_percent=20 needs dm\.directlvm_device/);
      rejects(['dm.thinp_percent=95', 'dm.thinp_metapercent=1'], /dm\.thinp_percent=95 needs dm\.directlvm_device/);
      assert.equal(parseOptions([dev, 'dm.thinp_percent=99', 'dm.thinp_metapercent=1']).directLvm?.thinpPercent, 99);
    });

    it('reports the first bad entry, as Docker does', () => {
      rejects(['dm.fs=zfs', 'dm.nosuch=1'], /unsupported filesystem zfs/);
    });
  });
});

describe('parseSize (units.RAMInBytes)', () => {
  it('reads plain bytes', () => {
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('0'), 0);
  });

  it('uses binary multipliers for every spelling of a unit', () => {
    for (const text of ['10G', '10GB', '10g', '10gb', '10GiB', '10gib', '10Gi', '10 G', '10 GiB']) {
      assert.equal(parseSize(text), 10 * GiB, text);
    }
    assert.equal(parseSize('1k'), KiB);
    assert.equal(parseSize('512m'), 512 * MiB);
    assert.equal(parseSize('1T'), 1024 * GiB);
    assert.equal(parseSize('1p'), 1024 ** 5);
    assert.equal(parseSize('100b'), 100);
  });

  it('reads decimals, truncating to whole bytes as Go does', () => {
    assert.equal(parseSize('1.5G'), 1.5 * GiB);
    assert.equal(parseSize('0.5k'), 512);
    assert.equal(parseSize('1.0001k'), 1024);
    assert.equal(parseSize('0.1'), 0);
  });

  it('refuses what is not a size', () => {
    for (const text of ['', ' ', '-1', '-1G', '+1G', '1X', '1KK', '1.', '.5G', '1.2.3', 'G', '1  G', '1e3', 'ten', '0x10']) {
      assert.throws(() => parseSize(text), (err: unknown) => {
        assert.equal((err as { code?: unknown }).code, 'EDMOPTION', JSON.stringify(text));
        assert.match((err as Error).message, /invalid size/);
        assert.ok((err as Error).message.includes(JSON.stringify(text)));
        return true;
      });
    }
  });
});

describe('humanSize (units.HumanSize)', () => {
  it('prints as docker info does, in decimal units with 4 significant digits', () => {
    assert.equal(humanSize(0), '0B');
    assert.equal(humanSize(1), '1B');
    assert.equal(humanSize(999), '999B');
    assert.equal(humanSize(1000), '1kB');
    assert.equal(humanSize(65536), '65.54kB');
    assert.equal(humanSize(2 * MiB), '2.097MB');
    assert.equal(humanSize(GiB), '1.074GB');
    assert.equal(humanSize(10737418240), '10.74GB');
    assert.equal(humanSize(107374182400), '107.4GB');
    assert.equal(humanSize(1e12), '1TB');
    assert.equal(humanSize(1024 ** 5), '1.126PB');
  });

  it('rounds as Go does: exact ties to even, carries into a new digit', () => {
    assert.equal(humanSize(10125), '10.12kB');
    assert.equal(humanSize(10375), '10.38kB');
    assert.equal(humanSize(999_950), '1000kB');
    assert.equal(humanSize(999_999_999), '1000MB');
  });

  it('switches to exponent form past the largest unit', () => {
    assert.equal(humanSize(12345e24), '1.235e+04YB');
    assert.equal(humanSize(1.5e28), '1.5e+04YB');
  });
});
