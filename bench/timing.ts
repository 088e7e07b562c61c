// Small helpers shared by the benchmarks.
import { performance } from 'node:perf_hooks';

export async function timed(into: number[], step: () => Promise<unknown>): Promise<void> {
  const start = performance.now();
  await step();
  into.push(performance.now() - start);
}

export async function timeOnce(step: () => Promise<unknown>): Promise<number> {
  const into: number[] = [];
  await timed(into, step);
  return into[0] ?? 0;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] ?? 0 : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** A fixed-width table: first column left-aligned, the rest right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
