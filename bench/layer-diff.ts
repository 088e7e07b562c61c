// Changes and Diff of a layer on plain directories, on the host (no
// device-mapper): the shapes of moby's graphtest Diff benchmarks. The
// upper is a hard-linked copy of the lower (`cp -al`), so untouched files
// share inode numbers and change times with the lower as they do in a
// thin snapshot, plus what each shape adds. Prints ms per Changes and per
// Diff (Changes, then the tar read to the end), for today's code and for
// the JavaScript walk and tar-stream writer it replaced (bench/legacy/),
// in alternating rounds, with the ratio old/new, and the worst event-loop
// stall seen during today's Diffs.
//
//   node dist/bench/layer-diff.js                 # the shapes, 5 rounds each
//   DMTHIN_BENCH_ROUNDS=9 DMTHIN_BENCH_SHAPE=Diff10K node dist/bench/layer-diff.js   # more rounds, one shape
//   DMTHIN_BENCH_BIG=1 node dist/bench/layer-diff.js   # + peak RSS of a 1 GB, 100,000-file Diff (slow)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { changes, rawChanges } from '../src/graphdriver/changes';
import { exportChanges, exportRawChanges } from '../src/graphdriver/diff';
import { changes as legacyChanges } from './legacy/changes';
import { exportChanges as legacyExportChanges } from './legacy/diff';
import { median, table } from './timing';

const WORK = process.env['DMTHIN_BENCH_DIR'] ?? '/var/tmp/dmthin-bench-layer-diff';
const ROUNDS = Number(process.env['DMTHIN_BENCH_ROUNDS'] ?? '5');

interface Shape {
  name: string;
  /** files in the lower layer, spread over directories of 100 */
  lowerFiles: number;
  /** what the upper adds: files of `size` bytes */
  upperFiles: number;
  size: number;
  /** the upper is a chain of this many copies, each adding upperFiles / depth (DeepLayerDiff) */
  depth?: number;
}

const SHAPES: Shape[] = [
  { name: 'DiffBase (no change)', lowerFiles: 1000, upperFiles: 0, size: 0 },
  { name: 'DiffSmallUpper (10 files)', lowerFiles: 1000, upperFiles: 10, size: 1024 },
  { name: 'Diff10KFileUpper', lowerFiles: 1000, upperFiles: 10_000, size: 1024 },
  { name: 'DeepLayerDiff (20 deep)', lowerFiles: 1000, upperFiles: 20, size: 1024, depth: 20 },
];

function fill(dir: string, prefix: string, count: number, size: number): void {
  const body = Buffer.alloc(size, 0x61);
  for (let i = 0; i < count; i++) {
    const sub = path.join(dir, `${prefix}${Math.floor(i / 100)}`);
    if (i % 100 === 0) mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, `f${i}`), body);
  }
}

/** lower/ and upper/ of a shape, made once and kept for later runs. */
function prepare(shape: Shape): { lower: string; upper: string } {
  const dir = path.join(WORK, shape.name.replace(/[^A-Za-z0-9]+/g, '-'));
  const lower = path.join(dir, 'lower');
  const upper = path.join(dir, 'upper');
  if (existsSync(path.join(dir, 'ready'))) return { lower, upper };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(lower, { recursive: true });
  fill(lower, 'base', shape.lowerFiles, 512);
  let from = lower;
  const depth = shape.depth ?? 1;
  for (let level = 1; level <= depth; level++) {
    const to = level === depth ? upper : path.join(dir, `level${level}`);
    execFileSync('cp', ['-al', from, to]);
    fill(to, `add${level}-`, Math.ceil(shape.upperFiles / depth), shape.size);
    from = to;
  }
  writeFileSync(path.join(dir, 'ready'), '');
  return { lower, upper };
}

async function drain(stream: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

/** The longest gap between 1 ms timer ticks while step runs: how long the event loop was blocked. */
async function worstStall(step: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  try {
    await step();
  } finally {
    clearInterval(timer);
  }
  return Math.max(worst, performance.now() - last);
}

interface Row {
  shape: string;
  changes: number;
  entries: number;
  changesMs: number;
  diffMs: number;
  legacyChangesMs: number;
  legacyDiffMs: number;
  tarBytes: number;
  stallMs: number;
}

async function benchShape(shape: Shape): Promise<Row> {
  const { lower, upper } = prepare(shape);
  const ms = { changes: [] as number[], diff: [] as number[], legacyChanges: [] as number[], legacyDiff: [] as number[] };
  let count = 0;
  let tarBytes = 0;
  let legacyBytes = 0;
  let stall = 0;
  const time = async (into: number[], step: () => Promise<unknown>): Promise<void> => {
    const start = performance.now();
    await step();
    into.push(performance.now() - start);
  };
  for (let round = 0; round < ROUNDS; round++) {
    await time(ms.changes, async () => (count = (await changes(upper, lower)).length));
    await time(ms.legacyChanges, () => legacyChanges(upper, lower));
    await time(ms.diff, async () => {
      stall = Math.max(stall, await worstStall(async () => (tarBytes = await drain(exportChanges(upper, await changes(upper, lower))))));
    });
    await time(ms.legacyDiff, async () => (legacyBytes = await drain(legacyExportChanges(upper, await legacyChanges(upper, lower)))));
  }
  // The old writer's headers differ (no trailing "/" on directories, ustar mode field): sizes may differ by padding only.
  if (Math.abs(legacyBytes - tarBytes) > 512 * (count + 2)) throw new Error(`${shape.name}: ${tarBytes} bytes of tar, the old writer ${legacyBytes}`);
  return {
    shape: shape.name,
    changes: count,
    entries: shape.lowerFiles + shape.upperFiles,
    changesMs: median(ms.changes),
    diffMs: median(ms.diff),
    legacyChangesMs: median(ms.legacyChanges),
    legacyDiffMs: median(ms.legacyDiff),
    tarBytes,
    stallMs: stall,
  };
}

/** Peak RSS of one Diff of a 1 GB layer of 100,000 files against an empty parent. */
async function benchBig(): Promise<{ files: number; tarBytes: number; diffMs: number; rssBeforeMb: number; peakRssMb: number }> {
  const dir = path.join(WORK, 'big');
  const layer = path.join(dir, 'layer');
  const files = 100_000;
  if (!existsSync(path.join(dir, 'ready'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(layer, { recursive: true });
    // 5,000 bytes each, but every thousandth 5 MB: large bodies are streamed, not read whole.
    const small = Buffer.alloc(5_000, 0x62);
    const large = Buffer.alloc(5_000_000, 0x63);
    for (let i = 0; i < files; i++) {
      const sub = path.join(layer, `d${Math.floor(i / 1000)}`);
      if (i % 1000 === 0) mkdirSync(sub, { recursive: true });
      writeFileSync(path.join(sub, `f${i}`), i % 1000 === 0 ? large : small);
    }
    writeFileSync(path.join(dir, 'ready'), '');
  }
  const before = process.memoryUsage.rss();
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  const start = performance.now();
  // As the driver's Diff does: the paths stay bytes from the scan to the tar.
  const tarBytes = await drain(exportRawChanges(layer, await rawChanges(layer, '')));
  const diffMs = performance.now() - start;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage.rss());
  return { files, tarBytes, diffMs, rssBeforeMb: before / 2 ** 20, peakRssMb: peak / 2 ** 20 };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const only = process.env['DMTHIN_BENCH_SHAPE'];
  for (const shape of SHAPES) if (only === undefined || shape.name.startsWith(only)) rows.push(await benchShape(shape));
  const ms = (v: number): string => v.toFixed(1);
  const ratio = (old: number, now: number): string => `${(old / now).toFixed(1)}x`;
  process.stdout.write(
    `${table(
      [`layer-diff (host, median of ${ROUNDS})`, 'changes', 'Changes old ms', 'new ms', 'old/new', 'Diff old ms', 'new ms', 'old/new', 'tar MB', 'worst stall ms'],
      rows.map((r) => [
        r.shape,
        String(r.changes),
        ms(r.legacyChangesMs),
        ms(r.changesMs),
        ratio(r.legacyChangesMs, r.changesMs),
        ms(r.legacyDiffMs),
        ms(r.diffMs),
        ratio(r.legacyDiffMs, r.diffMs),
        (r.tarBytes / 2 ** 20).toFixed(1),
        ms(r.stallMs),
      ]),
    )}\n`,
  );
  const data: Record<string, unknown> = { rows };
  if (process.env['DMTHIN_BENCH_BIG'] === '1') {
    const big = await benchBig();
    process.stdout.write(
      `big Diff: ${big.files} files, ${(big.tarBytes / 2 ** 30).toFixed(2)} GiB of tar in ${(big.diffMs / 1000).toFixed(1)} s, peak RSS ${big.peakRssMb.toFixed(0)} MB (${big.rssBeforeMb.toFixed(0)} MB before it)\n`,
    );
    data['big'] = big;
  }
  process.stdout.write(`BENCH ${JSON.stringify({ name: 'layer-diff', ...data })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
