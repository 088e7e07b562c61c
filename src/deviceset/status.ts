// GraphDriver.Status rows: the in-tree driver's labels in its order, so
// `docker info` reads the same, plus dmthin's own count of faulty devices.
import { fs as kfs } from '../devmapper';
import { METADATA_BLOCK_SIZE, type ThinPoolStatus } from '../devmapper/thin';
import { poolHealth } from '../admin/health';
import { humanSize } from './options';
import type { Pool } from './pool';

export type StatusRow = [string, string];

export interface StatusInput {
  pool: Pool;
  status: ThinPoolStatus;
  /** sectors */
  blockSize: number;
  /** data blocks (low-water.ts) */
  lowWaterBlocks: number;
  baseSize: number;
  fsType: string;
  udevSync: boolean;
  minFreeSpacePercent: number;
  deferredRemoval: boolean;
  deferredDeletion: boolean;
  deferredDeletedCount: number;
  faultyCount: number;
  libraryVersion: string;
  /** directory of the loop files, whose free space caps what the pool can still use; '' if none */
  loopBackingDir: string;
}

export async function statusRows(input: StatusInput): Promise<StatusRow[]> {
  const { pool, status } = input;
  const blockBytes = input.blockSize * 512;
  const dataUsed = status.usedDataBlocks * blockBytes;
  const dataTotal = status.totalDataBlocks * blockBytes;
  const metaUsed = status.usedMetadataBlocks * METADATA_BLOCK_SIZE;
  const metaTotal = status.totalMetadataBlocks * METADATA_BLOCK_SIZE;
  let dataAvailable = dataTotal - dataUsed;
  let metaAvailable = metaTotal - metaUsed;
  if (input.loopBackingDir !== '') {
    // Sparse files can only grow into what their filesystem has left.
    const st = await kfs.statfs(input.loopBackingDir);
    const free = st.bfree * st.bsize;
    dataAvailable = Math.min(dataAvailable, free);
    metaAvailable = Math.min(metaAvailable, free);
  }
  const minFree = Math.floor((status.totalDataBlocks * input.minFreeSpacePercent) / 100) * blockBytes;

  const rows: StatusRow[] = [
    ['Pool Name', pool.name],
    ['Pool Blocksize', humanSize(blockBytes)],
    ['Base Device Size', humanSize(input.baseSize)],
    ['Backing Filesystem', input.fsType],
    ['Udev Sync Supported', String(input.udevSync)],
  ];
  // An existing pool (dm.thinpooldev) shows no devices, as in the in-tree driver.
  if (pool.owned) rows.push(['Data file', pool.dataDevice], ['Metadata file', pool.metadataDevice]);
  if (pool.dataFile !== '') rows.push(['Data loop file', pool.dataFile]);
  if (pool.metadataFile !== '') rows.push(['Metadata loop file', pool.metadataFile]);
  rows.push(
    ['Data Space Used', humanSize(dataUsed)],
    ['Data Space Total', humanSize(dataTotal)],
    ['Data Space Available', humanSize(dataAvailable)],
    ['Metadata Space Used', humanSize(metaUsed)],
    ['Metadata Space Total', humanSize(metaTotal)],
    ['Metadata Space Available', humanSize(metaAvailable)],
    ['Thin Pool Minimum Free Space', humanSize(minFree)],
    ['Deferred Removal Enabled', String(input.deferredRemoval)],
    ['Deferred Deletion Enabled', String(input.deferredDeletion)],
    ['Deferred Deleted Device Count', String(input.deferredDeletedCount)],
    ['Library Version', input.libraryVersion],
    ['Faulty Device Count', String(input.faultyCount)],
    // dmthin's own: the mark, and the pool's state in one word (dmthin status says what to do).
    ['Low Water Mark', humanSize(input.lowWaterBlocks * blockBytes)],
    ['Pool Health', poolHealth(pool.name, status, input.lowWaterBlocks).health],
  );
  return rows;
}
