// `dmthin pool grow`: a loop-backed pool grown online, under the pool
// lock (its files, their loop devices' capacity, the pool table); for a
// pool dmthin did not make, the command that grows it.
import { promises as fsp } from 'node:fs';
import { thin } from '../devmapper';
import { METADATA_BLOCK_SIZE } from '../devmapper/thin';
import type { DeviceSet } from '../deviceset';
import { parseSize } from '../deviceset/options';
import { growLoopBackedPool, poolBlockSize } from '../deviceset/pool';
import { DmthinError } from '../shared/errors';
import type { AdminDeps } from './inspect';
import type { PoolGrowReport } from './reports';

/** "10G" is a new size, "+10G" that much more than now. */
function targetSize(what: string, text: unknown, current: number): number | undefined {
  if (text === undefined) return undefined;
  if (typeof text !== 'string' || text === '') throw new DmthinError('EBADSIZE', `${what}: give a size such as 200G or +50G`);
  const relative = text.startsWith('+');
  const bytes = parseSize(relative ? text.slice(1) : text);
  const target = relative ? current + bytes : bytes;
  if (target < current) throw new DmthinError('EBADSIZE', `${what} ${text} is smaller than the ${current} bytes it has: a pool only grows`);
  return target;
}

/**
 * VG and LV of an LVM device-mapper name, or null. LVM doubles the dashes
 * inside either name, and names the thin-pool target of pool VG/LV
 * `VG-LV-tpool` (a layer under the pool LV's own device), so that suffix
 * names the same LV.
 */
export function lvmName(dmName: string): { vg: string; lv: string } | null {
  const m = /^((?:[^-]|--)+)-((?:[^-]|--)+)(?:-tpool)?$/.exec(dmName);
  if (m === null) return null;
  return { vg: (m[1] ?? '').replace(/--/g, '-'), lv: (m[2] ?? '').replace(/--/g, '-') };
}

/** The lvextend commands that grow LVM thin pool `dmName` as asked (sizes as given: 200G, +50G). */
export function lvextendLines(dmName: string, growth: { data?: string; metadata?: string }): string[] {
  const lvm = lvmName(dmName);
  const lv = lvm === null ? 'VG/LV' : `${lvm.vg}/${lvm.lv}`;
  const lines: string[] = [];
  if (growth.data !== undefined) lines.push(`lvextend -L ${growth.data} ${lv}`);
  if (growth.metadata !== undefined) lines.push(`lvextend --poolmetadatasize ${growth.metadata} ${lv}`);
  return lines;
}

async function totals(set: DeviceSet): Promise<{ data: number; metadata: number }> {
  const status = await thin.poolStatus(set.pool.name);
  return { data: status.totalDataBlocks * (await poolBlockSize(set.pool)) * 512, metadata: status.totalMetadataBlocks * METADATA_BLOCK_SIZE };
}

export async function growPool(deps: AdminDeps, body: Record<string, unknown>): Promise<PoolGrowReport> {
  const set = await deps.holder.ready();
  const { pool } = set;
  if (body['Data'] === undefined && body['Metadata'] === undefined) throw new DmthinError('EBADSIZE', 'say what to grow: --data SIZE and/or --metadata SIZE');
  if (pool.dataFile === '') {
    const lines = lvextendLines(pool.name, {
      ...(body['Data'] === undefined ? {} : { data: String(body['Data']) }),
      ...(body['Metadata'] === undefined ? {} : { metadata: String(body['Metadata']) }),
    });
    if (pool.owned) throw new DmthinError('ENOTLOOP', `pool ${pool.name} is on dm.datadev/dm.metadatadev: grow those block devices, then restart dmthin`);
    throw new DmthinError('ENOTLOOP', `pool ${pool.name} is not dmthin's loop files; if it is an LVM thin pool, grow it online with: ${lines.join(' ; ')} (dmthin needs nothing more)`);
  }
  return set.underPoolLock(async () => {
    const before = await totals(set);
    const dataBytes = targetSize('--data', body['Data'], (await fsp.stat(pool.dataFile)).size);
    const metadataBytes = targetSize('--metadata', body['Metadata'], (await fsp.stat(pool.metadataFile)).size);
    await growLoopBackedPool(pool, { ...(dataBytes === undefined ? {} : { dataBytes }), ...(metadataBytes === undefined ? {} : { metadataBytes }) }, set.options, deps.log);
    const after = await totals(set);
    deps.log.info('grew the thin pool', { pool: pool.name, before, after });
    return { pool: pool.name, before, after, dataFile: pool.dataFile, metadataFile: pool.metadataFile };
  });
}
