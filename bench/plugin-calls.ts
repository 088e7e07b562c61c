// What a bare plugin call costs, on the host: GraphDriver.Exists and Get
// through the real app (src/server/app.ts) over a driver whose lookups
// cost nothing, against the raw round trip (a bare node:http server
// giving the same answer) on the same kind of unix socket, each with one
// keep-alive client sending one call at a time, as dockerd does. The
// servers run in a child process, as the plugin runs beside dockerd.
//
//   node dist/bench/plugin-calls.js          # 20,000 calls per row
//   DMTHIN_BENCH_CALLS=50000 node dist/bench/plugin-calls.js
import { fork } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import http, { type RequestListener } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { GraphDriverApi } from '../src/graphdriver/types';
import { createLogger } from '../src/shared/log';
import { createApp } from '../src/server/app';
import type { VolumeDriverApi } from '../src/volume/types';
import { median, table } from './timing';

const CALLS = Number(process.env['DMTHIN_BENCH_CALLS'] ?? '20000');
const ROUNDS = 5;
const ID = 'a'.repeat(64);

function notUsed<T extends object>(what: string): T {
  return new Proxy({}, { get: (_t, prop) => () => Promise.reject(new Error(`${what}.${String(prop)} is not benchmarked`)) }) as T;
}

/** A driver that knows one mounted layer: the app's own cost is all that is left. */
const graph: GraphDriverApi = {
  ...notUsed<GraphDriverApi>('graph'),
  exists: async (id: string) => id === ID,
  get: async (id: string) => `/var/lib/docker/dmthin/mnt/${id}/rootfs`,
};

async function serve(listener: RequestListener, socketPath: string): Promise<http.Server> {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, listener);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return server;
}

/** Calls per second of `calls` sequential POSTs of `body` to `method`. */
async function rate(socketPath: string, method: string, body: string, calls: number): Promise<{ perSecond: number; answer: string }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const once = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = http.request({ socketPath, agent, path: `/${method}`, method: 'POST', headers: { 'Content-Length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(body);
    });
  let answer = '';
  for (let i = 0; i < 200; i++) answer = await once(); // warm-up
  const start = performance.now();
  for (let i = 0; i < calls; i++) await once();
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  return { perSecond: calls / seconds, answer };
}

/** The child: both servers, until the parent disconnects. */
async function serveBoth(appSocket: string, rawSocket: string): Promise<void> {
  await serve(createApp({ graph, volumes: notUsed<VolumeDriverApi>('volumes'), log: createLogger('info') }) as unknown as RequestListener, appSocket);
  await serve((req, res) => {
    req.resume();
    req.on('end', () => {
      const answer = req.url === '/GraphDriver.Get' ? JSON.stringify({ Dir: `/var/lib/docker/dmthin/mnt/${ID}/rootfs` }) : '{"Exists":true}';
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(answer) });
      res.end(answer);
    });
  }, rawSocket);
  process.send?.('ready');
  process.on('disconnect', () => process.exit(0));
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') return serveBoth(process.argv[3] ?? '', process.argv[4] ?? '');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-bench-calls-'));
  const appSocket = path.join(dir, 'app.sock');
  const rawSocket = path.join(dir, 'raw.sock');
  const child = fork(__filename, ['serve', appSocket, rawSocket], { execArgv: process.env['DMTHIN_BENCH_PROFILE'] === '1' ? ['--cpu-prof', `--cpu-prof-dir=${dir}-prof`] : [] });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the server process exited with ${code}`)));
  });
  try {
    const body = `${JSON.stringify({ ID })}\n`;
    const rows: Array<{ call: string; raw: number; app: number }> = [];
    // Alternating rounds, the median of each: a loaded machine slows whichever runs at the wrong moment.
    for (const method of ['GraphDriver.Exists', 'GraphDriver.Get']) {
      const raws: number[] = [];
      const apps: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const bare = await rate(rawSocket, method, body, Math.ceil(CALLS / ROUNDS));
        const real = await rate(appSocket, method, body, Math.ceil(CALLS / ROUNDS));
        if (real.answer !== bare.answer) throw new Error(`${method}: the app answered ${real.answer}, expected ${bare.answer}`);
        raws.push(bare.perSecond);
        apps.push(real.perSecond);
      }
      rows.push({ call: method, raw: median(raws), app: median(apps) });
    }
    const n = (v: number): string => Math.round(v).toLocaleString('en-US');
    process.stdout.write(
      `${table(
        [`plugin calls (host, ${CALLS} sequential keep-alive calls, median of ${ROUNDS} rounds)`, 'raw socket/s', 'dmthin app/s', 'raw/app'],
        rows.map((r) => [r.call, n(r.raw), n(r.app), (r.raw / r.app).toFixed(2)]),
      )}\n`,
    );
    process.stdout.write(`BENCH ${JSON.stringify({ name: 'plugin-calls', calls: CALLS, rows })}\n`);
  } finally {
    child.disconnect();
    await new Promise((resolve) => child.once('exit', resolve));
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
