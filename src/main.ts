// The composition root. It opens the DeviceSet on the state directory
// (by default a loop-backed thin pool in sparse files there), logs its
// status and holds it until SIGTERM or SIGINT, then shuts it down
// cleanly. The plugin socket comes with the GraphDriver and VolumeDriver
// endpoints.
import { dm } from './devmapper';
import { DeviceSet, splitOptionList, storageOptions } from './deviceset';
import { isSystemError } from './errors';
import { createLogger, dmLevel, isLogLevel } from './log';

export const SOCKET_PATH = '/run/docker/plugins/dmthin.sock';
const DEFAULT_ROOT = '/var/lib/dmthin';

async function main(): Promise<number> {
  const level = process.env['DMTHIN_LOG_LEVEL'] ?? 'info';
  const log = createLogger(isLogLevel(level) ? level : 'info');
  dm.setLogger((lvl, message, code) => log.log(dmLevel(lvl), message, { source: 'libdevmapper', code }));
  try {
    await dm.version();
  } catch (err) {
    const reason = isSystemError(err) ? `${err.code}: ${err.detail ?? err.message}` : String(err);
    log.error('device-mapper is not available in this kernel; load it with `modprobe dm_thin_pool`', { reason });
    return 1;
  }

  const home = process.env['DMTHIN_ROOT'] ?? DEFAULT_ROOT;
  const options = storageOptions(splitOptionList(process.env['DMTHIN_STORAGE_OPTS'] ?? ''), []);
  const set = await DeviceSet.open({ home, options, log });
  log.info('device set ready', { home, status: Object.fromEntries(await set.status()) });
  log.info('GraphDriver and VolumeDriver endpoints are not served yet; they will be on the plugin socket', { socket: SOCKET_PATH });

  // Signal handlers alone do not keep Node running; this timer does, until a signal comes.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  clearInterval(keepAlive);
  log.info('shutting down');
  await set.shutdown();
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
