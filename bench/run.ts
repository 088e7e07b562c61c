// Runs the benchmarks inside the VM (npm run bench) and prints their
// tables, then one JSON line per benchmark for tools to read.
import { benchDmCycle, formatDmCycle } from './dm-cycle';

async function main(): Promise<void> {
  if (process.env['DMTHIN_IN_VM'] !== '1') {
    throw new Error('the benchmarks need device-mapper: run them with `npm run bench`, which starts the VM');
  }
  const rounds = Number(process.env['DMTHIN_BENCH_ROUNDS'] ?? '40');
  const cycle = await benchDmCycle(rounds);
  process.stdout.write(`${formatDmCycle(cycle)}\n`);
  process.stdout.write(`BENCH ${JSON.stringify({ name: 'dm-cycle', ...cycle })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
