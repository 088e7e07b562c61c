// The thin-pool and thin targets: their tables, the messages a pool takes,
// and their status lines parsed into numbers. See the kernel's
// Documentation/admin-guide/device-mapper/thin-provisioning.rst.
import { DmthinError } from '../shared/errors';
import * as dm from './dm';
import type { DmTarget } from './dm';

/** Thin device ids are 24 bits wide. */
export const MAX_THIN_ID = 0xffffff;

/** Sectors are 512 bytes for device-mapper whatever the hardware says. */
export const SECTOR_SIZE = 512;

export interface ThinPoolTableOptions {
  /** sectors; 128 (64 KiB) to 2097152 (1 GiB), a multiple of 128 */
  blockSize: number;
  /** data blocks; the pool raises an event when free space falls below it */
  lowWaterMark?: number;
  skipBlockZeroing?: boolean;
  ignoreDiscard?: boolean;
  noDiscardPassdown?: boolean;
  readOnly?: boolean;
  errorIfNoSpace?: boolean;
}

/** The table line of `dmsetup create POOL --table "0 LEN thin-pool META DATA BLOCK LOWWATER [features]"`. */
export function thinPoolTable(metadataDevice: string, dataDevice: string, dataSectors: number, options: ThinPoolTableOptions): DmTarget {
  const features: string[] = [];
  if (options.skipBlockZeroing) features.push('skip_block_zeroing');
  if (options.ignoreDiscard) features.push('ignore_discard');
  if (options.noDiscardPassdown) features.push('no_discard_passdown');
  if (options.readOnly) features.push('read_only');
  if (options.errorIfNoSpace) features.push('error_if_no_space');
  const params = [metadataDevice, dataDevice, options.blockSize, options.lowWaterMark ?? 0];
  if (features.length > 0) params.push(features.length, ...features);
  return { start: 0, length: dataSectors, type: 'thin-pool', params: params.join(' ') };
}

/** The table line of `dmsetup create THIN --table "0 LEN thin POOL ID [EXTERNAL-ORIGIN]"`. */
export function thinTable(poolDevice: string, thinId: number, sectors: number, externalOrigin?: string): DmTarget {
  checkThinId(thinId);
  const params = externalOrigin === undefined ? `${poolDevice} ${thinId}` : `${poolDevice} ${thinId} ${externalOrigin}`;
  return { start: 0, length: sectors, type: 'thin', params };
}

/** `dmsetup message POOL 0 "create_thin ID"`: a new, empty thin device. */
export async function createThin(pool: string, thinId: number): Promise<void> {
  checkThinId(thinId);
  await dm.message(pool, 0, `create_thin ${thinId}`);
}

/**
 * `dmsetup message POOL 0 "create_snap ID ORIGIN"`. An active origin must
 * be suspended around it, or writes in flight may be lost to the snapshot.
 */
export async function createSnap(pool: string, thinId: number, originId: number): Promise<void> {
  checkThinId(thinId);
  checkThinId(originId);
  await dm.message(pool, 0, `create_snap ${thinId} ${originId}`);
}

/** `dmsetup message POOL 0 "delete ID"`; the device must not be active. */
export async function deleteThin(pool: string, thinId: number): Promise<void> {
  checkThinId(thinId);
  await dm.message(pool, 0, `delete ${thinId}`);
}

/**
 * `dmsetup message POOL 0 "set_transaction_id OLD NEW"`: fails with EINVAL
 * unless OLD is the pool's current id, which makes it a compare-and-swap.
 */
export async function setTransactionId(pool: string, current: number, next: number): Promise<void> {
  checkCounter(current, 'current transaction id');
  checkCounter(next, 'next transaction id');
  await dm.message(pool, 0, `set_transaction_id ${current} ${next}`);
}

/** `dmsetup message POOL 0 reserve_metadata_snap`: a consistent metadata copy for thin_ls/thin_dump. */
export async function reserveMetadataSnap(pool: string): Promise<void> {
  await dm.message(pool, 0, 'reserve_metadata_snap');
}

/** `dmsetup message POOL 0 release_metadata_snap`. */
export async function releaseMetadataSnap(pool: string): Promise<void> {
  await dm.message(pool, 0, 'release_metadata_snap');
}

export type ThinPoolMode = 'rw' | 'ro' | 'out_of_data_space';

export interface ThinPoolStatus {
  /** 'Fail' or 'Error' lines from the kernel set this and nothing else. */
  failed: boolean;
  transactionId: number;
  usedMetadataBlocks: number;
  totalMetadataBlocks: number;
  usedDataBlocks: number;
  totalDataBlocks: number;
  /** root of the reserved metadata snapshot, or null */
  heldMetadataRoot: number | null;
  mode: ThinPoolMode;
  discardPassdown: boolean;
  errorIfNoSpace: boolean;
  needsCheck: boolean;
  /** metadata blocks; absent on kernels before 4.19 */
  metadataLowWatermark: number | null;
}

/** Metadata blocks are always 4 KiB. */
export const METADATA_BLOCK_SIZE = 4096;

/** `dmsetup status POOL`, parsed. */
export async function poolStatus(pool: string): Promise<ThinPoolStatus> {
  return parseThinPoolStatus(singleTarget(pool, 'thin-pool', await dm.status(pool)).params);
}

/** Parses the params of a thin-pool status line. */
export function parseThinPoolStatus(params: string): ThinPoolStatus {
  const words = params.trim().split(/\s+/);
  if (words[0] === 'Fail' || words[0] === 'Error') {
    return {
      failed: true,
      transactionId: 0,
      usedMetadataBlocks: 0,
      totalMetadataBlocks: 0,
      usedDataBlocks: 0,
      totalDataBlocks: 0,
      heldMetadataRoot: null,
      mode: 'ro',
      discardPassdown: false,
      errorIfNoSpace: false,
      needsCheck: false,
      metadataLowWatermark: null,
    };
  }
  const [transaction, metadata, data, held, mode, discard, noSpace, needsCheck, lowWatermark] = words;
  if (needsCheck === undefined) throw badStatus('thin-pool', params);
  const [usedMetadataBlocks, totalMetadataBlocks] = fraction(metadata, 'thin-pool', params);
  const [usedDataBlocks, totalDataBlocks] = fraction(data, 'thin-pool', params);
  if (mode !== 'rw' && mode !== 'ro' && mode !== 'out_of_data_space') throw badStatus('thin-pool', params);
  return {
    failed: false,
    transactionId: counter(transaction, 'thin-pool', params),
    usedMetadataBlocks,
    totalMetadataBlocks,
    usedDataBlocks,
    totalDataBlocks,
    heldMetadataRoot: held === '-' ? null : counter(held, 'thin-pool', params),
    mode,
    discardPassdown: discard === 'discard_passdown',
    errorIfNoSpace: noSpace === 'error_if_no_space',
    needsCheck: needsCheck === 'needs_check',
    metadataLowWatermark: lowWatermark === undefined ? null : counter(lowWatermark, 'thin-pool', params),
  };
}

export interface ThinStatus {
  failed: boolean;
  /** sectors that have data blocks behind them */
  mappedSectors: number;
  /** the last mapped sector, or null when nothing is mapped */
  highestMappedSector: number | null;
}

/** `dmsetup status THIN`, parsed. */
export async function thinStatus(name: string): Promise<ThinStatus> {
  return parseThinStatus(singleTarget(name, 'thin', await dm.status(name)).params);
}

/** Parses the params of a thin status line. */
export function parseThinStatus(params: string): ThinStatus {
  const words = params.trim().split(/\s+/);
  if (words[0] === 'Fail') return { failed: true, mappedSectors: 0, highestMappedSector: null };
  const [mapped, highest] = words;
  if (highest === undefined) throw badStatus('thin', params);
  return {
    failed: false,
    mappedSectors: counter(mapped, 'thin', params),
    highestMappedSector: highest === '-' ? null : counter(highest, 'thin', params),
  };
}

function singleTarget(name: string, type: string, targets: DmTarget[]): DmTarget {
  const [target] = targets;
  if (targets.length !== 1 || target === undefined || target.type !== type) {
    const found = targets.map((t) => t.type).join(',') || 'no table';
    throw new DmthinError('EDMTYPE', `device ${name} is not a single ${type} target (found ${found})`);
  }
  return target;
}

function checkThinId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_THIN_ID) {
    throw new TypeError(`thin device id must be an integer from 0 to ${MAX_THIN_ID}, got ${String(id)}`);
  }
}

function checkCounter(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${what} must be a non-negative integer, got ${String(value)}`);
}

function counter(word: string | undefined, type: string, params: string): number {
  if (word === undefined || !/^\d+$/.test(word)) throw badStatus(type, params);
  return Number(word);
}

function fraction(word: string | undefined, type: string, params: string): [number, number] {
  const parts = word?.split('/');
  if (parts?.length !== 2) throw badStatus(type, params);
  return [counter(parts[0], type, params), counter(parts[1], type, params)];
}

function badStatus(type: string, params: string): DmthinError {
  return new DmthinError('EDMSTATUS', `cannot parse ${type} status "${params}"`);
}
