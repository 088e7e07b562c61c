// The GraphDriver over a DeviceSet: one thin snapshot per layer, opened
// at GraphDriver.Init with the plugin's settings plus dockerd's
// --storage-opt (dockerd's win), closed at GraphDriver.Cleanup.
import type { Readable } from 'node:stream';
import { dm } from '../devmapper';
import { DeviceSet, storageOptions } from '../deviceset';
import { parseSize } from '../deviceset/options';
import { DmthinError } from '../errors';
import type { Logger } from '../log';
import { applyTar } from './apply';
import { changes, changesSize, type Change } from './changes';
import { exportChanges } from './diff';
import type { CreateRequest, GraphCapabilities, GraphDriverApi } from './types';

export interface DeviceSetDriverConfig {
  /** the plugin's own dm.* settings (DMTHIN_STORAGE_OPTS) */
  pluginOptions: string[];
  log: Logger;
}

export class DeviceSetDriver implements GraphDriverApi {
  private set: DeviceSet | null = null;
  private home = '';

  constructor(private readonly config: DeviceSetDriverConfig) {}

  async init(home: string, opts: string[]): Promise<void> {
    if (!dm.driverLoaded()) {
      throw new DmthinError('ENODM', 'device-mapper is not available in this kernel: load it with `modprobe dm_thin_pool`, then restart dockerd');
    }
    const options = storageOptions(this.config.pluginOptions, opts);
    if (this.set !== null) {
      if (home === this.home) return; // dockerd restarted without Cleanup: same home, keep going
      await this.set.shutdown();
      this.set = null;
    }
    this.set = await DeviceSet.open({ home, options, log: this.config.log });
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
    await this.deviceSet().deleteDevice(id);
  }

  async get(id: string, mountLabel: string): Promise<string> {
    return this.deviceSet().mountDevice(id, mountLabel);
  }

  async put(id: string): Promise<void> {
    await this.deviceSet().unmountDevice(id);
  }

  exists(id: string): boolean {
    return this.deviceSet().hasDevice(id);
  }

  async status(): Promise<Array<[string, string]>> {
    return this.deviceSet().status();
  }

  getMetadata(id: string): Record<string, string> {
    return this.deviceSet().deviceMetadata(id);
  }

  async cleanup(): Promise<void> {
    const set = this.set;
    this.set = null;
    await set?.shutdown();
  }

  async applyDiff(id: string, _parent: string, tar: Readable): Promise<number> {
    // The layer already holds its parent's files: Create made it a snapshot of the parent.
    const set = this.deviceSet();
    const root = await set.mountDevice(id);
    try {
      return await applyTar(root, tar);
    } finally {
      await set.unmountDevice(id);
    }
  }

  async diff(id: string, parent: string): Promise<{ stream: Readable; release: () => Promise<void> }> {
    const { layer, lower, release } = await this.mountPair(id, parent);
    try {
      return { stream: exportChanges(layer, await changes(layer, lower)), release };
    } catch (err) {
      await release();
      throw err;
    }
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
      return await changesSize(layer, await changes(layer, lower));
    } finally {
      await release();
    }
  }

  /** Mounts a layer and its parent ('' mounts nothing: lower is ''); release() unmounts both. */
  private async mountPair(id: string, parent: string): Promise<{ layer: string; lower: string; release: () => Promise<void> }> {
    const set = this.deviceSet();
    const layer = await set.mountDevice(id);
    let lower = '';
    try {
      if (parent !== '') lower = await set.mountDevice(parent);
    } catch (err) {
      await set.unmountDevice(id);
      throw err;
    }
    const release = async (): Promise<void> => {
      await set.unmountDevice(id);
      if (parent !== '') await set.unmountDevice(parent);
    };
    return { layer, lower, release };
  }

  private async add(request: CreateRequest): Promise<void> {
    const size = sizeOption(request.storageOpt);
    await this.deviceSet().addDevice(request.id, request.parent, size === undefined ? {} : { size });
  }

  private deviceSet(): DeviceSet {
    if (this.set === null) throw new DmthinError('ENOTINIT', 'the graph driver is not initialized: GraphDriver.Init has not been called');
    return this.set;
  }
}

/** The only storage option a layer takes, as in the in-tree driver: size. */
function sizeOption(storageOpt: Record<string, string>): number | undefined {
  let size: number | undefined;
  for (const [key, value] of Object.entries(storageOpt)) {
    if (key.toLowerCase() !== 'size') throw new DmthinError('EDMOPTION', `unknown storage option ${key} (only size is supported)`);
    size = parseSize(value);
  }
  return size;
}
