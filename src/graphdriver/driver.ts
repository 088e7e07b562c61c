// The GraphDriver over a DeviceSet: one thin snapshot per layer, opened
// at GraphDriver.Init with the plugin's settings plus dockerd's
// --storage-opt (dockerd's win), closed at GraphDriver.Cleanup.
import { DeviceSet, storageOptions } from '../deviceset';
import { parseSize } from '../deviceset/options';
import { DmthinError } from '../errors';
import type { Logger } from '../log';
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
