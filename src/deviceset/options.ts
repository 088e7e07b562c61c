// The in-tree devicemapper driver's storage options (`--storage-opt dm.*`),
// with its names, defaults and checks, so a daemon.json written for
// Docker's driver keeps working. dmthin adds checks where Docker's let a
// bad value through to the kernel (dm.blocksize).
import { DmthinError } from '../errors';

const GiB = 1024 * 1024 * 1024;

export interface DirectLvmOptions {
  device: string;
  force: boolean;
  thinpPercent: number;
  thinpMetaPercent: number;
  autoextendThreshold: number;
  autoextendPercent: number;
}

export interface DeviceSetOptions {
  /** bytes */
  baseSize: number;
  baseSizeSet: boolean;
  /** bytes */
  loopDataSize: number;
  /** bytes */
  loopMetadataSize: number;
  /** null: xfs when available, else ext4 */
  fs: 'ext4' | 'xfs' | null;
  mkfsArgs: string[];
  mountOptions: string[];
  dataDevice: string | null;
  metadataDevice: string | null;
  /** a pool's dm name, without /dev/mapper/ */
  thinPoolDevice: string | null;
  /** sectors */
  blockSize: number;
  blkDiscard: boolean;
  overrideUdevSyncCheck: boolean;
  /** null: on when the kernel supports it */
  useDeferredRemoval: boolean | null;
  useDeferredDeletion: boolean | null;
  minFreeSpacePercent: number;
  xfsNospaceMaxRetries: number | null;
  libdmLogLevel: number;
  directLvm: DirectLvmOptions | null;
}

export const DEFAULT_OPTIONS: Readonly<DeviceSetOptions> = Object.freeze({
  baseSize: 10 * GiB,
  baseSizeSet: false,
  loopDataSize: 100 * GiB,
  loopMetadataSize: 2 * GiB,
  fs: null,
  mkfsArgs: [],
  mountOptions: [],
  dataDevice: null,
  metadataDevice: null,
  thinPoolDevice: null,
  blockSize: 128,
  blkDiscard: true,
  overrideUdevSyncCheck: false,
  useDeferredRemoval: null,
  useDeferredDeletion: null,
  minFreeSpacePercent: 10,
  xfsNospaceMaxRetries: null,
  libdmLogLevel: 2,
  directLvm: null,
});

export const OPTION_NAMES: readonly string[] = [
  'dm.basesize',
  'dm.loopdatasize',
  'dm.loopmetadatasize',
  'dm.fs',
  'dm.mkfsarg',
  'dm.mountopt',
  'dm.datadev',
  'dm.metadatadev',
  'dm.thinpooldev',
  'dm.blocksize',
  'dm.blkdiscard',
  'dm.override_udev_sync_check',
  'dm.use_deferred_removal',
  'dm.use_deferred_deletion',
  'dm.min_free_space',
  'dm.xfs_nospace_max_retries',
  'dm.libdm_log_level',
  'dm.directlvm_device',
  'dm.directlvm_device_force',
  'dm.thinp_percent',
  'dm.thinp_metapercent',
  'dm.thinp_autoextend_threshold',
  'dm.thinp_autoextend_percent',
];

const MIN_BLOCK_SECTORS = 128; // 64 KiB, the kernel's thin-pool limits
const MAX_BLOCK_SECTORS = 2097152; // 1 GiB

function fail(message: string): never {
  throw new DmthinError('EDMOPTION', message);
}

/** Parses `key=value` entries; keys are case-insensitive, later entries win, repeatable ones append. */
export function parseOptions(entries: readonly string[]): DeviceSetOptions {
  const o: DeviceSetOptions = { ...DEFAULT_OPTIONS, mkfsArgs: [], mountOptions: [] };
  let blkDiscardSet = false;
  const lvm = { device: '', force: false, thinpPercent: 95, thinpMetaPercent: 1, autoextendThreshold: 80, autoextendPercent: 20, percentsGiven: 0 };

  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0) fail(`storage option ${JSON.stringify(entry)} must be key=value`);
    const key = entry.slice(0, eq).trim().toLowerCase();
    const value = entry.slice(eq + 1);
    if (value.includes('\0')) fail(`storage option ${key} must not contain NUL bytes`);
    switch (key) {
      case 'dm.basesize':
        o.baseSize = sizeOption(key, value);
        o.baseSizeSet = true;
        break;
      case 'dm.loopdatasize':
        o.loopDataSize = sizeOption(key, value);
        break;
      case 'dm.loopmetadatasize':
        o.loopMetadataSize = sizeOption(key, value);
        break;
      case 'dm.fs':
        if (value !== 'ext4' && value !== 'xfs') fail(`unsupported filesystem ${value} for dm.fs (ext4 or xfs)`);
        o.fs = value;
        break;
      case 'dm.mkfsarg':
        o.mkfsArgs.push(value);
        break;
      case 'dm.mountopt':
        o.mountOptions.push(value);
        break;
      case 'dm.datadev':
        o.dataDevice = pathOption(key, value);
        break;
      case 'dm.metadatadev':
        o.metadataDevice = pathOption(key, value);
        break;
      case 'dm.thinpooldev': {
        const name = value.startsWith('/dev/mapper/') ? value.slice('/dev/mapper/'.length) : value;
        if (name === '' || name.includes('/')) fail(`dm.thinpooldev must name a device-mapper pool, got ${JSON.stringify(value)}`);
        o.thinPoolDevice = name;
        break;
      }
      case 'dm.blocksize': {
        const sectors = Math.floor(sizeOption(key, value) / 512);
        if (sectors < MIN_BLOCK_SECTORS || sectors > MAX_BLOCK_SECTORS || sectors % MIN_BLOCK_SECTORS !== 0) {
          fail(`dm.blocksize ${value} must be a multiple of 64K from 64K to 1G`);
        }
        o.blockSize = sectors;
        break;
      }
      case 'dm.blkdiscard':
        o.blkDiscard = boolOption(key, value);
        blkDiscardSet = true;
        break;
      case 'dm.override_udev_sync_check':
        o.overrideUdevSyncCheck = boolOption(key, value);
        break;
      case 'dm.use_deferred_removal':
        o.useDeferredRemoval = boolOption(key, value);
        break;
      case 'dm.use_deferred_deletion':
        o.useDeferredDeletion = boolOption(key, value);
        break;
      case 'dm.min_free_space': {
        if (!value.endsWith('%')) fail(`dm.min_free_space ${JSON.stringify(value)} needs a % suffix, as in 10%`);
        const pct = uintOption(key, value.slice(0, -1));
        if (pct >= 100) fail(`invalid value ${value} for dm.min_free_space: it must be below 100%`);
        o.minFreeSpacePercent = pct;
        break;
      }
      case 'dm.xfs_nospace_max_retries':
        o.xfsNospaceMaxRetries = uintOption(key, value);
        break;
      case 'dm.libdm_log_level': {
        const level = uintOption(key, value);
        if (level < 2 || level > 7) fail(`dm.libdm_log_level must be in range [2,7], got ${value}`);
        o.libdmLogLevel = level;
        break;
      }
      case 'dm.directlvm_device':
        lvm.device = pathOption(key, value);
        break;
      case 'dm.directlvm_device_force':
        lvm.force = boolOption(key, value);
        break;
      case 'dm.thinp_percent':
        lvm.thinpPercent = percentOption(key, value, false);
        lvm.percentsGiven |= 1;
        break;
      case 'dm.thinp_metapercent':
        lvm.thinpMetaPercent = percentOption(key, value, false);
        lvm.percentsGiven |= 2;
        break;
      case 'dm.thinp_autoextend_threshold':
        lvm.autoextendThreshold = percentOption(key, value, true);
        break;
      case 'dm.thinp_autoextend_percent':
        lvm.autoextendPercent = percentOption(key, value, true);
        break;
      default:
        fail(`unknown storage option ${key}`);
    }
  }

  // Discarding blocks of someone else's device is their call, as in the in-tree driver.
  if (!blkDiscardSet && (o.dataDevice !== null || o.thinPoolDevice !== null)) o.blkDiscard = false;
  if (o.useDeferredDeletion === true && o.useDeferredRemoval === false) {
    fail('dm.use_deferred_deletion=true needs deferred removal; do not set dm.use_deferred_removal=false');
  }
  if (lvm.device !== '') {
    if (o.thinPoolDevice !== null) fail('dm.directlvm_device cannot be combined with dm.thinpooldev');
    if (lvm.percentsGiven === 1 || lvm.percentsGiven === 2) fail('dm.thinp_percent and dm.thinp_metapercent must be given together');
    if (lvm.thinpPercent + lvm.thinpMetaPercent > 100) fail('dm.thinp_percent and dm.thinp_metapercent add up to more than 100');
    const { percentsGiven: _unused, ...directLvm } = lvm;
    o.directLvm = directLvm;
  }
  return o;
}

/** Docker's units.RAMInBytes: 10G, 10GB, 10g, 10GiB, 1.5G, 4096; multipliers of 1024. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text);
  if (m === null) throw new DmthinError('EDMOPTION', `invalid size ${JSON.stringify(text)}`);
  const power = m[2] === undefined ? 0 : 'kmgtp'.indexOf(m[2].toLowerCase()) + 1;
  const bytes = Math.floor(Number(m[1]) * 1024 ** power);
  if (!Number.isSafeInteger(bytes)) throw new DmthinError('EDMOPTION', `size ${JSON.stringify(text)} is too large`);
  return bytes;
}

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** Docker's units.HumanSize: decimal units, 4 significant digits (107.4GB, 65.54kB), as `docker info` prints. */
export function humanSize(bytes: number): string {
  let size = bytes;
  let unit = 0;
  while (size >= 1000 && unit < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    unit++;
  }
  return `${Number(size.toPrecision(4))}${DECIMAL_UNITS[unit] ?? ''}`;
}

function sizeOption(key: string, value: string): number {
  try {
    return parseSize(value);
  } catch {
    return fail(`invalid size ${JSON.stringify(value)} for ${key}`);
  }
}

function boolOption(key: string, value: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return fail(`${key} must be true or false, got ${JSON.stringify(value)}`);
}

function uintOption(key: string, value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) fail(`${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

function percentOption(key: string, value: string, allowHundred: boolean): number {
  const pct = uintOption(key, value.endsWith('%') ? value.slice(0, -1) : value);
  if (pct > 100 || (!allowHundred && pct === 100)) fail(`${key} must be ${allowHundred ? 'at most' : 'below'} 100%, got ${value}`);
  return pct;
}

function pathOption(key: string, value: string): string {
  if (!value.startsWith('/')) fail(`${key} must be an absolute device path, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * The options a DeviceSet runs with: the plugin's own settings first,
 * then GraphDriver.Init's Opts (dockerd --storage-opt), so that for a
 * single-valued option dockerd's value wins, and repeatable ones
 * (dm.mkfsarg, dm.mountopt) get both lists, the plugin's first.
 */
export function storageOptions(pluginEntries: readonly string[], initEntries: readonly string[]): DeviceSetOptions {
  return parseOptions([...pluginEntries, ...initEntries]);
}

/** Splits a settings string such as DMTHIN_STORAGE_OPTS ("dm.basesize=20G dm.fs=xfs") into entries. */
export function splitOptionList(text: string): string[] {
  return text.split(/\s+/).filter((entry) => entry !== '');
}
