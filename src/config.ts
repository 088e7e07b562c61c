// The plugin's settings, from its environment: what `docker plugin set`
// changes for the managed plugin, and what a legacy plugin's unit file
// sets. Checked once at start; a bad value stops the process with a
// message that names the variable, before anything is touched.
import path from 'node:path';
import Ajv, { type JSONSchemaType } from 'ajv';
import { parseOptions, splitOptionList } from './deviceset';
import { parseSize } from './deviceset/options';
import type { MetricsAddress } from './admin/metrics';
import { thinVolumeSize } from './volume/options';
import { DmthinError } from './shared/errors';
import type { LogFormat, LogLevel } from './shared/log';

export type VolumeKind = 'auto' | 'thin' | 'plain';

export interface Settings {
  /** state: the default pool's files, device metadata, volumes */
  root: string;
  /** where volume mountpoints are made (the managed plugin's propagated mount) */
  mountRoot: string;
  socket: string;
  /** containerd's snapshots gRPC service (a proxy snapshotter); null: not served */
  snapshotterSocket: string | null;
  /** which of the plugin socket's drivers are served; neither: the plugin socket is not served */
  drivers: DriverSwitches;
  /** the plugin's own dm.* options; dockerd's --storage-opt come at GraphDriver.Init */
  storageOpts: string[];
  logLevel: LogLevel;
  /** text lines, JSON lines, or auto: text on a terminal */
  logFormat: LogFormat;
  /** what a volume created without options is: thin when a pool is there (auto), thin, or plain */
  volumeKind: VolumeKind;
  /** bytes: a thin volume's size when -o size is not given */
  volumeSize: number;
  /** where Prometheus metrics are served (DMTHIN_METRICS); null: not at all */
  metrics: MetricsAddress | null;
}

export interface DriverSwitches {
  graph: boolean;
  volume: boolean;
}

export const DEFAULT_ROOT = '/var/lib/dmthin';
export const DEFAULT_SOCKET = '/run/docker/plugins/dmthin.sock';
export const DEFAULT_SNAPSHOTTER_SOCKET = '/run/dmthin/snapshotter.sock';
/** DMTHIN_SNAPSHOTTER_SOCKET's value that turns the containerd snapshotter off. */
export const OFF = 'off';

/** The environment variables read, as they come. */
interface RawSettings {
  DMTHIN_ROOT: string;
  DMTHIN_MOUNT_ROOT?: string;
  DMTHIN_SOCKET: string;
  DMTHIN_SNAPSHOTTER_SOCKET: string;
  DMTHIN_STORAGE_OPTS: string;
  DMTHIN_LOG_LEVEL: LogLevel;
  DMTHIN_LOG_FORMAT: LogFormat;
  DMTHIN_VOLUME_KIND: VolumeKind;
  DMTHIN_VOLUME_SIZE: string;
  DMTHIN_GRAPHDRIVER: 'on' | 'off';
  DMTHIN_VOLUMEDRIVER: 'on' | 'off';
  DMTHIN_METRICS: string;
}

// An absolute path without NUL; unix sockets take at most 107 bytes.
const absolutePath = { type: 'string', pattern: '^/[^\\u0000]*$', maxLength: 4000 } as const;

const schema: JSONSchemaType<RawSettings> = {
  type: 'object',
  properties: {
    DMTHIN_ROOT: absolutePath,
    DMTHIN_MOUNT_ROOT: { ...absolutePath, nullable: true },
    DMTHIN_SOCKET: { ...absolutePath, maxLength: 107 },
    DMTHIN_SNAPSHOTTER_SOCKET: { type: 'string', pattern: '^(off|/[^\\u0000]*)$', maxLength: 107 },
    DMTHIN_STORAGE_OPTS: { type: 'string', maxLength: 65536 },
    DMTHIN_LOG_LEVEL: { type: 'string', enum: ['error', 'warn', 'info', 'debug'] },
    DMTHIN_LOG_FORMAT: { type: 'string', enum: ['auto', 'text', 'json'] },
    DMTHIN_VOLUME_KIND: { type: 'string', enum: ['auto', 'thin', 'plain'] },
    DMTHIN_VOLUME_SIZE: { type: 'string', maxLength: 64 },
    DMTHIN_GRAPHDRIVER: { type: 'string', enum: ['on', 'off'] },
    DMTHIN_VOLUMEDRIVER: { type: 'string', enum: ['on', 'off'] },
    // off, a unix socket, or a loopback port: metrics are never served to the network.
    DMTHIN_METRICS: { type: 'string', pattern: '^(off|/[^\\u0000]*|(127\\.0\\.0\\.1|localhost|\\[::1\\]):[0-9]{1,5})$', maxLength: 107 },
  },
  required: ['DMTHIN_ROOT', 'DMTHIN_SOCKET', 'DMTHIN_SNAPSHOTTER_SOCKET', 'DMTHIN_STORAGE_OPTS', 'DMTHIN_LOG_LEVEL', 'DMTHIN_LOG_FORMAT', 'DMTHIN_VOLUME_KIND', 'DMTHIN_VOLUME_SIZE', 'DMTHIN_GRAPHDRIVER', 'DMTHIN_VOLUMEDRIVER', 'DMTHIN_METRICS'],
  additionalProperties: false,
};

const validate = new Ajv({ allErrors: false }).compile(schema);

/** Reads and checks the settings; throws ECONFIG naming the variable at fault. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const raw: Record<string, string> = {
    DMTHIN_ROOT: DEFAULT_ROOT,
    DMTHIN_SOCKET: DEFAULT_SOCKET,
    DMTHIN_SNAPSHOTTER_SOCKET: DEFAULT_SNAPSHOTTER_SOCKET,
    DMTHIN_STORAGE_OPTS: '',
    DMTHIN_LOG_LEVEL: 'info',
    DMTHIN_LOG_FORMAT: 'auto',
    DMTHIN_VOLUME_KIND: 'auto',
    DMTHIN_VOLUME_SIZE: '10G',
    DMTHIN_GRAPHDRIVER: 'on',
    DMTHIN_VOLUMEDRIVER: 'on',
    DMTHIN_METRICS: OFF,
  };
  for (const key of Object.keys(schema.properties)) {
    const value = env[key];
    // An empty value means the default, as `docker plugin set X=` leaves it.
    if (value !== undefined && value !== '') raw[key] = value;
  }
  if (!validate(raw)) {
    const [first] = validate.errors ?? [];
    const key = first?.instancePath.slice(1) ?? '';
    const allowed = (first?.params as { allowedValues?: string[] } | undefined)?.allowedValues;
    const detail = allowed === undefined ? (first?.message ?? 'is invalid') : `must be one of ${allowed.join(', ')}`;
    throw new DmthinError('ECONFIG', `${key} ${JSON.stringify(raw[key] ?? '')} ${detail}`);
  }
  const storageOpts = splitOptionList(raw.DMTHIN_STORAGE_OPTS);
  try {
    parseOptions(storageOpts);
  } catch (err) {
    throw new DmthinError('ECONFIG', `DMTHIN_STORAGE_OPTS: ${(err as Error).message}`, { cause: err });
  }
  let volumeSize: number;
  try {
    volumeSize = thinVolumeSize(parseSize(raw.DMTHIN_VOLUME_SIZE), raw.DMTHIN_VOLUME_SIZE);
  } catch (err) {
    throw new DmthinError('ECONFIG', `DMTHIN_VOLUME_SIZE: ${(err as Error).message}`, { cause: err });
  }
  const drivers = { graph: raw.DMTHIN_GRAPHDRIVER === 'on', volume: raw.DMTHIN_VOLUMEDRIVER === 'on' };
  if (!drivers.graph && !drivers.volume && raw.DMTHIN_SNAPSHOTTER_SOCKET === OFF) {
    throw new DmthinError('ECONFIG', 'DMTHIN_GRAPHDRIVER, DMTHIN_VOLUMEDRIVER and DMTHIN_SNAPSHOTTER_SOCKET are all off: nothing to serve');
  }
  const root = path.resolve(raw.DMTHIN_ROOT);
  return {
    root,
    mountRoot: path.resolve(raw.DMTHIN_MOUNT_ROOT ?? root),
    socket: raw.DMTHIN_SOCKET,
    snapshotterSocket: raw.DMTHIN_SNAPSHOTTER_SOCKET === OFF ? null : raw.DMTHIN_SNAPSHOTTER_SOCKET,
    drivers,
    storageOpts,
    logLevel: raw.DMTHIN_LOG_LEVEL,
    logFormat: raw.DMTHIN_LOG_FORMAT,
    volumeKind: raw.DMTHIN_VOLUME_KIND,
    volumeSize,
    metrics: metricsAddress(raw.DMTHIN_METRICS),
  };
}

/** DMTHIN_METRICS, checked by the schema: off, /a/socket, or HOST:PORT on the loopback. */
function metricsAddress(value: string): MetricsAddress | null {
  if (value === OFF) return null;
  if (value.startsWith('/')) return { socket: value };
  const colon = value.lastIndexOf(':');
  const port = Number(value.slice(colon + 1));
  if (port < 1 || port > 65535) throw new DmthinError('ECONFIG', `DMTHIN_METRICS ${JSON.stringify(value)}: the port must be 1 to 65535`);
  return { host: value.slice(0, colon).replace(/^\[|\]$/g, ''), port };
}
