// Deferred deletion (dm.use_deferred_deletion): a device deleted while it
// was still open somewhere (a mount leaked into another namespace) is
// marked deleted in its metadata and deleted later, by a background retry
// every 30 s, and after restarts, once nothing holds it.
import type { SetContext } from './context';

const RETRY_INTERVAL_MS = 30_000;

export class DeferredDeletions {
  private timer: NodeJS.Timeout | undefined;

  /** deleteOne takes the locks a deletion needs (see deviceset.ts). */
  constructor(
    private readonly ctx: SetContext,
    private readonly deleteOne: (hash: string) => Promise<void>,
  ) {}

  /** Starts the background retries, when deferred deletion is on. */
  start(): void {
    if (!this.ctx.deferredDeletion) return;
    this.timer = setInterval(() => void this.retry(), RETRY_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** How many devices wait for their deletion. */
  count(): number {
    return [...this.ctx.devices.values()].filter((d) => d.deleted).length;
  }

  /** Retries the deletion of every device marked deleted; one still busy stays marked. */
  async retry(): Promise<void> {
    for (const record of [...this.ctx.devices.values()].filter((d) => d.deleted)) {
      await this.deleteOne(record.hash).catch((err: unknown) => this.ctx.log.debug('deferred deletion still blocked', { hash: record.hash, err: String(err) }));
    }
  }
}
