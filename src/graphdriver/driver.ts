// The GraphDriver over the process's DeviceSet: one thin snapshot per
// layer, mounted at <Home>/mnt/<id> with the layer in rootfs/ (the base
// device holds an empty rootfs/, so no layer shows lost+found). Init
// brings Home and dockerd's --storage-opt; both are saved, so a restarted
// plugin keeps serving a dockerd that will not send Init again.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ConsumerDevices } from '../deviceset';
import type { DeviceSetHolder } from '../deviceset/holder';
import { parseSize } from '../deviceset/options';
import { deviceSizeProblem } from '../deviceset/sizes';
import { DmthinError } from '../shared/errors';
import type { Logger } from '../shared/log';
import { applyTar } from './apply';
import { changes, rawChanges, rawChangesSize, type Change } from './changes';
import { saveInitRecord, type InitRecord } from './init-record';
import { diffAfterMount, type LazyDiff } from './lazy-diff';
import type { CreateRequest, GraphCapabilities, GraphDriverApi } from './types';

export interface DeviceSetDriverConfig {
  holder: DeviceSetHolder;
  /** the state directory, where the last Init is kept */
  root: string;
  log: Logger;
  /** the last Init of an earlier run, if any */
  restored?: InitRecord | null;
}

export class DeviceSetDriver implements GraphDriverApi {
  private home: string | null;

  constructor(private readonly config: DeviceSetDriverConfig) {
    this.home = config.restored?.home ?? null;
  }

  async init(home: string, opts: string[]): Promise<void> {
    await this.config.holder.reconfigure(opts);
    await saveInitRecord(this.config.root, { home, opts });
    this.home = home;
  }

  capabilities(): GraphCapabilities {
    // dockerd rebuilds layer tars from tar-split data; a diff of ours is never byte-identical.
    return { ReproducesExactDiffs: false };
  }

  async create(request: CreateRequest): Promise<void> {
    await this.add(request);
  }

  async createReadWrite(request: CreateRequest): Promise<void> {
    await this.add(request);
  }

  async remove(id: string): Promise<void> {
    await (await this.layers()).delete(id);
  }

  async get(id: string, mountLabel: string): Promise<string> {
    return this.mountLayer(await this.layers(), id, mountLabel);
  }

  async put(id: string): Promise<void> {
    await (await this.layers()).unmount(id);
  }

  async exists(id: string): Promise<boolean> {
    return (await this.layers()).has(id);
  }

  async status(): Promise<Array<[string, string]>> {
    return (await this.layers()).status();
  }

  async getMetadata(id: string): Promise<Record<string, string>> {
    return (await this.layers()).metadata(id);
  }

  /** dockerd is stopping: unmount every layer it left mounted. The pool stays open for volumes. */
  async cleanup(): Promise<void> {
    const set = await this.config.holder.tryReady();
    if (set === null) return;
    const layers = set.devicesOf('layer');
    for (const id of layers.mounted()) {
      while (layers.isMounted(id)) await layers.unmount(id);
    }
  }

  async applyDiff(id: string, _parent: string, tar: Readable): Promise<number> {
    // The layer already holds its parent's files: Create made it a snapshot of the parent.
    const layers = await this.layers();
    const root = await this.mountLayer(layers, id);
    try {
      return await applyTar(root, tar);
    } finally {
      await layers.unmount(id);
    }
  }

  async diff(id: string, parent: string): Promise<LazyDiff> {
    // Unknown layers are refused here, before the answer starts; the mounts wait for the first read (lazy-diff.ts).
    const layers = await this.layers();
    layers.metadata(id);
    if (parent !== '') layers.metadata(parent);
    return diffAfterMount(() => this.mountPair(id, parent));
  }

  async changes(id: string, parent: string): Promise<Change[]> {
    const { layer, lower, release } = await this.mountPair(id, parent);
    try {
      return await changes(layer, lower);
    } finally {
      await release();
    }
  }

  async diffSize(id: string, parent: string): Promise<number> {
    const { layer, lower, release } = await this.mountPair(id, parent);
    try {
      return rawChangesSize(layer, await rawChanges(layer, lower));
    } finally {
      await release();
    }
  }

  /** Mounts a layer at <Home>/mnt/<id> and returns its rootfs/. */
  private async mountLayer(layers: ConsumerDevices, id: string, mountLabel = ''): Promise<string> {
    const target = await layers.mount(id, { target: path.join(this.initializedHome(), 'mnt', id), mountLabel });
    const rootfs = path.join(target, 'rootfs');
    try {
      // Layers made before the base device had rootfs/ lack it. Synchronous:
      // a mkdir that finds it costs less than a thread-pool round trip.
      mkdirSync(rootfs, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        await layers.unmount(id);
        throw err;
      }
    }
    return rootfs;
  }

  /** Mounts a layer and its parent ('' mounts nothing: lower is ''); release() unmounts both. */
  private async mountPair(id: string, parent: string): Promise<{ layer: string; lower: string; release: () => Promise<void> }> {
    const layers = await this.layers();
    const layer = await this.mountLayer(layers, id);
    let lower = '';
    try {
      if (parent !== '') lower = await this.mountLayer(layers, parent);
    } catch (err) {
      await layers.unmount(id);
      throw err;
    }
    const release = async (): Promise<void> => {
      await layers.unmount(id);
      if (parent !== '') await layers.unmount(parent);
    };
    return { layer, lower, release };
  }

  private async add(request: CreateRequest): Promise<void> {
    const size = sizeOption(request.storageOpt);
    await (await this.layers()).add(request.id, request.parent, size === undefined ? {} : { size });
  }

  /** The DeviceSet's layer view, once Init has been seen: it refuses ids in another consumer's namespace. */
  private async layers(): Promise<ConsumerDevices> {
    this.initializedHome();
    return (await this.config.holder.ready()).devicesOf('layer');
  }

  private initializedHome(): string {
    if (this.home === null) throw new DmthinError('ENOTINIT', 'the graph driver is not initialized: GraphDriver.Init has not been called');
    return this.home;
  }
}

/** The only storage option a layer takes, as in the in-tree driver: size, in whole 512-byte sectors (at least its parent's, which the DeviceSet checks). */
function sizeOption(storageOpt: Record<string, string>): number | undefined {
  let size: number | undefined;
  for (const [key, value] of Object.entries(storageOpt)) {
    if (key.toLowerCase() !== 'size') throw new DmthinError('EDMOPTION', `unknown storage option ${key} (only size is supported)`);
    size = parseSize(value);
    const problem = deviceSizeProblem(size);
    if (problem !== null) throw new DmthinError('EDMOPTION', `storage option size=${value} ${problem}`);
  }
  return size;
}
