// The composition root: settings, the log, the volume store (loaded before
// the socket listens: dockerd's first Get must find every volume), the one
// DeviceSet (opened in the background under the state directory; thin
// volumes are reconciled with it once it is open), the GraphDriver, the
// HTTP app on the plugin socket, and containerd's snapshots service on a
// socket of its own over the same DeviceSet. SIGTERM or SIGINT: stop accepting,
// let the requests in flight finish, then shut everything down cleanly.
// `dmthin serve` (src/cli.ts) runs it; so does `node dist/src/main.js`.
import { promises as fsp } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { Metrics, serveMetrics, type MetricsAddress } from './admin/metrics';
import { PoolMonitor } from './admin/pool-monitor';
import { withAdminRoutes } from './admin/routes';
import { exitCodeFor } from './cli/exit';
import { loadSettings, type Settings } from './config';
import { dm } from './devmapper';
import { deviceHashOf, deviceOwner, DeviceSetHolder } from './deviceset';
import { DeviceSetDriver } from './graphdriver/driver';
import { loadInitRecord, type InitRecord } from './graphdriver/init-record';
import { errorText } from './shared/errors';
import { createLogger, dmLevel, type Logger } from './shared/log';
import { createApp } from './server/app';
import { listenOnSocket } from './server/listen';
import { listenSnapshotter, type SnapshotServer } from './snapshotter/server';
import { Snapshotter } from './snapshotter/snapshotter';
import { VolumeStore } from './volume/store';

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function restoredInit(settings: Settings, log: Logger): Promise<InitRecord | null> {
  try {
    return await loadInitRecord(settings.root);
  } catch (err) {
    // Without it the GraphDriver waits for dockerd's next Init; volumes are not affected.
    log.error('cannot read the last GraphDriver.Init', { err: String(err) });
    return null;
  }
}

/**
 * containerd's snapshots service on its own socket, unless turned off. It
 * failing to start (its socket taken, say) leaves layers and volumes served.
 */
async function startSnapshotter(settings: Settings, holder: DeviceSetHolder, log: Logger): Promise<{ server: SnapshotServer; snapshotter: Snapshotter } | null> {
  if (settings.snapshotterSocket === null) return null;
  try {
    const snapshotter = new Snapshotter({ holder, dir: path.join(settings.root, 'snapshotter'), log });
    await snapshotter.load();
    snapshotter.reconcileWhenReady().catch((err: unknown) => log.error('cannot reconcile the snapshots with the pool', { err: String(err) }));
    return { server: await listenSnapshotter(snapshotter, settings.snapshotterSocket, log), snapshotter };
  } catch (err) {
    log.error('cannot serve the containerd snapshotter; layers and volumes are served', { socket: settings.snapshotterSocket, err: String(err) });
    return null;
  }
}

/** Prometheus metrics on their own socket or port; failing to serve them leaves everything else served. */
async function startMetrics(metrics: Metrics, address: MetricsAddress, log: Logger): Promise<Server | null> {
  try {
    const server = await serveMetrics(metrics, address, log);
    log.info('serving metrics', { at: 'socket' in address ? address.socket : `${address.host}:${address.port}`, path: '/metrics' });
    return server;
  } catch (err) {
    log.error('cannot serve metrics; the plugin is served', { address, err: String(err) });
    return null;
  }
}

/** Runs the daemon until SIGTERM or SIGINT; resolves to the process's exit code. */
export async function serve(): Promise<number> {
  let settings: Settings;
  try {
    settings = loadSettings();
  } catch (err) {
    process.stderr.write(`dmthin: ${errorText(err)}\n`);
    return exitCodeFor(err);
  }
  const log = createLogger(settings.logLevel, settings.logFormat);
  // Taken before anything starts: a stop asked for while starting up waits
  // for the start to finish, then shuts down cleanly.
  const stopAsked = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { err: String(err) }));
  dm.setLogger((lvl, message, code) => log.log(dmLevel(lvl), message, { source: 'libdevmapper', code }));
  await fsp.mkdir(settings.root, { recursive: true, mode: 0o711 });

  const restored = await restoredInit(settings, log);
  // After a crash, a layer still mounted where the GraphDriver mounts it
  // belongs to a running container: adopted, not unmounted.
  const home = restored?.home;
  const adoptLeftMount = (hash: string, target: string): boolean =>
    home !== undefined && deviceOwner(hash) === 'layer' && target === path.join(home, 'mnt', hash);
  // containerd mounts the snapshotter's devices itself: their mounts are never dmthin's to clean up.
  const mountedByOthers = (hash: string): boolean => deviceOwner(hash) === 'snapshot';
  const holder = new DeviceSetHolder({ root: settings.root, pluginOptions: settings.storageOpts, log, adoptLeftMount, mountedByOthers });
  const { root, mountRoot, volumeKind, volumeSize } = settings;
  const volumes = new VolumeStore({ root, mountRoot, volumeKind, volumeSize, pool: holder, log });
  // Before the pool opens; the DeviceSet unmounts stale thin volume mounts as it opens.
  await volumes.load();
  holder.start(restored?.opts ?? []);
  const monitor = new PoolMonitor(holder, log);
  monitor.start();
  volumes.reconcileWhenReady().catch((err: unknown) => log.error('cannot reconcile thin volumes', { err: String(err) }));
  const graph = new DeviceSetDriver({ holder, root: settings.root, log, restored });
  const { drivers } = settings;
  let snapshotter: Snapshotter | null = null;
  const admin = { holder, volumeDevices: () => new Set([...volumes.ownedDeviceIds()].map((id) => deviceHashOf('volume', id))), snapshots: () => snapshotter, log, root: settings.root, socket: settings.socket };
  const metrics = settings.metrics === null ? null : new Metrics(holder);
  const plugin = withAdminRoutes(createApp({ graph, volumes, log, drivers, ...(metrics === null ? {} : { onError: metrics.onError }) }), admin);
  // Neither driver served (DMTHIN_GRAPHDRIVER=off DMTHIN_VOLUMEDRIVER=off): no plugin socket at all, and no admin calls.
  const server = drivers.graph || drivers.volume ? await listenOnSocket(metrics === null ? plugin : metrics.instrument(plugin), settings.socket) : null;
  const metricsServer = metrics === null || settings.metrics === null ? null : await startMetrics(metrics, settings.metrics, log);
  const snapshots = await startSnapshotter(settings, holder, log);
  snapshotter = snapshots?.snapshotter ?? null;
  if (server === null && snapshots === null) {
    log.error('nothing to serve: both drivers are turned off and the containerd snapshotter could not start');
    await holder.shutdown();
    return 1;
  }
  log.info('dmthin listening', {
    socket: server === null ? null : settings.socket,
    root: settings.root,
    mountRoot,
    volumeKind,
    serves: [...(server === null ? [] : ['Plugin.Activate']), ...(drivers.graph ? ['GraphDriver.*'] : []), ...(drivers.volume ? ['VolumeDriver.*'] : []), ...(snapshots === null ? [] : ['containerd Snapshots'])],
    devicemapper: dm.driverLoaded() ? 'available' : 'missing: GraphDriver.Init will fail until `modprobe dm_thin_pool`',
    graphdriverHome: restored?.home ?? null,
    snapshotterSocket: snapshots === null ? null : settings.snapshotterSocket,
  });

  await stopAsked;
  log.info('shutting down: finishing requests in flight');
  if (server !== null) await close(server);
  monitor.stop();
  if (metricsServer !== null) await close(metricsServer);
  await snapshots?.server.close();
  await volumes.shutdown();
  // Layers dockerd still holds (Get without Put: running containers) stay
  // mounted, so that a plugin restarted under dockerd serves them as they
  // are; dockerd's GraphDriver.Cleanup is what unmounts them all.
  await holder.shutdown({ keepMounted: (hash) => deviceOwner(hash) === 'layer' });
  log.info('stopped');
  return 0;
}

/** Sets the exit code from serve(); a failure is one line on stderr, not a stack trace. */
export function serveAsProcess(): Promise<void> {
  return serve().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`dmthin: ${errorText(err)}\n`);
      process.exitCode = exitCodeFor(err);
    },
  );
}

if (require.main === module) void serveAsProcess();
