// The base device: the empty filesystem every layer is a snapshot of.
// Made once (with an empty rootfs/ in it, so no layer shows lost+found),
// then checked at every start against what the set recorded (the same
// filesystem UUID: the same pool), and grown when dm.basesize grows.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { dm, thin } from '../devmapper';
import { DmthinError } from '../shared/errors';
import type { Mutex } from '../shared/lock';
import { activate, deactivate } from './activation';
import type { SetContext } from './context';
import { defaultFilesystem, filesystemUuid, growFilesystem, makeFilesystem, probeFilesystem } from './filesystem';
import { BASE_HASH, type DeviceRecord } from './metadata';
import { withTemporaryMount } from './mounts';
import { createThinWithFreeId, deleteInTransaction, inTransaction } from './transactions';

/** Start-up, after loadSet: finishes or makes the base device, or checks the one there. */
export async function setupBaseDevice(ctx: SetContext, poolLock: Mutex): Promise<void> {
  const base = ctx.devices.get(BASE_HASH);
  if (base !== undefined && (!base.initialized || base.deleted)) {
    ctx.log.warn('recreating a base device that was never finished');
    await poolLock.run(() => deleteInTransaction(ctx, base, true, ctx.options.blkDiscard));
  }
  if (!ctx.devices.has(BASE_HASH)) {
    if (ctx.faulty.has('base') || ctx.faulty.has(BASE_HASH)) throw new DmthinError('EFAULTY', 'the base device is faulty; see the logs');
    await poolLock.run(() => createBaseDevice(ctx));
    return;
  }
  await verifyBaseDevice(ctx);
}

/** The set's record, with the highest device id in use. */
export async function saveSetRecord(ctx: SetContext): Promise<void> {
  const next = Math.max(0, ...[...ctx.devices.values()].map((d) => d.deviceId));
  ctx.setRecord = { ...ctx.setRecord, nextDeviceId: next };
  await ctx.store.saveSet(ctx.setRecord);
}

async function createBaseDevice(ctx: SetContext): Promise<void> {
  ctx.fsType = ctx.options.fs ?? (await defaultFilesystem());
  const record: DeviceRecord = { hash: BASE_HASH, deviceId: 0, size: ctx.options.baseSize, transactionId: 0, initialized: false, deleted: false, filesystem: null };
  await inTransaction(ctx, 'create-base', record, async () => {
    await createThinWithFreeId(ctx, 'create-base', record, (id) => thin.createThin(ctx.pool.name, id));
    await ctx.store.saveDevice(record);
    const name = ctx.deviceName(BASE_HASH);
    await activate(ctx, record);
    try {
      await makeFilesystem(dm.devicePath(name), ctx.fsType, ctx.options.mkfsArgs);
      // Every layer inherits rootfs/ from the base, so no container sees lost+found.
      await withTemporaryMount(ctx, record, async (dir) => fsp.mkdir(path.join(dir, 'rootfs'), { mode: 0o755 }));
      ctx.setRecord = { ...ctx.setRecord, baseDeviceUuid: await filesystemUuid(dm.devicePath(name)), baseDeviceFilesystem: ctx.fsType };
    } finally {
      await deactivate(name, false);
    }
    record.initialized = true;
    await ctx.store.saveDevice(record);
  });
  await saveSetRecord(ctx);
  ctx.log.info('created the base device', { fs: ctx.fsType, size: record.size, uuid: ctx.setRecord.baseDeviceUuid });
}

async function verifyBaseDevice(ctx: SetContext): Promise<void> {
  const base = ctx.devices.get(BASE_HASH);
  if (base === undefined) throw new DmthinError('ENOENT', 'unknown device base');
  const name = ctx.deviceName(BASE_HASH);
  await activate(ctx, base);
  try {
    const device = dm.devicePath(name);
    const uuid = await filesystemUuid(device);
    if (ctx.setRecord.baseDeviceUuid === '') {
      ctx.setRecord = { ...ctx.setRecord, baseDeviceUuid: uuid };
    } else if (uuid !== ctx.setRecord.baseDeviceUuid) {
      throw new DmthinError(
        'EBASEUUID',
        `base device UUID ${uuid} does not match the recorded ${ctx.setRecord.baseDeviceUuid}: this looks like a different thin pool than last time`,
      );
    }
    const probed = await probeFilesystem(device);
    if (probed === null) throw new DmthinError('ENOFS', `base device ${name} has no ext4 or xfs filesystem`);
    if (ctx.setRecord.baseDeviceFilesystem !== '' && probed !== ctx.setRecord.baseDeviceFilesystem) {
      throw new DmthinError('EBASEFS', `base device filesystem is ${probed}, but ${ctx.setRecord.baseDeviceFilesystem} was recorded`);
    }
    if (ctx.options.fs !== null && ctx.options.fs !== probed) {
      ctx.log.warn('dm.fs differs from the existing base device; keeping the base device filesystem', { asked: ctx.options.fs, actual: probed });
    }
    ctx.fsType = probed;
    ctx.setRecord = { ...ctx.setRecord, baseDeviceFilesystem: probed };
    if (ctx.options.baseSizeSet && ctx.options.baseSize !== base.size) await growBase(ctx, base);
  } finally {
    await deactivate(name, false);
  }
  await saveSetRecord(ctx);
}

async function growBase(ctx: SetContext, base: DeviceRecord): Promise<void> {
  if (ctx.options.baseSize < base.size) {
    throw new DmthinError('EBASESIZE', `dm.basesize ${ctx.options.baseSize} is smaller than the base device's ${base.size} bytes; it can only grow`);
  }
  const grown = { ...base, size: ctx.options.baseSize };
  await deactivate(ctx.deviceName(BASE_HASH), false);
  await activate(ctx, grown);
  await withTemporaryMount(ctx, grown, (dir) => growFilesystem(dm.devicePath(ctx.deviceName(BASE_HASH)), dir, ctx.fsType));
  await ctx.store.saveDevice(grown);
  ctx.devices.set(BASE_HASH, grown);
  ctx.log.info('grew the base device', { size: grown.size });
}
