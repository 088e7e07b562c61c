// dmthin as `npm start` runs it (dist/src/cli.js serve), for tests and
// benchmarks that kill it, restart it, or put dockerd in front of it.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { startLogged, type Exit, type Started } from './processes';

export const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');
/** Where dockerd looks for a legacy plugin named dmthin. */
export const PLUGIN_SOCKET = '/run/docker/plugins/dmthin.sock';
/** What dmthin logs once its socket listens. */
export const LISTENING = '"dmthin listening"';

export type PluginProcess = Started;

/** What starts the plugin: a Node binary and its arguments. */
export interface PluginCommand {
  node: string;
  args: readonly string[];
}

/** This build, by this Node (in the VM: over the 9p share of the host). */
const SHARED_BUILD: PluginCommand = { node: process.execPath, args: [CLI, 'serve'] };

/**
 * Starts the plugin with `env` on top of this process's environment; its
 * output also goes to logFile when given. The containerd snapshotter is off
 * unless env gives it a socket: tests run several dmthin at once.
 */
export function startPlugin(env: NodeJS.ProcessEnv, logFile?: string, command: PluginCommand = SHARED_BUILD): PluginProcess {
  return startLogged(command.node, command.args, logFile, { DMTHIN_SNAPSHOTTER_SOCKET: 'off', ...process.env, ...env });
}


/** The plugin on PLUGIN_SOCKET with one state directory, started and stopped as often as a test needs. */
export class DmthinProcess {
  private current: PluginProcess | undefined;

  /**
   * @param root DMTHIN_ROOT: the plugin's state
   * @param env more settings (DMTHIN_STORAGE_OPTS, ...)
   * @param command another copy of the plugin to start (a benchmark's, on the guest's disk)
   */
  constructor(
    readonly root: string,
    readonly logFile: string,
    private readonly env: NodeJS.ProcessEnv = {},
    private readonly command?: PluginCommand,
  ) {}

  /** Starts it and waits until its socket listens; rejects with its output if it exits first. */
  async start(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true });
    this.current = startPlugin({ DMTHIN_ROOT: this.root, DMTHIN_SOCKET: PLUGIN_SOCKET, ...this.env }, this.logFile, this.command);
    await this.current.waitFor(LISTENING);
  }

  /** SIGTERM; resolves to the exit code (0 when it shut down cleanly). */
  async stop(): Promise<number | null> {
    return (await this.end('stop'))?.code ?? null;
  }

  /** SIGKILL; resolves once it is gone. */
  async kill(): Promise<Exit | undefined> {
    return this.end('kill');
  }

  private async end(how: 'stop' | 'kill'): Promise<Exit | undefined> {
    const started = this.current;
    this.current = undefined;
    return started?.[how]();
  }
}
