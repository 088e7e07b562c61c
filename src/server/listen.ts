// Serving the app on the plugin's unix socket.
import fs from 'node:fs';
import http, { type RequestListener, type Server } from 'node:http';
import path from 'node:path';
import { DmthinError, isErrno } from '../shared/errors';
import { claimSocketPath } from '../shared/socket-path';

const SOCKET_MODE = 0o660;

/**
 * Binds server to socketPath with mode 0660 from the socket's first
 * moment: a socket is created under the process umask, so it is bound
 * under a private name, in a 0700 directory beside socketPath, chmod-ed
 * there, and only then given its name by link(2), which (unlike rename)
 * fails rather than replace a socket another process put there meanwhile.
 * The umask itself is left alone: it is process-wide, and the thread
 * pool's file creations would pick it up. Node binds a unix socket inside
 * listen(), so this is synchronous. Returns false when the bind failed
 * (the server then emits the reason as 'error'); throws EADDRINUSE when
 * socketPath was taken meanwhile. The server removes socketPath when it
 * closes, if it is still its own.
 */
function bindSocket(server: Server, socketPath: string): boolean {
  const privateDir = fs.mkdtempSync(path.join(path.dirname(socketPath), '.dmthin-'));
  const privatePath = path.join(privateDir, 's');
  try {
    server.listen(privatePath);
    if (!server.listening) return false;
    fs.chmodSync(privatePath, SOCKET_MODE);
    try {
      fs.linkSync(privatePath, socketPath);
    } catch (err) {
      server.close();
      if (isErrno(err, 'EEXIST')) throw new DmthinError('EADDRINUSE', `another process is serving ${socketPath}`);
      throw err;
    }
    const { ino } = fs.lstatSync(socketPath);
    server.once('close', () => {
      // libuv unlinks only the private name it bound; the public one goes here, unless it is another socket by now.
      if (fs.lstatSync(socketPath, { throwIfNoEntry: false })?.ino === ino) fs.rmSync(socketPath, { force: true });
    });
    return true;
  } finally {
    fs.rmSync(privateDir, { recursive: true, force: true });
  }
}

/** Listens on socketPath, mode 0660: dockerd runs as root, nobody else needs it. */
async function listenOn(server: Server, socketPath: string): Promise<Server> {
  await claimSocketPath(socketPath);
  let onError: (err: Error) => void = () => undefined;
  const bindError = new Promise<Error>((resolve) => {
    onError = resolve;
    server.once('error', onError);
  });
  try {
    if (!bindSocket(server, socketPath)) throw await bindError;
  } finally {
    server.off('error', onError);
  }
  return server;
}

/** A server listening before the app exists: requests wait for serve(). */
interface EarlyServer {
  server: Server;
  serve(app: RequestListener): void;
}

const earlyServers = new Map<string, EarlyServer>();

/**
 * Listens on socketPath at once, synchronously: the socket accepts
 * connections even while the rest of dmthin loads and blocks the event
 * loop. Requests wait until listenOnSocket hands over the app. Only when
 * nothing is at socketPath (stale sockets are listenOnSocket's business).
 * The server is unref'd until then, so it never keeps a process alive by
 * itself. Returns whether it listens.
 */
export function listenEarly(socketPath: string): boolean {
  try {
    fs.lstatSync(socketPath);
    return false;
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) return false;
  }
  let app: RequestListener | undefined;
  const waiting: Array<Parameters<RequestListener>> = [];
  const server = http.createServer((req, res) => {
    if (app === undefined) waiting.push([req, res]);
    else app(req, res);
  });
  server.once('error', () => earlyServers.delete(socketPath));
  try {
    fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
    if (!bindSocket(server, socketPath)) return false;
  } catch {
    return false;
  }
  server.unref();
  earlyServers.set(socketPath, {
    server,
    serve(handler) {
      app = handler;
      server.ref();
      for (const [req, res] of waiting.splice(0)) handler(req, res);
    },
  });
  return true;
}

/**
 * Serves the app on socketPath: on the server listenEarly opened there in
 * this process, or on a new one.
 */
export async function listenOnSocket(app: RequestListener, socketPath: string): Promise<Server> {
  const early = earlyServers.get(socketPath);
  if (early !== undefined) {
    earlyServers.delete(socketPath);
    early.serve(app);
    return early.server;
  }
  return listenOn(http.createServer(app), socketPath);
}
