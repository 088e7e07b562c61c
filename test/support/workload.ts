// The docker workload that dmthin must pass exactly as Docker's in-tree
// devicemapper driver does: import a base image, build on it with the
// legacy builder, run, diff, commit, export, save, restart, remove. Written
// once here; the VM test runs it against both drivers and compares what
// they give, the benchmark times each step on both.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fs as kfs } from '../../src/devmapper';
import { DOCKERD_20, Dockerd, type Engine } from './dockerd';
import { run } from './exec';
import { DmthinProcess, type PluginCommand } from './plugin-process';
import { NET_BIND_CAPABILITY, writeBaseImageTar } from './workload-image';

export const IMAGES = { base: 'wl/base:1', built: 'wl/built:1', committed: 'wl/committed:1' } as const;
export const CONTAINERS = { run: 'wl-run', fromCommit: 'wl-from-commit', kept: 'wl-kept', live: 'wl-live' } as const;

/** Every container runs offline with a fixed hostname, so both daemons write the same init layer. */
const RUN_OPTIONS = ['--network', 'none', '--hostname', 'wl'];

/**
 * Layers that delete files and directories of lower layers, hard link,
 * symlink, set setuid/setgid/sticky bits, chown, and make a fifo and a
 * device node. COPY brings an owner (--chown) and a file capability from
 * the build context; busybox cannot set xattrs itself.
 */
const DOCKERFILE = `FROM ${IMAGES.base}
COPY --chown=1000:1000 owned.txt /app/owned.txt
COPY capped-copy /app/capped-copy
RUN rm /opt/lower/gone-file && rm -r /opt/lower/gone-dir && rm /usr/share/hl-b && rmdir /opt/lower/empty-dir && mv /usr/share/moved-from /usr/share/moved-to
RUN mkdir -p /app/data && echo hello > /app/data/f && ln /app/data/f /app/data/f-hard && ln -s ../data/f /app/data/f-sym && ln /app/data/f-sym /app/data/sym-hard && ln -s /nowhere /app/dangling && ln /etc/group /app/group-link
RUN chmod 4755 /app/data/f && chmod 6755 /usr/share/hl-a && mkdir /app/setgid /app/sticky && chmod 2775 /app/setgid && chmod 1777 /app/sticky && touch /app/zero && chmod 0 /app/zero
RUN chown 1000:1000 /app/data && chown -h 1000:100 /app/data/f-sym && chown 65534:65534 /app/setgid && chown 1000:100 /opt/lower/kept
RUN mkfifo -m 0640 /app/fifo && ln /app/fifo /app/fifo-hard && mknod -m 0620 /app/tty-node c 5 0
RUN rm -rf /srv/tree && mkdir -p /srv/tree/new && echo new > /srv/tree/new/file && touch -d '2001-02-03 04:05:06' /srv/tree/new/file /srv/tree/new
RUN echo more >> /app/data/f && rm /app/data/f-hard && echo appended >> /opt/implicit/child
`;

/** What the workload's container changes when it runs: `docker diff` and commit see this. */
const RUN_SCRIPT = [
  'echo run > /app/run-file',
  'rm /app/dangling',
  'rm -rf /srv/tree',
  'chmod 0600 /etc/group',
  'mkdir /app/rundir',
  'ln /app/data/f /app/rundir/f-link',
  'chown 1:1 /app/owned.txt /opt/empty',
].join(' && ');

export interface WorkloadAssets {
  baseTar: string;
  context: string;
}

/** The base image's tar and the build context, made once and shared by every daemon. */
export async function prepareAssets(dir: string): Promise<WorkloadAssets> {
  const baseTar = path.join(dir, 'base.tar');
  const context = path.join(dir, 'context');
  await fsp.mkdir(context, { recursive: true });
  await writeBaseImageTar(baseTar);
  await fsp.writeFile(path.join(context, 'Dockerfile'), DOCKERFILE);
  await fsp.writeFile(path.join(context, 'owned.txt'), 'copied with --chown\n');
  const capped = path.join(context, 'capped-copy');
  await fsp.writeFile(capped, '#!/bin/sh\necho capped\n', { mode: 0o755 });
  await kfs.lsetxattr(capped, 'security.capability', NET_BIND_CAPABILITY);
  return { baseTar, context };
}

export type StatusRows = Array<[string, string]>;

export interface GraphDriverInfo {
  Name: string;
  Data: Record<string, string>;
}

/** The workload's steps on one daemon; outputs land in `out`. */
export class Workload {
  /** what save() wrote, for load() */
  private saved: { file: string; id: string } | undefined;

  constructor(
    readonly daemon: Dockerd,
    readonly out: string,
    readonly assets: WorkloadAssets,
  ) {}

  private docker(...args: string[]): Promise<string> {
    return this.daemon.docker(...args);
  }

  async importBase(): Promise<void> {
    await this.docker('import', this.assets.baseTar, IMAGES.base);
  }

  /** The legacy builder (DOCKER_BUILDKIT=0), offline, never from cache. */
  async build(): Promise<void> {
    await this.daemon.dockerWith({ DOCKER_BUILDKIT: '0' }, 'build', '--network', 'none', '--no-cache', '-t', IMAGES.built, this.assets.context);
  }

  /** Runs the container that changes files; it exits when done. */
  async run(): Promise<void> {
    await this.docker('run', '--name', CONTAINERS.run, ...RUN_OPTIONS, IMAGES.built, 'sh', '-c', RUN_SCRIPT);
  }

  /** `docker diff` of the run container, sorted. */
  async diff(): Promise<string[]> {
    return lines(await this.docker('diff', CONTAINERS.run)).sort();
  }

  async commit(): Promise<void> {
    await this.docker('commit', CONTAINERS.run, IMAGES.committed);
  }

  /** A container of the committed image, created but not started. */
  async createFromCommit(): Promise<void> {
    await this.docker('create', '--name', CONTAINERS.fromCommit, ...RUN_OPTIONS, IMAGES.committed, 'true');
  }

  /** `docker export` of a container into a file; resolves to its path. */
  async exportContainer(name: string): Promise<string> {
    const file = path.join(this.out, `export-${name}.tar`);
    await this.docker('export', '-o', file, name);
    return file;
  }

  /** `docker save` of the committed image into a file; resolves to its path. */
  async save(): Promise<string> {
    const file = path.join(this.out, 'save.tar');
    await this.docker('save', '-o', file, IMAGES.committed);
    this.saved = { file, id: await this.imageId(IMAGES.committed) };
    return file;
  }

  /**
   * `docker load` of what save() wrote, once rmi() has removed the image;
   * resolves to the image ID before the save and after the load.
   */
  async load(): Promise<{ saved: string; loaded: string }> {
    if (this.saved === undefined) throw new Error('load() needs a save() first');
    await this.docker('load', '-i', this.saved.file);
    return { saved: this.saved.id, loaded: await this.imageId(IMAGES.committed) };
  }

  async imageId(tag: string): Promise<string> {
    return (await this.docker('image', 'inspect', '--format', '{{.Id}}', tag)).trim();
  }

  /** An exited container with a file in its own layer, to outlive a daemon restart. */
  async createKept(): Promise<string> {
    return this.docker('run', '--name', CONTAINERS.kept, ...RUN_OPTIONS, IMAGES.built, 'sh', '-c', 'cat /kept 2>/dev/null; echo kept > /kept');
  }

  /** Starts the kept container again: its output is what the last run left in its layer. */
  async startKept(): Promise<string> {
    return this.docker('start', '-a', CONTAINERS.kept);
  }

  async restartDockerd(): Promise<void> {
    await this.daemon.restart();
  }

  /** A container that keeps running (busybox sleep). */
  async startLive(): Promise<void> {
    await this.docker('run', '-d', '--name', CONTAINERS.live, ...RUN_OPTIONS, IMAGES.built, 'sleep', '3600');
  }

  execInLive(script: string): Promise<string> {
    return this.docker('exec', CONTAINERS.live, 'sh', '-c', script);
  }

  /** Removes the workload's containers (running ones are stopped first). */
  async rm(): Promise<void> {
    const names = new Set(lines(await this.docker('ps', '-a', '--format', '{{.Names}}')));
    const ours = Object.values(CONTAINERS).filter((n) => names.has(n));
    if (ours.length > 0) await this.docker('rm', '-f', ...ours);
  }

  /** Removes the workload's images, newest first, with the build's intermediate images. */
  async rmi(): Promise<void> {
    const tags = new Set(lines(await this.docker('images', '--format', '{{.Repository}}:{{.Tag}}')));
    const ours = [IMAGES.committed, IMAGES.built, IMAGES.base].filter((t) => tags.has(t));
    if (ours.length > 0) await this.docker('rmi', ...ours);
  }

  async containers(): Promise<string[]> {
    return lines(await this.docker('ps', '-a', '--format', '{{.Names}}')).sort();
  }

  async images(): Promise<string[]> {
    return lines(await this.docker('images', '--format', '{{.Repository}}:{{.Tag}}')).sort();
  }

  /** The storage driver's rows of `docker info`. */
  async statusRows(): Promise<StatusRows> {
    return JSON.parse(await this.docker('info', '--format', '{{json .DriverStatus}}')) as StatusRows;
  }

  async graphDriver(container: string): Promise<GraphDriverInfo> {
    return JSON.parse(await this.docker('inspect', '--format', '{{json .GraphDriver}}', container)) as GraphDriverInfo;
  }
}

function lines(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

export interface SavedImage {
  /** each layer's tar, bottom first */
  layers: string[];
  /** the config's rootfs.diff_ids, bottom first */
  diffIds: string[];
}

/** Unpacks a `docker save` tar into `dir` and names its layer tars in order. */
export async function unpackSave(file: string, dir: string): Promise<SavedImage> {
  await fsp.mkdir(dir, { recursive: true });
  await run('tar', ['-xf', file, '-C', dir]);
  const manifest = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as Array<{ Config: string; Layers: string[] }>;
  const [image] = manifest;
  if (image === undefined || manifest.length !== 1) throw new Error(`${file}: expected one image in manifest.json, found ${manifest.length}`);
  const config = JSON.parse(await fsp.readFile(path.join(dir, image.Config), 'utf8')) as { rootfs: { diff_ids: string[] } };
  return { layers: image.Layers.map((l) => path.join(dir, l)), diffIds: config.rootfs.diff_ids };
}

/** The same for both drivers; the last one is what the in-tree driver needs in a VM without udev. */
export const STORAGE_OPTS = ['dm.loopdatasize=8G', 'dm.loopmetadatasize=256M', 'dm.basesize=1G', 'dm.override_udev_sync_check=true'];
const DOCKERD_STORAGE_OPTS = STORAGE_OPTS.flatMap((o) => ['--storage-opt', o]);

/** The reference side: dockerd 20.10 on Docker's in-tree devicemapper driver (gone from 25 on), in `dir`. */
export function inTreeWorkload(dir: string, assets: WorkloadAssets): Workload {
  const daemon = new Dockerd(dir, { driver: 'devicemapper', args: ['--storage-driver=devicemapper', ...DOCKERD_STORAGE_OPTS] });
  return new Workload(daemon, dir, assets);
}

/**
 * dmthin as a plain process on its legacy socket, state in `dir`. It opens
 * its pool when it starts, before dockerd's Init: it gets the options
 * too, as an operator sets them, so Init changes nothing.
 */
export function dmthinPlugin(dir: string, command?: PluginCommand): DmthinProcess {
  const pluginOpts = [process.env['DMTHIN_STORAGE_OPTS'] ?? '', ...STORAGE_OPTS].join(' ').trim();
  return new DmthinProcess(path.join(dir, 'dmthin-root'), path.join(dir, 'dmthin.log'), { DMTHIN_STORAGE_OPTS: pluginOpts }, command);
}

/** A dockerd of `engine` started with `--experimental -s dmthin` and the in-tree side's options, in `dir`. */
export function dmthinWorkload(dir: string, assets: WorkloadAssets, engine: Engine = DOCKERD_20): Workload {
  const daemon = new Dockerd(dir, { driver: 'dmthin', args: ['--experimental', '-s', 'dmthin', ...DOCKERD_STORAGE_OPTS] }, engine);
  return new Workload(daemon, dir, assets);
}

/**
 * The two sides of the comparison in one VM, both on dockerd 20.10:
 * dmthin (dmthinPlugin and dmthinWorkload) and the in-tree driver, each
 * with its own data-root and the same storage options.
 */
export class DriverPair {
  readonly plugin: DmthinProcess;
  readonly inTree: Workload;
  readonly dmthin: Workload;

  /** @param command the plugin copy to start (default: this build, as the VM tests run it) */
  constructor(top: string, assets: WorkloadAssets, command?: PluginCommand) {
    this.plugin = dmthinPlugin(top, command);
    this.inTree = inTreeWorkload(path.join(top, 'in-tree'), assets);
    this.dmthin = dmthinWorkload(path.join(top, 'dmthin'), assets);
  }

  get daemons(): Dockerd[] {
    return [this.inTree.daemon, this.dmthin.daemon];
  }

  async start(): Promise<void> {
    await this.plugin.start();
    for (const d of this.daemons) await d.start();
  }

  /** Stops both daemons, then the plugin; resolves to the plugin's exit code. */
  async stop(): Promise<number | null> {
    for (const d of this.daemons) await d.stop();
    return this.plugin.stop();
  }
}

export interface TimedStep {
  name: string;
  run: (w: Workload) => Promise<unknown>;
}

/** The steps the benchmark times, in the order a round runs them; the round leaves nothing behind. */
export const TIMED_STEPS: readonly TimedStep[] = [
  { name: 'import', run: (w) => w.importBase() },
  { name: 'build (legacy, 9 steps)', run: (w) => w.build() },
  { name: 'run', run: (w) => w.run() },
  { name: 'diff', run: (w) => w.diff() },
  { name: 'commit', run: (w) => w.commit() },
  { name: 'export', run: (w) => w.exportContainer(CONTAINERS.run) },
  { name: 'save', run: (w) => w.save() },
  { name: 'restart dockerd', run: (w) => w.restartDockerd() },
  { name: 'rm', run: (w) => w.rm() },
  { name: 'rmi', run: (w) => w.rmi() },
];
