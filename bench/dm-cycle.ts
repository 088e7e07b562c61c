// The cost of one layer's life on the pool: snapshot (suspend origin,
// create_snap, resume), activate, deactivate, delete; through the addon
// and through the dmsetup CLI, alternating, in the same VM run.
import { dm, thin } from '../src/devmapper';
import { run } from '../test/support/exec';
import { TestPool } from '../test/support/pool';
import { median, timed } from './timing';

const OPS = ['create_snap', 'activate', 'deactivate', 'delete'] as const;
type Op = (typeof OPS)[number];
type Timings = Record<Op, number[]>;

const THIN_SECTORS = (64 * 1024 * 1024) / 512;

function emptyTimings(): Timings {
  return { create_snap: [], activate: [], deactivate: [], delete: [] };
}

async function addonCycle(pool: TestPool, origin: string, id: number, t: Timings): Promise<void> {
  const name = pool.thinName(id);
  await timed(t.create_snap, async () => {
    await dm.suspend(origin);
    try {
      await thin.createSnap(pool.name, id, 1);
    } finally {
      await dm.resume(origin);
    }
  });
  await timed(t.activate, () => dm.create(name, [thin.thinTable(pool.path, id, THIN_SECTORS)]));
  await timed(t.deactivate, () => dm.remove(name));
  await timed(t.delete, () => thin.deleteThin(pool.name, id));
}

async function dmsetupCycle(pool: TestPool, origin: string, id: number, t: Timings): Promise<void> {
  const name = pool.thinName(id);
  // --verifyudev: without udev, dmsetup then makes and removes the /dev/mapper node itself, as the addon does.
  const dmsetup = (...args: string[]): Promise<string> => run('dmsetup', ['--noudevsync', '--verifyudev', ...args]);
  await timed(t.create_snap, async () => {
    await dmsetup('suspend', origin);
    try {
      await dmsetup('message', pool.name, '0', `create_snap ${id} 1`);
    } finally {
      await dmsetup('resume', origin);
    }
  });
  await timed(t.activate, () => dmsetup('create', name, '--table', `0 ${THIN_SECTORS} thin ${pool.path} ${id}`));
  await timed(t.deactivate, () => dmsetup('remove', name));
  await timed(t.delete, () => dmsetup('message', pool.name, '0', `delete ${id}`));
}

export interface CycleResult {
  rounds: number;
  addon: Record<Op | 'cycle', number>;
  dmsetup: Record<Op | 'cycle', number>;
}

function summarize(t: Timings): Record<Op | 'cycle', number> {
  const perOp = Object.fromEntries(OPS.map((op) => [op, median(t[op])])) as Record<Op, number>;
  return { ...perOp, cycle: OPS.reduce((sum, op) => sum + perOp[op], 0) };
}

export async function benchDmCycle(rounds: number): Promise<CycleResult> {
  dm.setUdevSync(false); // as dmsetup --noudevsync --verifyudev: same work on both sides
  const pool = await TestPool.create({ dataBytes: 1024 * 1024 * 1024 });
  try {
    await thin.createThin(pool.name, 1);
    const origin = pool.thinName(1);
    await pool.activate(1, THIN_SECTORS * 512);
    const addon = emptyTimings();
    const cli = emptyTimings();
    // One untimed cycle each warms caches (the dmsetup binary, the pool's metadata).
    await addonCycle(pool, origin, 2, emptyTimings());
    await dmsetupCycle(pool, origin, 2, emptyTimings());
    for (let round = 0; round < rounds; round++) {
      await addonCycle(pool, origin, 10 + round, addon);
      await dmsetupCycle(pool, origin, 10 + round, cli);
    }
    return { rounds, addon: summarize(addon), dmsetup: summarize(cli) };
  } finally {
    await pool.destroy();
  }
}

export function formatDmCycle(result: CycleResult): string {
  const rows = [...OPS, 'cycle' as const].map((op) => {
    const a = result.addon[op];
    const c = result.dmsetup[op];
    return `${op.padEnd(12)} ${a.toFixed(2).padStart(10)} ${c.toFixed(2).padStart(12)} ${(a / c).toFixed(3).padStart(14)}`;
  });
  return [
    `dm cycle: median ms per operation over ${result.rounds} rounds (same VM, alternating)`,
    `${'operation'.padEnd(12)} ${'addon'.padStart(10)} ${'dmsetup'.padStart(12)} ${'addon/dmsetup'.padStart(14)}`,
    ...rows,
  ].join('\n');
}
