// The composition root. For now it checks that device-mapper is reachable
// and says what the plugin will serve; the server comes with the GraphDriver
// and VolumeDriver issues.
import { dm } from './devmapper';
import { createLogger, dmLevel } from './log';
import { isSystemError } from './errors';

export const SOCKET_PATH = '/run/docker/plugins/dmthin.sock';

async function main(): Promise<number> {
  const log = createLogger();
  dm.setLogger((level, message, code) => log.log(dmLevel(level), message, { source: 'libdevmapper', code }));
  try {
    const versions = await dm.version();
    log.info('device-mapper reachable', versions);
  } catch (err) {
    const reason = isSystemError(err) ? `${err.code}: ${err.detail ?? err.message}` : String(err);
    log.error('device-mapper is not available in this kernel; dmthin needs the dm_thin_pool module', { reason });
    return 1;
  }
  log.info('dmthin will serve Plugin.Activate, GraphDriver.* and VolumeDriver.* here; not yet implemented', {
    socket: SOCKET_PATH,
  });
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`dmthin: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
