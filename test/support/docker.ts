// A private dockerd 20.10 for end-to-end tests: its own data root, exec
// root, API socket, pid file and log under one directory, so it runs beside
// other engineers' and the host's; a busybox image made here, since no
// registry with images is reachable.
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLogged, waitUntil, type Started } from './processes';

const execFileAsync = promisify(execFile);

/** Debian's 20.10 CLI when it is there, to speak exactly dockerd's API version. */
export const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export function haveDockerd(): boolean {
  return existsSync('/usr/sbin/dockerd');
}

export class Dockerd {
  private process: Started | undefined;

  constructor(
    /** everything of this dockerd lives here */
    readonly dir: string,
    /** the arguments start() adds when given none */
    private readonly extraArgs: string[] = ['--storage-driver=vfs'],
  ) {}

  /** unix://<dir>/docker.sock, for DOCKER_HOST or -H */
  get host(): string {
    return `unix://${path.join(this.dir, 'docker.sock')}`;
  }

  get dataRoot(): string {
    return path.join(this.dir, 'docker');
  }

  get logFile(): string {
    return path.join(this.dir, 'dockerd.log');
  }

  /** Starts dockerd (with these arguments instead of the constructor's) and waits until it answers. */
  async start(extraArgs: string[] = this.extraArgs): Promise<void> {
    if (this.process !== undefined) throw new Error(`dockerd in ${this.dir} is already running`);
    await fsp.mkdir(this.dir, { recursive: true });
    const started = startLogged(
      'dockerd',
      ['--data-root', this.dataRoot, '--exec-root', path.join(this.dir, 'exec'), '-H', this.host,
        '--pidfile', path.join(this.dir, 'dockerd.pid'), '--iptables=false', '--bridge=none', ...extraArgs],
      this.logFile,
    );
    this.process = started;
    const exited = (): boolean => started.child.exitCode !== null || started.child.signalCode !== null;
    // Stops waiting as soon as dockerd answers or exits.
    await waitUntil(`dockerd ${extraArgs.join(' ')} to answer (log: ${this.logFile})`, async () => {
      if (exited()) return true;
      return (await this.docker('version', '--format', '{{.Server.Version}}')).trim() !== '';
    }, 120_000);
    if (exited()) {
      this.process = undefined;
      throw new Error(`dockerd ${extraArgs.join(' ')} exited (${started.child.exitCode ?? started.child.signalCode}) before answering (log: ${this.logFile})`);
    }
  }

  /** SIGTERM and wait: dockerd stops its containers first. A no-op when it is not running. */
  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }

  /** Runs the CLI against this dockerd; rejects with its stderr. */
  async docker(...args: string[]): Promise<string> {
    try {
      return (await execFileAsync(DOCKER_CLI, ['-H', this.host, ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout;
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new Error(`docker ${args.join(' ')}: ${stderr || String(err)}`);
    }
  }

  /** The CLI's failure message, for commands that must fail. */
  async dockerFails(...args: string[]): Promise<string> {
    try {
      await this.docker(...args);
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error(`docker ${args.join(' ')} succeeded but must fail`);
  }

  /** The last lines of its log, for a failure's report. */
  logTail(lines: number): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return `(no log at ${this.logFile})`;
    }
  }

  /** `tag` (bb:latest), a static busybox with the applets the tests use. */
  async importBusybox(tag = 'bb:latest'): Promise<void> {
    const rootfs = await fsp.mkdtemp(path.join(this.dir, 'busybox-'));
    await fsp.mkdir(path.join(rootfs, 'bin'));
    await fsp.copyFile('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
    for (const cmd of ['sh', 'echo', 'ls', 'cat', 'rm', 'mkdir', 'dd', 'sleep', 'df', 'sync', 'stat', 'touch']) await fsp.symlink('busybox', path.join(rootfs, 'bin', cmd));
    await execFileAsync('sh', ['-c', 'tar -C "$1" -c . | "$2" -H "$3" import - "$4"', 'sh', rootfs, DOCKER_CLI, this.host, tag]);
    await fsp.rm(rootfs, { recursive: true });
  }
}
