// What the snapshotter keeps on disk: one JSON file per snapshot,
// <dir>/<id>.json, written atomically (temp file, fsync, rename). A
// snapshot's thin device is its id in the DeviceSet's snapshot view; keys and names
// (which may hold slashes and spaces) live only inside the records.
//
// A record's state says which step of a change it is in, so that a restart
// can finish or undo it: `preparing` (written before its device is made),
// `ready`, and `removing` (written before its device is deleted).
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { removeFileDurably, writeFileAtomic } from '../shared/atomic-file';
import { DmthinError } from '../shared/errors';

export type SnapshotKind = 'active' | 'view' | 'committed';
export type RecordState = 'preparing' | 'ready' | 'removing';

export interface SnapshotRecord {
  id: number;
  /** the request's `snapshotter` field: each name is a store of its own */
  space: string;
  /** key of an active snapshot or view, name of a committed one */
  key: string;
  kind: SnapshotKind;
  /** id of the committed parent, or null for an empty filesystem */
  parent: number | null;
  labels: Record<string, string>;
  /** nanoseconds since the epoch */
  created: bigint;
  updated: bigint;
  state: RecordState;
  /** committed snapshots: the device's mapped bytes when committed */
  mappedBytes: number;
}

/** The id of snapshot `id`'s device in the snapshot view. */
export function deviceIdOf(id: number): string {
  return String(id);
}

/** The snapshot id a device of the snapshot view stands for, or null for the empty device. */
export function snapshotIdOf(deviceId: string): number | null {
  return /^[1-9][0-9]{0,15}$/.test(deviceId) ? Number(deviceId) : null;
}

export class RecordStore {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  private file(id: number): string {
    return path.join(this.dir, `${id}.json`);
  }

  async save(record: SnapshotRecord): Promise<void> {
    const json = { ...record, created: record.created.toString(), updated: record.updated.toString() };
    await writeFileAtomic(this.file(record.id), JSON.stringify(json));
  }

  async remove(id: number): Promise<void> {
    await removeFileDurably(this.file(id));
  }

  /** Every record; leftover temp files are removed, and files that do not parse are reported apart. */
  async loadAll(): Promise<{ records: SnapshotRecord[]; unreadable: { file: string; reason: string }[] }> {
    const records: SnapshotRecord[] = [];
    const unreadable: { file: string; reason: string }[] = [];
    for (const name of await fsp.readdir(this.dir)) {
      if (name.startsWith('.tmp-')) {
        await fsp.rm(path.join(this.dir, name), { force: true });
        continue;
      }
      try {
        records.push(parseRecord(JSON.parse(readFileSync(path.join(this.dir, name), 'utf8')) as unknown));
      } catch (err) {
        unreadable.push({ file: name, reason: err instanceof Error ? err.message : String(err) });
      }
    }
    return { records, unreadable };
  }
}

function parseRecord(json: unknown): SnapshotRecord {
  if (typeof json !== 'object' || json === null) throw new DmthinError('EMETADATA', 'not a JSON object');
  const o = json as Record<string, unknown>;
  const { id, space, key, kind, parent, labels, created, updated, state, mappedBytes } = o;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw new DmthinError('EMETADATA', 'id is missing');
  if (typeof space !== 'string' || typeof key !== 'string') throw new DmthinError('EMETADATA', 'space or key is missing');
  if (kind !== 'active' && kind !== 'view' && kind !== 'committed') throw new DmthinError('EMETADATA', 'kind is invalid');
  if (parent !== null && (typeof parent !== 'number' || !Number.isSafeInteger(parent))) throw new DmthinError('EMETADATA', 'parent is invalid');
  if (typeof labels !== 'object' || labels === null || Object.values(labels).some((v) => typeof v !== 'string')) throw new DmthinError('EMETADATA', 'labels are invalid');
  if (typeof created !== 'string' || typeof updated !== 'string' || !/^[0-9]+$/.test(created) || !/^[0-9]+$/.test(updated)) throw new DmthinError('EMETADATA', 'timestamps are invalid');
  if (state !== 'preparing' && state !== 'ready' && state !== 'removing') throw new DmthinError('EMETADATA', 'state is invalid');
  return {
    id,
    space,
    key,
    kind,
    parent,
    labels: { ...(labels as Record<string, string>) },
    created: BigInt(created),
    updated: BigInt(updated),
    state,
    mappedBytes: typeof mappedBytes === 'number' ? mappedBytes : 0,
  };
}
