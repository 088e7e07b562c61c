// Opening a DeviceSet after any stop, clean or not: libdevmapper set up,
// the pool's state checked, metadata read, then, in this order, devices
// a dead process left suspended resumed, its mounts adopted or unmounted,
// the set's devices deactivated, the open pool change rolled back and the
// pool reconciled with metadata. Runs before the set is handed to anyone,
// so it takes no lock.
import { existsSync, promises as fsp } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { dm, fs as kfs, mountinfo, thin } from '../devmapper';
import { DmthinError } from '../shared/errors';
import type { Logger } from '../shared/log';
import { deactivateAll, deleteThin } from './activation';
import type { SetContext } from './context';
import { IdAllocator } from './ids';
import { takeKeptMounts, type KeptMount } from './mounts';
import type { DeviceSetOptions } from './options';
import { listThinIds } from './pool';
import { rollbackTransaction } from './transactions';

/** Kernels before dm 4.27 cannot remove a device deferred. */
const DEFERRED_REMOVE_DRIVER = [4, 27];

/** Callers' say on mounts a dead process left (see DeviceSetConfig). */
export interface LeftMountPolicy {
  adoptLeftMount: (hash: string, target: string) => boolean;
  mountedByOthers: (hash: string) => boolean;
}

/** Reads metadata and brings the pool and the kernel in line with it. */
export async function loadSet(ctx: SetContext, policy: LeftMountPolicy): Promise<void> {
  const phases: Record<string, number> = {};
  const phase = async <T>(name: string, step: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await step();
    } finally {
      phases[name] = Math.round(performance.now() - start);
    }
  };
  const status = await thin.poolStatus(ctx.pool.name);
  if (status.failed) throw new DmthinError('EPOOLFAILED', `thin pool ${ctx.pool.name} has failed; repair it with thin_check/thin_repair`);
  ctx.transactionId = status.transactionId;
  const setRecord = await ctx.store.loadSet();
  const { devices, unreadable } = await phase('metadata', () => ctx.store.loadDevices());
  if (setRecord === null && devices.length === 0 && ctx.options.thinPoolDevice !== null) {
    // First use of a pool someone else made: it must be empty.
    if (status.usedDataBlocks > 0) throw new DmthinError('EPOOLINUSE', `cannot take over thin pool ${ctx.pool.name}: it already has used data blocks`);
    if (status.transactionId !== 0) throw new DmthinError('EPOOLINUSE', `cannot take over thin pool ${ctx.pool.name}: its transaction id is ${status.transactionId}, not 0`);
  }
  if (setRecord !== null) ctx.setRecord = setRecord;
  for (const d of devices) ctx.devices.set(d.hash, d);
  for (const u of unreadable) ctx.faulty.set(u.file, `metadata unreadable: ${u.reason}`);
  // A process killed while an origin was suspended for a snapshot leaves it suspended;
  // unmounting or using it would hang until it is resumed.
  await phase('resume', () => resumeSuspended(ctx));
  const kept = await takeKeptMounts(ctx);
  await phase('unmount', () => unmountStale(ctx, kept, policy));
  await phase('deactivate', () => deactivateAll(ctx, new Set([...ctx.mounts.keys()].map((hash) => ctx.deviceName(hash)))));
  await phase('rollback', () => rollbackTransaction(ctx));
  await phase('reconcile', () => reconcile(ctx));
  ctx.ids = new IdAllocator([...ctx.devices.values()].map((d) => d.deviceId));
  ctx.log.info('device metadata loaded', { devices: ctx.devices.size, faulty: ctx.faulty.size, ms: phases });
}

async function resumeSuspended(ctx: SetContext): Promise<void> {
  for (const d of await dm.list()) {
    if (!d.name.startsWith(`${ctx.prefix}-`)) continue;
    const info = await dm.info(d.name);
    if (info.suspended === true) {
      ctx.log.warn('resuming a device a dead process left suspended', { device: d.name });
      await dm.resume(d.name);
    }
  }
}

/**
 * Mounts of this set's devices left by a process that died, wherever they
 * are (layers under a Home, volumes under their mount root): found by
 * device number in mountinfo, deepest first. Those the last shutdown
 * kept for their users (see DeviceSet.shutdown) are adopted instead, users
 * and all; after a crash, those adoptLeftMount claims are adopted with one
 * user (a running container's layer: unmounting it would leave the
 * container without its rootfs on the host, and docker exec or commit failing).
 */
async function unmountStale(ctx: SetContext, kept: readonly KeptMount[], policy: LeftMountPolicy): Promise<void> {
  const hashByName = new Map([...ctx.devices.keys()].map((hash) => [ctx.deviceName(hash), hash]));
  /** "MAJOR:MINOR" of each active device of this set -> its hash, when metadata knows it */
  const ours = new Map<string, string | undefined>();
  for (const d of await dm.list()) {
    if (ctx.isOwnDevice(d.name)) ours.set(`${d.major}:${d.minor}`, hashByName.get(d.name));
  }
  const mounts = mountinfo
    .readMountinfo()
    .filter((m) => ours.has(m.device))
    .sort((a, b) => b.mountpoint.length - a.mountpoint.length);
  for (const { device, mountpoint: target } of mounts) {
    const hash = ours.get(device);
    if (hash !== undefined && policy.mountedByOthers(hash)) continue;
    if (hash !== undefined && !ctx.mounts.has(hash)) {
      // Kept by the last shutdown with its users; else, after a crash, claimed with one.
      const keptUsers = kept.find((k) => k.hash === hash && k.target === target)?.users;
      const users = keptUsers ?? (policy.adoptLeftMount(hash, target) ? 1 : 0);
      if (users > 0) {
        ctx.mounts.set(hash, { target, users, adopted: true });
        ctx.log.info('adopted a mount the last run left for its users', { hash, target, users, by: keptUsers !== undefined ? 'shutdown' : 'crash' });
        continue;
      }
    }
    ctx.log.info('unmounting a stale mount', { target });
    await kfs.umount2(target, kfs.constants.MNT_DETACH).catch((err: unknown) => ctx.log.warn('cannot unmount', { target, err: String(err) }));
  }
}

/** Thin ids the pool has but metadata lacks are removed; metadata without a thin device is faulty. */
async function reconcile(ctx: SetContext): Promise<void> {
  const inPool = await listThinIds(ctx.pool);
  const known = new Set<number>();
  for (const d of ctx.devices.values()) {
    known.add(d.deviceId);
    if (!inPool.has(d.deviceId)) {
      ctx.faulty.set(d.hash, `thin device ${d.deviceId} is missing from pool ${ctx.pool.name}`);
      ctx.log.error('device metadata without a thin device; refusing to serve it', { hash: d.hash, deviceId: d.deviceId });
    }
  }
  const unreadable = ctx.faulty.size > 0 && [...ctx.faulty.keys()].some((h) => !ctx.devices.has(h));
  for (const id of inPool) {
    if (known.has(id)) continue;
    if (unreadable) {
      // An unreadable metadata file may be the one naming it: keep the data.
      ctx.log.warn('thin device without metadata kept, since some metadata is unreadable', { deviceId: id });
      continue;
    }
    ctx.log.warn('removing a thin device that no metadata names', { deviceId: id });
    await deleteThin(ctx, id);
  }
  for (const hash of ctx.faulty.keys()) ctx.devices.delete(hash);
}

/** `dmthin-MAJ:MIN-INODE` of the home directory, like the in-tree driver's `docker-` prefix: two homes never clash. */
export async function devicePrefix(home: string): Promise<string> {
  const st = await fsp.stat(home);
  const major = Math.floor(st.dev / 256) & 0xfff;
  const minor = (st.dev & 0xff) | (Math.floor(st.dev / 4096) & ~0xff);
  return `dmthin-${major}:${minor}-${st.ino}`;
}

export function configureLibdm(options: DeviceSetOptions, log: Logger): void {
  dm.setLogLevel(options.libdmLogLevel);
  if (!existsUdev()) {
    // Without udev (a plugin container, the test VM) libdevmapper makes the nodes itself.
    dm.setUdevSync(false);
    log.info('udev is not running; libdevmapper creates /dev/mapper nodes itself');
  }
}

/** libdevmapper's own test for a running udev. */
function existsUdev(): boolean {
  return existsSync('/run/udev/control');
}

/** Whether devices are removed deferred and busy ones deleted later, from dm.use_deferred_* and the kernel. */
export async function deferredSupport(options: DeviceSetOptions): Promise<{ deferredRemoval: boolean; deferredDeletion: boolean }> {
  const driver = (await dm.version()).driver.split('.').map(Number);
  const [major = 0, minor = 0] = driver;
  const supported = major > (DEFERRED_REMOVE_DRIVER[0] ?? 4) || (major === DEFERRED_REMOVE_DRIVER[0] && minor >= (DEFERRED_REMOVE_DRIVER[1] ?? 27));
  if (options.useDeferredRemoval === true && !supported) {
    throw new DmthinError('EDMOPTION', 'dm.use_deferred_removal needs kernel device-mapper 4.27 or later');
  }
  const deferredRemoval = options.useDeferredRemoval ?? supported;
  const deferredDeletion = options.useDeferredDeletion ?? deferredRemoval;
  if (deferredDeletion && !deferredRemoval) {
    throw new DmthinError('EDMOPTION', 'dm.use_deferred_deletion needs deferred removal; set dm.use_deferred_removal=true');
  }
  return { deferredRemoval, deferredDeletion };
}
