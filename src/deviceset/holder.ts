// The one DeviceSet of the process, shared by the GraphDriver (layers) and
// the volume store (thin volumes). It is opened at start in the state
// directory, while the socket already answers: callers that need it wait
// for it. GraphDriver.Init may bring dockerd's --storage-opt, which reopen
// it when they change the effective options.
import { isDeepStrictEqual } from 'node:util';
import { dm } from '../devmapper';
import { DmthinError } from '../shared/errors';
import { refuseUnfinishedMigration } from '../migrate/guard';
import type { Logger } from '../shared/log';
import { DeviceSet } from './deviceset';
import { storageOptions, type DeviceSetOptions } from './options';

export interface DeviceSetHolderConfig {
  /** the state directory: the pool's default files and the device metadata */
  root: string;
  /** the plugin's own dm.* settings */
  pluginOptions: readonly string[];
  log: Logger;
  /** see DeviceSetConfig.adoptLeftMount */
  adoptLeftMount?: (hash: string, target: string) => boolean;
  /** see DeviceSetConfig.mountedByOthers */
  mountedByOthers?: (hash: string) => boolean;
}

export const NO_DEVICE_MAPPER =
  'device-mapper is not available in this kernel: load it with `modprobe dm_thin_pool` (the dm-thin-pool module), then restart dockerd';

export class DeviceSetHolder {
  private opening: Promise<DeviceSet> | null = null;
  /** the set `opening` resolved to, while it is the current one */
  private opened: DeviceSet | null = null;
  private options: DeviceSetOptions | null = null;

  constructor(private readonly config: DeviceSetHolderConfig) {}

  /** Starts opening the set with the plugin's settings plus dockerd's last --storage-opt; does not wait. */
  start(dockerOptions: readonly string[]): void {
    this.open(storageOptions(this.config.pluginOptions, dockerOptions)).catch(() => undefined);
  }

  /** The open set; rejects with the reason when there is none (no device-mapper, a pool that failed to open). */
  ready(): Promise<DeviceSet> {
    if (this.opening === null) return Promise.reject(new DmthinError('ENODM', NO_DEVICE_MAPPER));
    return this.opening;
  }

  /** The open set, or null when there is none; for callers that can do without. */
  async tryReady(): Promise<DeviceSet | null> {
    return this.ready().catch(() => null);
  }

  /** The set if it is open right now, without waiting: for answers that must not wait for the pool (volume Get/List). */
  current(): DeviceSet | null {
    return this.opened;
  }

  /**
   * GraphDriver.Init: dockerd's options on top of the plugin's. Unchanged
   * options keep the open set; changed ones reopen it, which is refused
   * while any device is mounted. A set that failed to open is tried again.
   */
  async reconfigure(dockerOptions: readonly string[]): Promise<DeviceSet> {
    const options = storageOptions(this.config.pluginOptions, dockerOptions);
    const current = await this.tryReady();
    if (current !== null && isDeepStrictEqual(options, this.options)) return current;
    if (current !== null) {
      const busy = current.mountedDevices();
      if (busy.length > 0) {
        throw new DmthinError(
          'EBUSY',
          `dockerd's --storage-opt change the thin pool's settings, which needs the pool reopened, but ${busy.length} device(s) are mounted (${busy.slice(0, 3).join(', ')}); stop what uses them, or put the options in DMTHIN_STORAGE_OPTS`,
        );
      }
      this.config.log.info('reopening the device set with dockerd\'s storage options', { opts: dockerOptions });
      await current.shutdown();
    }
    return this.open(options);
  }

  async shutdown(options: Parameters<DeviceSet['shutdown']>[0] = {}): Promise<void> {
    const set = await this.tryReady();
    this.opening = null;
    this.opened = null;
    await set?.shutdown(options);
  }

  private open(options: DeviceSetOptions): Promise<DeviceSet> {
    this.options = options;
    this.opened = null;
    if (!dm.driverLoaded()) {
      this.opening = null;
      this.config.log.warn('device-mapper is missing: layers and thin volumes are unavailable until `modprobe dm_thin_pool`');
      return Promise.reject(new DmthinError('ENODM', NO_DEVICE_MAPPER));
    }
    const { root, log, adoptLeftMount, mountedByOthers } = this.config;
    const openSet = (): Promise<DeviceSet> => {
      refuseUnfinishedMigration(root);
      return DeviceSet.open({ home: root, options, log, ...(adoptLeftMount ? { adoptLeftMount } : {}), ...(mountedByOthers ? { mountedByOthers } : {}) });
    };
    const opening = Promise.resolve().then(openSet).then(
      (set) => {
        if (this.opening === opening) this.opened = set;
        return set;
      },
      (err: unknown) => {
        log.error('cannot open the thin pool', { root, code: (err as { code?: string }).code, err: String(err) });
        throw new DmthinError('ENOPOOL', `the thin pool under ${root} cannot be opened: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      },
    );
    this.opening = opening;
    return opening;
  }
}
