// DMTHIN_METRICS: the daemon's Prometheus endpoint scraped as Prometheus
// scrapes it (GET /metrics), its text format read line by line: calls
// counted and timed by endpoint, failures by code, and, with no
// device-mapper on this kernel, a pool said to be unavailable.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { dm } from '../../src/devmapper';
import { isRoot, skipBecause } from '../support/env';
import { CLI, LISTENING } from '../support/plugin-process';
import { startLogged, type Started } from '../support/processes';
import { postUnix } from '../support/unix-http';

interface Scrape {
  status: number;
  contentType: string;
  text: string;
}

function scrape(target: { socketPath: string } | { host: string; port: number }, urlPath = '/metrics'): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target, path: urlPath, method: 'GET' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A POST whose answer (Express's 404 page, say) is read and dropped. */
function postIgnoringAnswer(socketPath: string, urlPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: urlPath, method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', reject);
    req.end('{}');
  });
}

/** The samples of Prometheus's text format: `name{a="x",b="y"} value`, keyed by name and sorted labels. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `not a sample line of the text format: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}=${v}`).sort();
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return out;
}

describe('metrics (DMTHIN_METRICS)', function () {
  let dir = '';
  let daemon: Started | undefined;

  before(async function () {
    if (!isRoot) skipBecause(this, 'needs root (the daemon makes its state directory and mounts)');
    if (dm.driverLoaded()) skipBecause(this, 'this kernel has device-mapper: the pool figures differ; the VM suite scrapes a real pool');
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-metrics-'));
  });

  afterEach(async () => {
    if (daemon !== undefined) assert.equal((await daemon.stop()).code, 0, daemon.output());
    daemon = undefined;
  });

  after(async () => {
    if (dir !== '') await fsp.rm(dir, { recursive: true, force: true });
  });

  const start = async (name: string, metrics: string): Promise<string> => {
    const socket = path.join(dir, `${name}.sock`);
    daemon = startLogged(process.execPath, [CLI, 'serve'], undefined, {
      ...process.env,
      DMTHIN_ROOT: path.join(dir, name),
      DMTHIN_SOCKET: socket,
      DMTHIN_SNAPSHOTTER_SOCKET: 'off',
      DMTHIN_METRICS: metrics,
    });
    await daemon.waitFor(LISTENING);
    await daemon.waitFor('serving metrics');
    return socket;
  };

  it('on a unix socket: calls counted and timed by endpoint, failures by code, the pool unavailable, in the text format', async () => {
    const metricsSocket = path.join(dir, 'metrics.sock');
    const socket = await start('unix', metricsSocket);
    for (let i = 0; i < 3; i++) await postUnix(socket, 'Plugin.Activate', {});
    assert.deepEqual((await postUnix(socket, 'VolumeDriver.Create', { Name: 'vol1', Opts: {} })).body, {});
    const missing = (await postUnix(socket, 'VolumeDriver.Remove', { Name: 'nosuch' })).body;
    assert.match(String(missing['Err']), /nosuch/);
    const init = (await postUnix(socket, 'GraphDriver.Init', { Home: path.join(dir, 'home'), Opts: null })).body;
    assert.match(String(init['Err']), /device-mapper/);

    const got = await scrape({ socketPath: metricsSocket });
    assert.equal(got.status, 200);
    assert.match(got.contentType, /^text\/plain; version=0\.0\.4/);
    assert.match(got.text, /^# HELP dmthin_requests_total Plugin calls answered, by endpoint$/m);
    assert.match(got.text, /^# TYPE dmthin_requests_total counter$/m);
    assert.match(got.text, /^# TYPE dmthin_request_duration_seconds histogram$/m);
    const s = samples(got.text);
    assert.equal(s.get('dmthin_requests_total{endpoint=Plugin.Activate}'), 3);
    assert.equal(s.get('dmthin_requests_total{endpoint=VolumeDriver.Create}'), 1);
    assert.equal(s.get('dmthin_request_duration_seconds_count{endpoint=Plugin.Activate}'), 3);
    assert.equal(s.get('dmthin_request_duration_seconds_bucket{endpoint=Plugin.Activate,le=+Inf}'), 3);
    assert.ok((s.get('dmthin_request_duration_seconds_sum{endpoint=Plugin.Activate}') ?? -1) >= 0);
    assert.equal(s.get('dmthin_request_errors_total{code=ENOENT,endpoint=VolumeDriver.Remove}'), 1, got.text);
    assert.equal(s.get('dmthin_request_errors_total{code=ENODM,endpoint=GraphDriver.Init}'), 1, got.text);
    assert.equal(s.get('dmthin_request_errors_total{code=ENOENT,endpoint=VolumeDriver.Create}'), undefined);
    assert.equal(s.get('dmthin_pool_available{}'), 0);
    assert.equal(s.get('dmthin_pool_data_bytes{state=total}'), undefined, 'no pool, no pool figures');
    assert.ok((s.get('dmthin_process_resident_memory_bytes{}') ?? 0) > 0, 'the process metrics are there too');

    assert.equal((await scrape({ socketPath: metricsSocket }, '/other')).status, 404);
    // Paths that are no call's name are counted under one label, "other".
    for (const made of ['/a/b', '/x?y=1', '/..']) await postIgnoringAnswer(socket, made);
    assert.equal(samples((await scrape({ socketPath: metricsSocket })).text).get('dmthin_requests_total{endpoint=other}'), 3);
  });

  it('on a loopback port', async function () {
    const port = 20000 + (process.pid % 20000);
    const socket = await start('tcp', `127.0.0.1:${port}`);
    await postUnix(socket, 'Plugin.Activate', {});
    const got = await scrape({ host: '127.0.0.1', port });
    assert.equal(got.status, 200);
    assert.equal(samples(got.text).get('dmthin_requests_total{endpoint=Plugin.Activate}'), 1);
  });
});
