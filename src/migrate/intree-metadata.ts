// Reads what Docker's in-tree devicemapper driver (moby up to v24; the
// reference is v20.10.24's daemon/graphdriver/devmapper/deviceset.go)
// keeps under <data-root>/devicemapper/metadata/, for `dmthin migrate`:
//   <hash>                one JSON file per device ("base" for the base device)
//   deviceset-metadata    next free device id, base device UUID and filesystem
//   transaction-metadata  the last pool change it opened
// Each file is checked against a schema. A field the schema does not know
// is reported, never dropped silently: it may mean a driver version whose
// state dmthin would not carry over.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type JSONSchemaType, type ValidateFunction } from 'ajv';
import { MAX_THIN_ID } from '../devmapper/thin';
import type { DeviceRecord } from '../deviceset/metadata';
import { DmthinError } from '../shared/errors';

export const SET_FILE = 'deviceset-metadata';
export const TRANSACTION_FILE = 'transaction-metadata';
export const BASE_FILE = 'base';
/** The pre-1.x single-file format, which dockerd converts (to json.migrated) when it starts. */
const OLD_FORMAT_FILE = 'json';

interface DeviceJson {
  device_id: number;
  size: number;
  transaction_id: number;
  initialized: boolean;
  deleted?: boolean;
}

interface SetJson {
  next_device_id: number;
  BaseDeviceUUID?: string;
  BaseDeviceFilesystem?: string;
}

interface TransactionJson {
  open_transaction_id: number;
  device_hash: string;
  device_id: number;
}

const ajv = new Ajv({ allErrors: true });

const deviceSchema: JSONSchemaType<DeviceJson> = {
  type: 'object',
  properties: {
    device_id: { type: 'integer', minimum: 0 },
    size: { type: 'integer', minimum: 0 },
    transaction_id: { type: 'integer', minimum: 0 },
    initialized: { type: 'boolean' },
    // Files older than deferred deletion (moby 1.10) have no such field.
    deleted: { type: 'boolean', nullable: true },
  },
  required: ['device_id', 'size', 'transaction_id', 'initialized'],
};

const setSchema: JSONSchemaType<SetJson> = {
  type: 'object',
  properties: {
    next_device_id: { type: 'integer', minimum: 0 },
    BaseDeviceUUID: { type: 'string', nullable: true },
    BaseDeviceFilesystem: { type: 'string', nullable: true },
  },
  required: ['next_device_id'],
};

const transactionSchema: JSONSchemaType<TransactionJson> = {
  type: 'object',
  properties: {
    open_transaction_id: { type: 'integer', minimum: 0 },
    device_hash: { type: 'string' },
    device_id: { type: 'integer', minimum: 0 },
  },
  required: ['open_transaction_id', 'device_hash', 'device_id'],
};

const validateDevice = ajv.compile(deviceSchema);
const validateSet = ajv.compile(setSchema);
const validateTransaction = ajv.compile(transactionSchema);

/**
 * A device as the in-tree driver recorded it; hash '' is the base device.
 * dmthin's records keep its fields, and add only a device's own filesystem.
 */
export type InTreeDevice = Omit<DeviceRecord, 'filesystem'>;

export interface InTreeMetadata {
  /** the metadata directory read */
  dir: string;
  devices: InTreeDevice[];
  nextDeviceId: number;
  baseDeviceUuid: string;
  baseDeviceFilesystem: string;
  /** null: no transaction-metadata file */
  transaction: { openTransactionId: number; deviceHash: string; deviceId: number } | null;
  /** "file: field name" for every field no schema knows */
  unknownFields: string[];
  /** files that are not valid metadata, with why */
  unreadable: { file: string; reason: string }[];
}

/** The in-tree driver's home in a dockerd data root. */
export function inTreeHome(dataRoot: string): string {
  return path.join(dataRoot, 'devicemapper');
}

/**
 * Reads <home>/metadata. Throws ENOTDEVICEMAPPER when the directory or
 * deviceset-metadata is missing (not a devicemapper data root, or one
 * that never finished starting), EOLDFORMAT for the pre-1.x format.
 */
export function readInTreeMetadata(home: string): InTreeMetadata {
  const dir = path.join(home, 'metadata');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new DmthinError('ENOTDEVICEMAPPER', `${home} is not the home of Docker's devicemapper driver: ${dir} cannot be read (${(err as Error).message})`, { cause: err });
  }
  if (names.includes(OLD_FORMAT_FILE) || existsIn(path.join(home, 'devicemapper'), OLD_FORMAT_FILE)) {
    throw new DmthinError('EOLDFORMAT', `${home} holds the pre-1.x devicemapper metadata (devicemapper/json): start dockerd 20.10 on it once, which converts it, then stop it and migrate`);
  }
  if (!names.includes(SET_FILE)) {
    throw new DmthinError('ENOTDEVICEMAPPER', `${home} is not the home of Docker's devicemapper driver: ${path.join(dir, SET_FILE)} is missing`);
  }
  const result: InTreeMetadata = {
    dir,
    devices: [],
    nextDeviceId: 0,
    baseDeviceUuid: '',
    baseDeviceFilesystem: '',
    transaction: null,
    unknownFields: [],
    unreadable: [],
  };
  const set = parseFile(dir, SET_FILE, validateSet, setSchema.properties, result);
  if (set === null) {
    const reason = result.unreadable.find((u) => u.file === SET_FILE)?.reason ?? '';
    throw new DmthinError('EMETADATA', `${path.join(dir, SET_FILE)} is not valid devicemapper metadata: ${reason}`);
  }
  result.nextDeviceId = set.next_device_id;
  result.baseDeviceUuid = set.BaseDeviceUUID ?? '';
  result.baseDeviceFilesystem = set.BaseDeviceFilesystem ?? '';
  for (const name of names.sort()) {
    // What the in-tree driver skips when it loads: temp files, converted old files, the two set files.
    if (name.startsWith('.') || name.endsWith('.migrated') || name === SET_FILE) continue;
    if (name === TRANSACTION_FILE) {
      const tx = parseFile(dir, name, validateTransaction, transactionSchema.properties, result);
      if (tx !== null) result.transaction = { openTransactionId: tx.open_transaction_id, deviceHash: tx.device_hash, deviceId: tx.device_id };
      continue;
    }
    const device = parseFile(dir, name, validateDevice, deviceSchema.properties, result);
    if (device === null) continue;
    if (device.device_id > MAX_THIN_ID) {
      result.unreadable.push({ file: name, reason: `device_id ${device.device_id} is above the 24-bit limit ${MAX_THIN_ID}` });
      continue;
    }
    result.devices.push({
      hash: name === BASE_FILE ? '' : name,
      deviceId: device.device_id,
      size: device.size,
      transactionId: device.transaction_id,
      initialized: device.initialized,
      deleted: device.deleted ?? false,
    });
  }
  return result;
}

function parseFile<T>(dir: string, name: string, validate: ValidateFunction<T>, known: object, into: InTreeMetadata): T | null {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as unknown;
  } catch (err) {
    into.unreadable.push({ file: name, reason: (err as Error).message });
    return null;
  }
  if (!validate(json)) {
    const reason = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`).join('; ');
    into.unreadable.push({ file: name, reason });
    return null;
  }
  for (const field of Object.keys(json as object)) {
    if (!Object.hasOwn(known, field)) into.unknownFields.push(`${name}: ${field}`);
  }
  return json;
}

function existsIn(dir: string, name: string): boolean {
  try {
    return readdirSync(dir).includes(name);
  } catch {
    return false;
  }
}
