// The pool the in-tree driver used, as `dmthin migrate` must find it:
// nothing of it active but the pool itself (when dm.thinpooldev gave it),
// its transaction id and the thin ids it holds.
//   loop-lvm: <home>/devicemapper/{data,metadata}, the pool inactive
//   (dockerd removes it when it stops); read from the metadata file itself.
//   dm.thinpooldev: an active pool; read with a metadata snapshot.
import { existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { dm, thin } from '../devmapper';
import { DmthinError } from '../shared/errors';
import { runTool } from '../deviceset/run';
import { readThinSuperblock } from './superblock';

export type PoolFacts = {
  name: string;
  transactionId: number;
  thinIds: number[];
} & ({ kind: 'loop'; dataFile: string; metadataFile: string; dataBytes: number; metadataBytes: number; blockSize: number } | { kind: 'existing' });

/** The in-tree driver's device name prefix: docker-MAJOR:MINOR-INODE of its home. */
export function inTreePrefix(home: string): string {
  const st = statSync(home);
  const major = Math.floor(st.dev / 256) & 0xfff;
  const minor = (st.dev & 0xff) | (Math.floor(st.dev / 4096) & ~0xff);
  return `docker-${major}:${minor}-${st.ino}`;
}

export async function inspectPool(home: string, root: string, thinPoolDevice: string | null): Promise<PoolFacts> {
  const prefix = inTreePrefix(home);
  const poolName = thinPoolDevice ?? `${prefix}-pool`;
  await refuseActiveDevices(prefix, poolName);
  if (thinPoolDevice !== null) return existingPool(thinPoolDevice);
  const dir = path.join(home, 'devicemapper');
  const dataFile = path.join(dir, 'data');
  const metadataFile = path.join(dir, 'metadata');
  if (!existsSync(dataFile) || !existsSync(metadataFile)) {
    throw new DmthinError('ENOPOOL', `${dir} has no loop files (data, metadata): if the driver used dm.thinpooldev, give it with --thinpooldev NAME; nothing was changed`);
  }
  if ((await dm.info(poolName)).exists) {
    throw new DmthinError('EBUSY', `pool ${poolName} is active: dockerd is running or was not stopped cleanly; start and stop dockerd on devicemapper once, or remove it with dmsetup remove ${poolName}; nothing was changed`);
  }
  const rootParent = nearestExisting(root);
  if (statSync(rootParent).dev !== statSync(dir).dev) {
    throw new DmthinError('EXDEV', `${root} is on another filesystem than ${dir}: the loop files are moved, never copied; give a dmthin root on the same filesystem (e.g. --root ${path.join(path.dirname(home), 'dmthin-root')}); nothing was changed`);
  }
  const superblock = await readThinSuperblock(metadataFile);
  const thinIds = parseIds(await runTool('thin_ls', ['--no-headers', '-o', 'DEV', metadataFile]));
  return {
    kind: 'loop',
    name: poolName,
    transactionId: superblock.transactionId,
    thinIds,
    dataFile,
    metadataFile,
    dataBytes: statSync(dataFile).size,
    metadataBytes: statSync(metadataFile).size,
    blockSize: superblock.dataBlockSize,
  };
}

/** The pool's transaction id now: from the superblock of an inactive pool's metadata file, or an active pool's status. */
export async function currentTransactionId(pool: { metadataFile: string } | { name: string }): Promise<number> {
  if ('metadataFile' in pool) return (await readThinSuperblock(pool.metadataFile)).transactionId;
  return (await thin.poolStatus(pool.name)).transactionId;
}

/** Any thin device of the old driver still active (a container running, or dockerd killed) is refused. */
async function refuseActiveDevices(prefix: string, poolName: string): Promise<void> {
  const active = (await dm.list()).filter((d) => d.name.startsWith(`${prefix}-`) && d.name !== poolName);
  if (active.length === 0) return;
  const described = await Promise.all(active.slice(0, 5).map(async (d) => `${d.name} (${((await dm.info(d.name)).openCount ?? 0) > 0 ? 'open' : 'active'})`));
  throw new DmthinError('EBUSY', `devices of the devicemapper driver are still active: ${described.join(', ')}; stop dockerd (and what uses them) first; nothing was changed`);
}

async function existingPool(name: string): Promise<PoolFacts> {
  if (!(await dm.info(name)).exists) throw new DmthinError('ENOPOOL', `thin pool ${name} (--thinpooldev) does not exist; nothing was changed`);
  const [target] = await dm.table(name);
  if (target?.type !== 'thin-pool') throw new DmthinError('ENOTPOOL', `device ${name} (--thinpooldev) is not a thin pool; nothing was changed`);
  const status = await thin.poolStatus(name);
  if (status.failed) throw new DmthinError('EPOOLFAILED', `thin pool ${name} has failed; repair it with thin_check/thin_repair first; nothing was changed`);
  const metadataDevice = await nodeOf(target.params.split(' ')[0] ?? '');
  if (metadataDevice === '') throw new DmthinError('ENOPOOL', `cannot find the metadata device of pool ${name}`);
  await thin.reserveMetadataSnap(name);
  let listing: string;
  try {
    listing = await runTool('thin_ls', ['--metadata-snap', '--no-headers', '-o', 'DEV', metadataDevice]);
  } finally {
    await thin.releaseMetadataSnap(name);
  }
  return { kind: 'existing', name, transactionId: status.transactionId, thinIds: parseIds(listing) };
}

function parseIds(listing: string): number[] {
  return listing
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}

/** The /dev node of a "major:minor" pair, from sysfs (no udev needed). */
async function nodeOf(majorMinor: string): Promise<string> {
  const uevent = await fsp.readFile(`/sys/dev/block/${majorMinor}/uevent`, 'utf8').catch(() => '');
  const devname = /^DEVNAME=(.+)$/m.exec(uevent)?.[1];
  return devname === undefined ? '' : `/dev/${devname}`;
}

function nearestExisting(dir: string): string {
  let at = dir;
  while (!existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  return at;
}
