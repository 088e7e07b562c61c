// Does the DeviceSet slow down as it grows? Start-up time and one
// AddDevice + DeleteDevice with 10 devices, then with 1,000, same pool.
import type { DeviceSet } from '../src/deviceset';
import { openSet, tempHome } from '../test/support/deviceset';
import { median, table, timeOnce, timed } from './timing';

export interface ScaleRow {
  devices: number;
  startMs: number;
  addMs: number;
  deleteMs: number;
}

const OPTIONS = ['dm.blkdiscard=false', 'dm.loopmetadatasize=1G'];

async function fillTo(set: DeviceSet, count: number): Promise<void> {
  const have = set.listDevices().length;
  for (let i = have; i < count; i += 25) {
    const batch = Array.from({ length: Math.min(25, count - i) }, (_, k) => `fill-${i + k}`);
    await Promise.all(batch.map((id) => set.addDevice(id, '')));
  }
}

async function measure(home: string, devices: number, samples: number): Promise<ScaleRow> {
  let set: DeviceSet | undefined;
  const startMs = await timeOnce(async () => {
    set = await openSet(home, OPTIONS);
  });
  if (set === undefined) throw new Error('open failed');
  const add: number[] = [];
  const del: number[] = [];
  for (let i = 0; i < samples; i++) {
    await timed(add, () => (set as DeviceSet).addDevice(`probe-${i}`, ''));
    await timed(del, () => (set as DeviceSet).deleteDevice(`probe-${i}`));
  }
  await set.shutdown();
  return { devices, startMs, addMs: median(add), deleteMs: median(del) };
}

export async function benchDeviceSetScale(large: number, samples: number): Promise<ScaleRow[]> {
  const home = await tempHome('bench-scale');
  const first = await openSet(home, OPTIONS);
  await fillTo(first, 10);
  await first.shutdown();
  const small = await measure(home, 10, samples);
  const grow = await openSet(home, OPTIONS);
  await fillTo(grow, large);
  await grow.shutdown();
  const big = await measure(home, large, samples);
  return [small, big];
}

export function formatDeviceSetScale(rows: ScaleRow[]): string {
  const [small, big] = rows;
  const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? '-' : (b / a).toFixed(2));
  return [
    'DeviceSet scale: start-up and one AddDevice/DeleteDevice (median ms), same pool',
    table(
      ['devices', 'start-up', 'AddDevice', 'DeleteDevice'],
      [
        ...rows.map((r) => [String(r.devices), r.startMs.toFixed(0), r.addMs.toFixed(1), r.deleteMs.toFixed(1)]),
        [`ratio ${big?.devices ?? '?'}/${small?.devices ?? '?'}`, ratio(small?.startMs, big?.startMs), ratio(small?.addMs, big?.addMs), ratio(small?.deleteMs, big?.deleteMs)],
      ],
    ),
  ].join('\n');
}
