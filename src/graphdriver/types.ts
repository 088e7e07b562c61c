import type { Readable } from 'node:stream';
import type { Change } from './changes';

// What the HTTP layer needs from a graph driver: GraphDriver's calls, in
// dockerd's terms. The DeviceSet-backed driver implements it; protocol
// tests can stand in a fake.

export interface GraphCapabilities {
  ReproducesExactDiffs: boolean;
}

export interface CreateRequest {
  id: string;
  parent: string;
  mountLabel: string;
  storageOpt: Record<string, string>;
}

export interface GraphDriverApi {
  /** Home and the dm.* options of dockerd's --storage-opt. */
  init(home: string, opts: string[]): Promise<void>;
  capabilities(): GraphCapabilities;
  create(request: CreateRequest): Promise<void>;
  createReadWrite(request: CreateRequest): Promise<void>;
  remove(id: string): Promise<void>;
  /** Mounts the layer and returns the directory dockerd uses as its root. */
  get(id: string, mountLabel: string): Promise<string>;
  put(id: string): Promise<void>;
  exists(id: string): Promise<boolean>;
  status(): Promise<Array<[string, string]>>;
  getMetadata(id: string): Promise<Record<string, string>>;
  cleanup(): Promise<void>;
  /** Unpacks a layer tar onto layer `id` (made with Create on `parent`); resolves to the tar's size. */
  applyDiff(id: string, parent: string, tar: Readable): Promise<number>;
  /**
   * The tar of `id`'s changes against `parent`. Unknown or foreign ids
   * reject; a failure once the stream is read (a mount, a read) fails the
   * stream. release() must be called once the stream is consumed.
   */
  diff(id: string, parent: string): Promise<{ stream: Readable; release: () => Promise<void> }>;
  changes(id: string, parent: string): Promise<Change[]>;
  diffSize(id: string, parent: string): Promise<number>;
}
