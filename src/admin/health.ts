// The thin pool's health, from its status line and its low-water mark:
// one word for scripts and one sentence saying what to do.
import type { ThinPoolStatus } from '../devmapper/thin';
import type { PoolHealth } from './reports';

export interface HealthVerdict {
  health: PoolHealth;
  advice: string;
}

/**
 * The worst thing the status says. `lowWaterBlocks` is the pool's
 * low-water mark in data blocks: free space below it is `low_data_space`.
 */
export function poolHealth(name: string, status: ThinPoolStatus, lowWaterBlocks: number): HealthVerdict {
  if (status.failed) {
    return { health: 'failed', advice: `thin pool ${name} has failed: stop dmthin and dockerd, run thin_check (and thin_repair) on its metadata, then start again` };
  }
  if (status.needsCheck) {
    return { health: 'needs_check', advice: `thin pool ${name} needs a metadata check: stop dmthin and dockerd, then run \`dmthin check --thin-check\` (thin_check) and thin_repair if it fails` };
  }
  if (status.mode === 'ro') {
    return { health: 'read_only', advice: `thin pool ${name} is read-only (metadata space exhausted or an error): grow its metadata (\`dmthin pool grow --metadata SIZE\`, or lvextend --poolmetadatasize), then restart dmthin` };
  }
  if (status.mode === 'out_of_data_space') {
    return { health: 'out_of_data_space', advice: `thin pool ${name} is out of data space: writes wait or fail; grow it (\`dmthin pool grow --data SIZE\`, or lvextend) or remove images, containers and volumes` };
  }
  const free = status.totalDataBlocks - status.usedDataBlocks;
  if (lowWaterBlocks > 0 && free < lowWaterBlocks) {
    return {
      health: 'low_data_space',
      advice: `thin pool ${name} has ${free} free data blocks, below its low-water mark of ${lowWaterBlocks}: grow it (\`dmthin pool grow --data SIZE\`, or lvextend) or remove what you do not need (docker system prune, docker volume rm)`,
    };
  }
  return { health: 'ok', advice: '' };
}
