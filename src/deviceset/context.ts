// What the parts of an open DeviceSet share: its fixed parts (home, pool,
// options, metadata store) and its state in memory (the devices metadata
// names, the faulty ones, the mounts, the pool's transaction id). Only the
// DeviceSet (deviceset.ts) makes one; the other files of deviceset/ are
// functions over it, each called with the locks deviceset.ts says.
import path from 'node:path';
import type { Logger } from '../shared/log';
import type { FsType } from './filesystem';
import { IdAllocator } from './ids';
import { BASE_HASH, type DeviceRecord, type MetadataStore, type SetRecord } from './metadata';
import type { DeviceSetOptions } from './options';
import type { Pool } from './pool';

/** A mounted device: where, how many users, and whether a mount adopted from the last run is still to be checked. */
export interface MountRecord {
  target: string;
  users: number;
  adopted?: boolean;
}

export class SetContext {
  readonly devices = new Map<string, DeviceRecord>();
  /** hash (or unreadable metadata file) -> why it is refused */
  readonly faulty = new Map<string, string>();
  /** mounted devices, by hash */
  readonly mounts = new Map<string, MountRecord>();
  ids = new IdAllocator([]);
  /** the pool's transaction id, as the last change left it */
  transactionId = 0;
  /** the base device's filesystem */
  fsType: FsType = 'ext4';
  setRecord: SetRecord = { nextDeviceId: 0, baseDeviceUuid: '', baseDeviceFilesystem: '' };

  constructor(
    readonly home: string,
    /** every dm name of the set starts with `<prefix>-` */
    readonly prefix: string,
    readonly options: DeviceSetOptions,
    readonly log: Logger,
    readonly store: MetadataStore,
    readonly pool: Pool,
    readonly deferredRemoval: boolean,
    readonly deferredDeletion: boolean,
  ) {}

  deviceName(hash: string): string {
    return `${this.prefix}-${hash === BASE_HASH ? 'base' : hash}`;
  }

  /** Whether dm device `name` is one of this set's thin devices (not the pool). */
  isOwnDevice(name: string): boolean {
    return name.startsWith(`${this.prefix}-`) && name !== this.pool.name;
  }

  filesystemOf(record: DeviceRecord): FsType {
    return record.filesystem ?? this.fsType;
  }

  /** Where a device is mounted when its user names no target. */
  mountPath(hash: string): string {
    return path.join(this.home, 'mnt', hash);
  }
}
