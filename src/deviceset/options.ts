// The in-tree devicemapper driver's storage options (`--storage-opt dm.*`),
// with its names, defaults and checks, so that a daemon.json written for
// Docker's driver keeps working unchanged. Where Docker let a bad value
// through to the kernel or to mkfs, dmthin refuses it here instead, with a
// message that names the option and the value.
import { DmthinError } from '../shared/errors';
import { deviceSizeProblem } from './sizes';

export interface DeviceSetOptions {
  /** bytes (dm.basesize) */
  baseSize: number;
  /** dm.basesize was given: an existing base device is then grown to it */
  baseSizeSet: boolean;
  /** bytes (dm.loopdatasize) */
  loopDataSize: number;
  /** bytes (dm.loopmetadatasize) */
  loopMetadataSize: number;
  /** null: the DeviceSet picks xfs when it is available, else ext4 */
  fs: 'ext4' | 'xfs' | null;
  mkfsArgs: string[];
  /** joined with ',' by the caller */
  mountOptions: string[];
  dataDevice: string | null;
  metadataDevice: string | null;
  /** the pool's device-mapper name, without /dev/mapper/ */
  thinPoolDevice: string | null;
  /** 512-byte sectors */
  blockSize: number;
  blkDiscard: boolean;
  overrideUdevSyncCheck: boolean;
  /** null: the DeviceSet decides from kernel and libdm support */
  useDeferredRemoval: boolean | null;
  useDeferredDeletion: boolean | null;
  minFreeSpacePercent: number;
  /** dm.low_water_mark: a share of the data space or a size; null: the in-tree driver's 32768 blocks, at most 10% (see low-water.ts) */
  lowWaterMark: { percent?: number; bytes?: number } | null;
  xfsNospaceMaxRetries: number | null;
  libdmLogLevel: number;
  directLvm: {
    device: string;
    force: boolean;
    thinpPercent: number;
    thinpMetaPercent: number;
    autoextendThreshold: number;
    autoextendPercent: number;
  } | null;
}

const GiB = 1024 ** 3;

function defaultOptions(): DeviceSetOptions {
  return {
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
    lowWaterMark: null,
    xfsNospaceMaxRetries: null,
    libdmLogLevel: 2,
    directLvm: null,
  };
}

function freezeOptions(o: DeviceSetOptions): Readonly<DeviceSetOptions> {
  // The arrays too: a caller that pushed onto them would change every later default.
  Object.freeze(o.mkfsArgs);
  Object.freeze(o.mountOptions);
  return Object.freeze(o);
}

export const DEFAULT_OPTIONS: Readonly<DeviceSetOptions> = freezeOptions(defaultOptions());

// Docker's direct-lvm defaults, applied when the option is absent or 0 (as setupDirectLVM does).
const LVM_DEFAULTS = { thinpPercent: 95, thinpMetaPercent: 1, autoextendThreshold: 80, autoextendPercent: 20 };

// The direct-lvm settings that are only meaningful with dm.directlvm_device, with their keys.
const LVM_KEYS = {
  thinpPercent: 'dm.thinp_percent',
  thinpMetaPercent: 'dm.thinp_metapercent',
  autoextendThreshold: 'dm.thinp_autoextend_threshold',
  autoextendPercent: 'dm.thinp_autoextend_percent',
} as const;

// libdm's log levels: LOG_FATAL (2) to LOG_DEBUG (7).
const LIBDM_LOG_MIN = 2;
const LIBDM_LOG_MAX = 7;

// The kernel's thin-pool data block size limits (DATA_DEV_BLOCK_SIZE_MIN/MAX_SECTORS).
const MIN_BLOCK_SECTORS = 128;
const MAX_BLOCK_SECTORS = 2097152;

/** What parseOptions collects while reading entries, before the cross-option checks. */
interface Pending {
  options: DeviceSetOptions;
  blkDiscardGiven: boolean;
  lvmForce: boolean;
  /** raw direct-lvm settings; 0 means not given, as in Docker */
  lvm: { device: string; thinpPercent: number; thinpMetaPercent: number; autoextendThreshold: number; autoextendPercent: number };
}

type Setter = (p: Pending, value: string, key: string) => void;
type Parse<T> = (key: string, value: string) => T;

/** The setter of an option that is one field, parse(key, value). */
function into<F extends keyof DeviceSetOptions>(field: F, parse: Parse<DeviceSetOptions[F]>): Setter {
  return (p, v, k) => {
    p.options[field] = parse(k, v);
  };
}

/** The setter of a direct-lvm setting, decided once every entry is read (directLvmOption). */
function intoLvm<F extends keyof Pending['lvm']>(field: F, parse: Parse<Pending['lvm'][F]>): Setter {
  return (p, v, k) => {
    p.lvm[field] = parse(k, v);
  };
}

const percentBelow100: Parse<number> = (k, v) => percentOption(k, v, 99);
const percentUpTo100: Parse<number> = (k, v) => percentOption(k, v, 100);

const SETTERS: Readonly<Record<string, Setter>> = {
  'dm.basesize': (p, v, k) => {
    p.options.baseSize = deviceSizeOption(k, v);
    p.options.baseSizeSet = true;
  },
  'dm.loopdatasize': into('loopDataSize', sizeOption),
  'dm.loopmetadatasize': into('loopMetadataSize', sizeOption),
  'dm.fs': into('fs', fsOption),
  'dm.mkfsarg': (p, v) => {
    // An empty argument would reach mkfs as an empty argv entry.
    if (v !== '') p.options.mkfsArgs.push(v);
  },
  'dm.mountopt': (p, v) => {
    // Docker joins with ',' and skips empty pieces.
    if (v !== '') p.options.mountOptions.push(v);
  },
  'dm.datadev': into('dataDevice', pathOption),
  'dm.metadatadev': into('metadataDevice', pathOption),
  'dm.thinpooldev': into('thinPoolDevice', poolNameOption),
  'dm.blocksize': into('blockSize', blockSizeOption),
  'dm.blkdiscard': (p, v, k) => {
    p.options.blkDiscard = boolOption(k, v);
    p.blkDiscardGiven = true;
  },
  'dm.override_udev_sync_check': into('overrideUdevSyncCheck', boolOption),
  'dm.use_deferred_removal': into('useDeferredRemoval', boolOption),
  'dm.use_deferred_deletion': into('useDeferredDeletion', boolOption),
  'dm.min_free_space': into('minFreeSpacePercent', minFreeSpaceOption),
  'dm.low_water_mark': into('lowWaterMark', (k, v) => (v.endsWith('%') ? { percent: percentBelow100(k, v) } : { bytes: sizeOption(k, v) })),
  'dm.xfs_nospace_max_retries': into('xfsNospaceMaxRetries', uintOption),
  'dm.libdm_log_level': into('libdmLogLevel', logLevelOption),
  'dm.directlvm_device': intoLvm('device', (k, v) => pathOption(k, v) ?? ''),
  'dm.directlvm_device_force': (p, v, k) => {
    p.lvmForce = boolOption(k, v);
  },
  'dm.thinp_percent': intoLvm('thinpPercent', percentBelow100),
  'dm.thinp_metapercent': intoLvm('thinpMetaPercent', percentBelow100),
  'dm.thinp_autoextend_threshold': intoLvm('autoextendThreshold', percentUpTo100),
  'dm.thinp_autoextend_percent': intoLvm('autoextendPercent', percentUpTo100),
};

/** Every dm.* key parseOptions accepts. */
export const OPTION_NAMES: readonly string[] = Object.freeze(Object.keys(SETTERS));

/** Parses 'key=value' strings; keys are case-insensitive (lower-cased). Later entries override earlier ones (repeatable ones append). */
export function parseOptions(entries: readonly string[]): DeviceSetOptions {
  const pending: Pending = {
    options: defaultOptions(),
    blkDiscardGiven: false,
    lvmForce: false,
    lvm: { device: '', thinpPercent: 0, thinpMetaPercent: 0, autoextendThreshold: 0, autoextendPercent: 0 },
  };
  for (const entry of entries) {
    const [key, value] = splitEntry(entry);
    const setter = Object.hasOwn(SETTERS, key) ? SETTERS[key] : undefined;
    if (setter === undefined) fail(`unknown storage option ${key}`);
    setter(pending, value, key);
  }
  return finish(pending);
}

/** Splits like Docker's ParseKeyValueOpt: at the first '=', both sides trimmed; the key lower-cased. */
function splitEntry(entry: string): [string, string] {
  const eq = entry.indexOf('=');
  const key = eq < 0 ? '' : entry.slice(0, eq).trim().toLowerCase();
  if (key === '') fail(`storage option ${JSON.stringify(entry)} must be key=value`);
  const value = entry.slice(eq + 1).trim();
  // A NUL would silently cut the value short where it reaches C (libdm, mount, mkfs).
  if (value.includes('\0')) fail(`storage option ${key} must not contain NUL bytes: ${JSON.stringify(value)}`);
  return [key, value];
}

/** What depends on more than one option, decided once every entry is read (so a later entry can settle a conflict). */
function finish(p: Pending): DeviceSetOptions {
  const o = p.options;
  o.directLvm = directLvmOption(p);
  // Discarding every block of a deleted device is slow on real disks and rarely useful there.
  if (!p.blkDiscardGiven && (o.dataDevice !== null || o.thinPoolDevice !== null)) o.blkDiscard = false;
  if (o.useDeferredDeletion === true && o.useDeferredRemoval === false) {
    fail('dm.use_deferred_deletion=true needs deferred removal, but dm.use_deferred_removal=false was given');
  }
  return o;
}

function directLvmOption(p: Pending): DeviceSetOptions['directLvm'] {
  const { device, thinpPercent, thinpMetaPercent, autoextendThreshold, autoextendPercent } = p.lvm;
  if (device === '') {
    // Docker refuses these without a device rather than ignore them.
    for (const [field, key] of Object.entries(LVM_KEYS) as [keyof typeof LVM_KEYS, string][]) {
      if (p.lvm[field] !== 0) fail(`${key}=${p.lvm[field]} needs dm.directlvm_device`);
    }
    return null;
  }
  const pool = p.options.thinPoolDevice;
  if (pool !== null) fail(`dm.directlvm_device=${device} cannot be combined with dm.thinpooldev=${pool}`);
  if ((thinpPercent === 0) !== (thinpMetaPercent === 0)) {
    const alone = thinpPercent !== 0 ? `dm.thinp_percent=${thinpPercent}` : `dm.thinp_metapercent=${thinpMetaPercent}`;
    fail(`dm.thinp_percent and dm.thinp_metapercent must be given together, but only ${alone} was`);
  }
  if (thinpPercent + thinpMetaPercent > 100) {
    fail(`dm.thinp_percent=${thinpPercent} and dm.thinp_metapercent=${thinpMetaPercent} add up to more than 100`);
  }
  return {
    device,
    force: p.lvmForce,
    thinpPercent: thinpPercent || LVM_DEFAULTS.thinpPercent,
    thinpMetaPercent: thinpMetaPercent || LVM_DEFAULTS.thinpMetaPercent,
    autoextendThreshold: autoextendThreshold || LVM_DEFAULTS.autoextendThreshold,
    autoextendPercent: autoextendPercent || LVM_DEFAULTS.autoextendPercent,
  };
}

function fail(message: string): never {
  throw new DmthinError('EDMOPTION', message);
}

function sizeOption(key: string, value: string): number {
  const bytes = sizeOrProblem(value);
  if (typeof bytes === 'string') fail(`invalid size ${JSON.stringify(value)} for ${key}: ${bytes}`);
  return bytes;
}

/** A size that becomes a device's: whole sectors, at least a filesystem's room (sizes.ts). */
function deviceSizeOption(key: string, value: string): number {
  const bytes = sizeOption(key, value);
  const problem = deviceSizeProblem(bytes);
  if (problem !== null) fail(`${key}=${value} ${problem}`);
  return bytes;
}

function fsOption(key: string, value: string): NonNullable<DeviceSetOptions['fs']> {
  if (value !== 'ext4' && value !== 'xfs') fail(`unsupported filesystem ${value} for ${key} (ext4 or xfs)`);
  return value;
}

function blockSizeOption(key: string, value: string): number {
  const sectors = Math.floor(sizeOption(key, value) / 512);
  if (sectors < MIN_BLOCK_SECTORS || sectors > MAX_BLOCK_SECTORS || sectors % MIN_BLOCK_SECTORS !== 0) {
    fail(
      `${key}=${value} is ${sectors} sectors; the kernel needs a multiple of ${MIN_BLOCK_SECTORS} sectors ` +
        `from ${MIN_BLOCK_SECTORS} (64K) to ${MAX_BLOCK_SECTORS} (1G)`,
    );
  }
  return sectors;
}

const TRUE_WORDS: readonly string[] = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const FALSE_WORDS: readonly string[] = ['0', 'f', 'F', 'FALSE', 'false', 'False'];

/** Go's strconv.ParseBool, which is what Docker used. */
function boolOption(key: string, value: string): boolean {
  if (TRUE_WORDS.includes(value)) return true;
  if (FALSE_WORDS.includes(value)) return false;
  return fail(`invalid boolean ${JSON.stringify(value)} for ${key} (true or false)`);
}

/** Go's strconv.ParseUint in base 10: digits only, no sign. */
function uintOption(key: string, value: string): number {
  const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) fail(`invalid number ${JSON.stringify(value)} for ${key} (a whole number, 0 or more)`);
  return n;
}

/** Docker's percentages: a whole number with an optional '%'; 0 counts as not given. */
function percentOption(key: string, value: string, max: number): number {
  const pct = uintOption(key, value.endsWith('%') ? value.slice(0, -1) : value);
  if (pct > max) fail(`${key} must be ${max === 100 ? 'at most 100' : 'below 100'}, got ${value}`);
  return pct;
}

function minFreeSpaceOption(key: string, value: string): number {
  if (!value.endsWith('%')) fail(`${key}=${value} needs a % suffix, as in ${key}=10%`);
  const pct = uintOption(key, value.slice(0, -1));
  if (pct >= 100) fail(`invalid value ${value} for ${key}: it must be below 100%`);
  return pct;
}

/** Go's strconv.ParseInt in base 10 (an optional sign), then libdm's range. */
function logLevelOption(key: string, value: string): number {
  const level = /^[+-]?[0-9]+$/.test(value) ? Number(value) : NaN;
  if (Number.isNaN(level)) fail(`invalid number ${JSON.stringify(value)} for ${key}`);
  if (level < LIBDM_LOG_MIN || level > LIBDM_LOG_MAX) {
    fail(`${key} must be in range [${LIBDM_LOG_MIN},${LIBDM_LOG_MAX}], got ${value}`);
  }
  return level;
}

/** An empty value means "not given", as in Docker; anything else must be an absolute path. */
function pathOption(key: string, value: string): string | null {
  if (value === '') return null;
  // A relative path would resolve against the plugin's working directory, never what was meant.
  if (!value.startsWith('/')) fail(`${key} must be an absolute device path, got ${JSON.stringify(value)}`);
  return value;
}

function poolNameOption(key: string, value: string): string | null {
  const name = value.startsWith('/dev/mapper/') ? value.slice('/dev/mapper/'.length) : value;
  if (name === '') return null;
  // Device-mapper names cannot contain '/', and the pool is opened as /dev/mapper/<name>.
  if (name.includes('/')) fail(`${key} must name a device-mapper device (name or /dev/mapper/name), got ${JSON.stringify(value)}`);
  return name;
}

// Docker's units.RAMInBytes grammar: a decimal number, one optional space,
// an optional k/m/g/t/p, then an optional 'i' and 'b', all case-insensitive.
const SIZE_PATTERN = /^([0-9]+(?:\.[0-9]+)?) ?([kmgtp])?i?b?$/i;

/** The size in bytes, or why the text is not one. */
function sizeOrProblem(text: string): number | string {
  const m = SIZE_PATTERN.exec(text);
  if (m === null) return 'expected a number with an optional k, m, g, t or p suffix, as in 20G';
  const power = m[2] === undefined ? 0 : 'kmgtp'.indexOf(m[2].toLowerCase()) + 1;
  // Go truncates the float toward zero when it converts to int64.
  const bytes = Math.trunc(Number(m[1]) * 1024 ** power);
  if (!Number.isSafeInteger(bytes)) return 'too large';
  return bytes;
}

/** Docker's units.RAMInBytes: '10G', '10GB', '10g', '10GiB', '512m', '1.5G', '4096' (bytes); binary multipliers (k=1024); rejects negative, empty, unknown suffix. */
export function parseSize(text: string): number {
  const bytes = sizeOrProblem(text);
  if (typeof bytes === 'string') throw new DmthinError('EDMOPTION', `invalid size ${JSON.stringify(text)}: ${bytes}`);
  return bytes;
}

const DECIMAL_UNITS: readonly string[] = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** Docker's units.HumanSize: decimal units with 4 significant digits, e.g. 107.4GB, 65.54kB, 1.074GB, 0B — as `docker info` prints sizes. */
export function humanSize(bytes: number): string {
  let size = bytes;
  let unit = 0;
  while (size >= 1000 && unit < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    unit++;
  }
  return `${formatG(size, 4)}${DECIMAL_UNITS[unit] ?? ''}`;
}

/**
 * Go's `%.<precision>g`. Unlike JavaScript's toPrecision, Go rounds an exact
 * tie to even (10125 bytes is 10.12kB, not 10.13kB), drops trailing zeros,
 * and switches to exponent form from 10^precision up.
 */
function formatG(value: number, precision: number): string {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? '+Inf' : '-Inf';
  if (value === 0) return '0';
  const sign = value < 0 ? '-' : '';
  // 100 significant digits hold a double's exact value at any size humanSize meets.
  const [mantissa = '', exponent = '0'] = Math.abs(value).toExponential(99).split('e');
  const digits = mantissa.replace('.', '');
  let exp = Number(exponent);
  let head = Number(digits.slice(0, precision));
  const next = digits.charAt(precision);
  const tie = next === '5' && !/[1-9]/.test(digits.slice(precision + 1));
  if (next > '5' || (next === '5' && (!tie || head % 2 === 1))) head++;
  if (head === 10 ** precision) {
    head /= 10;
    exp++;
  }
  const kept = String(head);
  if (exp < -4 || exp >= precision) {
    const fraction = kept.slice(1).replace(/0+$/, '');
    const expText = `${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
    return `${sign}${kept.charAt(0)}${fraction === '' ? '' : `.${fraction}`}e${expText}`;
  }
  const whole = exp >= 0 ? kept.slice(0, exp + 1) : '0';
  const fraction = (exp >= 0 ? kept.slice(exp + 1) : '0'.repeat(-exp - 1) + kept).replace(/0+$/, '');
  return `${sign}${whole}${fraction === '' ? '' : `.${fraction}`}`;
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
