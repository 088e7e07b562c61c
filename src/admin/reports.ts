// What the admin routes answer and the dmthin command prints (and gives
// as --json): plain data, no classes, so that the command can read it
// without loading any of the daemon's modules.

export interface SpaceUse {
  /** bytes */
  used: number;
  total: number;
  free: number;
  /** used / total, in percent with two decimals */
  percent: number;
}

/** The pool's state as device-mapper reports it, from worst to best. */
export type PoolHealth = 'failed' | 'needs_check' | 'read_only' | 'out_of_data_space' | 'low_data_space' | 'ok';

export interface PoolReport {
  name: string;
  /** loop-backed (dmthin's files), dmthin's own table over block devices, or an existing pool (dm.thinpooldev) */
  kind: 'loop' | 'block-devices' | 'external';
  health: PoolHealth;
  /** what to do about health, '' when ok */
  advice: string;
  /** rw, ro or out_of_data_space; 'failed' when the kernel reports Fail */
  mode: string;
  needsCheck: boolean;
  transactionId: number;
  /** bytes */
  blockSize: number;
  data: SpaceUse;
  metadata: SpaceUse;
  /** free data below it raises the pool's event; in data blocks and bytes */
  lowWaterMark: { blocks: number; bytes: number };
  dataFile: string;
  metadataFile: string;
  dataDevice: string;
  metadataDevice: string;
}

export interface DeviceCounts {
  base: number;
  /** image layers (GraphDriver.Create) */
  layers: number;
  /** containers' read-write layers and their -init layers */
  containers: number;
  volumes: number;
  /** containerd snapshotter devices */
  snapshotter: number;
  /** thin devices the pool has and no metadata names, plus volume devices no volume owns */
  orphans: number;
  /** metadata naming a thin device the pool lacks, or unreadable */
  faulty: number;
  deferredDeletions: number;
  mounted: number;
}

export interface StatusReport {
  /** null when there is no open pool (no device-mapper, a pool that failed to open): see poolError */
  pool: PoolReport | null;
  poolError: string;
  devices: DeviceCounts | null;
  /** the dm.* options in effect, and deferred removal/deletion as decided against the kernel */
  options: Record<string, unknown> | null;
  root: string;
  socket: string;
}

export type ProblemKind =
  | 'pool-health'
  | 'orphan-thin'
  | 'orphan-volume-device'
  | 'orphan-snapshot-device'
  | 'missing-snapshot-device'
  | 'stray-device'
  | 'faulty'
  | 'missing-thin'
  | 'stale-mount'
  | 'thin-check';

export interface Problem {
  kind: ProblemKind;
  /** what it is about: a thin id, a device hash, a dm name, a mountpoint */
  object: string;
  detail: string;
  /** whether `dmthin gc` removes it */
  gc: boolean;
}

export interface CheckReport {
  problems: Problem[];
  /** how much was looked at */
  checked: { records: number; thinIds: number; activeDevices: number; mounts: number };
}

export interface GcReport {
  dryRun: boolean;
  /** what was removed (or would be, with dryRun) */
  removed: Problem[];
  /** what could not be removed, with why */
  failed: Array<Problem & { error: string }>;
  /** problems check found that gc leaves alone (faulty devices, stale mounts, pool health) */
  left: Problem[];
}

export interface PoolGrowReport {
  pool: string;
  /** the pool's data and metadata space in bytes, before and after */
  before: { data: number; metadata: number };
  after: { data: number; metadata: number };
  dataFile: string;
  metadataFile: string;
}
