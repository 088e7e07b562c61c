// One layer through the DeviceSet (AddDevice, MountDevice, UnmountDevice,
// DeleteDevice) beside the same steps done by hand with dmsetup, mount
// and umount on the same pool, alternating, in one VM run.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { dm } from '../src/devmapper';
import type { DeviceSet } from '../src/deviceset';
import { mountLayer, openSet, tempHome } from '../test/support/deviceset';
import { run } from '../test/support/exec';
import { median, table, timed } from './timing';

const STEPS = ['add', 'mount', 'unmount', 'delete'] as const;
type Step = (typeof STEPS)[number];
type Timings = Record<Step, number[]>;

/** The CLI side uses ids far above what the set hands out. */
const CLI_ID_BASE = 1_000_000;

function empty(): Timings {
  return { add: [], mount: [], unmount: [], delete: [] };
}

async function setRound(set: DeviceSet, id: string, t: Timings): Promise<void> {
  await timed(t.add, () => set.addDevice(id, ''));
  await timed(t.mount, () => mountLayer(set, id));
  await timed(t.unmount, () => set.unmountDevice(id));
  await timed(t.delete, () => set.deleteDevice(id));
}

async function cliRound(set: DeviceSet, n: number, fsType: string, t: Timings): Promise<void> {
  const pool = set.pool.name;
  const baseId = set.deviceMetadata('')['DeviceId'] ?? '1';
  const size = Number(set.deviceMetadata('')['DeviceSize']) / 512;
  const id = CLI_ID_BASE + n;
  const name = `${set.prefix}-cli-${n}`;
  const dir = path.join(set.home, 'mnt', `cli-${n}`);
  await fsp.mkdir(dir, { recursive: true });
  // Without udev, --verifyudev makes dmsetup create and remove the /dev/mapper node itself, as the addon does.
  const dmsetup = (...args: string[]): Promise<string> => run('dmsetup', ['--noudevsync', '--verifyudev', ...args]);
  await timed(t.add, () => dmsetup('message', pool, '0', `create_snap ${id} ${baseId}`));
  await timed(t.mount, async () => {
    await dmsetup('create', name, '--table', `0 ${size} thin ${set.pool.path} ${id}`);
    await run('mount', ['-t', fsType, '-o', fsType === 'xfs' ? 'nouuid' : 'defaults', dm.devicePath(name), dir]);
  });
  await timed(t.unmount, async () => {
    await run('umount', [dir]);
    await dmsetup('remove', name);
  });
  await timed(t.delete, () => dmsetup('message', pool, '0', `delete ${id}`));
  await fsp.rmdir(dir);
}

export interface OpsResult {
  rounds: number;
  fs: string;
  dmthin: Record<Step, number>;
  cli: Record<Step, number>;
}

export async function benchDeviceSetOps(rounds: number): Promise<OpsResult> {
  // No discard: the hand-made steps do not discard either.
  const set = await openSet(await tempHome('bench-ops'), ['dm.blkdiscard=false']);
  try {
    const fsType = Object.fromEntries(await set.status())['Backing Filesystem'] ?? 'xfs';
    const a = empty();
    const c = empty();
    await setRound(set, 'warm', empty());
    await cliRound(set, 0, fsType, empty());
    for (let i = 1; i <= rounds; i++) {
      await setRound(set, `layer-${i}`, a);
      await cliRound(set, i, fsType, c);
    }
    const summary = (t: Timings): Record<Step, number> => Object.fromEntries(STEPS.map((s) => [s, median(t[s])])) as Record<Step, number>;
    return { rounds, fs: fsType, dmthin: summary(a), cli: summary(c) };
  } finally {
    await set.shutdown();
  }
}

export function formatDeviceSetOps(r: OpsResult): string {
  const names: Record<Step, string> = {
    add: 'AddDevice     | create_snap',
    mount: 'MountDevice   | create + mount',
    unmount: 'UnmountDevice | umount + remove',
    delete: 'DeleteDevice  | delete',
  };
  return [
    `DeviceSet steps vs dmsetup/mount commands: median ms over ${r.rounds} rounds, ${r.fs}, same pool, alternating`,
    table(
      ['step (dmthin | by hand)', 'dmthin', 'by hand', 'dmthin/hand'],
      STEPS.map((s) => [names[s], r.dmthin[s].toFixed(1), r.cli[s].toFixed(1), (r.dmthin[s] / r.cli[s]).toFixed(2)]),
    ),
  ].join('\n');
}
