// A unix socket's path, made free to listen on: by the plugin's socket
// (server/listen.ts) and the containerd snapshotter's (snapshotter/server.ts).
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DmthinError, isErrno } from './errors';

/** Whether something accepts connections on the socket: a live socket belongs to a running process. */
export function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Makes socketPath free to listen on: its directory exists, a stale socket
 * left by a dead process is removed; a live one is an error, so two dmthin
 * processes never share a socket.
 */
export async function claimSocketPath(socketPath: string): Promise<void> {
  await fsp.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  try {
    const st = await fsp.lstat(socketPath);
    if (!st.isSocket()) throw new DmthinError('EEXIST', `${socketPath} exists and is not a socket`);
    if (await socketAnswers(socketPath)) throw new DmthinError('EADDRINUSE', `another process is serving ${socketPath}`);
    await fsp.unlink(socketPath);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}
