// The thin pool's low-water mark: the free data space below which the
// kernel raises the pool's event, dmthin warns, and new devices are refused.
// dm.low_water_mark sets it as a share of the data space (10%) or a size
// (5G); by default it is the in-tree driver's 32768 blocks, at most a tenth
// of the pool. It is computed from the pool's size, so it follows growth.
import type { DeviceSetOptions } from './options';

/** The in-tree driver's fixed mark, in data blocks. */
const IN_TREE_LOW_WATER_BLOCKS = 32768;

/** The mark in data blocks, for a pool of `totalBlocks` blocks of `blockSectors` 512-byte sectors. */
export function lowWaterBlocks(options: Pick<DeviceSetOptions, 'lowWaterMark'>, totalBlocks: number, blockSectors: number): number {
  const mark = options.lowWaterMark;
  let blocks: number;
  if (mark === null) blocks = Math.min(IN_TREE_LOW_WATER_BLOCKS, Math.floor(totalBlocks / 10));
  else if (mark.percent !== undefined) blocks = Math.floor((totalBlocks * mark.percent) / 100);
  else blocks = Math.ceil((mark.bytes ?? 0) / (blockSectors * 512));
  return Math.max(0, Math.min(blocks, totalBlocks));
}
