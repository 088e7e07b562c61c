// Runs the benchmarks inside the VM (npm run bench) and prints their
// tables, then one JSON line per benchmark for tools to read.
// DMTHIN_BENCH picks some (comma-separated names); all run by default.
// tar-engine needs no device-mapper and also runs on the host
// (npm run bench:tar-engine).
import { benchDmCycle, formatDmCycle } from './dm-cycle';
import { benchDeviceSetOps, formatDeviceSetOps } from './deviceset-ops';
import { benchDeviceSetScale, formatDeviceSetScale } from './deviceset-scale';
import { benchDockerWorkload, formatDockerWorkload } from './docker-workload';
import { benchGraphtest, formatGraphtest } from './graphtest';
import { benchMigrate, formatMigrate } from './migrate';
import { benchSnapshotter, formatSnapshotter } from './snapshotter';
import { benchTarEngine, formatTarEngine } from './tar-engine';
import { benchVolumes, formatVolumes } from './volumes';

const rounds = Number(process.env['DMTHIN_BENCH_ROUNDS'] ?? '30');

const BENCHES: Record<string, () => Promise<{ text: string; data: unknown }>> = {
  'dm-cycle': async () => {
    const r = await benchDmCycle(rounds);
    return { text: formatDmCycle(r), data: r };
  },
  'deviceset-ops': async () => {
    const r = await benchDeviceSetOps(rounds);
    return { text: formatDeviceSetOps(r), data: r };
  },
  'deviceset-scale': async () => {
    const rows = await benchDeviceSetScale(Number(process.env['DMTHIN_BENCH_SCALE'] ?? '1000'), 7);
    return { text: formatDeviceSetScale(rows), data: { rows } };
  },
  volumes: async () => {
    const r = await benchVolumes(Math.min(rounds, 10));
    return { text: formatVolumes(r), data: r };
  },
  // Minutes per round under emulation: a few rounds unless DMTHIN_BENCH_ROUNDS says otherwise.
  'docker-workload': async () => {
    const r = await benchDockerWorkload(Number(process.env['DMTHIN_BENCH_ROUNDS'] ?? '3'));
    return { text: formatDockerWorkload(r), data: r };
  },
  'tar-engine': async () => {
    const r = await benchTarEngine(Number(process.env['DMTHIN_BENCH_ROUNDS'] ?? '3'));
    return { text: formatTarEngine(r), data: r };
  },
  // Needs Debian 13's containerd (scripts/fetch-trixie, run by scripts/setup --test); npm run bench:snapshotter.
  snapshotter: async () => {
    const r = await benchSnapshotter(Math.min(rounds, 10));
    return { text: formatSnapshotter(r), data: r };
  },
  // Needs dist/go/graphtest.test, built on the host (npm run bench:graphtest does).
  graphtest: async () => {
    const r = await benchGraphtest({
      benchtime: process.env['DMTHIN_GRAPHTEST_BENCHTIME'] ?? '5x',
      largeBenchtime: process.env['DMTHIN_GRAPHTEST_LARGE_BENCHTIME'] ?? '1x',
      filter: process.env['DMTHIN_GRAPHTEST_FILTER'] ?? '.',
      warmUpPasses: Number(process.env['DMTHIN_GRAPHTEST_WARMUP_PASSES'] ?? '3'),
    });
    return { text: formatGraphtest(r), data: r };
  },
  // `dmthin migrate` of a data root with DMTHIN_BENCH_LAYERS layers (npm run bench:migrate).
  migrate: async () => {
    const rows = await benchMigrate(Number(process.env['DMTHIN_BENCH_LAYERS'] ?? '1000'));
    return { text: formatMigrate(rows), data: { rows } };
  },
};

/** The benchmarks that need no device-mapper. */
const HOST_BENCHES = new Set(['tar-engine']);

/** Run when DMTHIN_BENCH names none: all but graphtest, migrate and snapshotter, which have their own commands. */
const DEFAULT_BENCHES = Object.keys(BENCHES).filter((name) => !['graphtest', 'migrate', 'snapshotter'].includes(name));

async function main(): Promise<void> {
  const chosen = (process.env['DMTHIN_BENCH'] ?? DEFAULT_BENCHES.join(',')).split(',');
  if (process.env['DMTHIN_IN_VM'] !== '1' && !chosen.every((name) => HOST_BENCHES.has(name))) {
    throw new Error('the benchmarks need device-mapper: run them with `npm run bench`, which starts the VM');
  }
  for (const name of chosen) {
    const bench = BENCHES[name];
    if (bench === undefined) throw new Error(`unknown benchmark ${name}; have ${Object.keys(BENCHES).join(', ')}`);
    const { text, data } = await bench();
    process.stdout.write(`\n${text}\n`);
    process.stdout.write(`BENCH ${JSON.stringify({ name, ...(data as object) })}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
