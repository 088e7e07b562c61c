// Serving the app on the plugin's unix socket.
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Server } from 'node:http';
import type express from 'express';
import { DmthinError, isErrno } from '../errors';

/** Whether something answers on the socket: a live socket belongs to another process. */
function socketInUse(socketPath: string): Promise<boolean> {
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
 * Listens on socketPath (mode 0660: dockerd runs as root, nobody else
 * needs it). A stale socket left by a dead process is replaced; a live one
 * is an error, so two dmthin processes never share a socket.
 */
export async function listenOnSocket(app: express.Express, socketPath: string): Promise<Server> {
  await fsp.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  try {
    const st = await fsp.lstat(socketPath);
    if (!st.isSocket()) throw new DmthinError('EEXIST', `${socketPath} exists and is not a socket`);
    if (await socketInUse(socketPath)) throw new DmthinError('EADDRINUSE', `another process is serving ${socketPath}`);
    await fsp.unlink(socketPath);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(socketPath, () => resolve(s));
    s.once('error', reject);
  });
  await fsp.chmod(socketPath, 0o660);
  return server;
}
