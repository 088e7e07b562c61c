// The docker workload of the VM test (test/support/workload.ts), plus a
// `docker load` of a 5,000-file, 200 MB image, on dmthin and on Docker's
// in-tree devicemapper driver in one VM run: each step's median time on
// both and their ratio. The side that goes first alternates by round.
import path from 'node:path';
import { tempHome } from '../test/support/deviceset';
import { DriverPair, prepareAssets, TIMED_STEPS, type Workload } from '../test/support/workload';
import { writeLoadImage } from './load-image';
import { median, table, timed } from './timing';

const LOAD = { files: 5000, totalBytes: 200 * 1024 * 1024, tag: 'wl/load:1' };

export interface DockerWorkloadResult {
  rounds: number;
  steps: string[];
  /** median ms per step */
  inTree: Record<string, number>;
  dmthin: Record<string, number>;
}

async function round(w: Workload, loadTar: string, into: Map<string, number[]>): Promise<void> {
  const sample = (name: string): number[] => {
    const list = into.get(name) ?? [];
    into.set(name, list);
    return list;
  };
  for (const step of TIMED_STEPS) await timed(sample(step.name), () => step.run(w));
  await timed(sample(`load (${LOAD.files} files, 200 MB)`), () => w.daemon.docker('load', '-i', loadTar));
  await timed(sample('rmi (loaded image)'), () => w.daemon.docker('rmi', LOAD.tag));
}

export async function benchDockerWorkload(rounds: number): Promise<DockerWorkloadResult> {
  const top = await tempHome('bench-workload');
  const loadTar = path.join(top, 'load.tar');
  await writeLoadImage(path.join(top, 'load'), loadTar, LOAD);
  const pair = new DriverPair(top, await prepareAssets(top));
  const samples = { inTree: new Map<string, number[]>(), dmthin: new Map<string, number[]>() };
  try {
    await pair.start();
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? (['inTree', 'dmthin'] as const) : (['dmthin', 'inTree'] as const);
      for (const side of order) await round(pair[side], loadTar, samples[side]);
      process.stderr.write(`docker-workload: round ${i + 1} of ${rounds} done\n`);
    }
  } finally {
    await pair.stop();
  }
  const medians = (m: Map<string, number[]>): Record<string, number> => Object.fromEntries([...m].map(([k, v]) => [k, median(v)]));
  return { rounds, steps: [...samples.inTree.keys()], inTree: medians(samples.inTree), dmthin: medians(samples.dmthin) };
}

export function formatDockerWorkload(r: DockerWorkloadResult): string {
  const rows = r.steps.map((s) => {
    const a = r.inTree[s] ?? NaN;
    const b = r.dmthin[s] ?? NaN;
    return [s, a.toFixed(0), b.toFixed(0), (b / a).toFixed(2)];
  });
  return [
    `docker workload, in-tree devicemapper vs dmthin: median ms over ${r.rounds} round(s), same VM, same storage options`,
    table(['step', 'in-tree', 'dmthin', 'dmthin/in-tree'], rows),
  ].join('\n');
}
