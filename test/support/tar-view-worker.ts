// Lists tars with dmthin's reader in a worker thread, so the fuzzer can
// bound each case by wall-clock time and stop a reader that hangs.
import { parentPort } from 'node:worker_threads';
import { tarViewOf } from './tar-view';

export interface WorkerReply {
  id: number;
  view: ReturnType<typeof tarViewOf>['view'];
  beyondGo: string | null;
}

parentPort?.on('message', ({ id, bytes }: { id: number; bytes: Uint8Array }) => {
  const { view, beyondGo } = tarViewOf(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const reply: WorkerReply = { id, view, beyondGo: beyondGo ? beyondGo.message : null };
  parentPort?.postMessage(reply);
});
