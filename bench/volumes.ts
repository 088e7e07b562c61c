// Volumes through dockerd 20.10's Engine API (its unix socket, no CLI):
// Docker's local driver beside dmthin (a legacy plugin) for the same
// operation, plain volumes and tmpfs volumes alike, and dmthin's thin
// volumes; Mount and Unmount on the plugin socket (the local driver's
// happen inside dockerd); and a clone of a volume holding 1 GB, which the
// local driver can only do by copying.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { Dockerd } from '../test/support/dockerd';
import { SMALL, tempHome } from '../test/support/deviceset';
import { run } from '../test/support/exec';
import { startPlugin } from '../test/support/plugin-process';
import { postUnix } from '../test/support/unix-http';
import { median, table, timed, timeOnce } from './timing';

const GiB = 1024 * 1024 * 1024;

/** One Engine API call; rejects unless 2xx. */
function engine(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: urlPath, method, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${urlPath}: ${res.statusCode ?? 0} ${text}`));
        else resolve(text === '' ? null : (JSON.parse(text) as unknown));
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

interface Kind {
  label: string;
  driver: 'local' | 'dmthin';
  opts: Record<string, string>;
}

export interface VolumesResult {
  rounds: number;
  /** label -> operation -> median ms */
  ops: Record<string, Record<string, number>>;
  clone: { localCopyMs: number; dmthinCloneMs: number };
}

const OPS = ['create', 'remove', 'docker run (mount + unmount)', 'Mount (plugin socket)', 'Unmount (plugin socket)'] as const;

export async function benchVolumes(rounds: number): Promise<VolumesResult> {
  const dir = await tempHome('bench-volumes');
  const name = `dmthin-bench-${randomBytes(3).toString('hex')}`;
  const pluginSocket = `/run/docker/plugins/${name}.sock`;
  // Volumes without options are plain here, so "plain" means the same for both drivers.
  const plugin = startPlugin({ DMTHIN_ROOT: path.join(dir, 'state'), DMTHIN_SOCKET: pluginSocket, DMTHIN_STORAGE_OPTS: [...SMALL, 'dm.loopdatasize=8G'].join(' '), DMTHIN_VOLUME_KIND: 'plain' });
  const dockerd = new Dockerd(path.join(dir, 'd'));
  try {
    await plugin.waitFor('thin volumes reconciled with the pool');
    await dockerd.start();
    await dockerd.importBusybox();
    const api = path.join(dockerd.dir, 'docker.sock');
    const kinds: Kind[] = [
      { label: 'local, plain', driver: 'local', opts: {} },
      { label: 'dmthin, plain', driver: 'dmthin', opts: {} },
      { label: 'local, tmpfs', driver: 'local', opts: { type: 'tmpfs', device: 'tmpfs', o: 'size=64m' } },
      { label: 'dmthin, tmpfs', driver: 'dmthin', opts: { type: 'tmpfs', device: 'tmpfs', o: 'size=64m' } },
      { label: 'dmthin, thin 1G ext4', driver: 'dmthin', opts: { size: '1G', fs: 'ext4' } },
    ];
    const times: Record<string, Record<string, number[]>> = {};
    const runRounds = Math.min(rounds, 3);
    for (let i = 0; i <= rounds; i++) {
      for (const kind of kinds) {
        const t = (times[kind.label] ??= Object.fromEntries(OPS.map((o) => [o, []])) as Record<string, number[]>);
        // Round 0 warms caches up and is not counted.
        const sink = (op: string): number[] => (i === 0 ? [] : (t[op] ?? []));
        const vol = `b${i}-${kind.label.replace(/[^a-z0-9]+/g, '-')}`;
        const driver = kind.driver === 'local' ? 'local' : name;
        await timed(sink('create'), () => engine(api, 'POST', '/volumes/create', { Name: vol, Driver: driver, DriverOpts: kind.opts }));
        if (kind.driver === 'dmthin') {
          await timed(sink('Mount (plugin socket)'), () => postUnix(pluginSocket, 'VolumeDriver.Mount', { Name: vol, ID: 'bench' }));
          await timed(sink('Unmount (plugin socket)'), () => postUnix(pluginSocket, 'VolumeDriver.Unmount', { Name: vol, ID: 'bench' }));
        }
        if (i <= runRounds) {
          await timed(sink('docker run (mount + unmount)'), async () => {
            const { Id } = (await engine(api, 'POST', '/containers/create', {
              Image: 'bb:latest', Cmd: ['/bin/busybox', 'true'], HostConfig: { Binds: [`${vol}:/data`], NetworkMode: 'none' },
            })) as { Id: string };
            await engine(api, 'POST', `/containers/${Id}/start`);
            await engine(api, 'POST', `/containers/${Id}/wait`);
            await engine(api, 'DELETE', `/containers/${Id}`);
          });
        }
        await timed(sink('remove'), () => engine(api, 'DELETE', `/volumes/${vol}`));
      }
    }
    const ops = Object.fromEntries(Object.entries(times).map(([label, t]) => [label, Object.fromEntries(Object.entries(t).filter(([, v]) => v.length > 0).map(([op, v]) => [op, median(v)]))]));
    return { rounds, ops, clone: await benchClone(api, name, pluginSocket, dockerd) };
  } finally {
    await dockerd.stop();
    await plugin.stop();
  }
}

/** A 1 GB volume: the local driver copies it into a new volume (cp -a), dmthin snapshots it (-o from). */
async function benchClone(api: string, name: string, pluginSocket: string, dockerd: Dockerd): Promise<VolumesResult['clone']> {
  const fill = async (dir: string): Promise<void> => {
    await run('dd', ['if=/dev/urandom', `of=${path.join(dir, 'data')}`, 'bs=1M', `count=${GiB / (1024 * 1024)}`, 'conv=fsync', 'status=none']);
  };
  await engine(api, 'POST', '/volumes/create', { Name: 'local-src', Driver: 'local' });
  await engine(api, 'POST', '/volumes/create', { Name: 'local-dst', Driver: 'local' });
  const localData = (vol: string): string => path.join(dockerd.dir, 'docker', 'volumes', vol, '_data');
  await fill(localData('local-src'));
  const localCopyMs = await timeOnce(() => run('cp', ['-a', `${localData('local-src')}/.`, localData('local-dst')]).then(() => run('sync', [])));

  await engine(api, 'POST', '/volumes/create', { Name: 'thin-src', Driver: name, DriverOpts: { size: '2G', fs: 'ext4' } });
  const mp = String((await postUnix(pluginSocket, 'VolumeDriver.Mount', { Name: 'thin-src', ID: 'fill' })).body['Mountpoint']);
  await fill(mp);
  const dmthinCloneMs = await timeOnce(() => engine(api, 'POST', '/volumes/create', { Name: 'thin-dst', Driver: name, DriverOpts: { from: 'thin-src' } }));
  await postUnix(pluginSocket, 'VolumeDriver.Unmount', { Name: 'thin-src', ID: 'fill' });
  for (const vol of ['local-src', 'local-dst', 'thin-dst', 'thin-src']) await engine(api, 'DELETE', `/volumes/${vol}`);
  return { localCopyMs, dmthinCloneMs };
}

export function formatVolumes(r: VolumesResult): string {
  const labels = Object.keys(r.ops);
  const cell = (label: string, op: string): string => {
    const v = r.ops[label]?.[op];
    return v === undefined ? '-' : v.toFixed(0);
  };
  return [
    `Volumes through dockerd 20.10's API, local driver beside dmthin: median ms over ${r.rounds} rounds (docker run: ${Math.min(r.rounds, 3)})`,
    table(['operation', ...labels], OPS.map((op) => [op, ...labels.map((l) => cell(l, op))])),
    '',
    'Clone of a volume holding 1 GB (the local driver has no clone: cp -a into a new volume, then sync)',
    table(['way', 'ms'], [
      ['local: cp -a + sync', r.clone.localCopyMs.toFixed(0)],
      ['dmthin: docker volume create -o from=', r.clone.dmthinCloneMs.toFixed(0)],
      ['ratio copy/clone', (r.clone.localCopyMs / r.clone.dmthinCloneMs).toFixed(1)],
    ]),
  ].join('\n');
}
