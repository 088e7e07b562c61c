// What `dmthin status`, `check` and `gc` ask the running daemon: they run
// here, inside it, under the DeviceSet's pool lock, so that no create or
// delete is half done while the pool is looked at or fixed.
import { dm, mountinfo, thin } from '../devmapper';
import type { DmListEntry } from '../devmapper/dm';
import { METADATA_BLOCK_SIZE, type ThinPoolStatus } from '../devmapper/thin';
import type { DeviceSet, DeviceSetHolder } from '../deviceset';
import type { DeviceRecord } from '../deviceset/metadata';
import { lowWaterBlocks } from '../deviceset/low-water';
import { listThinIds } from '../deviceset/pool';
import { deviceHashOf, deviceOwner, idOfDeviceHash } from '../deviceset/namespaces';
import { isErrno } from '../shared/errors';
import type { Logger } from '../shared/log';
import type { SnapshotDeviceOwnership } from '../snapshotter/snapshotter';
import { poolHealth } from './health';
import type { CheckReport, DeviceCounts, GcReport, PoolReport, Problem, SpaceUse, StatusReport } from './reports';

export interface AdminDeps {
  holder: DeviceSetHolder;
  /** the thin device hashes volumes own (VolumeStore.ownedDeviceHashes) */
  volumeDevices: () => Set<string>;
  /** the containerd snapshotter, or null while it is off (its devices are then left alone: their records are not loaded) */
  snapshots: () => SnapshotDevices | null;
  log: Logger;
  root: string;
  socket: string;
}

/** The containerd snapshotter's side of check and gc (snapshotter/snapshotter.ts): it deletes its own devices and records. */
export interface SnapshotDevices {
  deviceOwnership(): SnapshotDeviceOwnership | null;
  deleteOrphanDevice(hash: string): Promise<boolean>;
  forgetSnapshotWithoutDevice(hash: string): Promise<boolean>;
}

const INIT_SUFFIX = '-init';

/** The pool, metadata, devices and mounts at one moment, read under the pool lock. */
interface Survey {
  status: ThinPoolStatus;
  /** sectors */
  blockSize: number;
  lowWaterBlocks: number;
  records: DeviceRecord[];
  inPool: Set<number>;
  /** why the pool's thin ids could not be listed (a read-only pool refuses a metadata snapshot); '' when they were */
  listError: string;
  /** active dm devices of this set, the pool excluded */
  active: DmListEntry[];
}

async function survey(set: DeviceSet): Promise<Survey> {
  const status = await thin.poolStatus(set.pool.name);
  const [target] = await dm.table(set.pool.name);
  const params = target?.params.split(' ') ?? [];
  let inPool = new Set<number>();
  let listError = status.failed ? 'the pool has failed' : '';
  if (!status.failed) {
    try {
      inPool = await listThinIds(set.pool);
    } catch (err) {
      listError = err instanceof Error ? err.message : String(err);
    }
  }
  const active = (await dm.list()).filter((d) => d.name.startsWith(`${set.prefix}-`) && d.name !== set.pool.name);
  const blockSize = Number(params[2] ?? 128);
  return { status, blockSize, lowWaterBlocks: lowWaterBlocks(set.options, status.totalDataBlocks, blockSize), records: set.deviceRecords(), inPool, listError, active };
}

function space(used: number, total: number): SpaceUse {
  return { used, total, free: total - used, percent: total === 0 ? 0 : Math.round((used / total) * 10000) / 100 };
}

function poolReport(set: DeviceSet, s: Survey): PoolReport {
  const { pool } = set;
  const blockBytes = s.blockSize * 512;
  const verdict = poolHealth(pool.name, s.status, s.lowWaterBlocks);
  return {
    name: pool.name,
    kind: pool.dataFile !== '' ? 'loop' : pool.owned ? 'block-devices' : 'external',
    health: verdict.health,
    advice: verdict.advice,
    mode: s.status.failed ? 'failed' : s.status.mode,
    needsCheck: s.status.needsCheck,
    transactionId: s.status.transactionId,
    blockSize: blockBytes,
    data: space(s.status.usedDataBlocks * blockBytes, s.status.totalDataBlocks * blockBytes),
    metadata: space(s.status.usedMetadataBlocks * METADATA_BLOCK_SIZE, s.status.totalMetadataBlocks * METADATA_BLOCK_SIZE),
    lowWaterMark: { blocks: s.lowWaterBlocks, bytes: s.lowWaterBlocks * blockBytes },
    dataFile: pool.dataFile,
    metadataFile: pool.metadataFile,
    dataDevice: pool.dataDevice,
    metadataDevice: pool.metadataDevice,
  };
}

/** base, layers, containers (read-write layers and their -init), volumes or snapshotter. */
export function kindOf(hash: string, hashes: ReadonlySet<string>): 'base' | 'layers' | 'containers' | 'volumes' | 'snapshotter' {
  if (hash === '') return 'base';
  const owner = deviceOwner(hash);
  if (owner === 'volume') return 'volumes';
  if (owner === 'snapshot') return 'snapshotter';
  if (hash.endsWith(INIT_SUFFIX) || hashes.has(`${hash}${INIT_SUFFIX}`)) return 'containers';
  return 'layers';
}

/** Everything check finds, from one survey. */
function findProblems(set: DeviceSet, s: Survey, volumeDevices: ReadonlySet<string>, snapshots: SnapshotDeviceOwnership | null): Problem[] {
  const problems: Problem[] = [];
  const verdict = poolHealth(set.pool.name, s.status, s.lowWaterBlocks);
  if (verdict.health !== 'ok') problems.push({ kind: 'pool-health', object: set.pool.name, detail: `${verdict.health}: ${verdict.advice}`, gc: false });

  const faulty = set.faultyDevices();
  for (const f of faulty) problems.push({ kind: 'faulty', object: f.hash || 'base', detail: f.reason, gc: false });
  // An unreadable metadata file may be the one naming a thin id: such ids are kept, as at start-up.
  const unreadable = faulty.some((f) => f.reason.startsWith('metadata unreadable'));

  const named = new Set(s.records.map((r) => r.deviceId));
  if (s.listError !== '') {
    problems.push({ kind: 'pool-health', object: set.pool.name, detail: `cannot list the pool's thin devices, so orphans and missing devices are not checked: ${s.listError}`, gc: false });
  } else {
    for (const r of s.records) {
      if (!s.inPool.has(r.deviceId)) {
        problems.push({ kind: 'missing-thin', object: r.hash || 'base', detail: `metadata names thin device ${r.deviceId}, which pool ${set.pool.name} does not have`, gc: false });
      }
    }
    for (const id of [...s.inPool].sort((a, b) => a - b)) {
      if (named.has(id)) continue;
      problems.push({
        kind: 'orphan-thin',
        object: String(id),
        detail: unreadable ? `thin device ${id} is in the pool but no metadata names it; kept, since some metadata is unreadable` : `thin device ${id} is in the pool but no metadata names it`,
        gc: !unreadable,
      });
    }
  }
  for (const r of s.records) {
    if (deviceOwner(r.hash) !== 'volume' || r.deleted || volumeDevices.has(r.hash)) continue;
    problems.push({ kind: 'orphan-volume-device', object: r.hash, detail: `thin device ${r.deviceId} (${r.hash}) belongs to no volume`, gc: true });
  }
  if (snapshots !== null) {
    for (const r of s.records) {
      const id = idOfDeviceHash('snapshot', r.hash);
      if (id === null || r.deleted || snapshots.owned.has(id)) continue;
      const detail = `thin device ${r.deviceId} (${r.hash}) belongs to no snapshot`;
      problems.push({ kind: 'orphan-snapshot-device', object: r.hash, detail: snapshots.complete ? detail : `${detail} that could be read; kept, since a snapshot record is unreadable`, gc: snapshots.complete });
    }
    for (const m of snapshots.missing) {
      const hash = deviceHashOf('snapshot', m.deviceId);
      const detail = `snapshot ${m.key} has no device ${hash}: containerd lists it but cannot mount it`;
      problems.push({ kind: 'missing-snapshot-device', object: hash, detail: m.hasChildren ? `${detail}; kept, since other snapshots name it as their parent` : detail, gc: !m.hasChildren });
    }
  }

  const byName = new Map(s.records.map((r) => [set.deviceName(r.hash), r.hash]));
  const faultyNames = new Set(faulty.map((f) => set.deviceName(f.hash)));
  const hashOfDevice = new Map<string, string>();
  for (const d of s.active) {
    const hash = byName.get(d.name);
    if (hash !== undefined) {
      hashOfDevice.set(`${d.major}:${d.minor}`, hash);
      continue;
    }
    if (faultyNames.has(d.name)) continue;
    problems.push({ kind: 'stray-device', object: d.name, detail: `device ${d.name} is active but no metadata names it`, gc: true });
  }
  for (const m of mountinfo.readMountinfo()) {
    const hash = hashOfDevice.get(m.device);
    if (hash === undefined || set.isMountedByOthers(hash)) continue;
    if (set.mountTarget(hash) === m.mountpoint) continue;
    // The set's own short mounts (mkfs, grow) run under the pool lock, held now.
    problems.push({ kind: 'stale-mount', object: m.mountpoint, detail: `device ${hash || 'base'} is mounted at ${m.mountpoint}, which dmthin did not mount (left by a dead process?); unmount it if nothing uses it`, gc: false });
  }
  return problems;
}

async function openSet(deps: AdminDeps): Promise<{ set: DeviceSet | null; error: string }> {
  try {
    return { set: await deps.holder.ready(), error: '' };
  } catch (err) {
    return { set: null, error: err instanceof Error ? err.message : String(err) };
  }
}

export async function statusReport(deps: AdminDeps): Promise<StatusReport> {
  const { set, error } = await openSet(deps);
  const base = { root: deps.root, socket: deps.socket };
  if (set === null) return { pool: null, poolError: error, devices: null, options: null, ...base };
  const volumeDevices = deps.volumeDevices();
  const { s, problems } = await set.underPoolLock(async () => {
    const s = await survey(set);
    return { s, problems: findProblems(set, s, volumeDevices, deps.snapshots()?.deviceOwnership() ?? null) };
  });
  const hashes = new Set(s.records.map((r) => r.hash));
  const devices: DeviceCounts = { base: 0, layers: 0, containers: 0, volumes: 0, snapshotter: 0, orphans: 0, faulty: 0, deferredDeletions: 0, mounted: set.mountedDevices().length };
  for (const r of s.records) {
    if (r.deleted) devices.deferredDeletions++;
    else devices[kindOf(r.hash, hashes)]++;
  }
  devices.orphans = problems.filter((p) => p.kind === 'orphan-thin' || p.kind === 'orphan-volume-device' || p.kind === 'orphan-snapshot-device').length;
  devices.faulty = set.faultyDevices().length;
  const deferred = set.deferredModes();
  const options = { ...set.options, deferredRemovalInEffect: deferred.removal, deferredDeletionInEffect: deferred.deletion };
  return { pool: poolReport(set, s), poolError: '', devices, options, ...base };
}

export async function checkReport(deps: AdminDeps): Promise<CheckReport> {
  const { set, error } = await openSet(deps);
  if (set === null) {
    return { problems: [{ kind: 'pool-health', object: deps.root, detail: error, gc: false }], checked: { records: 0, thinIds: 0, activeDevices: 0, mounts: 0 } };
  }
  const volumeDevices = deps.volumeDevices();
  return set.underPoolLock(async () => {
    const s = await survey(set);
    return {
      problems: findProblems(set, s, volumeDevices, deps.snapshots()?.deviceOwnership() ?? null),
      checked: { records: s.records.length, thinIds: s.inPool.size, activeDevices: s.active.length, mounts: set.mountedDevices().length },
    };
  });
}

/**
 * Removes what check proves orphaned: stray active devices, thin ids no
 * metadata names, volume devices no volume owns. Each is checked again
 * under the lock right before it goes.
 */
export async function collectGarbage(deps: AdminDeps, dryRun: boolean): Promise<GcReport> {
  const { set, error } = await openSet(deps);
  const report: GcReport = { dryRun, removed: [], failed: [], left: [] };
  if (set === null) {
    report.left.push({ kind: 'pool-health', object: deps.root, detail: error, gc: false });
    return report;
  }
  const fail = (p: Problem, err: unknown): void => {
    report.failed.push({ ...p, error: err instanceof Error ? err.message : String(err) });
  };
  const snapshots = deps.snapshots();
  const throughOwners = await set.underPoolLock(async () => {
    const problems = findProblems(set, await survey(set), deps.volumeDevices(), snapshots?.deviceOwnership() ?? null);
    report.left = problems.filter((p) => !p.gc);
    if (dryRun) {
      report.removed = problems.filter((p) => p.gc);
      return [];
    }
    // Stray devices first: one may be an activation of an orphaned thin id.
    for (const p of problems.filter((q) => q.kind === 'stray-device')) {
      try {
        const info = await dm.info(p.object);
        if (info.exists && (info.openCount ?? 0) > 0) throw new Error(`device ${p.object} is open (mounted?); unmount it first`);
        await dm.remove(p.object);
        report.removed.push(p);
        deps.log.warn('gc: removed a stray device', { device: p.object });
      } catch (err) {
        if (isErrno(err, 'ENXIO')) report.removed.push(p);
        else fail(p, err);
      }
    }
    for (const p of problems.filter((q) => q.kind === 'orphan-thin')) {
      try {
        await thin.deleteThin(set.pool.name, Number(p.object));
        report.removed.push(p);
        deps.log.warn('gc: deleted a thin device no metadata names', { deviceId: Number(p.object) });
      } catch (err) {
        if (isErrno(err, 'ENODATA')) report.removed.push(p);
        else fail(p, err);
      }
    }
    return problems.filter((q) => q.gc && (q.kind === 'orphan-volume-device' || q.kind === 'orphan-snapshot-device' || q.kind === 'missing-snapshot-device'));
  });
  // Through their owners, which take the pool lock themselves; ownership is asked again first.
  for (const p of throughOwners) {
    try {
      let done = false;
      if (p.kind === 'orphan-volume-device' && !deps.volumeDevices().has(p.object)) {
        await set.deleteDevice(p.object, { discard: true });
        deps.log.warn('gc: deleted a volume device no volume owns', { hash: p.object });
        done = true;
      } else if (p.kind === 'orphan-snapshot-device') {
        done = (await snapshots?.deleteOrphanDevice(idOfDeviceHash('snapshot', p.object) ?? '')) === true;
      } else if (p.kind === 'missing-snapshot-device') {
        done = (await snapshots?.forgetSnapshotWithoutDevice(idOfDeviceHash('snapshot', p.object) ?? '')) === true;
      }
      if (done) report.removed.push(p);
    } catch (err) {
      fail(p, err);
    }
  }
  return report;
}
