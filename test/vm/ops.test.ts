// The operator's commands against a real pool: `dmthin status`, `check`
// and `gc` run as a user runs them (the CLI, over the daemon's socket),
// their numbers checked against `dmsetup status`, an orphan and a stray
// device made on purpose found by check and removed by gc, and nothing
// else touched. One dmthin process for the whole file.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { CheckReport, GcReport, StatusReport } from '../../src/admin/reports';
import { EXIT } from '../../src/cli/exit';
import { requireRoot, requireVm } from '../support/env';
import { tempHome } from '../support/deviceset';
import { run } from '../support/exec';
import { CLI, LISTENING, startPlugin, type PluginProcess } from '../support/plugin-process';
import { waitUntil } from '../support/processes';
import { codeOf, SnapshotsClient, type WireMount } from '../support/snapshots-client';
import { postUnix } from '../support/unix-http';

/** The kernel's bound on how long a full pool queues a write. */
const NO_SPACE_TIMEOUT = '/sys/module/dm_thin_pool/parameters/no_space_timeout';

/** A snapshotter Prepare refused as containerd sees it: FAILED_PRECONDITION, with the pool's reason. */
/** Each plugin call answers an Err matching `reason`. */
async function refusedCreates(socket: string, calls: ReadonlyArray<readonly [string, Record<string, unknown>]>, reason: RegExp): Promise<void> {
  for (const [method, body] of calls) assert.match(String((await postUnix(socket, method, body)).body['Err']), reason, method);
}

async function refusedPrepare(client: SnapshotsClient | undefined, key: string, reason: RegExp): Promise<void> {
  assert.ok(client !== undefined);
  await assert.rejects(client.prepare(key), (err: unknown) => {
    assert.equal(codeOf(err), grpc.status.FAILED_PRECONDITION, String(err));
    assert.match((err as Error).message, reason);
    return true;
  });
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `dmthin ARGS` as a separate process, with the test's settings. */
function dmthin(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function json<T>(args: string[], env: NodeJS.ProcessEnv, expectedCode: number): Promise<T> {
  const r = await dmthin([...args, '--json'], env);
  assert.equal(r.code, expectedCode, `dmthin ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

/** GET /metrics on a unix socket, as Prometheus scrapes it. */
function scrapeMetrics(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: '/metrics', method: 'GET' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`metrics: HTTP ${res.statusCode ?? 0}: ${text}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function post(socket: string, method: string, body: unknown): Promise<Record<string, unknown>> {
  const answer = (await postUnix(socket, method, body)).body;
  assert.equal(answer['Err'], undefined, `${method}: ${String(answer['Err'])}`);
  return answer;
}

describe('dmthin status, check and gc (VM)', function () {
  let dir = '';
  let env: NodeJS.ProcessEnv = {};
  let socket = '';
  let plugin: PluginProcess | undefined;
  let pool = '';
  let prefix = '';
  const layer = 'a'.repeat(64);
  const container = 'c'.repeat(64);

  before(async function () {
    requireVm(this);
    requireRoot(this);
    dir = await tempHome('ops');
    socket = path.join(dir, 'dmthin.sock');
    env = {
      DMTHIN_SOCKET: socket,
      DMTHIN_ROOT: path.join(dir, 'state'),
      // Without deferred deletion, a busy device's deletion fails instead of waiting: the snapshotter's start-up cleanup leaves one for check.
      DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=2G dm.loopmetadatasize=64M dm.basesize=512M dm.fs=ext4 dm.use_deferred_deletion=false',
      DMTHIN_METRICS: path.join(dir, 'metrics.sock'),
      DMTHIN_SNAPSHOTTER_SOCKET: path.join(dir, 'snapshotter.sock'),
    };
    plugin = startPlugin(env);
    await plugin.waitFor(LISTENING);
    await post(socket, 'GraphDriver.Init', { Home: path.join(dir, 'docker'), Opts: null });
    // An image layer, a container's layer with its -init, and a thin volume.
    await post(socket, 'GraphDriver.Create', { ID: layer, Parent: '' });
    await post(socket, 'GraphDriver.CreateReadWrite', { ID: `${container}-init`, Parent: layer });
    await post(socket, 'GraphDriver.CreateReadWrite', { ID: container, Parent: `${container}-init` });
    await post(socket, 'VolumeDriver.Create', { Name: 'data', Opts: { size: '64M' } });
  });

  after(async () => {
    if (plugin !== undefined) assert.equal((await plugin.stop()).code, 0, plugin.output());
  });

  it('status: pool use as dmsetup status says, the low-water mark, devices by kind, options in effect', async () => {
    const status = await json<StatusReport>(['status'], env, EXIT.OK);
    assert.ok(status.pool !== null, status.poolError);
    pool = status.pool.name;
    prefix = pool.replace(/-pool$/, '');
    const words = (await run('dmsetup', ['status', pool])).trim().split(/\s+/);
    // 0 LEN thin-pool TRANSACTION USED/TOTAL-META USED/TOTAL-DATA ...
    const [metaUsed, metaTotal] = (words[4] ?? '').split('/').map(Number);
    const [dataUsed, dataTotal] = (words[5] ?? '').split('/').map(Number);
    const table = (await run('dmsetup', ['table', pool])).trim().split(/\s+/);
    const blockBytes = Number(table[5]) * 512;
    assert.equal(status.pool.data.total, (dataTotal ?? 0) * blockBytes);
    assert.equal(status.pool.metadata.total, (metaTotal ?? 0) * 4096);
    // Used space moves with every write; the totals do not, and what was used is in a tight range.
    assert.ok(Math.abs(status.pool.data.used - (dataUsed ?? 0) * blockBytes) <= 16 * blockBytes, `data used ${status.pool.data.used} vs ${dataUsed} blocks`);
    assert.ok(Math.abs(status.pool.metadata.used - (metaUsed ?? 0) * 4096) <= 64 * 4096);
    assert.equal(status.pool.data.percent, Math.round((status.pool.data.used / status.pool.data.total) * 10000) / 100);
    assert.equal(status.pool.lowWaterMark.blocks, Number(table[6]));
    assert.equal(status.pool.health, 'ok');
    assert.equal(status.pool.kind, 'loop');
    assert.deepEqual(status.devices, { base: 1, layers: 1, containers: 2, volumes: 1, snapshotter: 0, orphans: 0, faulty: 0, deferredDeletions: 0, mounted: 0 });
    assert.equal(status.options?.['baseSize'], 512 * 1024 * 1024);
    assert.equal(typeof status.options?.['deferredRemovalInEffect'], 'boolean');

    // The metrics endpoint shows the same pool, and the same devices.
    const metrics = await scrapeMetrics(path.join(dir, 'metrics.sock'));
    assert.match(metrics, new RegExp(`^dmthin_pool_data_bytes\\{state="total"\\} ${status.pool.data.total}$`, 'm'));
    assert.match(metrics, new RegExp(`^dmthin_pool_metadata_bytes\\{state="total"\\} ${status.pool.metadata.total}$`, 'm'));
    assert.match(metrics, /^dmthin_pool_health\{health="ok"\} 1$/m);
    assert.match(metrics, /^dmthin_pool_available 1$/m);
    for (const [kind, count] of [['base', 1], ['layers', 1], ['containers', 2], ['volumes', 1]] as const) {
      assert.match(metrics, new RegExp(`^dmthin_devices\\{kind="${kind}"\\} ${count}$`, 'm'));
    }
    assert.match(metrics, /^dmthin_requests_total\{endpoint="GraphDriver.CreateReadWrite"\} 2$/m);

    const text = await dmthin(['status'], env);
    assert.equal(text.code, EXIT.OK, text.stderr);
    assert.match(text.stdout, new RegExp(`^pool +${pool} \\(loop, mode rw`, 'm'));
    assert.match(text.stdout, /^devices +base 1, layers 1, containers 2, volumes 1, snapshotter 0, orphans 0, faulty 0$/m);
  });

  it('check: finds an orphaned thin device, a stray device and a stale mount made on purpose, and changes nothing; gc --dry-run neither', async () => {
    assert.equal((await dmthin(['check'], env)).code, EXIT.OK, 'a clean pool has no problems');
    await run('dmsetup', ['message', pool, '0', 'create_thin 4242']);
    const stray = `${prefix}-stray`;
    await run('dmsetup', ['create', stray, '--table', `0 2048 thin /dev/mapper/${pool} 4242`]);
    // The layer mounted by dmthin, and its device mounted once more by someone else.
    const dirOf = String((await post(socket, 'GraphDriver.Get', { ID: layer }))['Dir']);
    await fsp.writeFile(path.join(dirOf, 'kept'), 'yes');
    const elsewhere = path.join(dir, 'elsewhere');
    await fsp.mkdir(elsewhere);
    await run('mount', [`/dev/mapper/${prefix}-${layer}`, elsewhere]);
    try {
      const check = await json<CheckReport>(['check'], env, EXIT.PROBLEM);
      const found = check.problems.map((p) => `${p.kind} ${p.object} ${String(p.gc)}`).sort();
      assert.deepEqual(found, [`orphan-thin 4242 true`, `stale-mount ${elsewhere} false`, `stray-device ${stray} true`]);

      const dry = await json<GcReport>(['gc', '--dry-run'], env, EXIT.OK);
      assert.deepEqual(dry.removed.map((p) => p.kind).sort(), ['orphan-thin', 'stray-device']);
      assert.equal((await json<CheckReport>(['check'], env, EXIT.PROBLEM)).problems.length, 3, 'check and a dry run change nothing');
      assert.equal((await run('dmsetup', ['info', '-c', '--noheadings', '-o', 'name', stray])).trim(), stray);
    } finally {
      await run('umount', [elsewhere]);
    }
  });

  it('gc: removes the orphan and the stray device and nothing else; layers and volumes keep working', async () => {
    const gc = await json<GcReport>(['gc'], env, EXIT.OK);
    assert.deepEqual(gc.removed.map((p) => `${p.kind} ${p.object}`).sort(), ['orphan-thin 4242', `stray-device ${prefix}-stray`]);
    assert.deepEqual(gc.failed, []);
    assert.deepEqual((await json<CheckReport>(['check'], env, EXIT.OK)).problems, []);
    const listed = await run('dmsetup', ['ls']);
    assert.doesNotMatch(listed, /-stray\b/);
    // thin id 4242 is free again: the pool takes it anew.
    await run('dmsetup', ['message', pool, '0', 'create_thin 4242']);
    await run('dmsetup', ['message', pool, '0', 'delete 4242']);

    const dirOf = String((await post(socket, 'GraphDriver.Get', { ID: layer }))['Dir']);
    assert.equal(await fsp.readFile(path.join(dirOf, 'kept'), 'utf8'), 'yes');
    await post(socket, 'GraphDriver.Put', { ID: layer });
    await post(socket, 'GraphDriver.Put', { ID: layer });
    for (const id of [layer, `${container}-init`, container]) assert.deepEqual(await post(socket, 'GraphDriver.Exists', { ID: id }), { Exists: true });
    const mounted = String((await post(socket, 'VolumeDriver.Mount', { Name: 'data', ID: 'm1' }))['Mountpoint']);
    await fsp.writeFile(path.join(mounted, 'f'), 'v');
    await post(socket, 'VolumeDriver.Unmount', { Name: 'data', ID: 'm1' });
  });

  it('check and gc through the snapshotter: a snap- device no record names and a snapshot whose device is gone, after a crash that lost them; other snapshots untouched', async () => {
    let client = new SnapshotsClient(path.join(dir, 'snapshotter.sock'));
    const hashOf = (mounts: WireMount[]): string => /-(snap-[0-9]+)$/.exec(mounts[0]?.source ?? '')?.[1] ?? '';
    const kept = hashOf(await client.prepare('kept'));
    const recordLost = hashOf(await client.prepare('record-lost'));
    const deviceLost = hashOf(await client.prepare('device-lost'));
    assert.ok(kept !== '' && recordLost !== '' && deviceLost !== '');
    // containerd mounts snapshots itself; this mount outlives a dmthin crash.
    const held = path.join(dir, 'containerd-mount');
    await fsp.mkdir(held);
    await run('mount', [`/dev/mapper/${prefix}-${recordLost}`, held]);
    client.close();
    await plugin?.kill();
    // What a damaged disk could lose while dmthin is down: one snapshot's record, another's device record.
    await fsp.rm(path.join(dir, 'state', 'snapshotter', 'snapshots', `${recordLost.slice('snap-'.length)}.json`));
    await fsp.rm(path.join(dir, 'state', 'metadata', deviceLost));
    plugin = startPlugin(env);
    await plugin.waitFor('snapshots reconciled with the pool');
    assert.match(plugin.output(), /cannot delete an orphaned snapshot device/, 'the start-up cleanup could not delete the mounted device');
    await run('umount', [held]);

    const check = await json<CheckReport>(['check'], env, EXIT.PROBLEM);
    const found = check.problems.filter((p) => p.kind.includes('snapshot')).map((p) => `${p.kind} ${p.object} ${String(p.gc)}`).sort();
    assert.deepEqual(found, [`missing-snapshot-device ${deviceLost} true`, `orphan-snapshot-device ${recordLost} true`]);
    assert.ok(check.problems.every((p) => p.gc), JSON.stringify(check.problems));
    const gc = await json<GcReport>(['gc'], env, EXIT.OK);
    assert.deepEqual(gc.failed, []);
    assert.ok(gc.removed.some((p) => p.kind === 'orphan-snapshot-device') && gc.removed.some((p) => p.kind === 'missing-snapshot-device'), JSON.stringify(gc));
    assert.deepEqual((await json<CheckReport>(['check'], env, EXIT.OK)).problems, []);

    client = new SnapshotsClient(path.join(dir, 'snapshotter.sock'));
    try {
      await assert.rejects(client.stat('device-lost'), (err: unknown) => codeOf(err) === grpc.status.NOT_FOUND);
      assert.equal(hashOf(await client.mounts('kept')), kept);
      assert.doesNotMatch(await run('dmsetup', ['ls']), new RegExp(`-${recordLost}\\b`));
      await client.remove('kept');
    } finally {
      client.close();
    }
  });

  it('check --thin-check: refused while dmthin runs; after it stops, thin_check passes on the pool it left', async () => {
    const refused = await dmthin(['check', '--thin-check'], env);
    assert.equal(refused.code, EXIT.USAGE);
    assert.match(refused.stderr, /thin_check needs the pool stopped/);
    assert.equal((await plugin?.stop())?.code, 0, plugin?.output());
    plugin = undefined;
    const checked = await dmthin(['check', '--thin-check', '--json'], env);
    assert.equal(checked.code, EXIT.OK, checked.stdout + checked.stderr);
    const report = JSON.parse(checked.stdout) as CheckReport & { thinCheck: { ok: boolean; metadata: string } };
    assert.equal(report.thinCheck.ok, true);
    assert.equal(report.thinCheck.metadata, path.join(dir, 'state', 'devicemapper', 'metadata'));
  });
});

// A pool of 400M with a low-water mark of 100M, filled on purpose through
// thin volumes: below the mark, then out of data space (dmthin's pool
// queues writes then: they wait for the pool to grow), then read-only.
// Each state is warned once, shown in status and docker info; new devices
// (layers, volumes, snapshots) are refused while removes and reads work;
// `dmthin pool grow` brings it back with nothing lost.
describe('pool health and dmthin pool grow (VM)', function () {
  let dir = '';
  let env: NodeJS.ProcessEnv = {};
  let socket = '';
  let plugin: PluginProcess | undefined;
  let volumeDir = '';
  let fillerDir = '';
  let pool = '';
  let snapshots: SnapshotsClient | undefined;
  /** the write that fills the pool, once started: 'done' or its error */
  let filling: Promise<unknown> = Promise.resolve('not started');
  /** whether the pool queued the writes it had no space for (dmthin's default) rather than failing them */
  let queued = true;
  let noSpaceTimeout = '';
  const MiB = 1024 * 1024;
  const layer = 'd'.repeat(64);
  const spare = 'e'.repeat(64);
  const removedWhenFull = '9'.repeat(64);
  const marker = 'written before the pool filled up\n';
  /** Lines of dmthin's log that contain every one of `parts`. */
  const logLines = (...parts: string[]): number => (plugin?.output() ?? '').split('\n').filter((l) => parts.every((p) => l.includes(p))).length;

  before(async function () {
    requireVm(this);
    requireRoot(this);
    dir = await tempHome('ops-full');
    socket = path.join(dir, 'dmthin.sock');
    env = {
      DMTHIN_SOCKET: socket,
      DMTHIN_ROOT: path.join(dir, 'state'),
      DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=400M dm.loopmetadatasize=16M dm.basesize=64M dm.fs=ext4 dm.low_water_mark=100M dm.min_free_space=0% dm.blkdiscard=false',
      DMTHIN_SNAPSHOTTER_SOCKET: path.join(dir, 'snapshotter.sock'),
    };
    // A write the full pool queues fails after no_space_timeout (60 s by default): long
    // enough here for the test to grow the pool first, and a bound if it never does.
    noSpaceTimeout = await fsp.readFile(NO_SPACE_TIMEOUT, 'utf8').catch(() => '');
    if (noSpaceTimeout !== '') await fsp.writeFile(NO_SPACE_TIMEOUT, '300');
    plugin = startPlugin(env);
    await plugin.waitFor(LISTENING);
    snapshots = new SnapshotsClient(path.join(dir, 'snapshotter.sock'));
    await post(socket, 'GraphDriver.Init', { Home: path.join(dir, 'docker'), Opts: null });
    for (const id of [layer, spare, removedWhenFull]) await post(socket, 'GraphDriver.Create', { ID: id, Parent: '' });
    await post(socket, 'VolumeDriver.Create', { Name: 'big', Opts: { size: '1G' } });
    await post(socket, 'VolumeDriver.Create', { Name: 'filler', Opts: { size: '512M' } });
    volumeDir = String((await post(socket, 'VolumeDriver.Mount', { Name: 'big', ID: 'm1' }))['Mountpoint']);
    fillerDir = String((await post(socket, 'VolumeDriver.Mount', { Name: 'filler', ID: 'm2' }))['Mountpoint']);
    await fsp.writeFile(path.join(volumeDir, 'marker'), marker);
  });

  after(async () => {
    snapshots?.close();
    await filling;
    if (plugin !== undefined) assert.equal((await plugin.stop()).code, 0, plugin.output());
    if (noSpaceTimeout !== '') await fsp.writeFile(NO_SPACE_TIMEOUT, noSpaceTimeout);
  });

  it('below the low-water mark: one warning saying what to do, status and docker info say so, creates refused, removes and reads work', async () => {
    assert.equal((await json<StatusReport>(['status'], env, EXIT.OK)).pool?.health, 'ok');
    await run('dd', ['if=/dev/zero', `of=${path.join(volumeDir, 'first')}`, 'bs=1M', 'count=300', 'conv=fsync', 'status=none']);
    await plugin?.waitFor('below its low-water mark');

    const status = await json<StatusReport>(['status'], env, EXIT.PROBLEM);
    pool = status.pool?.name ?? '';
    assert.equal(status.pool?.health, 'low_data_space');
    assert.match(status.pool?.advice ?? '', /dmthin pool grow --data SIZE/);
    assert.ok((status.pool?.data.free ?? 0) < 100 * MiB);
    const rows = Object.fromEntries((await post(socket, 'GraphDriver.Status', {}))['Status'] as Array<[string, string]>);
    assert.equal(rows['Pool Health'], 'low_data_space');
    assert.equal(rows['Low Water Mark'], '104.9MB');

    await refusedCreates(socket, [
      ['GraphDriver.Create', { ID: 'f'.repeat(64), Parent: layer }],
      ['GraphDriver.CreateReadWrite', { ID: 'f'.repeat(64), Parent: layer }],
      ['VolumeDriver.Create', { Name: 'more', Opts: { size: '64M' } }],
    ], /below its low-water mark of 1600 \(dm.low_water_mark\).*removing and reading still work/);
    await refusedPrepare(snapshots, 'when-low', /below its low-water mark/);
    assert.deepEqual(await post(socket, 'GraphDriver.Exists', { ID: 'f'.repeat(64) }), { Exists: false });
    assert.deepEqual(await post(socket, 'GraphDriver.Remove', { ID: spare }), {});
    const rootfs = String((await post(socket, 'GraphDriver.Get', { ID: layer }))['Dir']);
    assert.ok((await fsp.readdir(rootfs)).length >= 0);
    await post(socket, 'GraphDriver.Put', { ID: layer });
    assert.equal((await fsp.stat(path.join(volumeDir, 'first'))).size, 300 * MiB);
    assert.equal(plugin?.output().split('\n').filter((l) => l.includes('below its low-water mark') && l.includes('"health"')).length, 1, 'warned once');
  });

  it('out of data space: the writes that filled it wait, one warning, status and docker info say so, creates and a snapshotter Prepare refused, removes and reads work', async () => {
    queued = (await run('dmsetup', ['status', pool])).includes('queue_if_no_space');
    // 120M, more than the ~60M left, written by another volume's user; with queue_if_no_space
    // it waits for the pool to grow, with error_if_no_space it fails at once: the test goes on either way.
    filling = run('dd', ['if=/dev/zero', `of=${path.join(fillerDir, 'fill')}`, 'bs=1M', 'count=120', 'conv=fsync', 'status=none']).then(() => 'done', (err: unknown) => err);
    await plugin?.waitFor('is out of data space');

    const status = await json<StatusReport>(['status'], env, EXIT.PROBLEM);
    assert.equal(status.pool?.health, 'out_of_data_space');
    assert.equal(status.pool?.mode, 'out_of_data_space');
    assert.match(status.pool?.advice ?? '', /dmthin pool grow --data SIZE/);
    const text = await dmthin(['status'], env);
    assert.match(text.stdout, /^health +out_of_data_space/m, text.stdout);
    const rows = Object.fromEntries((await post(socket, 'GraphDriver.Status', {}))['Status'] as Array<[string, string]>);
    assert.equal(rows['Pool Health'], 'out_of_data_space');

    await refusedCreates(socket, [
      ['GraphDriver.Create', { ID: 'f'.repeat(64), Parent: layer }],
      ['GraphDriver.CreateReadWrite', { ID: 'f'.repeat(64), Parent: layer }],
      ['VolumeDriver.Create', { Name: 'more', Opts: { size: '64M' } }],
    ], /is out of data space: no new layers, containers or volumes until it is grown \(dmthin pool grow --data SIZE, or lvextend\).*removing and reading still work/);
    await refusedPrepare(snapshots, 'when-full', /is out of data space/);
    assert.equal(logLines('is out of data space', '"health"'), 1, 'warned once');

    assert.equal(await fsp.readFile(path.join(volumeDir, 'marker'), 'utf8'), marker);
    assert.equal((await fsp.stat(path.join(volumeDir, 'first'))).size, 300 * MiB);
    const rootfs = String((await post(socket, 'GraphDriver.Get', { ID: layer }))['Dir']);
    assert.ok((await fsp.readdir(rootfs)).length >= 0);
    await post(socket, 'GraphDriver.Put', { ID: layer });
    assert.deepEqual(await post(socket, 'GraphDriver.Remove', { ID: removedWhenFull }), {});
    assert.deepEqual(await post(socket, 'GraphDriver.Exists', { ID: removedWhenFull }), { Exists: false });
  });

  it('pool grow: data and metadata grow online (dmsetup table and status), health comes back, and a volume writes past the old pool size', async () => {
    const grown = await json<{ before: { data: number; metadata: number }; after: { data: number; metadata: number } }>(['pool', 'grow', '--data', '+400M', '--metadata', '32M'], env, EXIT.OK);
    assert.equal(grown.before.data, 400 * MiB);
    assert.equal(grown.after.data, 800 * MiB);
    assert.ok(grown.after.metadata > grown.before.metadata, JSON.stringify(grown));
    const table = (await run('dmsetup', ['table', pool])).trim().split(/\s+/);
    assert.equal(Number(table[1]), (800 * MiB) / 512, 'the table covers the grown file');
    const words = (await run('dmsetup', ['status', pool])).trim().split(/\s+/);
    assert.equal(Number((words[4] ?? '').split('/')[1]) * 4096, grown.after.metadata);
    assert.equal((await fsp.stat(path.join(dir, 'state', 'devicemapper', 'metadata'))).size, 32 * MiB);
    // The write that waited for space finishes, all of it; one that failed at once (error_if_no_space) took nothing else with it.
    const filled = await filling;
    if (queued) {
      assert.equal(filled, 'done', `the queued write: ${String(filled)}`);
      assert.equal((await fsp.stat(path.join(fillerDir, 'fill'))).size, 120 * MiB);
    }
    assert.equal(await fsp.readFile(path.join(volumeDir, 'marker'), 'utf8'), marker, 'nothing lost');
    await plugin?.waitFor('thin pool healthy again');
    assert.equal((await json<StatusReport>(['status'], env, EXIT.OK)).pool?.health, 'ok');

    assert.deepEqual(await post(socket, 'GraphDriver.Create', { ID: 'f'.repeat(64), Parent: layer }), {});
    await run('dd', ['if=/dev/zero', `of=${path.join(volumeDir, 'second')}`, 'bs=1M', 'count=100', 'conv=fsync', 'status=none']);
    assert.equal((await fsp.stat(path.join(volumeDir, 'first'))).size, 300 * MiB, 'nothing lost');
    assert.equal((await fsp.stat(path.join(volumeDir, 'second'))).size, 100 * MiB, 'written past the old pool size');
    await post(socket, 'VolumeDriver.Unmount', { Name: 'big', ID: 'm1' });

    const refused = await dmthin(['pool', 'grow', '--data', '100M'], env);
    assert.equal(refused.code, EXIT.PROBLEM);
    assert.match(refused.stderr, /--data 100M is smaller than the \d+ bytes it has: a pool only grows/);
  });
  it('read-only (its table reloaded with the read_only feature, as an operator or the kernel leaves it): one error line, shown, creates and Prepare refused, reads work; writable again without it', async () => {
    const table = async (readOnly: boolean): Promise<void> => {
      // 0 LENGTH thin-pool METADATA DATA BLOCK LOW_WATER N FEATURE...
      const words = (await run('dmsetup', ['table', pool])).trim().split(/\s+/);
      const features = words.slice(8, 8 + Number(words[7])).filter((f) => f !== 'read_only');
      if (readOnly) features.push('read_only');
      await run('dmsetup', ['reload', pool, '--table', [...words.slice(0, 7), String(features.length), ...features].join(' ')]);
      await run('dmsetup', ['suspend', pool]);
      await run('dmsetup', ['resume', pool]);
    };
    // A container's layer mounted before: a read-only pool still serves it (a new mount writes its superblock, which it refuses).
    const rootfs = String((await post(socket, 'GraphDriver.Get', { ID: layer }))['Dir']);
    await fsp.writeFile(path.join(rootfs, 'kept'), 'yes');
    await run('sync', []);
    await table(true);
    await plugin?.waitFor('is read-only');
    assert.equal((await json<StatusReport>(['status'], env, EXIT.PROBLEM)).pool?.health, 'read_only');
    const rows = Object.fromEntries((await post(socket, 'GraphDriver.Status', {}))['Status'] as Array<[string, string]>);
    assert.equal(rows['Pool Health'], 'read_only');
    await refusedCreates(socket, [
      ['GraphDriver.CreateReadWrite', { ID: 'b'.repeat(64), Parent: layer }],
      ['VolumeDriver.Create', { Name: 'more', Opts: { size: '64M' } }],
    ], /is read-only .*no new layers, containers or volumes until it is writable again.*reading still works/);
    await refusedPrepare(snapshots, 'when-read-only', /is read-only/);
    assert.equal(logLines('is read-only', '"health"'), 1, 'said once');
    assert.equal(await fsp.readFile(path.join(rootfs, 'kept'), 'utf8'), 'yes');
    if (queued) assert.equal((await fsp.stat(path.join(fillerDir, 'fill'))).size, 120 * MiB);

    await table(false);
    await waitUntil('dmthin to log the pool healthy again', async () => logLines('thin pool healthy again') === 2);
    await post(socket, 'GraphDriver.Put', { ID: layer });
    assert.deepEqual(await post(socket, 'GraphDriver.CreateReadWrite', { ID: 'b'.repeat(64), Parent: layer }), {});
    await post(socket, 'VolumeDriver.Unmount', { Name: 'filler', ID: 'm2' });
  });
});
