// Who holds a volume mounted: dockerd's mount IDs, each with how many
// Mounts it sent not yet matched by an Unmount (a container that mounts
// one volume at two paths sends two Mounts under the same ID). The volume
// is mounted at the first Mount and unmounted at the Unmount that leaves
// none. Kept in memory only: the IDs die with dockerd's activations, and a
// restarted plugin unmounts what the last run left.

/** What an Unmount of an ID amounts to. */
export type Release = 'unknown' | 'last' | 'more';

export class MountCount {
  private readonly ids = new Map<string, number>();

  /** Whether any Mount is not yet matched by an Unmount. */
  get inUse(): boolean {
    return this.ids.size > 0;
  }

  /** Mounts not yet matched by an Unmount, over every mount ID. */
  get total(): number {
    let total = 0;
    for (const n of this.ids.values()) total += n;
    return total;
  }

  /** One more Mount under `id`. */
  add(id: string): void {
    this.ids.set(id, (this.ids.get(id) ?? 0) + 1);
  }

  /**
   * What an Unmount of `id` would do: 'unknown' for an ID this process
   * never mounted for (from before a restart: nothing to do), 'last' when it
   * is the volume's last mount (unmount it, then release), else 'more'.
   */
  peek(id: string): Release {
    const count = this.ids.get(id);
    if (count === undefined) return 'unknown';
    return count === 1 && this.ids.size === 1 ? 'last' : 'more';
  }

  /** One Mount of `id` matched by its Unmount. */
  release(id: string): void {
    const count = this.ids.get(id);
    if (count === undefined) return;
    if (count === 1) this.ids.delete(id);
    else this.ids.set(id, count - 1);
  }

  clear(): void {
    this.ids.clear();
  }
}
