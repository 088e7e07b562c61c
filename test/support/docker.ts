// A private dockerd 20.10 for end-to-end tests: its own data root, exec
// root, API socket and pid file, so it runs beside other engineers' and the
// host's; a busybox image made here, since no registry is reachable.
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
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
    private readonly extraArgs: string[] = ['--storage-driver=vfs'],
  ) {}

  get host(): string {
    return `unix://${path.join(this.dir, 'docker.sock')}`;
  }

  async start(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    this.process = startLogged(
      'dockerd',
      ['--data-root', path.join(this.dir, 'docker'), '--exec-root', path.join(this.dir, 'exec'), '-H', this.host,
        '--pidfile', path.join(this.dir, 'dockerd.pid'), '--iptables=false', '--bridge=none', ...this.extraArgs],
      path.join(this.dir, 'dockerd.log'),
    );
    await waitUntil('dockerd to answer', async () => (await this.docker('version', '--format', '{{.Server.Version}}')).trim() !== '', 120_000);
  }

  /** SIGTERM and wait: dockerd stops its containers first. */
  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }

  /** Runs the CLI against this dockerd; rejects with its stderr. */
  async docker(...args: string[]): Promise<string> {
    try {
      return (await execFileAsync(DOCKER_CLI, ['-H', this.host, ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout;
    } catch (err) {
      throw new Error(`docker ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? String(err)}`);
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

  /** bb:latest, a static busybox with the applets the tests use. */
  async importBusybox(): Promise<void> {
    const rootfs = path.join(this.dir, 'rootfs');
    await fsp.mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await fsp.copyFile('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
    for (const cmd of ['sh', 'echo', 'ls', 'cat', 'rm', 'mkdir', 'dd', 'sleep', 'df', 'sync', 'stat']) await fsp.symlink('busybox', path.join(rootfs, 'bin', cmd));
    await execFileAsync('sh', ['-c', `tar -C ${rootfs} -c . | ${DOCKER_CLI} -H ${this.host} import - bb:latest`]);
  }
}
