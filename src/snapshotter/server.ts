// The gRPC face of the snapshotter: containerd's
// containerd.services.snapshots.v1.Snapshots service on a unix socket of
// its own (proto/ holds our copy of the wire contract). Errors carry the
// gRPC codes containerd's proxy client turns back into its error classes
// (errdefs.FromGRPC): NotFound, AlreadyExists, FailedPrecondition, ...
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { DmthinError } from '../shared/errors';
import type { Logger } from '../shared/log';
import { claimSocketPath } from '../shared/socket-path';
import { toTimestamp } from './clock';
import type { SnapshotInfo, Snapshotter } from './snapshotter';

/** dist/src/snapshotter -> the checkout's (or the plugin's /opt/dmthin) proto/ */
const PROTO_ROOT = path.resolve(__dirname, '../../../proto');
const SERVICE_PROTO = 'github.com/containerd/containerd/api/services/snapshots/v1/snapshots.proto';
/** The reference server sends List in batches of 100 infos; containerd takes 16 MiB per message. */
const LIST_BATCH = 100;

const KIND_NAMES = { active: 'ACTIVE', view: 'VIEW', committed: 'COMMITTED' } as const;

const CODE_BY_ERROR: Record<string, grpc.status> = {
  ENOENT: grpc.status.NOT_FOUND,
  EEXIST: grpc.status.ALREADY_EXISTS,
  EINVAL: grpc.status.INVALID_ARGUMENT,
  EPRECONDITION: grpc.status.FAILED_PRECONDITION,
  ENODM: grpc.status.UNAVAILABLE,
  ENOPOOL: grpc.status.UNAVAILABLE,
  ESHUTDOWN: grpc.status.UNAVAILABLE,
  // The pool's health refused a new snapshot (POOL_REFUSAL_CODES): containerd 1.7's
  // errdefs has no "resource exhausted", and its clients must not retry as for UNAVAILABLE.
  ENOSPC: grpc.status.FAILED_PRECONDITION,
  EPOOLRO: grpc.status.FAILED_PRECONDITION,
  EPOOLCHECK: grpc.status.FAILED_PRECONDITION,
  EPOOLFAILED: grpc.status.FAILED_PRECONDITION,
};

interface WireInfo {
  name: string;
  parent: string;
  kind: string;
  created_at: { seconds: string; nanos: number };
  updated_at: { seconds: string; nanos: number };
  labels: Record<string, string>;
}

function toWire(info: SnapshotInfo): WireInfo {
  return {
    name: info.name,
    parent: info.parent,
    kind: KIND_NAMES[info.kind],
    created_at: toTimestamp(info.created),
    updated_at: toTimestamp(info.updated),
    labels: info.labels,
  };
}

function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const code = err instanceof DmthinError ? (CODE_BY_ERROR[err.code] ?? grpc.status.UNKNOWN) : grpc.status.UNKNOWN;
  return { code, details: err instanceof Error ? err.message : String(err) };
}

export function loadSnapshotsService(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(SERVICE_PROTO, {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    arrays: true,
    objects: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    containerd: { services: { snapshots: { v1: { Snapshots: grpc.ServiceClientConstructor } } } };
  };
  return pkg.containerd.services.snapshots.v1.Snapshots.service;
}

/** A unary handler: the reply or the error, mapped; a request never crashes the server. */
function unary<Req, Res>(log: Logger, method: string, handle: (request: Req) => Promise<Res> | Res): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => handle(call.request))
      .then(
        (response) => callback(null, response),
        (err: unknown) => {
          const status = toServiceError(err);
          log.log(status.code === grpc.status.UNKNOWN ? 'warn' : 'debug', 'snapshot call failed', { method, code: grpc.status[status.code ?? 2], err: status.details });
          callback(status, null);
        },
      );
  };
}

interface KeyRequest {
  snapshotter: string;
  key: string;
}
interface CreateRequest extends KeyRequest {
  parent: string;
  labels: Record<string, string>;
}

function handlers(snapshotter: Snapshotter, log: Logger): grpc.UntypedServiceImplementation {
  const empty = {};
  return {
    Prepare: unary(log, 'Prepare', async (r: CreateRequest) => ({ mounts: await snapshotter.prepare(r.snapshotter, r.key, r.parent, r.labels) })),
    View: unary(log, 'View', async (r: CreateRequest) => ({ mounts: await snapshotter.view(r.snapshotter, r.key, r.parent, r.labels) })),
    Mounts: unary(log, 'Mounts', async (r: KeyRequest) => ({ mounts: await snapshotter.mounts(r.snapshotter, r.key) })),
    Commit: unary(log, 'Commit', async (r: KeyRequest & { name: string; labels: Record<string, string> }) => {
      await snapshotter.commit(r.snapshotter, r.name, r.key, r.labels);
      return empty;
    }),
    Remove: unary(log, 'Remove', async (r: KeyRequest) => {
      await snapshotter.remove(r.snapshotter, r.key);
      return empty;
    }),
    Stat: unary(log, 'Stat', (r: KeyRequest) => ({ info: toWire(snapshotter.stat(r.snapshotter, r.key)) })),
    Update: unary(log, 'Update', async (r: { snapshotter: string; info: { name: string; labels: Record<string, string> } | null; update_mask: { paths: string[] } | null }) => {
      if (r.info === null) throw new DmthinError('EINVAL', 'Update needs info');
      return { info: toWire(await snapshotter.update(r.snapshotter, r.info, r.update_mask?.paths ?? [])) };
    }),
    List: (call: grpc.ServerWritableStream<{ snapshotter: string; filters: string[] }, unknown>) => {
      try {
        // A copy taken at once: the stream holds no lock while the client reads it.
        const infos = snapshotter.list(call.request.snapshotter, call.request.filters).map(toWire);
        for (let i = 0; i < infos.length; i += LIST_BATCH) call.write({ info: infos.slice(i, i + LIST_BATCH) });
        call.end();
      } catch (err) {
        call.emit('error', toServiceError(err));
      }
    },
    Usage: unary(log, 'Usage', async (r: KeyRequest) => {
      const { size, inodes } = await snapshotter.usage(r.snapshotter, r.key);
      return { size: String(size), inodes: String(inodes) };
    }),
    Cleanup: unary(log, 'Cleanup', async () => {
      await snapshotter.cleanup();
      return empty;
    }),
  };
}

export interface SnapshotServer {
  close(): Promise<void>;
}

/** Serves the snapshotter on socketPath (mode 0660), a bare path as containerd's proxy_plugins address takes it. */
export async function listenSnapshotter(snapshotter: Snapshotter, socketPath: string, log: Logger): Promise<SnapshotServer> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  server.addService(loadSnapshotsService(), handlers(snapshotter, log));
  await claimSocketPath(socketPath);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err === null ? resolve() : reject(err)));
  });
  await fsp.chmod(socketPath, 0o660);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      }),
  };
}
