// containerd's snapshotter semantics (snapshots/snapshotter.go) over the
// DeviceSet's snapshot view: every snapshot is a thin device named by its
// id; a snapshot of an
// empty filesystem is a thin snapshot of `empty` (a device with a fresh
// filesystem and nothing else, made once), a snapshot of a committed parent
// a thin snapshot of the parent's device. Commit only relabels the record:
// nothing is copied. containerd mounts the devices itself; the DeviceSet
// only activates them.
//
// Keys of active snapshots and views and names of committed snapshots share
// one key space per `snapshotter` value (`space`). Changes run one at a
// time; reads (Stat, List, Mounts, Usage) do not wait for them.
import path from 'node:path';
import type { ConsumerDevices, DeviceSetHolder } from '../deviceset';
import { failpoint } from '../shared/failpoint';
import { DmthinError, POOL_REFUSAL_CODES } from '../shared/errors';
import { Mutex } from '../shared/lock';
import type { Logger } from '../shared/log';
import { nowNanos } from './clock';
import { deviceIdOf, RecordStore, snapshotIdOf, type SnapshotKind, type SnapshotRecord } from './records';
import { parseFilters } from './filters';

/** The device every snapshot without a parent is a snapshot of. */
export const EMPTY_DEVICE = 'empty';
/** containerd's limit on a label's key plus value (labels/validate.go). */
const MAX_LABEL_BYTES = 4096;
const MAX_KEY_BYTES = 4096;

export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  created: bigint;
  updated: bigint;
  labels: Record<string, string>;
}

/** A mount containerd performs itself (containerd.types.Mount). */
export interface SnapshotMount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export interface SnapshotUsage {
  /** bytes of pool data the snapshot holds beyond its parent's */
  size: number;
  inodes: number;
}

/** What `dmthin check` learns from the snapshotter about its devices. */
export interface SnapshotDeviceOwnership {
  /** ids (in the snapshot view) of the devices its records own */
  owned: Set<string>;
  /** finished snapshots whose device the pool's metadata does not have; one with children is not gc'd */
  missing: Array<{ deviceId: string; key: string; hasChildren: boolean }>;
  /** false when a record is unreadable: it may own any device */
  complete: boolean;
}

export interface SnapshotterConfig {
  holder: DeviceSetHolder;
  /** where the records live: <dir>/snapshots */
  dir: string;
  log: Logger;
}

function checkLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (Buffer.byteLength(k) + Buffer.byteLength(v) > MAX_LABEL_BYTES) {
      throw new DmthinError('EINVAL', `label key and value greater than maximum size (${MAX_LABEL_BYTES} bytes), key: ${k.slice(0, 64)}`);
    }
    // Empty values are never stored, as containerd's own stores do.
    if (v !== '') kept[k] = v;
  }
  return kept;
}

function checkKey(key: string, what: string): void {
  if (key === '') throw new DmthinError('EINVAL', `${what} must not be empty`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new DmthinError('EINVAL', `${what} is longer than ${MAX_KEY_BYTES} bytes`);
}

export class Snapshotter {
  private readonly records = new Map<number, SnapshotRecord>();
  /** `${space}\0${key}` -> record, for ready records */
  private readonly byKey = new Map<string, SnapshotRecord>();
  private readonly changes = new Mutex();
  private readonly store: RecordStore;
  /** the DeviceSet each reconcile ran against: a reopened set is reconciled again */
  private reconciled: { set: ConsumerDevices; done: Promise<void> } | null = null;
  private unreadable = 0;
  private nextId = 1;

  constructor(private readonly config: SnapshotterConfig) {
    this.store = new RecordStore(path.join(config.dir, 'snapshots'));
  }

  /** Reads the records; the devices are reconciled with them once the DeviceSet is open. */
  async load(): Promise<void> {
    await this.store.init();
    const { records, unreadable } = await this.store.loadAll();
    for (const u of unreadable) this.config.log.error('snapshot record unreadable; its device is kept', u);
    this.unreadable = unreadable.length;
    for (const r of records) {
      this.records.set(r.id, r);
      if (r.state === 'ready') this.byKey.set(keyOf(r.space, r.key), r);
      this.nextId = Math.max(this.nextId, r.id + 1);
    }
    this.config.log.info('snapshots loaded', { snapshots: records.length, unreadable: unreadable.length });
  }

  /**
   * Finishes or undoes what a crash interrupted as soon as the pool is
   * open, not at the first call: a Prepare cut short leaves no device
   * behind even if containerd never asks again.
   */
  async reconcileWhenReady(): Promise<void> {
    if ((await this.config.holder.tryReady()) !== null) await this.set();
  }

  // ---- the verbs ---------------------------------------------------------------------------------

  prepare(space: string, key: string, parent: string, labels: Readonly<Record<string, string>>): Promise<SnapshotMount[]> {
    return this.create('active', space, key, parent, labels);
  }

  view(space: string, key: string, parent: string, labels: Readonly<Record<string, string>>): Promise<SnapshotMount[]> {
    return this.create('view', space, key, parent, labels);
  }

  async mounts(space: string, key: string): Promise<SnapshotMount[]> {
    const record = this.mustGet(space, key);
    if (record.kind === 'committed') throw new DmthinError('EPRECONDITION', `snapshot ${key} is committed: only active snapshots and views have mounts`);
    return this.mountsOf(await this.set(), record);
  }

  async commit(space: string, name: string, key: string, labels: Readonly<Record<string, string>>): Promise<void> {
    checkKey(name, 'the name of a committed snapshot');
    const kept = checkLabels(labels);
    const set = await this.set();
    await this.changes.run(async () => {
      const record = this.mustGet(space, key);
      if (record.kind !== 'active') throw new DmthinError('EPRECONDITION', `snapshot ${key} is a ${record.kind}, not an active snapshot: it cannot be committed`);
      if (this.byKey.has(keyOf(space, name))) throw new DmthinError('EEXIST', `snapshot ${name} already exists`);
      const { mappedBytes } = await set.usage(deviceIdOf(record.id));
      const now = nowNanos();
      const committed: SnapshotRecord = { ...record, key: name, kind: 'committed', labels: kept, created: now, updated: now, mappedBytes };
      failpoint('snapshot:commit:before-save');
      await this.store.save(committed);
      failpoint('snapshot:commit:saved');
      this.byKey.delete(keyOf(space, key));
      this.put(committed);
    });
    // Mounted nowhere any more (containerd unmounts before it commits); one still open goes on its last close.
    await set.deactivate(deviceIdOf(this.mustGet(space, name).id)).catch((err: unknown) => this.config.log.warn('cannot deactivate a committed snapshot', { name, err: String(err) }));
  }

  async remove(space: string, key: string): Promise<void> {
    const set = await this.set();
    await this.changes.run(async () => {
      const record = this.mustGet(space, key);
      const child = [...this.records.values()].find((r) => r.parent === record.id && r.state !== 'removing');
      if (child !== undefined) throw new DmthinError('EPRECONDITION', `cannot remove snapshot with child: ${key} is the parent of ${child.key}`);
      const removing: SnapshotRecord = { ...record, state: 'removing' };
      await this.store.save(removing);
      this.byKey.delete(keyOf(space, key));
      this.records.set(record.id, removing);
      failpoint('snapshot:remove:marked');
      try {
        await set.delete(deviceIdOf(record.id));
      } catch (err) {
        await this.store.save(record);
        this.put(record);
        // FailedPrecondition: containerd's garbage collector goes on with the other snapshots.
        throw new DmthinError('EPRECONDITION', `cannot remove snapshot ${key}: its device: ${(err as Error).message}`, { cause: err });
      }
      failpoint('snapshot:remove:device-deleted');
      await this.store.remove(record.id);
      this.records.delete(record.id);
    });
  }

  stat(space: string, key: string): SnapshotInfo {
    return this.infoOf(this.mustGet(space, key));
  }

  /**
   * Update: only labels change. No path, or `labels`, replaces them all;
   * `labels.K` sets K from info's labels, or deletes it when info has none.
   */
  async update(space: string, info: { name: string; labels: Readonly<Record<string, string>> }, paths: readonly string[]): Promise<SnapshotInfo> {
    const given = checkLabels(info.labels);
    return this.changes.run(async () => {
      const record = this.mustGet(space, info.name);
      let labels: Record<string, string> = { ...record.labels };
      if (paths.length === 0) labels = given;
      for (const p of paths) {
        if (p === 'labels') {
          labels = { ...given };
        } else if (p.startsWith('labels.')) {
          const k = p.slice('labels.'.length);
          const v = given[k];
          if (v === undefined) delete labels[k];
          else labels[k] = v;
        } else {
          throw new DmthinError('EINVAL', `cannot update ${JSON.stringify(p)} of snapshot ${info.name}: only labels can change`);
        }
      }
      const updated: SnapshotRecord = { ...record, labels, updated: nowNanos() };
      await this.store.save(updated);
      this.put(updated);
      return this.infoOf(updated);
    });
  }

  /** Every snapshot of `space` that one of the filters matches (all of them without filters). */
  list(space: string, filters: readonly string[]): SnapshotInfo[] {
    const filter = parseFilters(filters);
    const infos: SnapshotInfo[] = [];
    for (const record of this.byKey.values()) {
      if (record.space !== space) continue;
      const info = this.infoOf(record);
      if (filter((fieldpath) => fieldOf(info, fieldpath))) infos.push(info);
    }
    return infos;
  }

  async usage(space: string, key: string): Promise<SnapshotUsage> {
    const record = this.mustGet(space, key);
    const mapped = record.kind === 'committed' ? record.mappedBytes : (await (await this.set()).usage(deviceIdOf(record.id))).mappedBytes;
    const parentMapped = record.parent === null ? 0 : (this.records.get(record.parent)?.mappedBytes ?? 0);
    return { size: Math.max(0, mapped - parentMapped), inodes: 0 };
  }

  /** Deletions that could not finish (busy devices) are tried again. */
  async cleanup(): Promise<void> {
    const set = await this.set();
    await this.changes.run(() => this.finishRemovals(set));
    await set.retryDeferredDeletions();
  }

  // ---- for `dmthin check` and `gc` (admin/inspect.ts) ------------------------------------------------

  /**
   * The devices of its view its records own (the empty device included),
   * the finished snapshots whose device the pool's metadata lacks, and
   * whether every record could be read (when not, no device is proved
   * orphaned); null before the pool is open. Read without waiting: check
   * runs under the pool lock, which a Prepare in flight may wait for.
   */
  deviceOwnership(): SnapshotDeviceOwnership | null {
    const set = this.config.holder.current()?.devicesOf('snapshot');
    if (set === undefined) return null;
    const records = [...this.records.values()];
    const owned = new Set([EMPTY_DEVICE, ...records.map((r) => deviceIdOf(r.id))]);
    const parents = new Set(records.map((r) => r.parent));
    const missing = records
      .filter((r) => r.state === 'ready' && !set.has(deviceIdOf(r.id)))
      .map((r) => ({ deviceId: deviceIdOf(r.id), key: r.key, hasChildren: parents.has(r.id) }));
    return { owned, missing, complete: this.unreadable === 0 };
  }

  /** gc: deletes device `deviceId` of its view if, asked again among the changes, no record owns it. Resolves whether it did. */
  async deleteOrphanDevice(deviceId: string): Promise<boolean> {
    const set = await this.set();
    return this.changes.run(async () => {
      const id = snapshotIdOf(deviceId);
      if (id === null || this.records.has(id) || this.unreadable > 0 || !set.has(deviceId)) return false;
      await set.delete(deviceId);
      this.config.log.warn('gc: deleted a snapshot device that no record names', { hash: set.deviceHash(deviceId) });
      return true;
    });
  }

  /** gc: forgets the snapshot of device `deviceId` if, asked again, its device is gone and no snapshot is its child. */
  async forgetSnapshotWithoutDevice(deviceId: string): Promise<boolean> {
    const set = await this.set();
    return this.changes.run(async () => {
      const id = snapshotIdOf(deviceId);
      const record = id === null ? undefined : this.records.get(id);
      if (record === undefined || set.has(deviceId) || [...this.records.values()].some((r) => r.parent === record.id)) return false;
      await this.store.remove(record.id);
      this.records.delete(record.id);
      this.byKey.delete(keyOf(record.space, record.key));
      this.config.log.warn('gc: forgot a snapshot whose device is gone', { key: record.key, hash: set.deviceHash(deviceId) });
      return true;
    });
  }

  // ---- records and devices -----------------------------------------------------------------------

  private async create(kind: SnapshotKind, space: string, key: string, parentKey: string, labels: Readonly<Record<string, string>>): Promise<SnapshotMount[]> {
    checkKey(key, 'the key of a snapshot');
    const kept = checkLabels(labels);
    const set = await this.set();
    const record = await this.changes.run(async () => {
      if (this.byKey.has(keyOf(space, key))) throw new DmthinError('EEXIST', `snapshot ${key} already exists`);
      let parent: SnapshotRecord | null = null;
      if (parentKey !== '') {
        parent = this.mustGet(space, parentKey, 'parent snapshot');
        if (parent.kind !== 'committed') throw new DmthinError('EINVAL', `parent ${parentKey} is a ${parent.kind} snapshot, not a committed one`);
      } else {
        await this.ensureEmptyDevice(set);
      }
      const now = nowNanos();
      const fresh: SnapshotRecord = { id: this.nextId++, space, key, kind, parent: parent?.id ?? null, labels: kept, created: now, updated: now, state: 'preparing', mappedBytes: 0 };
      await this.store.save(fresh);
      failpoint('snapshot:prepare:recorded');
      try {
        await set.add(deviceIdOf(fresh.id), parent === null ? EMPTY_DEVICE : deviceIdOf(parent.id));
      } catch (err) {
        await this.store.remove(fresh.id);
        const code = err instanceof DmthinError && POOL_REFUSAL_CODES.has(err.code) ? err.code : 'ESNAPDEVICE';
        throw new DmthinError(code, `cannot make the device of snapshot ${key}: ${(err as Error).message}`, { cause: err });
      }
      failpoint('snapshot:prepare:device-added');
      const ready: SnapshotRecord = { ...fresh, state: 'ready' };
      await this.store.save(ready);
      this.put(ready);
      return ready;
    });
    return this.mountsOf(set, record);
  }

  /** The empty filesystem every parentless snapshot starts from: root 0755, no lost+found. */
  private async ensureEmptyDevice(set: ConsumerDevices): Promise<void> {
    if (set.has(EMPTY_DEVICE)) return;
    await set.create(EMPTY_DEVICE, { size: set.baseSize, fs: set.baseFilesystem });
    this.config.log.info('made the empty device parentless snapshots start from', { fs: set.baseFilesystem, size: set.baseSize });
  }

  private async mountsOf(set: ConsumerDevices, record: SnapshotRecord): Promise<SnapshotMount[]> {
    const source = await set.activate(deviceIdOf(record.id));
    const fs = set.baseFilesystem;
    // Thin snapshots of one filesystem share its UUID, which xfs refuses twice.
    const options = [...(fs === 'xfs' ? ['nouuid'] : []), ...(record.kind === 'view' ? ['ro'] : [])];
    return [{ type: fs, source, target: '', options }];
  }

  private put(record: SnapshotRecord): void {
    this.records.set(record.id, record);
    this.byKey.set(keyOf(record.space, record.key), record);
  }

  private mustGet(space: string, key: string, what = 'snapshot'): SnapshotRecord {
    const record = this.byKey.get(keyOf(space, key));
    if (record === undefined) throw new DmthinError('ENOENT', `${what} ${key} does not exist`);
    return record;
  }

  private infoOf(record: SnapshotRecord): SnapshotInfo {
    const parent = record.parent === null ? '' : (this.records.get(record.parent)?.key ?? '');
    return { name: record.key, parent, kind: record.kind, created: record.created, updated: record.updated, labels: { ...record.labels } };
  }

  /** The open DeviceSet's snapshot view, reconciled with the records once per set. */
  private async set(): Promise<ConsumerDevices> {
    const set = (await this.config.holder.ready()).devicesOf('snapshot');
    if (this.reconciled?.set !== set) this.reconciled = { set, done: this.changes.run(() => this.reconcile(set)) };
    await this.reconciled.done;
    return set;
  }

  /**
   * After a crash: a snapshot whose Prepare did not finish is undone, one
   * whose Remove did not finish is removed, and a snap- device that no
   * record names (none, unless a record is unreadable) is deleted. Layers
   * and volumes (other namespaces) are out of the view's reach.
   */
  private async reconcile(set: ConsumerDevices): Promise<void> {
    const { log } = this.config;
    for (const record of [...this.records.values()].filter((r) => r.state === 'preparing')) {
      log.warn('undoing a snapshot whose Prepare did not finish', { key: record.key });
      await set.delete(deviceIdOf(record.id));
      await this.store.remove(record.id);
      this.records.delete(record.id);
    }
    await this.finishRemovals(set);
    let orphans = 0;
    for (const deviceId of set.list()) {
      const id = snapshotIdOf(deviceId);
      if (id === null) continue;
      this.nextId = Math.max(this.nextId, id + 1);
      if (this.records.has(id) || this.unreadable > 0) continue;
      const hash = set.deviceHash(deviceId);
      log.warn('deleting a snapshot device that no record names', { hash });
      await set.delete(deviceId).catch((err: unknown) => log.error('cannot delete an orphaned snapshot device', { hash, err: String(err) }));
      orphans++;
    }
    for (const record of this.records.values()) {
      if (!set.has(deviceIdOf(record.id))) log.error('snapshot without its device; it is listed but cannot be mounted', { key: record.key, hash: set.deviceHash(deviceIdOf(record.id)) });
    }
    log.info('snapshots reconciled with the pool', { snapshots: this.records.size, orphansDeleted: orphans });
  }

  private async finishRemovals(set: ConsumerDevices): Promise<void> {
    for (const record of [...this.records.values()].filter((r) => r.state === 'removing')) {
      try {
        await set.delete(deviceIdOf(record.id));
      } catch (err) {
        this.config.log.warn('cannot finish removing a snapshot yet', { key: record.key, err: String(err) });
        continue;
      }
      await this.store.remove(record.id);
      this.records.delete(record.id);
    }
  }
}

function keyOf(space: string, key: string): string {
  return `${space}\0${key}`;
}

/** A snapshot's fields as containerd's filters see them. */
function fieldOf(info: SnapshotInfo, fieldpath: readonly string[]): [string, boolean] {
  const [field, ...rest] = fieldpath;
  switch (field) {
    case 'name':
      return [info.name, true];
    case 'parent':
      return [info.parent, true];
    case 'kind':
      return [info.kind, true];
    case 'labels': {
      const value = info.labels[rest.join('.')];
      return value === undefined ? ['', false] : [value, true];
    }
    default:
      return ['', false];
  }
}
