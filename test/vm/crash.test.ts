// Crash safety: a process using the DeviceSet is killed with SIGKILL at
// each step of AddDevice, CreateDevice and DeleteDevice, and at random moments of a
// busy loop. After every kill a restart must find metadata and pool in
// agreement, every device that was reported created mounting with its
// data, every reported deletion done, and thin_check happy with the
// pool's metadata.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { dm } from '../../src/devmapper';
import type { DeviceSet } from '../../src/deviceset';
import { listThinIds } from '../../src/deviceset/pool';
import { requireRoot, requireVm } from '../support/env';
import { mountLayer, openSet, tempHome } from '../support/deviceset';
import { run } from '../support/exec';

const CHILD = path.join(__dirname, '..', 'support', 'crash-child.js');
const MiB = 1024 * 1024;

interface ChildResult {
  signal: NodeJS.Signals | null;
  code: number | null;
  lines: string[];
  stderr: string;
}

function runChild(args: string[], env: Record<string, string>, killAfterMs?: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', () => {
      // The random kills count from the moment the set is open.
      if (killAfterMs !== undefined && timer === undefined && stdout.includes('open\n')) {
        timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer !== undefined) clearTimeout(timer);
      resolve({ code, signal, lines: stdout.split('\n').filter((l) => l !== ''), stderr });
    });
  });
}

/** Thin ids the pool really holds (thin_ls on a metadata snapshot), sorted. */
async function poolThinIds(set: DeviceSet): Promise<number[]> {
  return [...(await listThinIds(set.pool))].sort((a, b) => a - b);
}

/** Tiny deterministic PRNG, so a failing run can be repeated. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('crash safety (VM)', function () {
  let home = '';
  /** devices reported created and not reported deleted, with the file each holds (relative to its mount) */
  const expected = new Map<string, string>();
  const gone = new Set<string>();
  let kills = 0;

  before(async function () {
    requireVm(this);
    requireRoot(this);
    home = await tempHome('crash');
    const set = await openSet(home);
    for (const [id, parent] of [['keep-1', ''], ['keep-2', 'keep-1']] as const) {
      await set.addDevice(id, parent);
      const rootfs = await mountLayer(set, id);
      await fsp.writeFile(path.join(rootfs, `${id}.txt`), id);
      await set.unmountDevice(id);
      expected.set(id, `rootfs/${id}.txt`);
    }
    await set.shutdown();
  });

  after(() => {
    process.stdout.write(`      (${kills} SIGKILLs in all)\n`);
  });

  /** Restart, compare metadata with the pool, mount what must be there, shut down, thin_check. */
  async function verify(): Promise<void> {
    const set = await openSet(home);
    try {
      assert.deepEqual(set.faultyDevices(), []);
      const known = [...set.listDevices(), ''].map((h) => Number(set.deviceMetadata(h)['DeviceId'])).sort((a, b) => a - b);
      assert.deepEqual(await poolThinIds(set), known, 'the pool holds exactly the thin devices metadata names');
      assert.equal(existsSync(path.join(home, 'metadata', 'transaction-metadata')), false, 'no transaction left open');
      for (const [id, file] of expected) {
        assert.ok(set.hasDevice(id), `${id} was reported created and must still exist`);
        const dir = await set.mountDevice(id);
        try {
          assert.equal(await fsp.readFile(path.join(dir, file), 'utf8'), id, `${id} keeps its data`);
        } finally {
          await set.unmountDevice(id);
        }
      }
      for (const id of gone) assert.equal(set.hasDevice(id), false, `${id} was reported deleted`);
    } finally {
      await set.shutdown();
    }
    const ino = (await fsp.stat(home)).ino;
    assert.deepEqual((await dm.list()).filter((d) => d.name.includes(`-${ino}-`)), [], 'shutdown left no device');
    await run('thin_check', [path.join(home, 'devicemapper', 'metadata')]);
  }

  function record(lines: string[]): void {
    for (const line of lines) {
      const [verb, id = ''] = line.split(' ');
      if (verb === 'created') expected.set(id, `rootfs/${id}.txt`);
      if (verb === 'made') expected.set(id, `${id}.txt`);
      if (verb === 'deleted') {
        expected.delete(id);
        gone.add(id);
      }
    }
  }

  async function killAt(failpoint: string, args: string[]): Promise<void> {
    const result = await runChild([home, ...args], { DMTHIN_FAILPOINT: failpoint });
    assert.equal(result.signal, 'SIGKILL', `the child must die at ${failpoint} (exit ${String(result.code)}): ${result.stderr}`);
    kills++;
    record(result.lines);
    await verify();
  }

  const addPoints = [
    'add-device:transaction-opened',
    'add-device:id-chosen',
    'add-device:snapshot-taken',
    'add-device:thin-created',
    'add-device:record-saved',
    'add-device:changed',
    'add-device:transaction-id-set',
    'add-device:transaction-closed',
  ];
  for (const point of addPoints) {
    it(`AddDevice killed at ${point}`, () => killAt(point, ['add', `a-${point.split(':')[1] ?? ''}`, 'keep-1']));
  }

  for (const point of ['add-device:origin-suspended', 'add-device:snapshot-taken']) {
    it(`AddDevice of a mounted origin killed at ${point}`, () => killAt(point, ['add', `m-${point.split(':')[1] ?? ''}`, 'keep-2', '--mount-parent']));
  }

  for (const point of ['add-device:grow-mounted', 'add-device:grown']) {
    it(`AddDevice with a bigger size killed at ${point}`, () => killAt(point, ['add', `g-${point.split(':')[1] ?? ''}`, 'keep-1', String(768 * MiB)]));
  }

  const createPoints = [
    'create-device:transaction-opened',
    'create-device:id-chosen',
    'create-device:thin-created',
    'create-device:record-saved',
    'create-device:formatted',
    'create-device:changed',
    'create-device:transaction-id-set',
    'create-device:transaction-closed',
  ];
  for (const point of createPoints) {
    it(`CreateDevice (own filesystem) killed at ${point}`, () => killAt(point, ['create', `vol-${point.split(':')[1] ?? ''}`]));
  }

  const deletePoints = [
    'delete-device:transaction-opened',
    'delete-device:discarded',
    'delete-device:deactivated',
    'delete-device:thin-deleted',
    'delete-device:record-removed',
    'delete-device:transaction-id-set',
  ];
  for (const point of deletePoints) {
    it(`DeleteDevice killed at ${point}`, async () => {
      const victim = `v-${point.split(':')[1] ?? ''}`;
      const made = await runChild([home, 'add', victim, 'keep-2'], {});
      assert.equal(made.code, 0, made.stderr);
      record(made.lines);
      assert.ok(expected.has(victim));
      // Once DeleteDevice has begun, the restart finishes it, whatever the step.
      expected.delete(victim);
      gone.add(victim);
      await killAt(point, ['delete', victim]);
    });
  }

  const rng = random(20261122);
  for (let round = 0; round < 6; round++) {
    const delay = Math.round(1500 + rng() * 6000);
    it(`a busy add/mount/write/delete loop killed after ${delay} ms (round ${round})`, async () => {
      const tag = `c${round}`;
      const result = await runChild([home, 'churn', tag], {}, delay);
      assert.equal(result.signal, 'SIGKILL', result.stderr);
      kills++;
      record(result.lines);
      // After "created TAG-n" the loop starts deleting TAG-(n-2); killed in
      // there, the restart may finish that deletion: it is the one device
      // whose state is open.
      const created = result.lines.filter((l) => l.startsWith(`created ${tag}-`)).map((l) => Number(l.split('-').pop()));
      if (created.length > 0) expected.delete(`${tag}-${Math.max(...created) - 2}`);
      await verify();
    });
  }

  it('killed the process at least 20 times', () => {
    assert.ok(kills >= 20, `${kills} kills`);
  });
});
