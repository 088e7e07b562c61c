// dmthin as a plain process serving its legacy plugin socket, the way an
// operator runs it with `npm start`, for end-to-end tests and benchmarks.
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { logTail, startLogged, waitUntil, type Started } from './processes';

export const PLUGIN_SOCKET = '/run/docker/plugins/dmthin.sock';
const MAIN = path.join(__dirname, '..', '..', 'src', 'main.js');

export class DmthinProcess {
  private process: Started | undefined;

  /**
   * @param root DMTHIN_ROOT: the plugin's state, on the VM's scratch disk
   * @param env more settings (DMTHIN_STORAGE_OPTS, ...)
   */
  constructor(
    readonly root: string,
    readonly logFile: string,
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  async start(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true });
    this.process = startLogged(process.execPath, [MAIN], this.logFile, {
      ...process.env,
      DMTHIN_ROOT: this.root,
      DMTHIN_SOCKET: PLUGIN_SOCKET,
      ...this.env,
    });
    const child = this.process.child;
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code) => {
        void logTail(this.logFile).then((tail) => reject(new Error(`dmthin exited with ${String(code)} while starting; ${this.logFile} ends:\n${tail}`)));
      });
    });
    exited.catch(() => undefined);
    await Promise.race([waitUntil('the dmthin socket to answer', () => accepts(PLUGIN_SOCKET)), exited]);
  }

  /** SIGTERM; resolves to the exit code (0 when it shut down cleanly). */
  async stop(): Promise<number | null> {
    const started = this.process;
    this.process = undefined;
    return (await started?.stop()) ?? null;
  }
}

/** Whether a process answers on the socket (a stale socket file does not). */
function accepts(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
