// A seeded mutation fuzzer for the tar reader: valid tars of the corpus
// with flipped bytes, rewritten header fields and sizes, spliced, dropped
// and doubled blocks, shifted PAX lengths and truncation, most with their
// checksums fixed so the change reaches the parser. Each case must list in
// bounded time (dmthin's reader runs in a worker with a deadline) and as
// Go's archive/tar lists it. Case i of a seed is the same on every run.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { goTarViews } from './go-tarview';
import { tarCorpus } from './tar-corpus';
import type { TarView } from './tar-view';
import type { WorkerReply } from './tar-view-worker';
import { viewDifference } from './tar-view-compare';
import { writeChecksum } from './tar-blocks';

/** Cases the host suite runs on every test run. */
export const FUZZ_CI_CASES = 300;
/** Wall-clock bound for dmthin's reader on one case (they take milliseconds). */
export const CASE_DEADLINE_MS = 20_000;
const BATCH = 500;
const MAX_BASE_BYTES = 64 * 1024;

/** mulberry32 over (seed, case): each case regenerates alone. */
class Rng {
  private state: number;
  constructor(seed: number, index: number) {
    this.state = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(256)));
  }
}

function checksumValid(block: Buffer): boolean {
  if (block.every((b) => b === 0)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  const stored = parseInt(block.toString('latin1', 148, 156).replace(/[\0 ]/g, ''), 8);
  return stored === sum;
}

function headerOffsets(tar: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at + 512 <= tar.length; at += 512) if (checksumValid(tar.subarray(at, at + 512))) out.push(at);
  return out;
}

const FIELDS: Array<[string, number, number]> = [
  ['name', 0, 100],
  ['mode', 100, 8],
  ['uid', 108, 8],
  ['gid', 116, 8],
  ['size', 124, 12],
  ['mtime', 136, 12],
  ['typeflag', 156, 1],
  ['linkname', 157, 100],
  ['magic', 257, 8],
  ['uname', 265, 32],
  ['devmajor', 329, 8],
  ['prefix/atime', 345, 24],
  ['sparse', 386, 97],
  ['realsize', 483, 12],
  ['trailer', 508, 4],
];

function fieldValue(rng: Rng, length: number): Buffer {
  const kind = rng.int(7);
  const octal = (): string => rng.int(2 ** 30).toString(8).slice(0, length);
  switch (kind) {
    case 0:
      return Buffer.from(`${octal().padStart(length - 1, '0')}\0`.slice(-length), 'latin1');
    case 1: {
      const b = rng.bytes(length);
      b[0] = ((b[0] ?? 0) | 0x80) & (rng.int(2) ? 0xff : 0xbf);
      if (rng.int(2)) b.fill(rng.int(2) ? 0 : 0xff, 1, Math.max(1, length - 3));
      return b;
    }
    case 2:
      return rng.bytes(length);
    case 3:
      return Buffer.from(` ${octal()} `.padEnd(length, rng.pick(['\0', ' ', '8', 'x'])).slice(0, length), 'latin1');
    case 4:
      return Buffer.alloc(length, rng.pick([0, 0x20, 0x30, 0x37, 0xff]));
    case 5:
      return Buffer.from(rng.pick(['ustar\x0000', 'ustar  \0', 'ustar\0xx', 'tar\0', '../../etc', '.wh..wh..opq', '/']).padEnd(length, '\0').slice(0, length), 'latin1');
    default:
      return Buffer.from(`${rng.pick(['+', '-', '0x', ''])}${rng.int(5000)}`.padEnd(length, '\0').slice(0, length), 'latin1');
  }
}

/** One mutation of a tar, and words saying what it did. */
function mutateOnce(rng: Rng, tar: Buffer, headers: number[], donors: Buffer[]): { tar: Buffer; op: string } {
  const aligned = (): number => 512 * rng.int(Math.max(1, Math.ceil(tar.length / 512)));
  const header = (): number => (headers.length > 0 ? rng.pick(headers) : aligned());
  const op = rng.pick(['flip', 'flip', 'field', 'field', 'size', 'size', 'typeflag', 'pax-length', 'splice', 'drop-block', 'dup-block', 'zero-block', 'truncate', 'junk']);
  const out = Buffer.from(tar);
  switch (op) {
    case 'flip': {
      const n = 1 + rng.int(4);
      for (let i = 0; i < n && out.length > 0; i++) {
        const at = rng.int(out.length);
        out[at] = rng.int(2) ? (out[at] ?? 0) ^ (1 << rng.int(8)) : rng.int(256);
      }
      return { tar: out, op };
    }
    case 'field': {
      const [name, start, length] = rng.pick(FIELDS);
      const at = header() + start;
      if (at + length <= out.length) fieldValue(rng, length).copy(out, at);
      return { tar: out, op: `field ${name}` };
    }
    case 'size': {
      const at = header() + 124;
      const size = rng.pick([0, 1, 511, 512, 513, 1024, rng.int(4096), rng.int(100_000), 2 ** 20 + 1]);
      if (at + 12 <= out.length) out.write(`${size.toString(8).padStart(11, '0')}\0`, at, 'latin1');
      return { tar: out, op: `size ${size}` };
    }
    case 'typeflag': {
      const at = header() + 156;
      const flag = rng.pick([...'0123456 7xgLKSDVMNZ', '\0']);
      if (at < out.length) out[at] = flag.charCodeAt(0);
      return { tar: out, op: `typeflag ${JSON.stringify(flag)}` };
    }
    case 'pax-length': {
      const text = out.toString('latin1');
      const records = [...text.matchAll(/(?:^|\n|\0)(\d+) [A-Za-z.]/g)];
      if (records.length === 0) return { tar: out, op: 'pax-length (none)' };
      const m = rng.pick(records);
      const digits = m[1] as string;
      const at = (m.index ?? 0) + m[0].length - digits.length - 2;
      const value = String(Math.max(0, Number(digits) + rng.pick([-3, -1, 1, 2, 100, -Number(digits)]))).padStart(digits.length, '0');
      out.write(value.slice(-digits.length), at, 'latin1');
      return { tar: out, op: `pax-length ${digits}->${value}` };
    }
    case 'splice': {
      const donor = rng.pick(donors);
      const donorHeaders = headerOffsets(donor);
      const from = donorHeaders.length > 0 ? rng.pick(donorHeaders) : 0;
      const blocks = 1 + rng.int(3);
      const at = Math.min(aligned(), out.length);
      return { tar: Buffer.concat([out.subarray(0, at), donor.subarray(from, from + blocks * 512), out.subarray(at)]), op: 'splice' };
    }
    case 'drop-block': {
      const at = aligned();
      return { tar: Buffer.concat([out.subarray(0, at), out.subarray(at + 512)]), op };
    }
    case 'dup-block': {
      const at = aligned();
      return { tar: Buffer.concat([out.subarray(0, at + 512), out.subarray(at, at + 512), out.subarray(at + 512)]), op };
    }
    case 'zero-block': {
      const at = aligned();
      return { tar: Buffer.concat([out.subarray(0, at), Buffer.alloc(512), out.subarray(at)]), op };
    }
    case 'truncate':
      return { tar: out.subarray(0, rng.int(out.length + 1)), op };
    default:
      return { tar: Buffer.concat([out, rng.bytes(rng.int(1500))]), op };
  }
}

export interface FuzzCase {
  index: number;
  base: string;
  ops: string[];
  bytes: Buffer;
}

let bases: { valid: Array<{ name: string; bytes: Buffer }>; donors: Buffer[] } | null = null;

/** Case `index` of `seed`: a valid corpus tar with one to three mutations. */
export function fuzzCase(seed: number, index: number): FuzzCase {
  bases ??= (() => {
    const small = tarCorpus().filter((t) => t.bytes.length <= MAX_BASE_BYTES && t.bytes.length > 0);
    return { valid: small.filter((t) => !t.hostile), donors: small.map((t) => t.bytes) };
  })();
  const rng = new Rng(seed, index);
  const base = rng.pick(bases.valid);
  let tar = base.bytes;
  const ops: string[] = [];
  const n = 1 + rng.int(3);
  for (let i = 0; i < n; i++) {
    const headers = headerOffsets(tar);
    const step = mutateOnce(rng, tar, headers, bases.donors);
    tar = step.tar;
    ops.push(step.op);
    // Mostly keep checksums right, so the change reaches the fields behind them.
    if (rng.next() < 0.85) {
      for (const at of headers) if (at + 512 <= tar.length && !tar.subarray(at, at + 512).every((b) => b === 0)) writeChecksum(tar.subarray(at, at + 512));
    }
  }
  return { index, base: base.name, ops, bytes: tar };
}

/** Lists tars with dmthin's reader in a worker, each within the deadline. */
class ReaderWorker {
  private worker: Worker | null = null;

  private start(): Worker {
    this.worker ??= new Worker(path.join(__dirname, 'tar-view-worker.js'));
    return this.worker;
  }

  view(bytes: Buffer): Promise<Omit<WorkerReply, 'id'> | 'timeout'> {
    const worker = this.start();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        void worker.terminate();
        this.worker = null;
        resolve('timeout');
      }, CASE_DEADLINE_MS);
      const onMessage = (reply: WorkerReply): void => {
        cleanup();
        resolve(reply);
      };
      const onError = (err: Error): void => {
        cleanup();
        this.worker = null;
        reject(err);
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.postMessage({ id: 0, bytes });
    });
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = null;
  }
}

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** scratch directory for the case files (Go reads files) */
  dir: string;
  /** first case index (to resume or reproduce) */
  from?: number;
  /** called with each case, e.g. to apply it too; returns a finding or null */
  alsoCheck?: (c: FuzzCase) => Promise<string | null>;
  progress?: (done: number) => void;
}

export interface FuzzReport {
  findings: string[];
  /** how Go ended the cases: "ok", "header", "unexpected-eof", ... */
  outcomes: Record<string, number>;
  summary: string;
}

export async function fuzzTars(options: FuzzOptions): Promise<FuzzReport> {
  const { cases, seed, dir } = options;
  const from = options.from ?? 0;
  const findings: string[] = [];
  const outcomes: Record<string, number> = {};
  let agree = 0;
  let refused = 0;
  let alsoChecked = 0;
  const worker = new ReaderWorker();
  const caseDir = path.join(dir, `fuzz-${seed}`);
  mkdirSync(caseDir, { recursive: true });
  try {
    for (let start = from; start < from + cases; start += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, from + cases - start) }, (_, i) => fuzzCase(seed, start + i));
      const files = batch.map((c) => {
        const file = path.join(caseDir, `${c.index}.tar`);
        writeFileSync(file, c.bytes);
        return file;
      });
      const goViews: TarView[] = goTarViews(files);
      for (const [i, c] of batch.entries()) {
        const go = goViews[i] as TarView;
        const label = `seed ${seed} case ${c.index} (${c.base}: ${c.ops.join(', ')})`;
        const outcome = go.error === null ? 'ok' : go.error.startsWith('other: ') ? 'other' : go.error;
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        const ours = await worker.view(c.bytes);
        if (ours === 'timeout') {
          findings.push(`${label}: dmthin's reader did not finish within ${CASE_DEADLINE_MS} ms`);
          continue;
        }
        const difference = viewDifference(go, ours.view, ours.beyondGo !== null);
        if (difference) findings.push(`${label}: ${difference}`);
        else if (ours.beyondGo) refused++;
        else agree++;
        if (options.alsoCheck) {
          alsoChecked++;
          const extra = await options.alsoCheck(c);
          if (extra) findings.push(`${label}: ${extra}`);
        }
      }
      options.progress?.(start + batch.length - from);
    }
  } finally {
    await worker.close();
    rmSync(caseDir, { recursive: true, force: true });
  }
  const how = Object.entries(outcomes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const summary =
    `${cases} fuzz cases (seed ${seed}): ${agree} agree with Go, ${refused} documented refusals past 2^53, ` +
    `${alsoChecked > 0 ? `${alsoChecked} also applied in a sandbox, ` : ''}${findings.length} findings; Go's outcomes: ${how}`;
  return { findings, outcomes, summary };
}
