// Status lines of the thin-pool and thin targets, as kernels print them.
import assert from 'node:assert/strict';
import { thin } from '../../src/devmapper';

describe('thin status parsing', () => {
  it('reads a healthy pool line with the metadata low watermark', () => {
    const s = thin.parseThinPoolStatus('7 151/524288 3072/16384 - rw discard_passdown queue_if_no_space - 1024');
    assert.deepEqual(s, {
      failed: false,
      transactionId: 7,
      usedMetadataBlocks: 151,
      totalMetadataBlocks: 524288,
      usedDataBlocks: 3072,
      totalDataBlocks: 16384,
      heldMetadataRoot: null,
      mode: 'rw',
      discardPassdown: true,
      errorIfNoSpace: false,
      needsCheck: false,
      metadataLowWatermark: 1024,
    });
  });

  it('reads a held metadata root, out-of-space mode and needs_check, without a watermark', () => {
    const s = thin.parseThinPoolStatus('0 10/100 100/100 37 out_of_data_space no_discard_passdown error_if_no_space needs_check');
    assert.equal(s.heldMetadataRoot, 37);
    assert.equal(s.mode, 'out_of_data_space');
    assert.equal(s.discardPassdown, false);
    assert.equal(s.errorIfNoSpace, true);
    assert.equal(s.needsCheck, true);
    assert.equal(s.metadataLowWatermark, null);
  });

  it('reports a failed pool', () => {
    assert.equal(thin.parseThinPoolStatus('Fail').failed, true);
  });

  it('refuses lines it does not understand', () => {
    assert.throws(() => thin.parseThinPoolStatus('1 2/3'), { code: 'EDMSTATUS' });
    assert.throws(() => thin.parseThinPoolStatus('1 x/3 4/5 - rw discard_passdown queue_if_no_space -'), { code: 'EDMSTATUS' });
    assert.throws(() => thin.parseThinPoolStatus('1 2/3 4/5 - sideways discard_passdown queue_if_no_space -'), { code: 'EDMSTATUS' });
  });

  it('reads thin device lines', () => {
    assert.deepEqual(thin.parseThinStatus('2048 4095'), { failed: false, mappedSectors: 2048, highestMappedSector: 4095 });
    assert.deepEqual(thin.parseThinStatus('0 -'), { failed: false, mappedSectors: 0, highestMappedSector: null });
    assert.equal(thin.parseThinStatus('Fail').failed, true);
    assert.throws(() => thin.parseThinStatus('12'), { code: 'EDMSTATUS' });
  });

  it('builds pool and thin tables', () => {
    assert.deepEqual(thin.thinPoolTable('/dev/loop1', '/dev/loop0', 2097152, { blockSize: 128, lowWaterMark: 32, skipBlockZeroing: true }), {
      start: 0,
      length: 2097152,
      type: 'thin-pool',
      params: '/dev/loop1 /dev/loop0 128 32 1 skip_block_zeroing',
    });
    assert.equal(thin.thinTable('/dev/mapper/pool', 5, 2048).params, '/dev/mapper/pool 5');
    assert.equal(thin.thinTable('/dev/mapper/pool', 5, 2048, '/dev/sdb').params, '/dev/mapper/pool 5 /dev/sdb');
  });
});
