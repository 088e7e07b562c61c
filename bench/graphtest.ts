// moby 20.10.24's graphdriver benchmarks (daemon/graphdriver/graphtest,
// the list moby's overlay2 tests run, plus DiffApply with 1,000 files) on
// Docker's in-tree devicemapper driver and on dmthin through moby's
// GraphDriver plugin proxy, in one VM run: ms per op on both and the
// ratio. Each benchmark gets a fresh driver on both sides, as graphtest
// makes one per benchmark: a new loop-backed pool for the in-tree driver
// (graphtest's own), a newly started dmthin on a new pool for dmthin. The
// side that goes first alternates by benchmark.
import path from 'node:path';
import { tempHome } from '../test/support/deviceset';
import { graphtestMissing, listGraphtest, parseBenchmarks, runGraphtest, type GraphtestDriver, type GraphtestRun } from '../test/support/graphtest';
import { LISTENING, startPlugin } from '../test/support/plugin-process';
import { STORAGE_OPTS } from '../test/support/workload';
import { table } from './timing';

export interface GraphtestBenchResult {
  /** go test -benchtime: "5x" is 5 iterations */
  benchtime: string;
  options: string[];
  benchmarks: string[];
  /** ms per op */
  inTree: Record<string, number>;
  dmthin: Record<string, number>;
}

export interface GraphtestBenchSettings {
  benchtime: string;
  /** Go regexp over the benchmark names (without "Benchmark") */
  filter: string;
}

async function runOne(top: string, benchmark: string, driver: GraphtestDriver, benchtime: string): Promise<number> {
  const dir = await tempHome(`graphtest-${benchmark}-${driver}`);
  const run: GraphtestRun = { driver, options: STORAGE_OPTS, tmpDir: dir };
  const plugin =
    driver === 'dmthin'
      ? startPlugin(
          { DMTHIN_ROOT: path.join(dir, 'state'), DMTHIN_SOCKET: path.join(dir, 'dmthin.sock'), DMTHIN_STORAGE_OPTS: STORAGE_OPTS.join(' ') },
          path.join(top, `dmthin-${benchmark}.log`),
        )
      : undefined;
  try {
    if (plugin !== undefined) {
      await plugin.waitFor(LISTENING);
      run.socket = path.join(dir, 'dmthin.sock');
    }
    const args = ['-test.run', '^$', '-test.bench', `^Benchmark${benchmark}$`, '-test.benchtime', benchtime, '-test.timeout', '0'];
    const { code, output, stdout } = await runGraphtest(run, args);
    const nsPerOp = parseBenchmarks(stdout).get(benchmark);
    if (code !== 0 || nsPerOp === undefined) throw new Error(`${benchmark} on ${driver} failed (exit ${String(code)}):\n${output.trim()}`);
    return nsPerOp / 1e6;
  } finally {
    const exit = await plugin?.stop();
    if (exit !== undefined && exit.code !== 0) throw new Error(`dmthin exited with ${String(exit.code ?? exit.signal)} after ${benchmark}`);
  }
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
  const result: GraphtestBenchResult = { benchtime: settings.benchtime, options: STORAGE_OPTS, benchmarks, inTree: {}, dmthin: {} };
  for (const [i, benchmark] of benchmarks.entries()) {
    const order = i % 2 === 0 ? (['devicemapper', 'dmthin'] as const) : (['dmthin', 'devicemapper'] as const);
    for (const driver of order) {
      const ms = await runOne(top, benchmark, driver, settings.benchtime);
      result[driver === 'dmthin' ? 'dmthin' : 'inTree'][benchmark] = ms;
      process.stderr.write(`graphtest: ${benchmark} on ${driver}: ${ms.toFixed(1)} ms/op\n`);
    }
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
    `moby graphtest benchmarks, in-tree devicemapper vs dmthin through moby's plugin proxy: ms/op, -benchtime=${r.benchtime}, same VM, options ${r.options.join(' ')}`,
    table(['benchmark', 'in-tree ms/op', 'dmthin ms/op', 'dmthin/in-tree'], rows),
  ].join('\n');
}
