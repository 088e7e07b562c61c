// moby 20.10.24's graphdriver benchmarks (daemon/graphdriver/graphtest,
// the list moby's overlay2 tests run, plus DiffApply with 1,000 files) on
// Docker's in-tree devicemapper driver and on dmthin through moby's
// GraphDriver plugin proxy, in one VM run: ms per op on both and the
// ratio.
//
// The in-tree side gets a fresh driver per benchmark, as graphtest makes
// one: a new loop-backed pool (graphtest's own), compiled code from the
// first call. The dmthin side is measured as production runs it: one
// plugin, started once for the whole run from a copy of the built tree on
// the guest's local disk (bench/local-app.ts), and warmed before each
// benchmark's timed run by a few passes of the same benchmark (or, for the
// large ones, of its small sibling) whose figures are printed but not
// kept: one pass left the first Diff benchmark (DiffBase) timing V8 still
// compiling the Diff path.
// Each graphtest run still sends its own Init (a fresh home) and makes
// its own layers, on the one pool. The side that goes first alternates by
// benchmark.
import path from 'node:path';
import { tempHome } from '../test/support/deviceset';
import { graphtestMissing, listGraphtest, parseBenchmarks, runGraphtest, type GraphtestDriver, type GraphtestRun } from '../test/support/graphtest';
import { LISTENING } from '../test/support/plugin-process';
import { startLogged, type Started } from '../test/support/processes';
import { STORAGE_OPTS } from '../test/support/workload';
import { copyAppLocally } from './local-app';
import { table } from './timing';

export interface GraphtestBenchResult {
  /** go test -benchtime: "5x" is 5 iterations */
  benchtime: string;
  /** -benchtime of the LARGE benchmarks */
  largeBenchtime: string;
  options: string[];
  benchmarks: string[];
  /** ms per op */
  inTree: Record<string, number>;
  dmthin: Record<string, number>;
  /** ms per op of each benchmark's warm-up passes on dmthin (1 iteration each), not part of the ratio */
  dmthinWarmUp: Record<string, number[]>;
}

export interface GraphtestBenchSettings {
  benchtime: string;
  /** -benchtime for LARGE: one of their iterations takes tens of seconds */
  largeBenchtime: string;
  /** Go regexp over the benchmark names (without "Benchmark") */
  filter: string;
  /** one-iteration passes on dmthin before each benchmark's timed run */
  warmUpPasses: number;
}

/** Benchmarks whose single iteration takes tens of seconds. */
const LARGE = new Set(['Diff10KFileUpper', 'Diff10KFilesBottom', 'DiffApply1000']);

/** What warms the plugin before a large benchmark: a small one over the same calls (one pass of a large one costs minutes). */
const WARMED_BY: Record<string, string> = {
  Diff10KFileUpper: 'DiffSmallUpper',
  Diff10KFilesBottom: 'DiffSmallUpper',
  DiffApply1000: 'DiffApply100',
};

/** One graphtest benchmark in a fresh graphtest process; ms per op. */
async function runBench(benchmark: string, driver: GraphtestDriver, benchtime: string, socket?: string): Promise<number> {
  const dir = await tempHome(`graphtest-${benchmark}-${driver}`);
  const run: GraphtestRun = { driver, options: STORAGE_OPTS, tmpDir: dir };
  if (socket !== undefined) run.socket = socket;
  const args = ['-test.run', '^$', '-test.bench', `^Benchmark${benchmark}$`, '-test.benchtime', benchtime, '-test.timeout', '0'];
  const { code, output, stdout } = await runGraphtest(run, args);
  const nsPerOp = parseBenchmarks(stdout).get(benchmark);
  if (code !== 0 || nsPerOp === undefined) throw new Error(`${benchmark} on ${driver} failed (exit ${String(code)}):\n${output.trim()}`);
  return nsPerOp / 1e6;
}

/** dmthin from its local copy, on its own pool and socket, for the whole run. */
async function startDmthin(top: string): Promise<{ plugin: Started; socket: string }> {
  const app = await copyAppLocally(path.join(top, 'app'));
  const socket = path.join(top, 'dmthin.sock');
  const env = {
    ...process.env,
    DMTHIN_SNAPSHOTTER_SOCKET: 'off',
    DMTHIN_ROOT: path.join(top, 'state'),
    DMTHIN_SOCKET: socket,
    DMTHIN_STORAGE_OPTS: STORAGE_OPTS.join(' '),
  };
  const plugin = startLogged(app.node, app.serveArgs, path.join(top, 'dmthin.log'), env);
  await plugin.waitFor(LISTENING);
  return { plugin, socket };
}

export async function benchGraphtest(settings: GraphtestBenchSettings): Promise<GraphtestBenchResult> {
  const missing = graphtestMissing();
  if (missing !== null) throw new Error(missing);
  const filter = new RegExp(settings.filter);
  const benchmarks = listGraphtest('^Benchmark')
    .map((b) => b.slice('Benchmark'.length))
    .filter((b) => filter.test(b));
  if (benchmarks.length === 0) throw new Error(`no graphtest benchmark matches ${settings.filter}`);
  const top = await tempHome('bench-graphtest');
  const result: GraphtestBenchResult = {
    benchtime: settings.benchtime,
    largeBenchtime: settings.largeBenchtime,
    options: STORAGE_OPTS,
    benchmarks,
    inTree: {},
    dmthin: {},
    dmthinWarmUp: {},
  };
  if (!(Number.isInteger(settings.warmUpPasses) && settings.warmUpPasses >= 0)) throw new Error(`warm-up passes must be a whole number, not ${settings.warmUpPasses}`);
  const { plugin, socket } = await startDmthin(top);
  try {
    for (const [i, benchmark] of benchmarks.entries()) {
      const benchtime = LARGE.has(benchmark) ? settings.largeBenchtime : settings.benchtime;
      const order = i % 2 === 0 ? (['devicemapper', 'dmthin'] as const) : (['dmthin', 'devicemapper'] as const);
      for (const driver of order) {
        if (driver === 'dmthin') {
          const warmUp = WARMED_BY[benchmark] ?? benchmark;
          const passes: number[] = [];
          for (let pass = 0; pass < settings.warmUpPasses; pass++) {
            const warmMs = await runBench(warmUp, 'dmthin', '1x', socket);
            passes.push(warmMs);
            process.stderr.write(`graphtest: warm-up ${warmUp} on dmthin (pass ${pass + 1}): ${warmMs.toFixed(1)} ms/op\n`);
          }
          result.dmthinWarmUp[benchmark] = passes;
        }
        const ms = await runBench(benchmark, driver, benchtime, driver === 'dmthin' ? socket : undefined);
        result[driver === 'dmthin' ? 'dmthin' : 'inTree'][benchmark] = ms;
        process.stderr.write(`graphtest: ${benchmark} on ${driver}: ${ms.toFixed(1)} ms/op\n`);
      }
    }
  } finally {
    const exit = await plugin.stop();
    if (exit.code !== 0) throw new Error(`dmthin exited with ${String(exit.code ?? exit.signal)}: ${plugin.output().slice(-2000)}`);
  }
  return result;
}

export function formatGraphtest(r: GraphtestBenchResult): string {
  const rows = r.benchmarks.map((b) => {
    const a = r.inTree[b] ?? NaN;
    const d = r.dmthin[b] ?? NaN;
    return [b, a.toFixed(1), d.toFixed(1), (d / a).toFixed(2)];
  });
  return [
    `moby graphtest benchmarks, in-tree devicemapper (fresh driver per benchmark) vs dmthin through moby's plugin proxy (one warm plugin from the guest's disk): ms/op, -benchtime=${r.benchtime} (${[...LARGE].join(', ')}: ${r.largeBenchtime}), same VM, options ${r.options.join(' ')}`,
    table(['benchmark', 'in-tree ms/op', 'dmthin ms/op', 'dmthin/in-tree'], rows),
    `dmthin warm-up passes before each timed run (ms/op, 1 iteration each, not part of the ratio): ${r.benchmarks
      .map((b) => `${b}${WARMED_BY[b] !== undefined ? ` (${WARMED_BY[b]})` : ''} ${(r.dmthinWarmUp[b] ?? []).map((ms) => ms.toFixed(1)).join(' ')}`)
      .join(', ')}`,
  ].join('\n');
}
