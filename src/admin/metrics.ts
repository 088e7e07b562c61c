// Opt-in Prometheus metrics (DMTHIN_METRICS): the pool's data and metadata
// use, its health, devices by kind, and every plugin call counted, timed and
// its failures counted by error code. Served as Prometheus's text format on
// a unix socket or a localhost port of their own, never on the plugin socket
// (a scraper needs no access to dockerd's). Pool figures are read at scrape
// time from the pool's status line: no metadata snapshot, nothing locked.
import http, { type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { thin } from '../devmapper';
import { METADATA_BLOCK_SIZE } from '../devmapper/thin';
import type { DeviceSetHolder } from '../deviceset';
import { lowWaterBlocks } from '../deviceset/low-water';
import { poolBlockSize } from '../deviceset/pool';
import { listenOnSocket } from '../server/listen';
import type { Logger } from '../shared/log';
import { poolHealth } from './health';
import { kindOf } from './inspect';
import type { PoolHealth } from './reports';

/** Where metrics are served: a unix socket, or a TCP port on the loopback. */
export type MetricsAddress = { socket: string } | { host: string; port: number };

const HEALTHS: readonly PoolHealth[] = ['ok', 'low_data_space', 'out_of_data_space', 'read_only', 'needs_check', 'failed'];
const KINDS = ['base', 'layers', 'containers', 'volumes', 'snapshotter'] as const;
/** Distinct endpoint labels kept; more (a client inventing paths) count as "other". */
const MAX_ENDPOINTS = 64;
const ENDPOINT = /^\/([A-Za-z]{1,40}\.[A-Za-z]{1,40})$/;

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'endpoint'>;
  private readonly duration: Histogram<'endpoint'>;
  private readonly errors: Counter<'endpoint' | 'code'>;
  private readonly endpoints = new Set<string>();
  private readonly codes = new WeakMap<IncomingMessage, string>();

  constructor(holder: DeviceSetHolder) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'dmthin_' });
    this.requests = new Counter({ name: 'dmthin_requests_total', help: 'Plugin calls answered, by endpoint', labelNames: ['endpoint'], registers });
    this.duration = new Histogram({
      name: 'dmthin_request_duration_seconds',
      help: 'Time to answer a plugin call, by endpoint',
      labelNames: ['endpoint'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60],
      registers,
    });
    this.errors = new Counter({ name: 'dmthin_request_errors_total', help: 'Plugin calls that failed, by endpoint and error code', labelNames: ['endpoint', 'code'], registers });

    const poolBytes = (name: string, help: string, pick: (s: { data: [number, number]; metadata: [number, number] }) => [number, number]): void => {
      const gauge: Gauge<'state'> = new Gauge({
        name,
        help,
        labelNames: ['state'],
        registers,
        collect: async () => {
          gauge.reset();
          const figures = await poolFigures(holder);
          if (figures === null) return;
          const [used, total] = pick(figures);
          gauge.set({ state: 'used' }, used);
          gauge.set({ state: 'total' }, total);
        },
      });
    };
    poolBytes('dmthin_pool_data_bytes', 'Thin pool data space, used and total', (f) => f.data);
    poolBytes('dmthin_pool_metadata_bytes', 'Thin pool metadata space, used and total', (f) => f.metadata);
    const health: Gauge<'health'> = new Gauge({
      name: 'dmthin_pool_health',
      help: 'The thin pool health: 1 for the state it is in (ok, low_data_space, out_of_data_space, read_only, needs_check, failed)',
      labelNames: ['health'],
      registers,
      collect: async () => {
        health.reset();
        const figures = await poolFigures(holder);
        if (figures === null) return;
        for (const h of HEALTHS) health.set({ health: h }, h === figures.health ? 1 : 0);
      },
    });
    const available: Gauge = new Gauge({
      name: 'dmthin_pool_available',
      help: '1 when the thin pool is open, 0 when there is none (no device-mapper, or it failed to open)',
      registers,
      collect: () => available.set(holder.current() === null ? 0 : 1),
    });
    const devices: Gauge<'kind'> = new Gauge({
      name: 'dmthin_devices',
      help: 'Thin devices by kind (base, layers, containers, volumes, snapshotter); deferred deletions apart',
      labelNames: ['kind'],
      registers,
      collect: () => {
        devices.reset();
        const set = holder.current();
        if (set === null) return;
        const records = set.deviceRecords();
        const hashes = new Set(records.map((r) => r.hash));
        const counts = Object.fromEntries([...KINDS, 'deferred_deletion'].map((k) => [k, 0])) as Record<string, number>;
        for (const r of records) {
          const kind = r.deleted ? 'deferred_deletion' : kindOf(r.hash, hashes);
          counts[kind] = (counts[kind] ?? 0) + 1;
        }
        for (const [kind, count] of Object.entries(counts)) devices.set({ kind }, count);
        devices.set({ kind: 'faulty' }, set.faultyDevices().length);
      },
    });
  }

  /** For AppDeps.onError: the failed call's code, counted when its answer is sent. */
  readonly onError = (req: IncomingMessage, code: string): void => {
    this.codes.set(req, code);
  };

  /** The request listener with every call counted and timed. */
  instrument(app: RequestListener): RequestListener {
    return (req, res) => {
      const start = performance.now();
      res.once('close', () => {
        const endpoint = this.endpointOf(req.url ?? '');
        this.requests.inc({ endpoint });
        this.duration.observe({ endpoint }, (performance.now() - start) / 1000);
        const code = this.codes.get(req);
        if (code !== undefined) this.errors.inc({ endpoint, code: code.slice(0, 32) });
      });
      app(req, res);
    };
  }

  private endpointOf(url: string): string {
    const name = ENDPOINT.exec(url.replace(/\?.*$/, ''))?.[1];
    if (name === undefined) return 'other';
    if (!this.endpoints.has(name)) {
      if (this.endpoints.size >= MAX_ENDPOINTS) return 'other';
      this.endpoints.add(name);
    }
    return name;
  }
}

interface PoolFigures {
  data: [number, number];
  metadata: [number, number];
  health: PoolHealth;
}

async function poolFigures(holder: DeviceSetHolder): Promise<PoolFigures | null> {
  const set = holder.current();
  if (set === null) return null;
  try {
    const status = await thin.poolStatus(set.pool.name);
    const blockSize = await poolBlockSize(set.pool);
    const blockBytes = blockSize * 512;
    return {
      data: [status.usedDataBlocks * blockBytes, status.totalDataBlocks * blockBytes],
      metadata: [status.usedMetadataBlocks * METADATA_BLOCK_SIZE, status.totalMetadataBlocks * METADATA_BLOCK_SIZE],
      health: poolHealth(set.pool.name, status, lowWaterBlocks(set.options, status.totalDataBlocks, blockSize)).health,
    };
  } catch {
    return null;
  }
}

/** Serves GET /metrics on the address; anything else is a 404. */
export async function serveMetrics(metrics: Metrics, address: MetricsAddress, log: Logger): Promise<Server> {
  const listener: RequestListener = (req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').replace(/\?.*$/, '') !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('dmthin serves only GET /metrics here\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
      (err: unknown) => {
        log.warn('cannot collect metrics', { err: String(err) });
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`cannot collect metrics: ${String(err)}\n`);
      },
    );
  };
  if ('socket' in address) return listenOnSocket(listener, address.socket);
  const server = http.createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
