// A client of dmthin's containerd snapshots service, as containerd's proxy
// client calls it (one RPC per method, the `snapshotter` field set), for the
// tests that check its semantics without a containerd in between.
import * as grpc from '@grpc/grpc-js';
import { loadSnapshotsService } from '../../src/snapshotter/server';

export interface WireMount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export interface WireInfo {
  name: string;
  parent: string;
  kind: 'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED';
  created_at: { seconds: string; nanos: number };
  updated_at: { seconds: string; nanos: number };
  labels: Record<string, string>;
}

type Callback = (err: grpc.ServiceError | null, response: unknown) => void;
type UnaryMethod = (request: unknown, metadata: grpc.Metadata, callback: Callback) => void;

export class SnapshotsClient {
  private readonly client: grpc.Client & Record<string, UnaryMethod>;

  private readonly metadata = new grpc.Metadata();

  /**
   * @param snapshotter the request's `snapshotter` field
   * @param namespace the containerd-namespace header, for containerd's own snapshots service (dmthin ignores it)
   */
  constructor(
    socketPath: string,
    readonly snapshotter = 'dmthin',
    namespace?: string,
  ) {
    if (namespace !== undefined) this.metadata.set('containerd-namespace', namespace);
    const Client = grpc.makeGenericClientConstructor(loadSnapshotsService(), 'Snapshots');
    this.client = new Client(`unix://${socketPath}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, UnaryMethod>;
  }

  private call<T>(method: string, request: Record<string, unknown>): Promise<T> {
    return new Promise((resolve, reject) => {
      const fn = this.client[method];
      if (fn === undefined) throw new Error(`no method ${method}`);
      fn.call(this.client, { snapshotter: this.snapshotter, ...request }, this.metadata, (err, response) => (err === null ? resolve(response as T) : reject(err)));
    });
  }

  async prepare(key: string, parent = '', labels: Record<string, string> = {}): Promise<WireMount[]> {
    return (await this.call<{ mounts: WireMount[] }>('Prepare', { key, parent, labels })).mounts;
  }

  async view(key: string, parent: string, labels: Record<string, string> = {}): Promise<WireMount[]> {
    return (await this.call<{ mounts: WireMount[] }>('View', { key, parent, labels })).mounts;
  }

  async mounts(key: string): Promise<WireMount[]> {
    return (await this.call<{ mounts: WireMount[] }>('Mounts', { key })).mounts;
  }

  async commit(name: string, key: string, labels: Record<string, string> = {}): Promise<void> {
    await this.call('Commit', { name, key, labels });
  }

  async remove(key: string): Promise<void> {
    await this.call('Remove', { key });
  }

  async stat(key: string): Promise<WireInfo> {
    return (await this.call<{ info: WireInfo }>('Stat', { key })).info;
  }

  async update(info: { name: string; labels: Record<string, string> }, paths: string[] = []): Promise<WireInfo> {
    return (await this.call<{ info: WireInfo }>('Update', { info, update_mask: { paths } })).info;
  }

  async usage(key: string): Promise<{ size: number; inodes: number }> {
    const r = await this.call<{ size: string; inodes: string }>('Usage', { key });
    return { size: Number(r.size), inodes: Number(r.inodes) };
  }

  async cleanup(): Promise<void> {
    await this.call('Cleanup', {});
  }

  /** Reads the whole List stream. */
  list(filters: string[] = []): Promise<WireInfo[]> {
    return new Promise((resolve, reject) => {
      const stream = (this.client as unknown as { List: (r: unknown, m: grpc.Metadata) => grpc.ClientReadableStream<{ info: WireInfo[] }> }).List({ snapshotter: this.snapshotter, filters }, this.metadata);
      const infos: WireInfo[] = [];
      stream.on('data', (m: { info: WireInfo[] }) => infos.push(...m.info));
      stream.on('error', reject);
      stream.on('end', () => resolve(infos));
    });
  }

  close(): void {
    this.client.close();
  }
}

/** The gRPC status code of a failed call (grpc.status), for assertions. */
export function codeOf(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}
