// dm.* storage options: the in-tree driver's names, defaults and checks.
import assert from 'node:assert/strict';
import { DEFAULT_OPTIONS, OPTION_NAMES, humanSize, parseOptions, parseSize } from '../../src/deviceset/options';

const GiB = 1024 ** 3;

function rejects(entries: string[], message: RegExp): void {
  assert.throws(() => parseOptions(entries), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'EDMOPTION');
    assert.match((err as Error).message, message);
    return true;
  });
}

describe('dm.* storage options', () => {
  it('has the in-tree driver\'s defaults', () => {
    const o = parseOptions([]);
    assert.equal(o.baseSize, 10 * GiB);
    assert.equal(o.loopDataSize, 100 * GiB);
    assert.equal(o.loopMetadataSize, 2 * GiB);
    assert.equal(o.blockSize, 128);
    assert.equal(o.minFreeSpacePercent, 10);
    assert.equal(o.blkDiscard, true);
    assert.equal(o.fs, null);
    assert.equal(o.libdmLogLevel, 2);
    assert.equal(o.useDeferredRemoval, null);
    assert.deepEqual(o, { ...DEFAULT_OPTIONS, mkfsArgs: [], mountOptions: [] });
  });

  it('reads every option', () => {
    const o = parseOptions([
      'dm.basesize=20G', 'dm.loopdatasize=200GB', 'dm.loopmetadatasize=4gib', 'dm.fs=ext4',
      'dm.mkfsarg=-O ^has_journal', 'dm.mkfsarg=-m0', 'dm.mountopt=nodiscard', 'dm.mountopt=noatime',
      'dm.blocksize=512K', 'dm.blkdiscard=false', 'dm.override_udev_sync_check=1',
      'dm.use_deferred_removal=true', 'dm.use_deferred_deletion=T', 'dm.min_free_space=5%',
      'dm.xfs_nospace_max_retries=3', 'dm.libdm_log_level=7', 'DM.THINPOOLDEV=/dev/mapper/vg-pool',
    ]);
    assert.equal(o.baseSize, 20 * GiB);
    assert.equal(o.baseSizeSet, true);
    assert.equal(o.loopDataSize, 200 * GiB);
    assert.equal(o.loopMetadataSize, 4 * GiB);
    assert.equal(o.fs, 'ext4');
    assert.deepEqual(o.mkfsArgs, ['-O ^has_journal', '-m0']);
    assert.deepEqual(o.mountOptions, ['nodiscard', 'noatime']);
    assert.equal(o.blockSize, 1024);
    assert.equal(o.blkDiscard, false);
    assert.equal(o.overrideUdevSyncCheck, true);
    assert.equal(o.useDeferredRemoval, true);
    assert.equal(o.useDeferredDeletion, true);
    assert.equal(o.minFreeSpacePercent, 5);
    assert.equal(o.xfsNospaceMaxRetries, 3);
    assert.equal(o.libdmLogLevel, 7);
    assert.equal(o.thinPoolDevice, 'vg-pool');
  });

  it('turns discard off by default for devices that are not its own, unless asked', () => {
    assert.equal(parseOptions(['dm.thinpooldev=pool']).blkDiscard, false);
    assert.equal(parseOptions(['dm.datadev=/dev/sdb', 'dm.metadatadev=/dev/sdc']).blkDiscard, false);
    assert.equal(parseOptions(['dm.thinpooldev=pool', 'dm.blkdiscard=true']).blkDiscard, true);
  });

  it('lets later entries win', () => {
    assert.equal(parseOptions(['dm.basesize=1G', 'dm.basesize=2G']).baseSize, 2 * GiB);
  });

  it('refuses what the in-tree driver refused, naming the option', () => {
    rejects(['dm.nosuch=1'], /unknown storage option dm\.nosuch/);
    rejects(['dm.basesize'], /must be key=value/);
    rejects(['dm.basesize=ten'], /invalid size "ten" for dm\.basesize/);
    rejects(['dm.basesize=-1G'], /invalid size/);
    rejects(['dm.fs=btrfs'], /unsupported filesystem btrfs for dm\.fs/);
    rejects(['dm.min_free_space=10'], /dm\.min_free_space "10" needs a % suffix/);
    rejects(['dm.min_free_space=100%'], /must be below 100%/);
    rejects(['dm.libdm_log_level=9'], /dm\.libdm_log_level must be in range \[2,7\]/);
    rejects(['dm.blkdiscard=maybe'], /dm\.blkdiscard must be true or false/);
    rejects(['dm.use_deferred_removal=false', 'dm.use_deferred_deletion=true'], /needs deferred removal/);
    rejects(['dm.directlvm_device=/dev/sdb', 'dm.thinpooldev=pool'], /cannot be combined/);
    rejects(['dm.directlvm_device=/dev/sdb', 'dm.thinp_percent=90'], /must be given together/);
    rejects(['dm.directlvm_device=/dev/sdb', 'dm.thinp_percent=90', 'dm.thinp_metapercent=20'], /more than 100/);
    rejects(['dm.datadev=sdb'], /dm\.datadev must be an absolute device path/);
    rejects(['dm.mountopt=a\0b'], /dm\.mountopt must not contain NUL/);
    rejects(['dm.thinpooldev=/dev/mapper/'], /dm\.thinpooldev must name/);
  });

  it('checks dm.blocksize against the kernel\'s limits', () => {
    rejects(['dm.blocksize=32K'], /multiple of 64K from 64K to 1G/);
    rejects(['dm.blocksize=96K'], /multiple of 64K/);
    rejects(['dm.blocksize=2G'], /multiple of 64K/);
    assert.equal(parseOptions(['dm.blocksize=1G']).blockSize, 2097152);
  });

  it('parses sizes as Docker does, in binary units', () => {
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('1k'), 1024);
    assert.equal(parseSize('1.5G'), 1.5 * GiB);
    assert.equal(parseSize('2 GiB'), 2 * GiB);
    assert.equal(parseSize('1T'), 1024 * GiB);
    assert.throws(() => parseSize('1X'), { code: 'EDMOPTION' });
    assert.throws(() => parseSize(''), { code: 'EDMOPTION' });
  });

  it('prints sizes as docker info does, in decimal units', () => {
    assert.equal(humanSize(0), '0B');
    assert.equal(humanSize(999), '999B');
    assert.equal(humanSize(1000), '1kB');
    assert.equal(humanSize(65536), '65.54kB');
    assert.equal(humanSize(107374182400), '107.4GB');
    assert.equal(humanSize(10737418240), '10.74GB');
  });

  it('lists every option it accepts', () => {
    for (const name of OPTION_NAMES) {
      const value = name.includes('percent') || name.includes('threshold') ? '50' : name.endsWith('dev') || name.endsWith('device') ? '/dev/x' : '1';
      try {
        parseOptions([`${name}=${value}`]);
      } catch (err) {
        assert.doesNotMatch(String(err), /unknown storage option/);
      }
    }
  });
});

describe('where options come from', () => {
  it('lets dockerd\'s --storage-opt win over the plugin\'s own settings, and appends repeatable ones', async () => {
    const { storageOptions, splitOptionList } = await import('../../src/deviceset/options');
    const o = storageOptions(splitOptionList(' dm.basesize=20G  dm.fs=xfs dm.mountopt=noatime\n'), ['dm.basesize=30G', 'dm.mountopt=nodiscard']);
    assert.equal(o.baseSize, 30 * GiB);
    assert.equal(o.fs, 'xfs');
    assert.deepEqual(o.mountOptions, ['noatime', 'nodiscard']);
  });
});
