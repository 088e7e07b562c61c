// Debian 13's containerd 1.7 (scripts/fetch-trixie) with dmthin as its
// proxy snapshotter, each test's own: config, root, state and socket under
// one directory; ctr runs against it.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLogged, waitUntil, type Started } from './processes';
import { trixieBin, trixieEnv } from './trixie';

const execFileAsync = promisify(execFile);

export class Containerd {
  private process: Started | undefined;

  constructor(
    readonly dir: string,
    /** dmthin's snapshotter socket, as [proxy_plugins.dmthin] address */
    readonly snapshotterSocket: string,
    /** more of config.toml (a built-in snapshotter's plugin section), and more environment for containerd */
    private readonly extra: { config?: string[]; env?: NodeJS.ProcessEnv } = {},
  ) {}

  get address(): string {
    return path.join(this.dir, 'containerd.sock');
  }

  get logFile(): string {
    return path.join(this.dir, 'containerd.log');
  }

  private async writeConfig(): Promise<string> {
    const file = path.join(this.dir, 'config.toml');
    const toml = [
      'version = 2',
      `root = "${path.join(this.dir, 'root')}"`,
      `state = "${path.join(this.dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${this.address}"`,
      '[proxy_plugins.dmthin]',
      '  type = "snapshot"',
      `  address = "${this.snapshotterSocket}"`,
      ...(this.extra.config ?? []),
      '',
    ].join('\n');
    await fsp.writeFile(file, toml);
    return file;
  }

  /** Starts it and waits until ctr gets an answer. */
  async start(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    const config = await this.writeConfig();
    this.process = startLogged(path.join(trixieBin(), 'containerd'), ['--config', config], this.logFile, trixieEnv({ ...process.env, ...this.extra.env }));
    const started = this.process;
    await Promise.race([
      waitUntil('containerd to answer', async () => (await this.ctr('version').then(() => true, () => false)), 60_000),
      started.exited.then(({ code, signal }) => {
        throw new Error(`containerd exited (${String(code ?? signal)}) while starting: ${started.output().slice(-3000)}`);
      }),
    ]);
  }

  /**
   * Waits until containerd's proxy reaches the snapshotter again. Its gRPC
   * client (services/server/server.go getClient) dials with a backoff of up
   * to 3 s (plus 20% jitter); while a socket is missing each attempt ends in
   * "dial ...: timeout", and until the next attempt every call fails at once
   * with that error. So a snapshotter that starts after containerd is
   * reachable a few seconds later, not at once.
   */
  async waitForSnapshotter(snapshotter: string): Promise<void> {
    await waitUntil(`containerd to reconnect to snapshotter ${snapshotter}`, async () => {
      await this.ctr('snapshots', '--snapshotter', snapshotter, 'ls');
      return true;
    }, 30_000);
  }

  async stop(): Promise<void> {
    const started = this.process;
    this.process = undefined;
    await started?.stop();
  }

  /** ctr in namespace "test"; resolves to stdout, rejects with stderr in the message. */
  ctr(...args: string[]): Promise<string> {
    return this.ctrIn('test', ...args);
  }

  /** ctr in a namespace of the caller's. */
  async ctrIn(namespace: string, ...args: string[]): Promise<string> {
    try {
      const { stdout } = await execFileAsync(path.join(trixieBin(), 'ctr'), ['--address', this.address, '--namespace', namespace, ...args], {
        env: trixieEnv(),
        maxBuffer: 16 * 1024 * 1024,
        timeout: 300_000,
      });
      return stdout;
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(`ctr ${args.join(' ')} failed: ${stderr.trim() || String(err)}`);
    }
  }
}
