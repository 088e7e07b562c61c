// Thin devices in the kernel: activating one (a dm device over its thin
// id), deactivating it, discarding its blocks, snapshotting it and
// deleting its thin id. No metadata is written here; callers hold the
// device's lock, and the pool lock for the pool messages (see deviceset.ts).
import { blockdev, dm, thin } from '../devmapper';
import { isErrno } from '../shared/errors';
import { failpoint } from '../shared/failpoint';
import type { SetContext } from './context';
import type { DeviceRecord } from './metadata';

const EBUSY_RETRIES = 50;
const EBUSY_RETRY_MS = 100;

/** `dmsetup create` of the device over its thin id; an active one is kept, and a pending deferred removal cancelled. */
export async function activate(ctx: SetContext, record: DeviceRecord): Promise<void> {
  const name = ctx.deviceName(record.hash);
  const info = await dm.info(name);
  if (info.exists) {
    // A pending deferred removal would take it away under the new user.
    if (info.deferredRemove === true) await dm.message(name, 0, '@cancel_deferred_remove');
    return;
  }
  await dm.create(name, [thin.thinTable(ctx.pool.path, record.deviceId, record.size / 512)]);
}

/** `dmsetup remove`, retried while busy, or deferred to the last close. Missing devices are fine. */
export async function deactivate(name: string, deferred: boolean): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await dm.remove(name, { deferred });
      return;
    } catch (err) {
      if (isErrno(err, 'ENXIO')) return;
      if (!isErrno(err, 'EBUSY') || attempt >= EBUSY_RETRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, EBUSY_RETRY_MS));
    }
  }
}

/** Discards every block of a device nobody has open; a failure is logged, never fatal (the deletion goes on). */
export async function discard(ctx: SetContext, record: DeviceRecord): Promise<void> {
  try {
    await activate(ctx, record);
    const name = ctx.deviceName(record.hash);
    if ((await dm.info(name)).openCount !== 0) return;
    const device = dm.devicePath(name);
    await blockdev.discard(device, 0, await blockdev.size(device));
  } catch (err) {
    ctx.log.warn('discard failed; deleting anyway', { hash: record.hash, err: String(err) });
  }
}

/** create_snap of an origin; an active origin is suspended around it so no write in flight is lost. */
export async function snapshot(ctx: SetContext, origin: DeviceRecord, id: number): Promise<void> {
  const name = ctx.deviceName(origin.hash);
  const active = (await dm.info(name)).exists;
  if (active) await dm.suspend(name);
  try {
    failpoint('add-device:origin-suspended');
    await thin.createSnap(ctx.pool.name, id, origin.deviceId);
    failpoint('add-device:snapshot-taken');
  } finally {
    if (active) await dm.resume(name);
  }
}

/** `delete ID`; a thin id the pool does not have (ENODATA) counts as deleted. */
export async function deleteThin(ctx: SetContext, id: number): Promise<void> {
  try {
    await thin.deleteThin(ctx.pool.name, id);
  } catch (err) {
    if (!isErrno(err, 'ENODATA')) throw err;
  }
}

/**
 * Deactivates every device of this set but those named in `except`. One
 * still open elsewhere (a running container's mount namespace) is left to
 * deferred removal, or active, rather than failing the start or the shutdown.
 */
export async function deactivateAll(ctx: SetContext, except: ReadonlySet<string> = new Set()): Promise<void> {
  const ours = (await dm.list()).filter((d) => ctx.isOwnDevice(d.name) && !except.has(d.name));
  for (const d of ours) {
    try {
      await dm.remove(d.name, { deferred: ctx.deferredRemoval });
    } catch (err) {
      if (!isErrno(err, 'ENXIO')) ctx.log.warn('device still in use; left active', { device: d.name, err: String(err) });
    }
  }
}
