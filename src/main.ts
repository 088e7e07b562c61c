// The composition root: the plugin's HTTP app on its unix socket, the
// GraphDriver over a DeviceSet that GraphDriver.Init opens in dockerd's
// Home (its default pool: sparse loop files under <Home>/devicemapper).
// SIGTERM or SIGINT: stop accepting, let requests in flight finish, then
// shut the DeviceSet down cleanly.
import type { Server } from 'node:http';
import { dm } from './devmapper';
import { splitOptionList } from './deviceset';
import { DeviceSetDriver } from './graphdriver/driver';
import { createLogger, dmLevel, isLogLevel } from './log';
import { createApp } from './server/app';
import { listenOnSocket } from './server/listen';

export const DEFAULT_SOCKET = '/run/docker/plugins/dmthin.sock';

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function main(): Promise<number> {
  const level = process.env['DMTHIN_LOG_LEVEL'] ?? 'info';
  const log = createLogger(isLogLevel(level) ? level : 'info');
  dm.setLogger((lvl, message, code) => log.log(dmLevel(lvl), message, { source: 'libdevmapper', code }));
  const pluginOptions = splitOptionList(process.env['DMTHIN_STORAGE_OPTS'] ?? '');
  const socket = process.env['DMTHIN_SOCKET'] ?? DEFAULT_SOCKET;

  const driver = new DeviceSetDriver({ pluginOptions, log });
  const server = await listenOnSocket(createApp({ graph: driver, log }), socket);
  const devicemapper = dm.driverLoaded() ? 'available' : 'missing: GraphDriver.Init will fail until `modprobe dm_thin_pool`';
  log.info('dmthin listening', { socket, serves: ['Plugin.Activate', 'GraphDriver.*'], devicemapper });

  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info('shutting down');
  await close(server);
  await driver.cleanup();
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
