// The pool's health as dmthin judges it from a status line, and the
// lvextend line `dmthin pool grow` prints for an LVM pool. The VM tests
// fill a real pool and make it read-only; needs_check cannot be produced
// on a healthy pool without corrupting its metadata, so it is checked here.
import assert from 'node:assert/strict';
import { poolHealth } from '../../src/admin/health';
import { lvextendLines, lvmName } from '../../src/admin/pool-grow';
import { thin } from '../../src/devmapper';

describe('pool health verdicts', () => {
  const pool = 'dmthin-8-123-pool';

  it('needs_check (not producible in the VM without corrupting metadata): parsed from the kernel\'s line, named, and told to run thin_check with dmthin stopped', () => {
    const status = thin.parseThinPoolStatus('12 300/4096 900/6400 - ro discard_passdown queue_if_no_space needs_check 1024');
    assert.equal(status.needsCheck, true);
    const verdict = poolHealth(pool, status, 1600);
    assert.equal(verdict.health, 'needs_check', 'needs_check outranks read-only and a low pool');
    assert.match(verdict.advice, new RegExp(`^thin pool ${pool} needs a metadata check: stop dmthin and dockerd, then run \`dmthin check --thin-check\``));
  });

  it('out_of_data_space, read_only, failed, low and ok, each with what to do', () => {
    const line = (mode: string, used: number): string => `5 300/4096 ${used}/6400 - ${mode} discard_passdown queue_if_no_space - 1024`;
    const judge = (text: string): ReturnType<typeof poolHealth> => poolHealth(pool, thin.parseThinPoolStatus(text), 1600);
    assert.equal(judge(line('out_of_data_space', 6400)).health, 'out_of_data_space');
    assert.match(judge(line('out_of_data_space', 6400)).advice, /dmthin pool grow --data SIZE/);
    assert.equal(judge(line('ro', 10)).health, 'read_only');
    assert.match(judge(line('ro', 10)).advice, /dmthin pool grow --metadata SIZE/);
    assert.equal(judge('Fail').health, 'failed');
    assert.equal(judge(line('rw', 5000)).health, 'low_data_space', '1400 free blocks, below 1600');
    assert.deepEqual(judge(line('rw', 4800)), { health: 'ok', advice: '' }, 'exactly at the mark is not below it');
  });
});

describe('pool grow on an LVM pool: the lvextend line', () => {
  it('names VG/LV from the pool\'s device-mapper name, dashes undoubled, the -tpool layer included', () => {
    assert.deepEqual(lvmName('docker-thinpool'), { vg: 'docker', lv: 'thinpool' });
    assert.deepEqual(lvmName('docker-thinpool-tpool'), { vg: 'docker', lv: 'thinpool' });
    assert.deepEqual(lvmName('my--vg-thin--pool-tpool'), { vg: 'my-vg', lv: 'thin-pool' });
    assert.deepEqual(lvextendLines('my--vg-thin--pool', { data: '+50G', metadata: '2G' }), [
      'lvextend -L +50G my-vg/thin-pool',
      'lvextend --poolmetadatasize 2G my-vg/thin-pool',
    ]);
    assert.deepEqual(lvextendLines('docker-thinpool-tpool', { metadata: '+1G' }), ['lvextend --poolmetadatasize +1G docker/thinpool']);
  });

  it('says VG/LV when the name is not LVM\'s', () => {
    assert.equal(lvmName('pool'), null);
    assert.equal(lvmName('a-b-c'), null);
    assert.deepEqual(lvextendLines('pool', { data: '100G' }), ['lvextend -L 100G VG/LV']);
  });
});
