// A dockerd of its own for end-to-end tests and benchmarks: its own
// data-root, exec-root, socket and log, so that several run side by side
// in one VM (dmthin's and the in-tree devicemapper driver's).
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { logTail, startLogged, waitUntil, type Started } from './processes';

const execFileAsync = promisify(execFile);

/**
 * The client of the docker.io package that also gives dockerd 20.10; a
 * newer docker on PATH may have dropped the legacy builder.
 */
export const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export const hasDockerd = (): boolean => existsSync('/usr/sbin/dockerd');

export class Dockerd {
  private process: Started | undefined;

  /**
   * @param driver the storage driver name `docker info` reports once it is up
   * @param args dockerd's storage arguments (`-s`, `--storage-opt`, ...)
   */
  constructor(
    readonly dir: string,
    readonly driver: string,
    private readonly args: string[],
  ) {}

  get host(): string {
    return `unix://${path.join(this.dir, 'docker.sock')}`;
  }

  get logFile(): string {
    return path.join(this.dir, 'dockerd.log');
  }

  async start(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    this.process = startLogged(
      'dockerd',
      [
        ...this.args,
        '--data-root', path.join(this.dir, 'docker'),
        '--exec-root', path.join(this.dir, 'exec'),
        '-H', this.host,
        '--pidfile', path.join(this.dir, 'dockerd.pid'),
        '--iptables=false', '--bridge=none',
        // Containers that ignore SIGTERM (sleep as pid 1) must not hold up a restart.
        '--shutdown-timeout=2',
      ],
      this.logFile,
    );
    const exited = new Promise<never>((_, reject) => {
      this.process?.child.once('exit', (code) => {
        void logTail(this.logFile).then((tail) => reject(new Error(`dockerd (${this.driver}) exited with ${String(code)} while starting; ${this.logFile} ends:\n${tail}`)));
      });
    });
    exited.catch(() => undefined);
    await Promise.race([
      waitUntil(`dockerd (${this.driver}) to answer`, async () => (await this.docker('info', '--format', '{{.Driver}}')).trim() === this.driver, 120_000),
      exited,
    ]);
  }

  /** SIGTERM; resolves once dockerd has exited (it stops its containers first). */
  async stop(): Promise<void> {
    const started = this.process;
    this.process = undefined;
    await started?.stop();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Runs the docker client against this daemon; resolves to stdout, rejects with stderr in the message. */
  async docker(...args: string[]): Promise<string> {
    return this.dockerWith({}, ...args);
  }

  async dockerWith(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
    try {
      const { stdout } = await execFileAsync(DOCKER_CLI, ['-H', this.host, ...args], {
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, ...env },
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      const output = `${e.stderr ?? ''}${e.stderr ? '' : e.stdout ?? ''}`.trim();
      throw new Error(`docker ${args.join(' ')} (${this.driver}): ${output || String(err)}`);
    }
  }
}
