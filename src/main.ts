// The composition root: settings, the log, the one DeviceSet (opened in
// the background under the state directory), the GraphDriver, and the HTTP
// app on the plugin socket. SIGTERM or SIGINT: stop accepting, let the
// requests in flight finish, then shut the DeviceSet down cleanly.
import { promises as fsp } from 'node:fs';
import type { Server } from 'node:http';
import { loadSettings, type Settings } from './config';
import { dm } from './devmapper';
import { DeviceSetHolder } from './deviceset';
import { DeviceSetDriver } from './graphdriver/driver';
import { loadInitRecord, type InitRecord } from './graphdriver/init-record';
import { createLogger, dmLevel, type Logger } from './log';
import { createApp } from './server/app';
import { listenOnSocket } from './server/listen';

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

async function main(): Promise<number> {
  let settings: Settings;
  try {
    settings = loadSettings();
  } catch (err) {
    process.stderr.write(`dmthin: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const log = createLogger(settings.logLevel);
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { err: String(err) }));
  dm.setLogger((lvl, message, code) => log.log(dmLevel(lvl), message, { source: 'libdevmapper', code }));
  await fsp.mkdir(settings.root, { recursive: true, mode: 0o711 });

  const restored = await restoredInit(settings, log);
  const holder = new DeviceSetHolder({ root: settings.root, pluginOptions: settings.storageOpts, log });
  holder.start(restored?.opts ?? []);
  const graph = new DeviceSetDriver({ holder, root: settings.root, log, restored });
  const server = await listenOnSocket(createApp({ graph, log }), settings.socket);
  log.info('dmthin listening', {
    socket: settings.socket,
    root: settings.root,
    serves: ['Plugin.Activate', 'GraphDriver.*'],
    devicemapper: dm.driverLoaded() ? 'available' : 'missing: GraphDriver.Init will fail until `modprobe dm_thin_pool`',
    graphdriverHome: restored?.home ?? null,
  });

  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info('shutting down: finishing requests in flight');
  await close(server);
  await holder.shutdown();
  log.info('stopped');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`dmthin: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
