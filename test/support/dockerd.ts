// A dockerd of its own for end-to-end tests and benchmarks, Debian 12's
// 20.10 or Debian 13's 26: its own data root, exec root, API socket, pid
// file and log, so that several run side by side (dmthin's and the in-tree
// devicemapper driver's in one VM) and beside the host's; a busybox image
// made here, since no registry is reachable.
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLogged, waitUntil, type Started } from './processes';
import { trixieBin, trixieEnv, trixieMissing } from './trixie';

const execFileAsync = promisify(execFile);

/** Pids of the containerd shims whose command line names `execRoot` (their containerd's socket is under it). */
function shimsUnder(execRoot: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    if (cmdline.includes('containerd-shim') && cmdline.includes(execRoot)) pids.push(Number(entry));
  }
  return pids;
}

/**
 * The client of the docker.io package that also gives dockerd 20.10: it
 * speaks exactly dockerd's API version, and a newer docker on PATH may
 * have dropped the legacy builder.
 */
export const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export function haveDockerd(): boolean {
  return existsSync('/usr/sbin/dockerd');
}

/** Which dockerd runs: its binary and the environment it starts with. */
export interface Engine {
  /** its major version as tests name it: '20.10' or '26' */
  version: string;
  command: string;
  env: NodeJS.ProcessEnv;
}

/** Debian 12's dockerd (docker.io 20.10), with its containerd 1.6. */
export const DOCKERD_20: Engine = { version: '20.10', command: 'dockerd', env: process.env };

/**
 * Debian 13's dockerd 26 with containerd 1.7, unpacked by
 * scripts/fetch-trixie; its PATH finds them first, Debian 12's runc after.
 */
export const DOCKERD_26: Engine = { version: '26', command: path.join(trixieBin(), 'dockerd'), env: trixieEnv() };

/** Every engine the suites know, oldest first. */
export const ENGINES: readonly Engine[] = [DOCKERD_20, DOCKERD_26];

/**
 * The engines a suite runs on: `byDefault`, every engine with
 * DMTHIN_DOCKERD_MATRIX=full (what CI leaves out to stay within its time),
 * or the versions listed (DMTHIN_DOCKERD_MATRIX=26, =20.10,26).
 */
export function dockerdMatrix(byDefault: readonly Engine[]): readonly Engine[] {
  const matrix = process.env['DMTHIN_DOCKERD_MATRIX'] ?? 'default';
  if (matrix === 'full') return ENGINES;
  if (matrix === 'default') return byDefault;
  const versions = matrix.split(',').map((v) => v.trim());
  const unknown = versions.filter((v) => !ENGINES.some((e) => e.version === v));
  if (unknown.length > 0) throw new Error(`DMTHIN_DOCKERD_MATRIX=${matrix}: give default, full or versions among ${ENGINES.map((e) => e.version).join(', ')}`);
  return ENGINES.filter((e) => versions.includes(e.version));
}

/** Why `engine` cannot run here, or null when it can. */
export function engineMissing(engine: Engine): string | null {
  if (engine === DOCKERD_26) return trixieMissing();
  return haveDockerd() ? null : 'dockerd is not installed (scripts/setup --test installs docker.io)';
}

export interface Storage {
  /** the storage driver name `docker info` reports once dockerd is up */
  driver: string;
  /** dockerd's storage arguments (`-s`, `--storage-opt`, ...) */
  args: readonly string[];
}

/** What dockerd says when the containerd it started did not answer in time. */
const CONTAINERD_START_TIMEOUT = 'timeout waiting for containerd to start';

const VFS: Storage = { driver: 'vfs', args: ['--storage-driver=vfs'] };

export class Dockerd {
  private process: Started | undefined;

  constructor(
    /** everything of this dockerd lives here */
    readonly dir: string,
    /** the storage it starts with, until start() is given another */
    private storage: Storage = VFS,
    readonly engine: Engine = DOCKERD_20,
  ) {}

  get driver(): string {
    return this.storage.driver;
  }

  get host(): string {
    return `unix://${path.join(this.dir, 'docker.sock')}`;
  }

  get dataRoot(): string {
    return path.join(this.dir, 'docker');
  }

  get logFile(): string {
    return path.join(this.dir, 'dockerd.log');
  }

  /**
   * Starts it (on `storage` from now on, when given) and waits until it
   * answers with its storage driver; rejects with its log's end if it
   * exits first.
   */
  async start(storage: Storage = this.storage): Promise<void> {
    try {
      await this.startOnce(storage);
    } catch (err) {
      // dockerd 20.10 gives the containerd it starts a fixed 15 s; an
      // emulated VM on a busy host can miss that. One more try, then fail.
      if (!(err instanceof Error) || !err.message.includes(CONTAINERD_START_TIMEOUT)) throw err;
      this.process = undefined;
      process.stdout.write(`      dockerd ${this.engine.version}: its containerd missed dockerd's start-up limit; starting it once more\n`);
      await this.startOnce(storage);
    }
  }

  private async startOnce(storage: Storage): Promise<void> {
    if (this.process !== undefined) throw new Error(`dockerd in ${this.dir} is already running`);
    this.storage = storage;
    await fsp.mkdir(this.dir, { recursive: true });
    const started = startLogged(
      this.engine.command,
      [
        ...this.storage.args,
        '--data-root', this.dataRoot,
        '--exec-root', path.join(this.dir, 'exec'),
        '-H', this.host,
        '--pidfile', path.join(this.dir, 'dockerd.pid'),
        '--iptables=false', '--bridge=none',
        // dockerd's own default, said out loud: with no container it is the whole
        // shutdown's limit, and a shorter one (2 s was tried) cuts the managed
        // plugin's stop on a loaded host, leaving its shim and task behind.
        // Containers wait their own stop timeout (10 s) whatever it is.
        '--shutdown-timeout=15',
      ],
      this.logFile,
      this.engine.env,
    );
    this.process = started;
    const exited = started.exited.then(({ code, signal }) => {
      throw new Error(`dockerd ${this.engine.version} (${this.driver}) exited (${String(code ?? signal)}) while starting; its output ends:\n${started.output().slice(-3000)}`);
    });
    exited.catch(() => undefined);
    await Promise.race([
      waitUntil(`dockerd ${this.engine.version} (${this.driver}) to answer`, async () => (await this.docker('info', '--format', '{{.Driver}}')).trim() === this.driver, 120_000),
      exited,
    ]);
  }

  /**
   * SIGTERM; resolves once dockerd has exited (it stops its containers
   * first) and so have the containerd shims of its exec root. A shim still
   * cleaning up when dockerd starts again keeps its task directory, and
   * dockerd 26 then cannot start the managed plugin ("file exists"): seen
   * on a loaded host.
   */
  async stop(): Promise<void> {
    const started = this.process;
    this.process = undefined;
    await started?.stop();
    if (started === undefined) return;
    const execRoot = path.join(this.dir, 'exec');
    await waitUntil(`the containerd shims under ${execRoot} to exit`, async () => shimsUnder(execRoot).length === 0, 60_000);
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
      throw new Error(`docker ${args.join(' ')} (${this.engine.version}, ${this.driver}): ${output || String(err)}`);
    }
  }

  /** The client's failure message, for commands that must fail. */
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

  /** `tag`, a static busybox with the applets the tests use. */
  async importBusybox(tag = 'bb:latest'): Promise<void> {
    const rootfs = await fsp.mkdtemp(path.join(this.dir, 'busybox-'));
    await fsp.mkdir(path.join(rootfs, 'bin'));
    await fsp.copyFile('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
    for (const cmd of ['sh', 'echo', 'ls', 'cat', 'rm', 'mkdir', 'dd', 'sleep', 'df', 'sync', 'stat', 'touch']) await fsp.symlink('busybox', path.join(rootfs, 'bin', cmd));
    await execFileAsync('sh', ['-c', 'tar -C "$1" -c . | "$2" -H "$3" import - "$4"', 'sh', rootfs, DOCKER_CLI, this.host, tag]);
    await fsp.rm(rootfs, { recursive: true });
  }
}
