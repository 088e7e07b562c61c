// Crash safety of the containerd snapshotter: dmthin is killed with SIGKILL
// at each snapshot:* failpoint of Prepare, Commit and Remove. After each
// restart the interrupted call is either undone or finished (never half
// done), every snapshot made before is still listed, records and snap-
// devices agree one to one, and the call can be retried as containerd
// would. At the end, with everything removed, the pool holds no thin device
// that the DeviceSet's metadata does not name. What is killed and restarted
// is the snapshotter as the daemon wires it (support/snapshotter-child.ts),
// half the daemon's start-up time in the VM.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { tempHome } from '../support/deviceset';
import { requireRoot, requireVm } from '../support/env';
import { run } from '../support/exec';
import { startLogged, type Started } from '../support/processes';
import { CHILD, LISTENING } from '../support/snapshotter-child';
import { codeOf, SnapshotsClient, type WireInfo, type WireMount } from '../support/snapshots-client';

interface Step {
  failpoint: string;
  /** the call that dies at the failpoint */
  call: (client: SnapshotsClient) => Promise<unknown>;
  /** what the crash leaves done: the restart finishes a call past its point of no return */
  crashed: () => void;
  /** after the restart: the state the interrupted call left, then its retry */
  recover: (client: SnapshotsClient) => Promise<void>;
}

async function rejectsWith(promise: Promise<unknown>, code: grpc.status): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.equal(codeOf(err), code, `expected ${grpc.status[code]}, got ${String(err)}`);
    return true;
  });
}

/** Device metadata files of snapshot devices that are not marked deleted (snap-empty excluded). */
async function snapshotDeviceIds(root: string): Promise<number[]> {
  const ids: number[] = [];
  for (const name of await fsp.readdir(path.join(root, 'metadata'))) {
    const m = /^snap-([0-9]+)$/.exec(name);
    if (m === null) continue;
    const record = JSON.parse(await fsp.readFile(path.join(root, 'metadata', name), 'utf8')) as { deleted?: boolean };
    if (record.deleted !== true) ids.push(Number(m[1]));
  }
  return ids.sort((a, b) => a - b);
}

/** Ids of the snapshotter's records on disk, with their states. */
async function recordStates(root: string): Promise<Map<number, string>> {
  const dir = path.join(root, 'snapshotter', 'snapshots');
  const states = new Map<number, string>();
  for (const name of await fsp.readdir(dir)) {
    const m = /^([0-9]+)\.json$/.exec(name);
    if (m === null) continue;
    const record = JSON.parse(await fsp.readFile(path.join(dir, name), 'utf8')) as { state: string };
    states.set(Number(m[1]), record.state);
  }
  return states;
}

describe('containerd snapshotter crash safety (VM)', function () {
  before(function () {
    requireVm(this);
    requireRoot(this);
  });

  it('after a SIGKILL inside Prepare, Commit or Remove, the call is undone or done, nothing leaks or is lost, and it can be retried', async function () {
    this.timeout(900_000);
    const dir = await tempHome('snapcrash');
    const root = path.join(dir, 'state');
    const socket = path.join(dir, 'snapshotter.sock');
    const env = {
      DMTHIN_SNAPSHOTTER_SOCKET: socket,
      DMTHIN_ROOT: root,
      DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=4G dm.loopmetadatasize=64M dm.basesize=512M',
    };
    const mnt = path.join(dir, 'mnt');
    await fsp.mkdir(mnt);
    let plugin: Started | undefined;
    let client: SnapshotsClient | undefined;
    const start = async (failpoint = ''): Promise<SnapshotsClient> => {
      client?.close();
      plugin = startLogged(process.execPath, [CHILD], path.join(dir, 'dmthin.log'), { ...process.env, ...env, DMTHIN_FAILPOINT: failpoint });
      await plugin.waitFor(LISTENING);
      // The restart finishes or undoes interrupted calls as soon as the pool is open, unasked.
      await plugin.waitFor('snapshots reconciled with the pool');
      client = new SnapshotsClient(socket);
      return client;
    };
    /** Mounts a snapshot's mounts (a view's read-only), returns the files at its root, unmounts. */
    const filesOf = async (mounts: WireMount[]): Promise<string[]> => {
      const [m] = mounts as [WireMount];
      await run('mount', ['-t', m.type, ...(m.options.length > 0 ? ['-o', m.options.join(',')] : []), m.source, mnt]);
      try {
        return (await fsp.readdir(mnt)).sort();
      } finally {
        await run('umount', [mnt]);
      }
    };
    const writeInto = async (mounts: WireMount[], file: string): Promise<void> => {
      const [m] = mounts as [WireMount];
      await run('mount', ['-t', m.type, ...(m.options.length > 0 ? ['-o', m.options.join(',')] : []), m.source, mnt]);
      try {
        await fsp.writeFile(path.join(mnt, file), file);
      } finally {
        await run('umount', [mnt]);
      }
    };
    /** Records and snapshot devices agree one to one; every record is settled; the list is `names`. */
    const checkConsistent = async (c: SnapshotsClient, names: string[]): Promise<void> => {
      const states = await recordStates(root);
      assert.deepEqual([...states.values()].filter((s) => s !== 'ready'), [], 'every record is settled after the restart');
      assert.deepEqual(await snapshotDeviceIds(root), [...states.keys()].sort((a, b) => a - b), 'one snapshot device per record, none leaked');
      const infos: WireInfo[] = await c.list();
      assert.deepEqual(infos.map((i) => i.name).sort(), [...names].sort());
    };

    try {
      const names = new Set(['ns/2/base', 'ns/3/witness', 'ns/4/to-commit', 'ns/5/doomed']);
      // A chain: each restart recovers from the last crash with the next
      // failpoint already armed, so no recovery may call that verb's armed step.
      const steps: Step[] = [
        {
          failpoint: 'snapshot:remove:marked',
          call: (k) => k.remove('ns/5/doomed'),
          // Marked for removal: the restart finishes it.
          crashed: () => names.delete('ns/5/doomed'),
          recover: async (k) => {
            await rejectsWith(k.remove('ns/5/doomed'), grpc.status.NOT_FOUND);
          },
        },
        {
          failpoint: 'snapshot:prepare:recorded',
          call: (k) => k.prepare('ns/6/new', 'ns/2/base'),
          crashed: () => undefined,
          recover: async (k) => {
            await rejectsWith(k.stat('ns/6/new'), grpc.status.NOT_FOUND);
            assert.deepEqual(await filesOf(await k.prepare('ns/6/new', 'ns/2/base')), ['base.txt']);
            names.add('ns/6/new');
          },
        },
        {
          failpoint: 'snapshot:commit:before-save',
          call: (k) => k.commit('ns/7/done', 'ns/4/to-commit'),
          crashed: () => undefined,
          recover: async (k) => {
            assert.equal((await k.stat('ns/4/to-commit')).kind, 'ACTIVE', 'not committed: still the active snapshot');
            await rejectsWith(k.stat('ns/7/done'), grpc.status.NOT_FOUND);
            await k.commit('ns/7/done', 'ns/4/to-commit');
            names.delete('ns/4/to-commit');
            names.add('ns/7/done');
          },
        },
        {
          failpoint: 'snapshot:prepare:device-added',
          call: (k) => k.prepare('ns/8/to-commit', 'ns/7/done'),
          crashed: () => undefined,
          recover: async (k) => {
            await rejectsWith(k.stat('ns/8/to-commit'), grpc.status.NOT_FOUND);
            await writeInto(await k.prepare('ns/8/to-commit', 'ns/7/done'), 'eight.txt');
            names.add('ns/8/to-commit');
          },
        },
        {
          failpoint: 'snapshot:commit:saved',
          call: (k) => k.commit('ns/9/done', 'ns/8/to-commit'),
          // The record was saved: committed.
          crashed: () => {
            names.delete('ns/8/to-commit');
            names.add('ns/9/done');
          },
          recover: async (k) => {
            assert.equal((await k.stat('ns/9/done')).kind, 'COMMITTED');
            // A retry finds it done: the key is gone.
            await rejectsWith(k.commit('ns/9/done', 'ns/8/to-commit'), grpc.status.NOT_FOUND);
            assert.deepEqual(await filesOf(await k.view('ns/10/view', 'ns/9/done')), ['base.txt', 'commit.txt', 'eight.txt']);
            names.add('ns/10/view');
          },
        },
        {
          failpoint: 'snapshot:remove:device-deleted',
          call: (k) => k.remove('ns/10/view'),
          crashed: () => names.delete('ns/10/view'),
          recover: async (k) => {
            await rejectsWith(k.remove('ns/10/view'), grpc.status.NOT_FOUND);
          },
        },
      ];

      // Witnesses that every crash must leave alone: a committed layer with a file, active children of it.
      // Started with the first step's failpoint armed: Remove, which the set-up never calls.
      let c = await start(steps[0]?.failpoint);
      await writeInto(await c.prepare('ns/1/extract base', ''), 'base.txt');
      await c.commit('ns/2/base', 'ns/1/extract base');
      await writeInto(await c.prepare('ns/3/witness', 'ns/2/base'), 'witness.txt');
      await c.prepare('ns/4/to-commit', 'ns/2/base');
      await writeInto(await c.mounts('ns/4/to-commit'), 'commit.txt');
      await c.prepare('ns/5/doomed', 'ns/2/base');

      for (const [i, step] of steps.entries()) {
        assert.ok(plugin !== undefined);
        await assert.rejects(step.call(c), (err: unknown) => codeOf(err) === grpc.status.UNAVAILABLE || codeOf(err) === grpc.status.INTERNAL);
        assert.deepEqual(await plugin.exited, { code: null, signal: 'SIGKILL' }, `dmthin died at ${step.failpoint}`);
        step.crashed();
        c = await start(steps[i + 1]?.failpoint);
        await checkConsistent(c, [...names]);
        await step.recover(c);
        await checkConsistent(c, [...names]);
      }

      // Nothing lost: the witnesses' files are all there.
      assert.deepEqual(await filesOf(await c.mounts('ns/3/witness')), ['base.txt', 'witness.txt']);
      assert.deepEqual(await filesOf(await c.view('ns/20/check', 'ns/7/done')), ['base.txt', 'commit.txt']);
      await c.remove('ns/20/check');

      // Everything removed, children first: no snapshot device left, and the pool agrees with the metadata.
      for (const key of ['ns/3/witness', 'ns/6/new', 'ns/9/done', 'ns/7/done', 'ns/2/base']) await c.remove(key);
      await c.cleanup();
      await checkConsistent(c, []);
      c.close();
      assert.deepEqual(await plugin?.stop(), { code: 0, signal: null });
      plugin = undefined;
      const metadataIds = new Set<number>();
      for (const name of await fsp.readdir(path.join(root, 'metadata'))) {
        const record = JSON.parse(await fsp.readFile(path.join(root, 'metadata', name), 'utf8').catch(() => '{}')) as { device_id?: number };
        if (typeof record.device_id === 'number') metadataIds.add(record.device_id);
      }
      const thinLs = await run('thin_ls', ['--no-headers', '-o', 'DEV', path.join(root, 'devicemapper', 'metadata')]);
      const poolIds = thinLs.split('\n').map((l) => l.trim()).filter((l) => /^[0-9]+$/.test(l)).map(Number);
      assert.deepEqual(poolIds.filter((id) => !metadataIds.has(id)), [], 'no thin device in the pool without metadata');
    } finally {
      client?.close();
      await run('umount', [mnt]).catch(() => undefined);
      await plugin?.stop();
    }
  });
});
