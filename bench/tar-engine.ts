// The layer tar engine on a plain directory (no device-mapper, runs on
// the host): ApplyDiff (applyTar) and Diff (changes + exportChanges) of
// many small files and of one large file, beside GNU tar extracting and
// creating the same tree in the same run, as the yardstick.
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { applyTar } from '../src/graphdriver/apply';
import { changes } from '../src/graphdriver/changes';
import { exportChanges } from '../src/graphdriver/diff';
import { median, table } from './timing';

const BLOCK = 512;
/** The size of the chunks dockerd's HTTP body arrives in, roughly. */
const CHUNK = 64 * 1024;

/** One ustar header block: a regular file or a directory, root's, dated 2020-09-13. */
function ustarHeader(name: string, size: number, type: '0' | '5'): Buffer {
  const h = Buffer.alloc(BLOCK);
  const octal = (value: number, at: number, width: number): void => {
    h.write(`${value.toString(8).padStart(width - 1, '0')}\0`, at, 'latin1');
  };
  h.write(name, 0, 100, 'latin1');
  octal(type === '5' ? 0o755 : 0o644, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(1_600_000_000, 136, 12);
  h.write('        ', 148, 'latin1');
  h.write(type, 156, 'latin1');
  h.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** A layer tar as a list of buffers, and how many bytes of file content it holds. */
interface Workload {
  label: string;
  files: number;
  contentBytes: number;
  /** the tar's bytes, produced again for each round */
  tar(): Iterable<Buffer>;
}

/** `count` files of `size` bytes, 100 to a directory. */
function smallFiles(count: number, size: number): Workload {
  const parts: Buffer[] = [];
  const body = Buffer.alloc(size, 'x');
  for (let i = 0; i < count; i++) {
    if (i % 100 === 0) parts.push(ustarHeader(`d${i / 100}/`, 0, '5'));
    parts.push(ustarHeader(`d${Math.floor(i / 100)}/f${i}`, size, '0'), body, padding(size));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  const whole = Buffer.concat(parts);
  return {
    label: `${count} x ${size / 1024} KiB`,
    files: count,
    contentBytes: count * size,
    *tar() {
      for (let at = 0; at < whole.length; at += CHUNK) yield whole.subarray(at, at + CHUNK);
    },
  };
}

/** One file of `size` bytes (a multiple of the chunk size), never held whole in memory. */
function largeFile(size: number): Workload {
  const chunk = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i++) chunk[i] = (i * 7919) & 0xff;
  return {
    label: `1 x ${size / 1024 / 1024} MiB`,
    files: 1,
    contentBytes: size,
    *tar() {
      yield ustarHeader('big', size, '0');
      for (let at = 0; at < size; at += CHUNK) yield chunk;
      yield Buffer.alloc(2 * BLOCK);
    },
  };
}

/** Runs a command with `input` on its stdin, rejecting on a non-zero exit. */
function run(command: string, args: string[], input: Iterable<Buffer> | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [input === null ? 'ignore' : 'pipe', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited with ${String(code)}`))));
    if (input !== null && child.stdin !== null) Readable.from(input).pipe(child.stdin);
  });
}

async function drain(stream: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

interface Timings {
  apply: number[];
  gnuExtract: number[];
  diff: number[];
  gnuCreate: number[];
}

async function measure(work: Workload, scratch: string, rounds: number): Promise<Timings> {
  const t: Timings = { apply: [], gnuExtract: [], diff: [], gnuCreate: [] };
  for (let round = 0; round < rounds; round++) {
    const layer = await fsp.mkdtemp(path.join(scratch, 'layer-'));
    let start = performance.now();
    await applyTar(layer, Readable.from(work.tar()));
    t.apply.push(performance.now() - start);

    start = performance.now();
    await drain(exportChanges(layer, await changes(layer, '')));
    t.diff.push(performance.now() - start);

    const gnu = await fsp.mkdtemp(path.join(scratch, 'gnu-'));
    start = performance.now();
    await run('tar', ['-x', '--same-owner', '-p', '-C', gnu], work.tar());
    t.gnuExtract.push(performance.now() - start);

    start = performance.now();
    await run('sh', ['-c', `tar -c --xattrs -C '${gnu}' . | cat > /dev/null`], null);
    t.gnuCreate.push(performance.now() - start);

    await fsp.rm(layer, { recursive: true, force: true });
    await fsp.rm(gnu, { recursive: true, force: true });
  }
  return t;
}

export interface TarEngineRow {
  workload: string;
  step: string;
  ms: number;
  mbPerS: number;
  filesPerS: number;
  gnuMs: number;
  ratio: number;
}

export interface TarEngineResult {
  rounds: number;
  rows: TarEngineRow[];
}

export async function benchTarEngine(rounds: number, largeMiB = 512, smallCount = 10_000): Promise<TarEngineResult> {
  // Not /tmp: often a tmpfs, which would measure memory, not a filesystem.
  const scratch = await fsp.mkdtemp(path.join(process.env['DMTHIN_BENCH_DIR'] ?? '/var/tmp', 'dmthin-bench-tar-'));
  const rows: TarEngineRow[] = [];
  try {
    for (const work of [smallFiles(smallCount, 1024), largeFile(largeMiB * 1024 * 1024)]) {
      const t = await measure(work, scratch, rounds);
      const row = (step: string, ours: number[], gnu: number[]): TarEngineRow => {
        const ms = median(ours);
        const gnuMs = median(gnu);
        return {
          workload: work.label,
          step,
          ms,
          mbPerS: work.contentBytes / 1e6 / (ms / 1000),
          filesPerS: work.files / (ms / 1000),
          gnuMs,
          ratio: ms / gnuMs,
        };
      };
      rows.push(row('ApplyDiff', t.apply, t.gnuExtract), row('Diff', t.diff, t.gnuCreate));
    }
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true });
  }
  return { rounds, rows };
}

export function formatTarEngine(r: TarEngineResult): string {
  const rows = r.rows.map((x) => [
    `${x.step} ${x.workload}`,
    x.ms.toFixed(0),
    x.mbPerS.toFixed(1),
    x.filesPerS.toFixed(0),
    x.gnuMs.toFixed(0),
    `${x.ratio.toFixed(2)}x`,
  ]);
  return [
    `tar-engine (host, ${os.cpus().length} CPUs, median of ${r.rounds} rounds; GNU tar -x / tar -c of the same tree as yardstick)`,
    table(['step', 'ms', 'MB/s', 'files/s', 'GNU tar ms', 'dmthin/GNU'], rows),
  ].join('\n');
}
