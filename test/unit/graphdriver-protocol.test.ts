// GraphDriver over HTTP as dockerd 20.10 speaks it: no Content-Type,
// omitted fields, null Opts, HTTP 200 with {"Err"} on every failure. The
// driver here is a recording fake: this suite tests the protocol layer
// alone; the VM suites drive the real DeviceSet through the same app.
import assert from 'node:assert/strict';
import request from 'supertest';
import { createApp } from '../../src/server/app';
import type { CreateRequest, GraphDriverApi } from '../../src/graphdriver/types';
import { DmthinError } from '../../src/shared/errors';
import { createLogger } from '../../src/shared/log';
import { bufferBody } from '../support/tar';
import { notUsed } from '../support/not-used';
import type { VolumeDriverApi } from '../../src/volume/types';
import { Readable } from 'node:stream';
import { ChangeKind, type Change } from '../../src/graphdriver/changes';

class FakeGraph implements GraphDriverApi {
  calls: Array<[string, unknown]> = [];
  layers = new Set<string>();

  async init(home: string, opts: string[]): Promise<void> {
    this.calls.push(['init', { home, opts }]);
  }
  capabilities() {
    return { ReproducesExactDiffs: false };
  }
  async create(r: CreateRequest): Promise<void> {
    this.calls.push(['create', r]);
    if (this.layers.has(r.id)) throw new DmthinError('EEXIST', `device ${r.id} already exists`);
    this.layers.add(r.id);
  }
  async createReadWrite(r: CreateRequest): Promise<void> {
    this.calls.push(['createReadWrite', r]);
    this.layers.add(r.id);
  }
  async remove(id: string): Promise<void> {
    this.calls.push(['remove', id]);
    this.layers.delete(id);
  }
  async get(id: string, mountLabel: string): Promise<string> {
    this.calls.push(['get', { id, mountLabel }]);
    if (!this.layers.has(id)) throw new DmthinError('ENOENT', `unknown device ${id}`);
    return `/var/lib/docker/dmthin/mnt/${id}/rootfs`;
  }
  async put(id: string): Promise<void> {
    this.calls.push(['put', id]);
  }
  async exists(id: string): Promise<boolean> {
    return this.layers.has(id);
  }
  async status(): Promise<Array<[string, string]>> {
    return [['Pool Name', 'p'], ['Pool Blocksize', '65.54kB']];
  }
  async getMetadata(id: string): Promise<Record<string, string>> {
    return { DeviceId: '7', DeviceSize: '10737418240', DeviceName: `dmthin-1:2-3-${id}` };
  }
  async cleanup(): Promise<void> {
    this.calls.push(['cleanup', null]);
  }
  async applyDiff(id: string, parent: string, tar: Readable): Promise<number> {
    let bytes = 0;
    for await (const chunk of tar) bytes += (chunk as Buffer).length;
    this.calls.push(['applyDiff', { id, parent, bytes }]);
    if (id === 'bad') throw new DmthinError('EBADTAR', 'tar entry "../x" tries to leave the layer with ".."');
    return 1234;
  }
  async diff(id: string, parent: string): Promise<{ stream: Readable; release: () => Promise<void> }> {
    this.calls.push(['diff', { id, parent }]);
    if (!this.layers.has(id)) throw new DmthinError('ENOENT', `unknown device ${id}`);
    return { stream: Readable.from([Buffer.from('TAR-BYTES')]), release: async () => void this.calls.push(['released', id]) };
  }
  async changes(id: string, parent: string): Promise<Change[]> {
    this.calls.push(['changes', { id, parent }]);
    return [{ Path: '/etc', Kind: ChangeKind.Modify }, { Path: '/etc/x', Kind: ChangeKind.Add }];
  }
  async diffSize(id: string, parent: string): Promise<number> {
    this.calls.push(['diffSize', { id, parent }]);
    return 42;
  }
}

const ID = 'a'.repeat(64);
const log = createLogger('error');

/** A request the way dockerd sends it: POST, compact JSON plus newline, no Content-Type. */
function call(app: Express.Application, method: string, body?: unknown) {
  const req = request(app as Parameters<typeof request>[0]).post(`/${method}`).set('Accept', 'application/vnd.docker.plugins.v1.2+json');
  return body === undefined ? req.send('') : req.send(`${JSON.stringify(body)}\n`).unset('Content-Type');
}

describe('GraphDriver protocol', () => {
  let graph: FakeGraph;
  let app: ReturnType<typeof createApp>;

  beforeEach(() => {
    graph = new FakeGraph();
    app = createApp({ graph, volumes: notUsed<VolumeDriverApi>('volumes'), log });
  });

  it('activates with an empty body', async () => {
    const res = await call(app, 'Plugin.Activate');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { Implements: ['GraphDriver', 'VolumeDriver'] });
  });

  it('passes Init its Home and Opts, with null Opts and id maps accepted', async () => {
    let res = await call(app, 'GraphDriver.Init', { Home: '/var/lib/docker/dmthin', Opts: null, UIDMaps: null, GIDMaps: null });
    assert.deepEqual(res.body, {});
    res = await call(app, 'GraphDriver.Init', { Home: '/h', Opts: ['dm.basesize=20G'], UIDMaps: [{ container_id: 0, host_id: 100000, size: 65536 }], GIDMaps: [] });
    assert.deepEqual(res.body, {});
    assert.deepEqual(graph.calls, [
      ['init', { home: '/var/lib/docker/dmthin', opts: [] }],
      ['init', { home: '/h', opts: ['dm.basesize=20G'] }],
    ]);
  });

  it('answers Capabilities in the nested form', async () => {
    const res = await call(app, 'GraphDriver.Capabilities', {});
    assert.deepEqual(res.body, { Capabilities: { ReproducesExactDiffs: false } });
  });

  it('creates, gets, puts, checks and removes a layer', async () => {
    assert.deepEqual((await call(app, 'GraphDriver.Create', { ID, Parent: 'b'.repeat(64) })).body, {});
    assert.deepEqual(graph.calls[0], ['create', { id: ID, parent: 'b'.repeat(64), mountLabel: '', storageOpt: {} }]);
    await call(app, 'GraphDriver.CreateReadWrite', { ID: `${ID}-init`, Parent: ID, MountLabel: 'l', StorageOpt: { size: '20G' } });
    assert.deepEqual(graph.calls[1], ['createReadWrite', { id: `${ID}-init`, parent: ID, mountLabel: 'l', storageOpt: { size: '20G' } }]);
    assert.deepEqual((await call(app, 'GraphDriver.Get', { ID, MountLabel: 'x' })).body, { Dir: `/var/lib/docker/dmthin/mnt/${ID}/rootfs` });
    assert.deepEqual((await call(app, 'GraphDriver.Put', { ID })).body, {});
    assert.deepEqual((await call(app, 'GraphDriver.Exists', { ID })).body, { Exists: true });
    assert.deepEqual((await call(app, 'GraphDriver.Remove', { ID })).body, {});
    assert.deepEqual((await call(app, 'GraphDriver.Exists', { ID })).body, { Exists: false });
  });

  it('returns Status rows and string-only metadata', async () => {
    assert.deepEqual((await call(app, 'GraphDriver.Status', {})).body, { Status: [['Pool Name', 'p'], ['Pool Blocksize', '65.54kB']] });
    const { body } = await call(app, 'GraphDriver.GetMetadata', { ID });
    assert.deepEqual(body, { Metadata: { DeviceId: '7', DeviceSize: '10737418240', DeviceName: `dmthin-1:2-3-${ID}` } });
  });

  it('cleans up', async () => {
    assert.deepEqual((await call(app, 'GraphDriver.Cleanup', {})).body, {});
    assert.deepEqual(graph.calls, [['cleanup', null]]);
  });

  it('answers driver errors with HTTP 200 and Err, the message as the driver gave it', async () => {
    await call(app, 'GraphDriver.Create', { ID });
    const res = await call(app, 'GraphDriver.Create', { ID });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { Err: `device ${ID} already exists` });
    assert.deepEqual((await call(app, 'GraphDriver.Get', { ID: 'nope' })).body, { Err: 'unknown device nope' });
  });

  it('refuses malformed and hostile bodies without calling the driver', async () => {
    const bad: Array<[string, unknown, RegExp]> = [
      ['GraphDriver.Init', {}, /Home/],
      ['GraphDriver.Init', { Home: 'relative' }, /Home must match/],
      ['GraphDriver.Init', { Home: '/h', Opts: [1] }, /Opts\.0 must be string/],
      ['GraphDriver.Init', { Home: '/h', UIDMaps: [{ ContainerID: 0 }] }, /UIDMaps\.0 must have required property/],
      ['GraphDriver.Create', {}, /ID is required/],
      ['GraphDriver.Create', { ID: 42 }, /ID must be string/],
      ['GraphDriver.Create', { ID: '../../etc' }, /ID must match/],
      ['GraphDriver.Create', { ID: 'a\u0000b' }, /ID must match/],
      ['GraphDriver.Create', { ID: '..' }, /ID must match/],
      ['GraphDriver.Create', { ID, Parent: `${ID}/..` }, /Parent must match/],
      ['GraphDriver.Create', { ID, Parent: '..' }, /Parent must match/],
      ['GraphDriver.Remove', { ID: 'x/y' }, /ID must match/],
      ['GraphDriver.Get', { ID: '..' }, /ID must match/],
      ['GraphDriver.Get', { ID, MountLabel: 7 }, /MountLabel must be string/],
      ['GraphDriver.Put', { ID: '' }, /ID is required/],
      ['GraphDriver.Exists', { ID: 'a\u0000' }, /ID must match/],
      ['GraphDriver.GetMetadata', {}, /ID is required/],
      ['GraphDriver.Changes', { ID, Parent: '../p' }, /Parent must match/],
      ['GraphDriver.DiffSize', { ID: null }, /ID is required/],
      ['GraphDriver.CreateReadWrite', { ID, StorageOpt: ['size=1G'] }, /StorageOpt must be object/],
      ['GraphDriver.Create', { ID: 'x'.repeat(129) }, /ID must NOT have more than 128 characters/],
      ['GraphDriver.Create', { ID, StorageOpt: { size: 5 } }, /StorageOpt\.size must be string/],
      ['GraphDriver.Get', [], /request body must be object/],
      ['GraphDriver.Remove', 'just a string', /malformed JSON body/],
    ];
    for (const [method, body, message] of bad) {
      const res = await call(app, method, body);
      assert.equal(res.status, 200);
      assert.match(String((res.body as { Err?: string }).Err), message, `${method} ${JSON.stringify(body)}`);
    }
    const res = await request(app).post('/GraphDriver.Create').send('{"ID": "x",').unset('Content-Type');
    assert.deepEqual(res.body, { Err: 'GraphDriver.Create: malformed JSON body' });
    assert.deepEqual(graph.calls, []);
  });

  it('streams ApplyDiff\'s raw tar body to the driver and answers its size', async () => {
    const tarBytes = Buffer.alloc(10240, 7);
    const res = await request(app).post(`/GraphDriver.ApplyDiff?id=${ID}&parent=`).send(tarBytes).unset('Content-Type');
    assert.deepEqual(res.body, { Size: 1234 });
    assert.deepEqual(graph.calls, [['applyDiff', { id: ID, parent: '', bytes: 10240 }]]);
    const bad = await request(app).post('/GraphDriver.ApplyDiff?id=bad').send(tarBytes).unset('Content-Type');
    assert.deepEqual(bad.body, { Err: 'tar entry "../x" tries to leave the layer with ".."' });
    const hostile = await request(app).post('/GraphDriver.ApplyDiff?id=../x').send(tarBytes).unset('Content-Type');
    assert.match(String((hostile.body as { Err: string }).Err), /ID must match/);
    const hostileParent = await request(app).post(`/GraphDriver.ApplyDiff?id=${ID}&parent=..`).send(tarBytes).unset('Content-Type');
    assert.match(String((hostileParent.body as { Err: string }).Err), /Parent must match/);
    const missing = await request(app).post('/GraphDriver.ApplyDiff').send(tarBytes).unset('Content-Type');
    assert.match(String((missing.body as { Err: string }).Err), /id is required/);
  });

  it('answers Changes and DiffSize', async () => {
    assert.deepEqual((await call(app, 'GraphDriver.Changes', { ID, Parent: 'p' })).body, { Changes: [{ Path: '/etc', Kind: 0 }, { Path: '/etc/x', Kind: 1 }] });
    assert.deepEqual((await call(app, 'GraphDriver.DiffSize', { ID })).body, { Size: 42 });
    assert.deepEqual(graph.calls, [['changes', { id: ID, parent: 'p' }], ['diffSize', { id: ID, parent: '' }]]);
  });

  it('streams Diff as the raw tar, and reports an error before streaming as a 500 with Err', async () => {
    graph.layers.add(ID);
    const res = await call(app, 'GraphDriver.Diff', { ID }).buffer(true).parse(bufferBody);
    assert.equal(res.status, 200);
    assert.equal((res.body as Buffer).toString(), 'TAR-BYTES');
    assert.deepEqual(graph.calls.at(-1), ['released', ID]);
    const err = await call(app, 'GraphDriver.Diff', { ID: 'missing' });
    assert.equal(err.status, 500);
    assert.deepEqual(err.body, { Err: 'unknown device missing' });
    const hostile = await call(app, 'GraphDriver.Diff', { ID, Parent: '../../x' });
    assert.equal(hostile.status, 500);
    assert.match(String((hostile.body as { Err: string }).Err), /Parent must match/);
    const callsBefore = graph.calls.length;
    const malformed = await request(app).post('/GraphDriver.Diff').send('{"ID":').unset('Content-Type');
    assert.match(String((malformed.body as { Err: string }).Err), /malformed JSON body/);
    assert.equal(graph.calls.length, callsBefore, 'the driver is not called');
  });

  it('refuses a body over 1 MB with an Err, and keeps serving', async () => {
    const res = await request(app).post('/GraphDriver.Create').send(`{"ID":"${'a'.repeat(2 * 1024 * 1024)}"}`).unset('Content-Type');
    assert.equal(res.status, 200);
    assert.match(String((res.body as { Err?: string }).Err), /^GraphDriver\.Create: request entity too large/);
    assert.deepEqual((await call(app, 'GraphDriver.Capabilities', {})).body, { Capabilities: { ReproducesExactDiffs: false } });
  });

  it('says 404 for endpoints it does not serve, which dockerd tolerates only for Capabilities', async () => {
    assert.equal((await call(app, 'GraphDriver.Nope', {})).status, 404);
  });
});
