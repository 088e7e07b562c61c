// The containerd snapshotter as main.ts wires it (the DeviceSet holder, the
// Snapshotter with its records, its gRPC service on a socket), without the
// plugin socket, the volume store or the metrics: the crash test kills and
// restarts it once per failpoint, and under the VM's emulated CPU loading
// the whole daemon costs twice as long as this. Everything it runs on a
// restart (the pool's and the snapshots' reconcile) is the daemon's code.
//   node snapshotter-child.js      settings from DMTHIN_ROOT, DMTHIN_STORAGE_OPTS,
//                                  DMTHIN_SNAPSHOTTER_SOCKET, DMTHIN_FAILPOINT
// It prints LISTENING once the socket answers; SIGTERM shuts it down cleanly.
import path from 'node:path';
import { deviceOwner, DeviceSetHolder } from '../../src/deviceset';
import { createLogger } from '../../src/shared/log';
import { listenSnapshotter } from '../../src/snapshotter/server';
import { Snapshotter } from '../../src/snapshotter/snapshotter';

export const CHILD = __filename;
export const LISTENING = 'snapshotter child listening';

function setting(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`snapshotter-child: ${name} must be set`);
  return value;
}

async function main(): Promise<void> {
  const root = setting('DMTHIN_ROOT');
  const socket = setting('DMTHIN_SNAPSHOTTER_SOCKET');
  const log = createLogger('info', 'json');
  const stopAsked = new Promise<void>((resolve) => process.once('SIGTERM', resolve));
  // As main.ts: containerd mounts the snapshots' devices, so their mounts are not dmthin's to clean up.
  const holder = new DeviceSetHolder({
    root,
    pluginOptions: (process.env['DMTHIN_STORAGE_OPTS'] ?? '').split(/\s+/).filter((o) => o !== ''),
    log,
    mountedByOthers: (hash) => deviceOwner(hash) === 'snapshot',
  });
  holder.start([]);
  const snapshotter = new Snapshotter({ holder, dir: path.join(root, 'snapshotter'), log });
  await snapshotter.load();
  snapshotter.reconcileWhenReady().catch((err: unknown) => log.error('cannot reconcile the snapshots with the pool', { err: String(err) }));
  const server = await listenSnapshotter(snapshotter, socket, log);
  process.stdout.write(`${LISTENING}\n`);
  await stopAsked;
  await server.close();
  await holder.shutdown();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`snapshotter-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
