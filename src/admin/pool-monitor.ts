// Watches the thin pool's health while dmthin runs: its status line read
// every few seconds (a libdevmapper status call, cheap), judged against the
// low-water mark. Each change is logged once, with what to do: a warning
// (an error for a pool that failed or went read-only) when it gets worse,
// a line saying so when it is healthy again. New devices are refused by
// the DeviceSet itself (checkFreeSpace), whatever this has seen.
import { thin } from '../devmapper';
import type { DeviceSetHolder } from '../deviceset';
import { lowWaterBlocks } from '../deviceset/low-water';
import { poolBlockSize } from '../deviceset/pool';
import type { Logger } from '../shared/log';
import { poolHealth } from './health';
import type { PoolHealth } from './reports';

const POLL_MS = 5_000;

export class PoolMonitor {
  private timer: NodeJS.Timeout | undefined;
  private last: PoolHealth = 'ok';
  private running = false;

  constructor(
    private readonly holder: DeviceSetHolder,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look at the pool; logs when its health changed since the last. */
  async poll(): Promise<void> {
    const set = this.holder.current();
    if (set === null || this.running) return;
    this.running = true;
    try {
      const status = await thin.poolStatus(set.pool.name);
      const blockSize = await poolBlockSize(set.pool);
      const verdict = poolHealth(set.pool.name, status, lowWaterBlocks(set.options, status.totalDataBlocks, blockSize));
      if (verdict.health === this.last) return;
      const fields = { pool: set.pool.name, health: verdict.health, was: this.last, dataUsed: `${status.usedDataBlocks}/${status.totalDataBlocks}`, metadataUsed: `${status.usedMetadataBlocks}/${status.totalMetadataBlocks}` };
      this.last = verdict.health;
      if (verdict.health === 'ok') this.log.info('thin pool healthy again: new layers, containers and volumes are accepted', fields);
      else if (verdict.health === 'failed' || verdict.health === 'read_only') this.log.error(verdict.advice, fields);
      else this.log.warn(verdict.advice, fields);
    } catch (err) {
      this.log.debug('cannot read the pool status', { err: String(err) });
    } finally {
      this.running = false;
    }
  }
}
