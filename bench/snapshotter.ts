// containerd 1.7.24's built-in devmapper snapshotter against dmthin as its
// proxy snapshotter, in one VM run and one containerd (Debian 13's), each
// on a thin pool of its own of the same size (4G of loop-backed data, 64M
// of metadata, 64K blocks, 512M devices, ext4). Both are driven the way
// their users drive them, through containerd:
// - Prepare (then a 1 MiB file written), Commit, View: containerd's
//   snapshots service over gRPC, median ms over the rounds;
// - Remove: containerd's Remove only drops its record; the snapshotter's own
//   removal runs in containerd's garbage collection, so the figure is the
//   collection's snapshot cleanup ("snapshot garbage collected" d=, from
//   containerd's trace log: a Walk of the snapshotter and the Remove of a
//   view), once per round;
// - `ctr images import` of a locally built 20-layer image (the blobs are
//   already in the content store, so only the unpack differs);
// - `ctr run --rm` of a container running `sh -c true`;
// - Usage of 100 active snapshots, through containerd.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Containerd } from '../test/support/containerd';
import { tempHome } from '../test/support/deviceset';
import { run } from '../test/support/exec';
import { writeLayeredImage } from '../test/support/oci-image';
import { LISTENING, startPlugin } from '../test/support/plugin-process';
import { waitUntil } from '../test/support/processes';
import { SnapshotsClient, type WireMount } from '../test/support/snapshots-client';
import { trixieMissing } from '../test/support/trixie';
import { median, table, timed } from './timing';

const DATA_SIZE = 4 * 1024 ** 3;
const METADATA_SIZE = 64 * 1024 ** 2;
const BLOCK_SECTORS = 128;
const DMTHIN_OPTS = 'dm.loopdatasize=4G dm.loopmetadatasize=64M dm.blocksize=64K dm.basesize=512M dm.fs=ext4';
const SIDES = ['devmapper', 'dmthin'] as const;
type Side = (typeof SIDES)[number];
const IMAGE = 'docker.io/library/bench-layers:20';
const IMAGE_LAYERS = 20;
/** rounds of import and three runs per side */
const IMPORT_ROUNDS = 3;
/** containerd's garbage collector keeps what carries this label. */
const KEEP = { 'containerd.io/gc.root': 'bench' };

export interface SnapshotterBenchResult {
  rounds: number;
  usageCount: number;
  /** side -> measure -> ms of each sample */
  ms: Record<Side, Record<string, number[]>>;
}

/** A loop-backed thin pool for the devmapper snapshotter, as its docs make one; returns its teardown. */
async function makePool(dir: string, name: string): Promise<() => Promise<void>> {
  const data = path.join(dir, 'data');
  const metadata = path.join(dir, 'metadata');
  await fsp.writeFile(data, '');
  await fsp.truncate(data, DATA_SIZE);
  await fsp.writeFile(metadata, Buffer.alloc(4096));
  await fsp.truncate(metadata, METADATA_SIZE);
  const dataLoop = (await run('losetup', ['--find', '--show', data])).trim();
  const metaLoop = (await run('losetup', ['--find', '--show', metadata])).trim();
  await run('dmsetup', ['create', name, '--table', `0 ${DATA_SIZE / 512} thin-pool ${metaLoop} ${dataLoop} ${BLOCK_SECTORS} 32768 1 skip_block_zeroing`]);
  // Without udev (the VM) dmsetup leaves /dev/mapper/<name> to it: make the node.
  await run('dmsetup', ['mknodes', name]);
  return async () => {
    await run('dmsetup', ['remove', name]).catch(() => undefined);
    await run('losetup', ['-d', dataLoop]).catch(() => undefined);
    await run('losetup', ['-d', metaLoop]).catch(() => undefined);
  };
}

/** Go's time.Duration text (1.5ms, 850µs, 2.1s) in ms. */
function durationMs(text: string): number {
  const m = /^([0-9.]+)(ns|µs|us|ms|s)$/.exec(text);
  if (m === null) throw new Error(`not a duration: ${text}`);
  const scale: Record<string, number> = { ns: 1e-6, µs: 1e-3, us: 1e-3, ms: 1, s: 1000 };
  return Number(m[1]) * (scale[m[2] ?? 'ms'] ?? 1);
}

/** The durations of containerd's snapshot collections for one snapshotter, from its trace log, in order. */
async function collections(logFile: string, side: Side): Promise<number[]> {
  const text = await fsp.readFile(logFile, 'utf8');
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('snapshot garbage collected') || !line.includes(`snapshotter=${side}`)) continue;
    const d = /\bd="?([0-9.]+(?:ns|µs|us|ms|s))"?/.exec(line);
    if (d?.[1] !== undefined) out.push(durationMs(d[1]));
  }
  return out;
}

async function writeFile(mounts: WireMount[], dir: string, name: string): Promise<void> {
  const [m] = mounts as [WireMount];
  await run('mount', ['-t', m.type, ...(m.options.length > 0 ? ['-o', m.options.join(',')] : []), m.source, dir]);
  try {
    await fsp.writeFile(path.join(dir, name), Buffer.alloc(1024 * 1024, name));
  } finally {
    await run('umount', [dir]);
  }
}

async function benchCalls(containerd: Containerd, side: Side, dir: string, rounds: number, usageCount: number): Promise<Record<string, number[]>> {
  const ms: Record<string, number[]> = { Prepare: [], Commit: [], View: [], Remove: [], Usage: [] };
  const client = new SnapshotsClient(containerd.address, side, `bench-${side}`);
  const mnt = path.join(dir, `${side}-mnt`);
  await fsp.mkdir(mnt, { recursive: true });
  try {
    await writeFile(await client.prepare('base-active', '', KEEP), mnt, 'base');
    await client.commit('base', 'base-active', KEEP);
    for (let i = 0; i < rounds; i++) {
      let mounts: WireMount[] = [];
      await timed(ms['Prepare'] ?? [], async () => (mounts = await client.prepare(`active-${i}`, 'base', KEEP)));
      await writeFile(mounts, mnt, `file-${i}`);
      await timed(ms['Commit'] ?? [], () => client.commit(`committed-${i}`, `active-${i}`, KEEP));
      await timed(ms['View'] ?? [], () => client.view(`view-${i}`, `committed-${i}`, KEEP));
      const before = (await collections(containerd.logFile, side)).length;
      await client.remove(`view-${i}`);
      // containerd removes it from the snapshotter in its next collection: wait for it, take its time.
      await waitUntil(`containerd's collection of ${side} snapshots`, async () => (await collections(containerd.logFile, side)).length > before, 300_000);
      ms['Remove']?.push((await collections(containerd.logFile, side))[before] ?? 0);
    }
    for (let i = 0; i < rounds; i++) await client.remove(`committed-${i}`);
    for (let i = 0; i < usageCount; i++) await client.prepare(`usage-${i}`, 'base', KEEP);
    await timed(ms['Usage'] ?? [], async () => {
      for (let i = 0; i < usageCount; i++) await client.usage(`usage-${i}`);
    });
    for (let i = 0; i < usageCount; i++) await client.remove(`usage-${i}`);
    await client.remove('base');
  } finally {
    client.close();
  }
  return ms;
}

export async function benchSnapshotter(rounds: number, usageCount = 100): Promise<SnapshotterBenchResult> {
  const missing = trixieMissing();
  if (missing !== null) throw new Error(missing);
  const dir = await tempHome('bench-snapshotter');
  await fsp.mkdir(path.join(dir, 'pool'));
  const poolName = `bench-devmapper-${path.basename(dir)}`;
  const teardown = await makePool(path.join(dir, 'pool'), poolName);
  const socket = path.join(dir, 'snapshotter.sock');
  const plugin = startPlugin(
    { DMTHIN_ROOT: path.join(dir, 'state'), DMTHIN_SOCKET: path.join(dir, 'plugin.sock'), DMTHIN_SNAPSHOTTER_SOCKET: socket, DMTHIN_STORAGE_OPTS: DMTHIN_OPTS },
    path.join(dir, 'dmthin.log'),
  );
  const containerd = new Containerd(path.join(dir, 'containerd'), socket, {
    config: [
      '[debug]',
      '  level = "trace"',
      // After each collection containerd waits (mean collection time / pause_threshold) before the
      // next; at the default 0.02 that is minutes under emulation. 0.5 (the most) waits one mean.
      '[plugins."io.containerd.gc.v1.scheduler"]',
      '  pause_threshold = 0.5',
      '[plugins."io.containerd.snapshotter.v1.devmapper"]',
      `  pool_name = "${poolName}"`,
      `  root_path = "${path.join(dir, 'devmapper')}"`,
      '  base_image_size = "512MB"',
      '  fs_type = "ext4"',
    ],
    // No udev in the VM: libdevmapper under devmapper's dmsetup calls makes the /dev/mapper nodes itself.
    env: { DM_DISABLE_UDEV: '1' },
  });
  const image = path.join(dir, 'image.tar');
  try {
    await plugin.waitFor(LISTENING);
    await containerd.start();
    await containerd.waitForSnapshotter('dmthin');
    await writeLayeredImage(image, IMAGE, IMAGE_LAYERS, 20, 64 * 1024);
    const ms = {} as SnapshotterBenchResult['ms'];
    for (const side of SIDES) ms[side] = await benchCalls(containerd, side, dir, rounds, usageCount);
    // The blobs go into the content store once; each side's import then only unpacks.
    await containerd.ctrIn('bench-content', 'images', 'import', '--no-unpack', image);
    for (let round = 0; round < IMPORT_ROUNDS; round++) {
      // Each round the other side goes first: a load that comes and goes on the machine falls on both.
      for (const side of round % 2 === 0 ? SIDES : [...SIDES].reverse()) {
        const ns = `bench-${side}`;
        await timed((ms[side][`Unpack ${IMAGE_LAYERS} layers`] ??= []), () => containerd.ctrIn(ns, 'images', 'import', '--snapshotter', side, image));
        for (let i = 0; i < 3; i++) {
          await timed((ms[side]['ctr run --rm'] ??= []), () => containerd.ctrIn(ns, 'run', '--rm', '--snapshotter', side, IMAGE, `bench-${round}-${i}`, 'sh', '-c', 'true'));
        }
        await containerd.ctrIn(ns, 'images', 'rm', '--sync', IMAGE);
      }
    }
    return { rounds, usageCount, ms };
  } finally {
    await containerd.stop();
    await plugin.stop();
    await teardown();
  }
}

export function formatSnapshotter(r: SnapshotterBenchResult): string {
  const measures = Object.keys(r.ms.dmthin);
  const rows = measures.map((name) => {
    const a = median(r.ms.devmapper[name] ?? []);
    const d = median(r.ms.dmthin[name] ?? []);
    const label = name === 'Usage' ? `Usage x${r.usageCount}` : name === 'Remove' ? 'Remove (containerd GC cleanup)' : name;
    return [label, a.toFixed(1), d.toFixed(1), (d / a).toFixed(2)];
  });
  return [
    `containerd 1.7.24 snapshotters, built-in devmapper vs dmthin (proxy): median ms (Prepare/Commit/View/Remove over ${r.rounds} rounds, unpack over ${IMPORT_ROUNDS}, ctr run over ${IMPORT_ROUNDS * 3}, the side that goes first alternating), one containerd, same VM, pools of the same size (${DMTHIN_OPTS})`,
    table(['measure', 'devmapper ms', 'dmthin ms', 'dmthin/devmapper'], rows),
  ].join('\n');
}
