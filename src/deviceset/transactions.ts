// Pool changes and how they survive a crash. Every function here runs
// under the DeviceSet's pool lock (see deviceset.ts).
//
// Crash-safety rules, the in-tree driver's, enforced here:
// 1. Every metadata file is written atomically (shared/atomic-file.ts:
//    temp file, fsync, rename, fsync of the directory).
// 2. A pool change (a new thin id, a snapshot, a deletion) is made only
//    while <home>/metadata/transaction-metadata names it, with a
//    transaction id one above the pool's. The record is written before the
//    change and removed after the pool's transaction id is set to it.
// 3. A start that finds the record ahead of the pool's id undoes the change
//    (rollbackTransaction): it deletes the thin id the record names and the
//    device's metadata. For a creation that is a rollback; for a deletion it
//    finishes the deletion, which is why a deletion opens its transaction
//    before it discards any block.
// 4. Start-up then reconciles the rest (startup.ts): a thin id no metadata
//    names is deleted, metadata whose thin id is gone is faulty.
//
// The steps, each a failpoint `<operation>:<step>` where the crash tests
// kill the process (operation: add-device, create-device, create-base,
// delete-device):
//   creation: transaction-opened, id-chosen, [origin-suspended, snapshot-taken],
//             thin-created, record-saved, [formatted | grow-mounted, grown],
//             changed, transaction-id-set, transaction-closed
//   deletion: transaction-opened, discarded, deactivated, thin-deleted,
//             record-removed, transaction-id-set
import { thin } from '../devmapper';
import { isErrno } from '../shared/errors';
import { failpoint } from '../shared/failpoint';
import { deactivate, deleteThin, discard } from './activation';
import type { SetContext } from './context';
import type { DeviceRecord } from './metadata';

/** The creations that run as a transaction, as their failpoints name them. */
export type CreateOperation = 'add-device' | 'create-device' | 'create-base';

/**
 * Records the creation about to be made, makes it, then bumps the pool's
 * transaction id; a failure undoes it. The record joins the set at the end.
 */
export async function inTransaction(ctx: SetContext, operation: CreateOperation, record: DeviceRecord, change: () => Promise<void>): Promise<void> {
  const next = ctx.transactionId + 1;
  record.transactionId = next;
  await ctx.store.saveTransaction({ openTransactionId: next, deviceHash: record.hash, deviceId: record.deviceId });
  failpoint(`${operation}:transaction-opened`);
  let done = false;
  try {
    await change();
    failpoint(`${operation}:changed`);
    await thin.setTransactionId(ctx.pool.name, ctx.transactionId, next);
    ctx.transactionId = next;
    failpoint(`${operation}:transaction-id-set`);
    done = true;
  } finally {
    if (!done) await undoCreate(ctx, record);
  }
  await ctx.store.removeTransaction();
  failpoint(`${operation}:transaction-closed`);
  ctx.devices.set(record.hash, record);
}

/** Undo of a create that failed before its transaction closed. */
async function undoCreate(ctx: SetContext, record: DeviceRecord): Promise<void> {
  try {
    await deactivate(ctx.deviceName(record.hash), false);
    if (record.deviceId !== 0) await deleteThin(ctx, record.deviceId);
    await ctx.store.removeDevice(record.hash);
    if (record.deviceId !== 0) ctx.ids.release(record.deviceId);
    await ctx.store.removeTransaction();
  } catch (err) {
    ctx.log.error('cannot undo a failed create; the next start rolls it back', { hash: record.hash, err: String(err) });
  }
}

/** Takes a free id, records it in the open transaction and makes the thin device; ids the pool already has (EEXIST) are stepped over. */
export async function createThinWithFreeId(ctx: SetContext, operation: CreateOperation, record: DeviceRecord, create: (id: number) => Promise<void>): Promise<void> {
  for (;;) {
    record.deviceId = ctx.ids.allocate();
    await ctx.store.saveTransaction({ openTransactionId: record.transactionId, deviceHash: record.hash, deviceId: record.deviceId });
    failpoint(`${operation}:id-chosen`);
    try {
      await create(record.deviceId);
      failpoint(`${operation}:thin-created`);
      return;
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) {
        ctx.ids.release(record.deviceId);
        record.deviceId = 0;
        throw err;
      }
      ctx.log.warn('thin id exists in the pool but no metadata names it; skipping it', { deviceId: record.deviceId });
    }
  }
}

/**
 * Deletes a device in a transaction. A device still open somewhere (a
 * leaked mount), with deferred deletion on and syncDelete not asked, is
 * marked deleted instead and left to deferred-deletion.ts.
 */
export async function deleteInTransaction(ctx: SetContext, record: DeviceRecord, syncDelete: boolean, discardBlocks: boolean): Promise<void> {
  const name = ctx.deviceName(record.hash);
  // The transaction opens before the discard: a restart after a crash at
  // any later step finishes the deletion instead of serving a device
  // whose blocks are already gone.
  const next = ctx.transactionId + 1;
  await ctx.store.saveTransaction({ openTransactionId: next, deviceHash: record.hash, deviceId: record.deviceId });
  failpoint('delete-device:transaction-opened');
  if (discardBlocks) await discard(ctx, record);
  failpoint('delete-device:discarded');
  const deferred = ctx.deferredRemoval && ctx.deferredDeletion && !syncDelete;
  try {
    await deactivate(name, deferred);
  } catch (err) {
    await ctx.store.removeTransaction();
    throw err;
  }
  failpoint('delete-device:deactivated');
  try {
    await deleteThin(ctx, record.deviceId);
    failpoint('delete-device:thin-deleted');
  } catch (err) {
    if (!(isErrno(err, 'EBUSY') && deferred)) {
      await ctx.store.removeTransaction();
      throw err;
    }
    // Still open somewhere (a leaked mount): delete it later, from the background and after restarts.
    record.deleted = true;
    await ctx.store.saveDevice(record);
    await ctx.store.removeTransaction();
    ctx.log.info('device busy; deletion deferred', { hash: record.hash });
    return;
  }
  await ctx.store.removeDevice(record.hash);
  failpoint('delete-device:record-removed');
  await thin.setTransactionId(ctx.pool.name, ctx.transactionId, next);
  ctx.transactionId = next;
  failpoint('delete-device:transaction-id-set');
  await ctx.store.removeTransaction();
  ctx.devices.delete(record.hash);
  ctx.ids.release(record.deviceId);
}

/** Start-up: undoes (or, for a deletion, finishes) the pool change a killed process left open. */
export async function rollbackTransaction(ctx: SetContext): Promise<void> {
  const tx = await ctx.store.loadTransaction();
  if (tx === null) return;
  if (tx.openTransactionId > ctx.transactionId) {
    ctx.log.warn('rolling back a pool change that did not finish', { hash: tx.deviceHash, deviceId: tx.deviceId });
    if (tx.deviceId !== 0) await deleteThin(ctx, tx.deviceId);
    ctx.devices.delete(tx.deviceHash);
    await ctx.store.removeDevice(tx.deviceHash);
  }
  await ctx.store.removeTransaction();
}
