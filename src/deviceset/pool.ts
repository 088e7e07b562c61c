// The thin pool under a DeviceSet: the default one on two sparse files
// (loop-lvm, as the in-tree driver called it), one built from block
// devices (dm.datadev/dm.metadatadev), or an existing one (dm.thinpooldev).
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { blockdev, dm, loop, thin } from '../devmapper';
import type { ThinPoolStatus } from '../devmapper/thin';
import { DmthinError, isErrno } from '../shared/errors';
import type { Logger } from '../shared/log';
import type { DeviceSetOptions } from './options';
import { lowWaterBlocks } from './low-water';
import { runTool } from './run';

export interface Pool {
  name: string;
  /** /dev/mapper path, as thin tables name it */
  path: string;
  /** created by dmthin (loop files or dm.datadev), so dmthin removes it at shutdown */
  owned: boolean;
  /** the sparse files of a loop-backed pool, else '' */
  dataFile: string;
  metadataFile: string;
  /** the devices under the pool (loop devices for files); dataDevice is '' for dm.thinpooldev */
  dataDevice: string;
  /** the pool's metadata device, also for thin_ls and thin_check */
  metadataDevice: string;
}

export async function setupPool(home: string, prefix: string, options: DeviceSetOptions, log: Logger): Promise<Pool> {
  if (options.directLvm !== null) {
    throw new DmthinError('EDMOPTION', 'dmthin does not set up LVM itself (dm.directlvm_device): make a thin pool with lvcreate --type thin-pool and give it as dm.thinpooldev');
  }
  if (options.thinPoolDevice !== null) return existingPool(options.thinPoolDevice);
  const name = `${prefix}-pool`;
  if (options.dataDevice !== null || options.metadataDevice !== null) {
    if (options.dataDevice === null || options.metadataDevice === null) {
      throw new DmthinError('EDMOPTION', 'dm.datadev and dm.metadatadev must be given together');
    }
    return blockDevicePool(name, options.dataDevice, options.metadataDevice, options, log);
  }
  return loopPool(home, name, options, log);
}

async function existingPool(name: string): Promise<Pool> {
  const info = await dm.info(name);
  if (!info.exists) throw new DmthinError('ENOPOOL', `thin pool ${name} (dm.thinpooldev) does not exist`);
  const [target] = await dm.table(name);
  if (target?.type !== 'thin-pool') throw new DmthinError('ENOTPOOL', `device ${name} (dm.thinpooldev) is not a thin pool`);
  return {
    name,
    path: dm.devicePath(name),
    owned: false,
    dataFile: '',
    metadataFile: '',
    dataDevice: '',
    metadataDevice: await nodeOf(target.params.split(' ')[0] ?? ''),
  };
}

async function blockDevicePool(name: string, dataDevice: string, metadataDevice: string, options: DeviceSetOptions, log: Logger): Promise<Pool> {
  const pool: Pool = { name, path: dm.devicePath(name), owned: true, dataFile: '', metadataFile: '', dataDevice, metadataDevice };
  if (!(await adoptablePoolExists(name, log))) await createPoolTable(name, metadataDevice, dataDevice, options);
  return pool;
}

async function loopPool(home: string, name: string, options: DeviceSetOptions, log: Logger): Promise<Pool> {
  const dir = path.join(home, 'devicemapper');
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const dataFile = path.join(dir, 'data');
  const metadataFile = path.join(dir, 'metadata');
  const dataGrew = await ensureSparseFile(dataFile, options.loopDataSize, log);
  await ensureSparseFile(metadataFile, options.loopMetadataSize, log);
  log.warn('the thin pool is on loop devices over sparse files, which is slow; give dm.thinpooldev for production use', { dataFile });

  if (await adoptablePoolExists(name, log)) {
    // Left active by an earlier run: adopt it, and grow it if its file grew.
    const dataLoop = (await loop.find(dataFile)) ?? '';
    const metadataLoop = (await loop.find(metadataFile)) ?? '';
    if (dataLoop === '' || metadataLoop === '') throw new DmthinError('ENOPOOL', `pool ${name} exists but its loop devices are not backed by ${dir}`);
    // A grown file, or another dm.low_water_mark: the table is reloaded with both.
    await reloadPoolTable(name, dataLoop, options, { dataGrew });
    return { name, path: dm.devicePath(name), owned: true, dataFile, metadataFile, dataDevice: dataLoop, metadataDevice: metadataLoop };
  }

  // Autoclear: the loop devices go away with the pool, also after a crash.
  const data = await loop.attachAutoclear(dataFile);
  const metadata = await loop.attachAutoclear(metadataFile);
  try {
    await createPoolTable(name, metadata.device, data.device, options);
  } finally {
    await data.release();
    await metadata.release();
  }
  return { name, path: dm.devicePath(name), owned: true, dataFile, metadataFile, dataDevice: data.device, metadataDevice: metadata.device };
}

/**
 * Whether an earlier run left this pool active with a table to adopt. A
 * process killed inside the create (libdevmapper's create, load, resume)
 * leaves the device with no live table: nothing can have used it, so it
 * is removed and the pool made again, instead of refusing every start.
 */
async function adoptablePoolExists(name: string, log: Logger): Promise<boolean> {
  const info = await dm.info(name);
  if (!info.exists) return false;
  if (info.liveTable === true) return true;
  log.warn('removing a thin pool device a killed process left without a table, to make it again', { pool: name });
  await dm.remove(name);
  return false;
}

async function createPoolTable(name: string, metadataDevice: string, dataDevice: string, options: DeviceSetOptions): Promise<void> {
  const sectors = Math.floor((await blockdev.size(dataDevice)) / 512);
  const blocks = Math.floor(sectors / options.blockSize);
  if (blocks < 1) throw new DmthinError('EDMOPTION', `data device ${dataDevice} is smaller than one pool block`);
  const table = thin.thinPoolTable(metadataDevice, dataDevice, sectors - (sectors % options.blockSize), {
    blockSize: options.blockSize,
    lowWaterMark: lowWaterBlocks(options, blocks, options.blockSize),
    skipBlockZeroing: true,
  });
  await dm.create(name, [table]);
}

/** Creates the file, or grows it to `size`; never shrinks it. Resolves true when it grew. */
async function ensureSparseFile(file: string, size: number, log: Logger): Promise<boolean> {
  let current = -1;
  try {
    current = (await fsp.stat(file)).size;
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  if (current === -1) {
    const handle = await fsp.open(file, 'wx', 0o600);
    await handle.truncate(size);
    await handle.sync();
    await handle.close();
    return false;
  }
  if (size < current) {
    log.warn('a loop file cannot shrink; keeping its size', { file, size: current, asked: size });
    return false;
  }
  if (size === current) return false;
  await fsp.truncate(file, size);
  return true;
}

/**
 * The in-tree driver's ResizePool, and dm.low_water_mark: new capacity on
 * the loop devices when their files grew, then the pool table reloaded
 * with the data length and the low-water mark, when either changed. A
 * pool whose metadata device grew picks that up on the resume.
 */
async function reloadPoolTable(name: string, dataLoop: string, options: DeviceSetOptions, grew: { dataGrew?: boolean; metadataLoop?: string }): Promise<void> {
  if (grew.dataGrew === true) await loop.setCapacity(dataLoop);
  if (grew.metadataLoop !== undefined) await loop.setCapacity(grew.metadataLoop);
  const [target] = await dm.table(name);
  if (target === undefined) throw new DmthinError('ENOPOOL', `pool ${name} has no table`);
  const params = target.params.split(' ');
  const blockSize = Number(params[2]);
  const sectors = Math.floor((await blockdev.size(dataLoop)) / 512);
  const length = sectors - (sectors % blockSize);
  const lowWater = lowWaterBlocks(options, Math.floor(length / blockSize), blockSize);
  if (length === target.length && Number(params[3]) === lowWater && grew.metadataLoop === undefined) return;
  params[3] = String(lowWater);
  await dm.reload(name, [{ ...target, length, params: params.join(' ') }]);
  await dm.suspend(name);
  await dm.resume(name);
}

/** What `dmthin pool grow` asks for: new sizes in bytes of the loop files (at least the current ones). */
export interface PoolGrowth {
  dataBytes?: number;
  metadataBytes?: number;
}

/**
 * Grows a loop-backed pool online: its files, their loop devices' capacity,
 * and the pool table (data length, low-water mark). Call with the pool lock held.
 */
export async function growLoopBackedPool(pool: Pool, growth: PoolGrowth, options: DeviceSetOptions, log: Logger): Promise<void> {
  if (pool.dataFile === '') throw new DmthinError('ENOTLOOP', `pool ${pool.name} is not on loop files`);
  const dataGrew = growth.dataBytes !== undefined && (await ensureSparseFile(pool.dataFile, growth.dataBytes, log));
  const metadataGrew = growth.metadataBytes !== undefined && (await ensureSparseFile(pool.metadataFile, growth.metadataBytes, log));
  await reloadPoolTable(pool.name, pool.dataDevice, options, { dataGrew, ...(metadataGrew ? { metadataLoop: pool.metadataDevice } : {}) });
}

/** The /dev node of a "major:minor" pair, from sysfs (no udev needed). */
async function nodeOf(majorMinor: string): Promise<string> {
  const uevent = await fsp.readFile(`/sys/dev/block/${majorMinor}/uevent`, 'utf8').catch(() => '');
  const devname = /^DEVNAME=(.+)$/m.exec(uevent)?.[1];
  return devname === undefined ? '' : `/dev/${devname}`;
}

export async function poolStatus(pool: Pool): Promise<ThinPoolStatus> {
  return thin.poolStatus(pool.name);
}

/** Block size of the pool in sectors, from its table. */
export async function poolBlockSize(pool: Pool): Promise<number> {
  const [target] = await dm.table(pool.name);
  return Number(target?.params.split(' ')[2] ?? '128');
}

/**
 * The thin ids the pool holds, read with thin_ls from a metadata snapshot
 * (the live metadata cannot be read while the pool is active).
 */
export async function listThinIds(pool: Pool): Promise<Set<number>> {
  return new Set((await thinLs(pool, ['DEV'])).map(([id]) => id ?? 0));
}

/** Bytes of pool data mapped by each thin id, from a metadata snapshot. */
export async function mappedBytesByThinId(pool: Pool): Promise<Map<number, number>> {
  return new Map((await thinLs(pool, ['DEV', 'MAPPED_BYTES'])).map(([id, bytes]) => [id ?? 0, bytes ?? 0]));
}

/** `thin_ls --metadata-snap -o FIELDS`: one row of numbers per thin device. Call with the pool lock held. */
async function thinLs(pool: Pool, fields: readonly string[]): Promise<number[][]> {
  if (pool.metadataDevice === '') throw new DmthinError('ENOPOOL', `cannot find the metadata device of pool ${pool.name}`);
  await thin.reserveMetadataSnap(pool.name);
  try {
    const out = await runTool('thin_ls', ['--metadata-snap', '--no-headers', '-o', fields.join(','), pool.metadataDevice]);
    return out
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((words) => words.length === fields.length && words.every((w) => /^\d+$/.test(w)))
      .map((words) => words.map(Number));
  } finally {
    await thin.releaseMetadataSnap(pool.name);
  }
}

/** Refuses a new device when the pool is failed, read-only, full, below its low-water mark, or below dm.min_free_space. */
export async function checkFreeSpace(pool: Pool, options: Pick<DeviceSetOptions, 'lowWaterMark' | 'minFreeSpacePercent'>): Promise<void> {
  const s = await thin.poolStatus(pool.name);
  const still = 'removing and reading still work';
  if (s.failed) throw new DmthinError('EPOOLFAILED', `thin pool ${pool.name} has failed: no new layers, containers or volumes; stop dmthin and dockerd, run thin_check (and thin_repair) on its metadata, then start again`);
  if (s.needsCheck) throw new DmthinError('EPOOLCHECK', `thin pool ${pool.name} needs a metadata check: no new layers, containers or volumes until \`dmthin check --thin-check\` (thin_check, with dmthin stopped) passes; reading still works`);
  if (s.mode === 'ro') throw new DmthinError('EPOOLRO', `thin pool ${pool.name} is read-only (metadata space exhausted, an error, or the read_only feature): no new layers, containers or volumes until it is writable again (\`dmthin pool grow --metadata SIZE\`, or reload its table without read_only); reading still works`);
  if (s.mode === 'out_of_data_space') throw new DmthinError('ENOSPC', `thin pool ${pool.name} is out of data space: no new layers, containers or volumes until it is grown (dmthin pool grow --data SIZE, or lvextend) or space is freed; ${still}`);
  const freeBlocks = s.totalDataBlocks - s.usedDataBlocks;
  const lowWater = lowWaterBlocks(options, s.totalDataBlocks, await poolBlockSize(pool));
  if (freeBlocks < lowWater) {
    throw new DmthinError(
      'ENOSPC',
      `thin pool ${pool.name} has ${freeBlocks} free data blocks, below its low-water mark of ${lowWater} (dm.low_water_mark): no new layers, containers or volumes until it is grown (dmthin pool grow --data SIZE, or lvextend) or space is freed; removing and reading still work`,
    );
  }
  const pct = options.minFreeSpacePercent;
  if (pct === 0) return;
  const minData = Math.max(1, Math.floor((s.totalDataBlocks * pct) / 100));
  const freeData = s.totalDataBlocks - s.usedDataBlocks;
  if (freeData < minData) {
    throw new DmthinError('ENOSPC', `thin pool ${pool.name} has ${freeData} free data blocks, less than the ${minData} that dm.min_free_space=${pct}% requires; free space in the pool or lower dm.min_free_space`);
  }
  const minMeta = Math.max(1, Math.floor((s.totalMetadataBlocks * pct) / 100));
  const freeMeta = s.totalMetadataBlocks - s.usedMetadataBlocks;
  if (freeMeta < minMeta) {
    throw new DmthinError('ENOSPC', `thin pool ${pool.name} has ${freeMeta} free metadata blocks, less than the ${minMeta} that dm.min_free_space=${pct}% requires`);
  }
}
