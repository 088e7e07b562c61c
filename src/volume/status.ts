// The Status map of `docker volume inspect`: what kind of volume it is, how
// big, how much of the pool it really uses, what it was made with (secrets
// masked), whether it is mounted, and what is wrong with it if anything is.
import type { DeviceUsage } from '../deviceset';
import { shownOptions } from './options';
import type { RecordState } from './record';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** Bytes in binary units, as sizes are given with -o size (1GiB, 512MiB, 1.5GiB). */
export function binarySize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const fixed = unit === 0 ? String(value) : value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0);
  // 1.50 is 1.5 and 2.00 is 2, but 100 stays 100.
  const text = fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
  return `${text}${UNITS[unit] ?? ''}`;
}

/** How the thin device's usage could be found, if it could. */
export type UsageLookup =
  | { kind: 'usage'; usage: DeviceUsage; deviceName: string }
  | { kind: 'unavailable'; reason: string }
  | { kind: 'error'; reason: string };

export function volumeStatus(state: RecordState | null, mounts: number, usage: UsageLookup | null): Record<string, unknown> {
  if (state === null) return { Kind: 'plain', Mounts: mounts };
  if (!state.ok) return { Kind: 'unknown', Error: state.problem, Mounts: mounts };
  const { record } = state;
  const status: Record<string, unknown> = { Kind: record.Kind };
  if (Object.keys(record.Options).length > 0) status['Options'] = shownOptions(record.Options);
  if (record.Thin !== undefined) {
    status['Size'] = binarySize(record.Thin.Size);
    status['Filesystem'] = record.Thin.Filesystem;
    if (record.Thin.From !== undefined) status['ClonedFrom'] = record.Thin.From;
    if (usage?.kind === 'usage') {
      const { usage: u } = usage;
      const pct = u.size > 0 ? ((100 * u.mappedBytes) / u.size).toFixed(1) : '0';
      status['Used'] = `${binarySize(u.mappedBytes)} (${pct}%)`;
      status['UsedBytes'] = u.mappedBytes;
      status['SizeBytes'] = u.size;
      status['DeviceId'] = u.deviceId;
      status['DeviceName'] = usage.deviceName;
    } else if (usage?.kind === 'unavailable') {
      status['Used'] = `unknown: ${usage.reason}`;
    } else if (usage?.kind === 'error') {
      status['Error'] = usage.reason;
    }
  }
  status['Mounts'] = mounts;
  return status;
}
