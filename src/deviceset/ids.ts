// Thin device ids: 24 bits, lowest free first, so freed ids are reused
// and the id space never runs out by drifting upwards.
import { DmthinError } from '../shared/errors';
import { MAX_THIN_ID } from '../devmapper/thin';

export class IdAllocator {
  private readonly used = new Set<number>();
  /** every id below `next` that is not used is in `free` */
  private free: number[] = [];
  private next = 1;

  /** Rebuilds from the ids metadata holds. Id 0 is never handed out. */
  constructor(used: Iterable<number>) {
    for (const id of used) this.used.add(id);
    const max = Math.max(0, ...this.used);
    for (let id = 1; id <= max; id++) if (!this.used.has(id)) this.free.push(id);
    this.next = max + 1;
  }

  allocate(): number {
    const id = this.free.shift() ?? this.next++;
    if (id > MAX_THIN_ID) throw new DmthinError('ENOSPC', `no free thin device id: all ${MAX_THIN_ID} are in use`);
    this.used.add(id);
    return id;
  }

  /** Marks an id taken without handing it out: the pool already has it. */
  markUsed(id: number): void {
    if (this.used.has(id)) return;
    this.used.add(id);
    this.free = this.free.filter((f) => f !== id);
    for (let gap = this.next; gap < id; gap++) this.free.push(gap);
    if (id >= this.next) this.next = id + 1;
  }

  release(id: number): void {
    if (!this.used.delete(id)) return;
    // Keep `free` sorted so the lowest id goes out first.
    const at = this.free.findIndex((f) => f > id);
    if (at === -1) this.free.push(id);
    else this.free.splice(at, 0, id);
  }

  isUsed(id: number): boolean {
    return this.used.has(id);
  }
}
