// `docker volume create -o KEY=VALUE` for dmthin: Docker's local-driver
// options (type, device, o) make a plain volume mounted as the local
// driver mounts it; size, fs and from make a thin volume. Everything is
// checked here, before anything is written, with messages that say what
// to do instead.
import { mountFlagsAndData, type FsType } from '../deviceset/filesystem';
import { parseSize } from '../deviceset/options';
import { deviceSizeProblem, MIN_XFS_SIZE } from '../deviceset/sizes';
import { fs as kfs } from '../devmapper';
import { DmthinError } from '../shared/errors';
import { checkVolumeName } from './names';

/** A plain volume: a directory, or whatever type/device/o mount over it. */
export interface PlainSpec {
  kind: 'plain';
  type?: string;
  device?: string;
  o?: string;
}

/** A thin device with a filesystem of its own, or a snapshot of another thin volume. */
export interface ThinSpec {
  kind: 'thin';
  /** bytes, a whole number of sectors */
  size?: number;
  fs?: FsType;
  /** the thin volume this one is a snapshot of */
  from?: string;
}

/** No options: the kind is DMTHIN_VOLUME_KIND's to decide. */
export interface DefaultSpec {
  kind: 'default';
}

export type VolumeSpec = PlainSpec | ThinSpec | DefaultSpec;

const PLAIN_KEYS = ['type', 'device', 'o'] as const;
const THIN_KEYS = ['size', 'fs', 'from'] as const;
const ALL_KEYS: readonly string[] = [...PLAIN_KEYS, ...THIN_KEYS];

/** A thin volume smaller than this holds hardly more than its filesystem's own metadata. */
export const MIN_THIN_SIZE = 16 * 1024 * 1024;
const MAX_VALUE_LENGTH = 4096;

/** mount(8) words that would change other mounts than the volume's own. */
const REFUSED_MOUNT_WORDS = new Set([
  'remount', 'move', 'shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate', 'unbindable', 'runbindable',
]);

/** Keys in `o` whose values are secrets: never shown in Status, errors or logs. */
const SECRET_KEYS = new Set(['password', 'passwd', 'pass', 'secret', 'token']);

function invalid(message: string): never {
  throw new DmthinError('EVOLOPTION', message);
}

/** Checks `opts` as dockerd sends them (a map, or null for none) and says what kind of volume they make. */
export function parseVolumeOptions(opts: Readonly<Record<string, string>> | null): VolumeSpec {
  const entries = Object.entries(opts ?? {});
  if (entries.length === 0) return { kind: 'default' };
  for (const [key, value] of entries) {
    if (!ALL_KEYS.includes(key)) {
      invalid(`invalid option: ${JSON.stringify(key)}; dmthin volumes take ${PLAIN_KEYS.join(', ')} (a plain volume, as Docker's local driver) or ${THIN_KEYS.join(', ')} (a thin volume)`);
    }
    if (value === '') invalid(`option ${JSON.stringify(key)} is empty`);
    if (value.length > MAX_VALUE_LENGTH) invalid(`option ${JSON.stringify(key)} is longer than ${MAX_VALUE_LENGTH} characters`);
    if (value.includes('\u0000')) invalid(`option ${JSON.stringify(key)} contains a NUL character`);
  }
  const given = new Map(entries);
  const plain = PLAIN_KEYS.filter((k) => given.has(k));
  const thin = THIN_KEYS.filter((k) => given.has(k));
  if (plain.length > 0 && thin.length > 0) {
    invalid(`options ${plain[0] ?? ''} and ${thin[0] ?? ''} cannot be combined: ${PLAIN_KEYS.join(', ')} mount a plain volume as Docker's local driver does, ${THIN_KEYS.join(', ')} make a thin volume`);
  }
  return plain.length > 0 ? plainSpec(given) : thinSpec(given);
}

function plainSpec(given: Map<string, string>): PlainSpec {
  const type = given.get('type');
  const device = given.get('device');
  const o = given.get('o');
  // Docker's local driver's rules and message: device and type go together, o needs both.
  if (type !== undefined && device === undefined) invalid('missing required option: "device" (type needs a device to mount, e.g. device=tmpfs for type=tmpfs)');
  if (device !== undefined && type === undefined) invalid('missing required option: "type" (device needs a filesystem type, e.g. type=none with o=bind for a directory)');
  if (o !== undefined && (type === undefined || device === undefined)) invalid('missing required option: "type" and "device" (o only adds mount options to them)');
  if (type === undefined || device === undefined) return { kind: 'plain' };
  if (!/^[a-zA-Z0-9][a-zA-Z0-9._+-]*$/.test(type)) invalid(`invalid type ${JSON.stringify(type)}: a filesystem type such as tmpfs, ext4, nfs or none`);
  const words = (o ?? '').split(',').filter((w) => w !== '');
  for (const word of words) {
    const key = word.split('=')[0] ?? '';
    if (REFUSED_MOUNT_WORDS.has(key)) invalid(`o=${key} is not allowed: it changes mounts other than the volume's own`);
  }
  const binds = words.some((w) => w === 'bind' || w === 'rbind');
  if (type === 'none' && !binds) invalid('type=none mounts nothing by itself: add o=bind (or o=rbind) to bind-mount the device directory');
  if (binds && !device.startsWith('/')) invalid(`device ${JSON.stringify(device)} must be an absolute path to bind-mount`);
  return { kind: 'plain', type, device, ...(o === undefined ? {} : { o }) };
}

function thinSpec(given: Map<string, string>): ThinSpec {
  const spec: ThinSpec = { kind: 'thin' };
  const size = given.get('size');
  if (size !== undefined) spec.size = parseThinSize(size);
  const fs = given.get('fs');
  if (fs !== undefined) {
    if (fs !== 'ext4' && fs !== 'xfs') invalid(`unsupported filesystem fs=${fs}: thin volumes take ext4 or xfs`);
    spec.fs = fs;
  }
  const from = given.get('from');
  if (from !== undefined) {
    try {
      checkVolumeName(from);
    } catch (err) {
      invalid(`from: ${(err as Error).message}`);
    }
    if (fs !== undefined) invalid('fs cannot be given with from: a clone has its source\'s filesystem');
    spec.from = from;
  }
  if (spec.fs === 'xfs' && spec.size !== undefined && spec.size < MIN_XFS_SIZE) {
    invalid(`size=${size ?? ''} is too small for xfs, which needs at least 300M; ask for more, or for fs=ext4`);
  }
  return spec;
}

/** -o size: Docker's size grammar (10G, 512m, 1.5GiB), made a thin volume's size. */
function parseThinSize(text: string): number {
  let bytes: number;
  try {
    bytes = parseSize(text);
  } catch (err) {
    invalid(`size: ${(err as Error).message}`);
  }
  return thinVolumeSize(bytes, text);
}

/** A size in bytes made a thin volume's: at least 16M, rounded up to whole 512-byte sectors; `text` is how it was given. */
export function thinVolumeSize(bytes: number, text: string): number {
  if (bytes < MIN_THIN_SIZE) invalid(`size=${text} is too small: a thin volume needs at least 16M`);
  const rounded = Math.ceil(bytes / 512) * 512;
  const problem = deviceSizeProblem(rounded, MIN_THIN_SIZE);
  if (problem !== null) invalid(`size=${text} ${problem}`);
  return rounded;
}

/** The mount(2) arguments of a plain volume's type/device/o. */
export function plainMountArguments(spec: PlainSpec): { source: string; fstype: string; flags: number; data: string | null; bind: boolean } {
  const { flags, data } = mountFlagsAndData(spec.o === undefined ? [] : [spec.o]);
  return { source: spec.device ?? '', fstype: spec.type ?? '', flags, data, bind: (flags & kfs.constants.MS_BIND) !== 0 };
}

/** `o` with secret values replaced by ********, as Docker masks password= in its errors. */
export function maskSecrets(o: string): string {
  return o
    .split(',')
    .map((word) => {
      const eq = word.indexOf('=');
      return eq > 0 && SECRET_KEYS.has(word.slice(0, eq).toLowerCase()) ? `${word.slice(0, eq)}=********` : word;
    })
    .join(',');
}

/** The options as a user gave them, secrets masked: for Status and logs. */
export function shownOptions(opts: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(opts).map(([k, v]) => [k, k === 'o' ? maskSecrets(v) : v]));
}
