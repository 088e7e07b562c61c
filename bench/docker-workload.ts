// The docker workload of the VM test (test/support/workload.ts), plus a
// `docker load` of a 5,000-file, 200 MB image, on dmthin and on Docker's
// in-tree devicemapper driver in one VM run: each step's median time on
// both and their ratio. The side that goes first alternates by round.
//
// Both sides are measured in their steady state, as bench/graphtest.ts
// measures dmthin: the plugin is one long-running process started from a
// copy of the built tree on the guest's disk (bench/local-app.ts), not
// from the 9p share, and one untimed round on each side comes first, so
// that neither side's timed rounds pay its first calls (Node's lazy
// compilation, dockerd's and the kernel's cold caches).
import path from 'node:path';
import { tempHome } from '../test/support/deviceset';
import { DriverPair, prepareAssets, TIMED_STEPS, type Workload } from '../test/support/workload';
import { writeLoadImage } from './load-image';
import { copyAppLocally } from './local-app';
import { median, table, timed } from './timing';

const LOAD = { files: 5000, totalBytes: 200 * 1024 * 1024, tag: 'wl/load:1' };

export interface DockerWorkloadResult {
  rounds: number;
  steps: string[];
  /** median ms per step */
  inTree: Record<string, number>;
  dmthin: Record<string, number>;
}

type Side = 'inTree' | 'dmthin';

async function round(side: Side, w: Workload, loadTar: string, into: Map<string, number[]>): Promise<void> {
  const step = async (name: string, run: () => Promise<unknown>): Promise<void> => {
    const list = into.get(name) ?? [];
    into.set(name, list);
    await timed(list, run);
    process.stderr.write(`docker-workload: ${side} ${name}: ${(list[list.length - 1] ?? 0).toFixed(0)} ms\n`);
  };
  for (const s of TIMED_STEPS) await step(s.name, () => s.run(w));
  await step(`load (${LOAD.files} files, 200 MB)`, () => w.daemon.docker('load', '-i', loadTar));
  await step('rmi (loaded image)', () => w.daemon.docker('rmi', LOAD.tag));
}

export async function benchDockerWorkload(rounds: number): Promise<DockerWorkloadResult> {
  const top = await tempHome('bench-workload');
  const loadTar = path.join(top, 'load.tar');
  await writeLoadImage(path.join(top, 'load'), loadTar, LOAD);
  const app = await copyAppLocally(path.join(top, 'app'));
  const pair = new DriverPair(top, await prepareAssets(top), { node: app.node, args: app.serveArgs });
  const samples = { inTree: new Map<string, number[]>(), dmthin: new Map<string, number[]>() };
  try {
    await pair.start();
    const warmUp = { inTree: new Map<string, number[]>(), dmthin: new Map<string, number[]>() };
    for (const side of ['inTree', 'dmthin'] as const) await round(side, pair[side], loadTar, warmUp[side]);
    process.stderr.write('docker-workload: warm-up round done (not timed)\n');
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? (['inTree', 'dmthin'] as const) : (['dmthin', 'inTree'] as const);
      for (const side of order) await round(side, pair[side], loadTar, samples[side]);
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
    `docker workload, in-tree devicemapper vs dmthin (one warm plugin from the guest's disk): median ms over ${r.rounds} round(s) after an untimed one, same VM, same storage options`,
    table(['step', 'in-tree', 'dmthin', 'dmthin/in-tree'], rows),
  ].join('\n');
}
