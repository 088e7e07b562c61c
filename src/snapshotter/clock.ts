// Snapshot timestamps in nanoseconds since the epoch. containerd's test
// suite brackets each call between two readings of Go's nanosecond clock
// and wants Created inside them: Date.now() alone truncates to the
// millisecond and can fall before the first reading.
import { performance } from 'node:perf_hooks';

const NS_PER_MS = 1_000_000n;

/**
 * Now, to the microsecond: the monotonic clock anchored on the wall clock,
 * but kept inside the wall clock's current millisecond, so a drift between
 * the two never moves a timestamp out of it.
 */
export function nowNanos(): bigint {
  const wallMs = Date.now();
  const preciseNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
  const floor = BigInt(wallMs) * NS_PER_MS;
  const ceiling = floor + NS_PER_MS - 1n;
  if (preciseNs < floor) return floor;
  if (preciseNs > ceiling) return ceiling;
  return preciseNs;
}

/** google.protobuf.Timestamp, as proto-loader takes it with longs as strings. */
export function toTimestamp(ns: bigint): { seconds: string; nanos: number } {
  return { seconds: (ns / 1_000_000_000n).toString(), nanos: Number(ns % 1_000_000_000n) };
}
