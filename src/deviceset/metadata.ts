// What the DeviceSet keeps on disk, in the in-tree driver's layout and
// JSON field names, so that its files read the same:
//   <home>/metadata/<hash>                one file per device ("base" for the base device)
//   <home>/metadata/deviceset-metadata    the set's own record
//   <home>/metadata/transaction-metadata  the pool change in flight, if any
// Every write is atomic (see atomic.ts).
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { DmthinError } from '../shared/errors';
import { MAX_THIN_ID } from '../devmapper/thin';
import { readJsonFile, removeFileDurably, writeFileAtomic } from '../shared/atomic-file';
import type { FsType } from './filesystem';

export const BASE_HASH = '';
const BASE_FILE = 'base';
const SET_FILE = 'deviceset-metadata';
const TRANSACTION_FILE = 'transaction-metadata';

/** A device as the set knows it. */
export interface DeviceRecord {
  hash: string;
  deviceId: number;
  /** bytes */
  size: number;
  transactionId: number;
  initialized: boolean;
  /** marked for deferred deletion: the pool still has it */
  deleted: boolean;
  /** a device made with its own filesystem (a thin volume); null: the base device's */
  filesystem: FsType | null;
}

export interface SetRecord {
  nextDeviceId: number;
  baseDeviceUuid: string;
  baseDeviceFilesystem: string;
}

export interface TransactionRecord {
  openTransactionId: number;
  deviceHash: string;
  deviceId: number;
}

/** A metadata file that could not be read: reported, never silently dropped. */
export interface UnreadableRecord {
  file: string;
  reason: string;
}

const HASH_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** Ids come from dockerd (64 hex digits, maybe with -init); refuse anything that is not a plain file name. */
export function checkHash(hash: string): void {
  if (hash === BASE_HASH) return;
  if (!HASH_PATTERN.test(hash) || hash === BASE_FILE || hash === SET_FILE || hash === TRANSACTION_FILE) {
    throw new DmthinError('EINVALIDID', `invalid device id ${JSON.stringify(hash.slice(0, 120))}: use 1 to 100 letters, digits, '_', '.', '-'`);
  }
}

export class MetadataStore {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  private deviceFile(hash: string): string {
    return path.join(this.dir, hash === BASE_HASH ? BASE_FILE : hash);
  }

  async saveDevice(record: DeviceRecord): Promise<void> {
    const json = {
      device_id: record.deviceId,
      size: record.size,
      transaction_id: record.transactionId,
      initialized: record.initialized,
      deleted: record.deleted,
      // dmthin's own field; absent for layers, so their files read as the in-tree driver's.
      ...(record.filesystem === null ? {} : { filesystem: record.filesystem }),
    };
    await writeFileAtomic(this.deviceFile(record.hash), JSON.stringify(json));
  }

  async removeDevice(hash: string): Promise<void> {
    await removeFileDurably(this.deviceFile(hash));
  }

  /**
   * Every device file; files that do not parse are returned apart, and
   * leftover temp files are removed. Runs once, at start-up, before
   * anything is served: synchronous reads there are several times faster
   * than a thousand trips through the thread pool.
   */
  async loadDevices(): Promise<{ devices: DeviceRecord[]; unreadable: UnreadableRecord[] }> {
    const devices: DeviceRecord[] = [];
    const unreadable: UnreadableRecord[] = [];
    for (const name of await fsp.readdir(this.dir)) {
      if (name.startsWith('.tmp-')) {
        await fsp.rm(path.join(this.dir, name), { force: true });
        continue;
      }
      if (name.startsWith('.') || name === SET_FILE || name === TRANSACTION_FILE) continue;
      const hash = name === BASE_FILE ? BASE_HASH : name;
      try {
        devices.push(parseDevice(hash, JSON.parse(readFileSync(path.join(this.dir, name), 'utf8')) as unknown));
      } catch (err) {
        unreadable.push({ file: name, reason: err instanceof Error ? err.message : String(err) });
      }
    }
    return { devices, unreadable };
  }

  async loadSet(): Promise<SetRecord | null> {
    const json = await readJsonFile(path.join(this.dir, SET_FILE));
    if (json === null) return null;
    const o = asObject(json, SET_FILE);
    return {
      nextDeviceId: typeof o['next_device_id'] === 'number' ? o['next_device_id'] : 0,
      baseDeviceUuid: typeof o['BaseDeviceUUID'] === 'string' ? o['BaseDeviceUUID'] : '',
      baseDeviceFilesystem: typeof o['BaseDeviceFilesystem'] === 'string' ? o['BaseDeviceFilesystem'] : '',
    };
  }

  async saveSet(record: SetRecord): Promise<void> {
    const json = {
      next_device_id: record.nextDeviceId,
      BaseDeviceUUID: record.baseDeviceUuid,
      BaseDeviceFilesystem: record.baseDeviceFilesystem,
    };
    await writeFileAtomic(path.join(this.dir, SET_FILE), JSON.stringify(json));
  }

  async loadTransaction(): Promise<TransactionRecord | null> {
    const json = await readJsonFile(path.join(this.dir, TRANSACTION_FILE));
    if (json === null) return null;
    const o = asObject(json, TRANSACTION_FILE);
    const openTransactionId = o['open_transaction_id'];
    const deviceHash = o['device_hash'];
    const deviceId = o['device_id'];
    if (typeof openTransactionId !== 'number' || typeof deviceHash !== 'string' || typeof deviceId !== 'number') {
      throw new DmthinError('EMETADATA', `${TRANSACTION_FILE} is malformed`);
    }
    return { openTransactionId, deviceHash, deviceId };
  }

  async saveTransaction(record: TransactionRecord): Promise<void> {
    const json = { open_transaction_id: record.openTransactionId, device_hash: record.deviceHash, device_id: record.deviceId };
    await writeFileAtomic(path.join(this.dir, TRANSACTION_FILE), JSON.stringify(json));
  }

  async removeTransaction(): Promise<void> {
    await removeFileDurably(path.join(this.dir, TRANSACTION_FILE));
  }
}

function asObject(json: unknown, what: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new DmthinError('EMETADATA', `${what} is not a JSON object`);
  }
  return json as Record<string, unknown>;
}

function parseDevice(hash: string, json: unknown): DeviceRecord {
  const o = asObject(json, hash || BASE_FILE);
  const deviceId = o['device_id'];
  const size = o['size'];
  if (typeof deviceId !== 'number' || !Number.isInteger(deviceId) || deviceId < 0 || deviceId > MAX_THIN_ID) {
    throw new DmthinError('EMETADATA', 'device_id is missing or out of range');
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) {
    throw new DmthinError('EMETADATA', 'size is missing or not a positive integer');
  }
  return {
    hash,
    deviceId,
    size,
    transactionId: typeof o['transaction_id'] === 'number' ? o['transaction_id'] : 0,
    initialized: o['initialized'] === true,
    deleted: o['deleted'] === true,
    filesystem: o['filesystem'] === 'ext4' || o['filesystem'] === 'xfs' ? o['filesystem'] : null,
  };
}
