// VolumeDriver over HTTP as dockerd 20.10 speaks it: no Content-Type,
// Opts null, every answer HTTP 200 with {"Err"} on failure. The store here
// is a recording fake: this suite tests the protocol layer alone; the host
// and VM suites drive the real store through the same app.
import assert from 'node:assert/strict';
import request from 'supertest';
import { createApp } from '../../src/server/app';
import type { GraphDriverApi } from '../../src/graphdriver/types';
import type { VolumeDriverApi, VolumeInfo, VolumeListEntry } from '../../src/volume/types';
import { DmthinError } from '../../src/shared/errors';
import { createLogger } from '../../src/shared/log';
import { checkVolumeName } from '../../src/volume/names';
import { notUsed } from '../support/not-used';

class FakeVolumes implements VolumeDriverApi {
  calls: Array<[string, unknown]> = [];
  volumes = new Map<string, Set<string>>();

  async create(name: string, opts: Readonly<Record<string, string>> | null): Promise<void> {
    checkVolumeName(name);
    this.calls.push(['create', { name, opts }]);
    if (opts?.['size'] === 'boom') throw new DmthinError('EVOLOPTION', 'size: invalid size "boom"');
    this.volumes.set(name, new Set());
  }
  async remove(name: string): Promise<void> {
    this.calls.push(['remove', name]);
    if ((this.volumes.get(name)?.size ?? 0) > 0) throw new DmthinError('EBUSY', `volume ${name} is in use`);
    this.volumes.delete(name);
  }
  async mount(name: string, id: string): Promise<string> {
    this.calls.push(['mount', { name, id }]);
    this.known(name).add(id);
    return `/var/lib/dmthin/volumes/${name}/_data`;
  }
  async unmount(name: string, id: string): Promise<void> {
    this.calls.push(['unmount', { name, id }]);
    this.known(name).delete(id);
  }
  async path(name: string): Promise<string> {
    this.known(name);
    return `/var/lib/dmthin/volumes/${name}/_data`;
  }
  async get(name: string): Promise<VolumeInfo | null> {
    checkVolumeName(name);
    if (!this.volumes.has(name)) return null;
    return { Name: name, Mountpoint: `/var/lib/dmthin/volumes/${name}/_data`, CreatedAt: '2026-11-23T10:00:00.000Z', Status: { Kind: 'plain', Mounts: this.known(name).size } };
  }
  async list(): Promise<VolumeListEntry[]> {
    return [...this.volumes.keys()].map((Name) => ({ Name, Mountpoint: `/var/lib/dmthin/volumes/${Name}/_data` }));
  }
  private known(name: string): Set<string> {
    const ids = this.volumes.get(name);
    if (ids === undefined) throw new DmthinError('ENOENT', `no such volume: ${name}`);
    return ids;
  }
}

describe('VolumeDriver protocol', () => {
  let volumes: FakeVolumes;
  let app: ReturnType<typeof createApp>;

  beforeEach(() => {
    volumes = new FakeVolumes();
    app = createApp({ graph: notUsed<GraphDriverApi>('graph'), volumes, log: createLogger('error') });
  });

  /** As dockerd sends it: compact JSON and a newline, no Content-Type. */
  const call = (method: string, body: unknown) => request(app).post(`/${method}`).send(`${JSON.stringify(body)}\n`).unset('Content-Type');

  it('says it implements both protocols, and a local scope', async () => {
    assert.deepEqual((await request(app).post('/Plugin.Activate')).body, { Implements: ['GraphDriver', 'VolumeDriver'] });
    const caps = await call('VolumeDriver.Capabilities', {});
    assert.equal(caps.status, 200);
    assert.deepEqual(caps.body, { Capabilities: { Scope: 'local' } });
  });

  it('creates with Opts null or a map, and answers {} with HTTP 200', async () => {
    const a = await call('VolumeDriver.Create', { Name: 'a', Opts: null });
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, {});
    await call('VolumeDriver.Create', { Name: 'b', Opts: { size: '1G' } });
    await call('VolumeDriver.Create', { Name: 'c' });
    assert.deepEqual(volumes.calls, [
      ['create', { name: 'a', opts: null }],
      ['create', { name: 'b', opts: { size: '1G' } }],
      ['create', { name: 'c', opts: null }],
    ]);
  });

  it('gets a volume with an RFC 3339 CreatedAt, and an unknown one as an Err', async () => {
    await call('VolumeDriver.Create', { Name: 'a', Opts: null });
    const got = await call('VolumeDriver.Get', { Name: 'a' });
    assert.equal(got.status, 200);
    const volume = (got.body as { Volume: VolumeInfo }).Volume;
    assert.equal(volume.Name, 'a');
    assert.equal(new Date(volume.CreatedAt).toISOString(), volume.CreatedAt);
    assert.deepEqual(volume.Status, { Kind: 'plain', Mounts: 0 });
    const missing = await call('VolumeDriver.Get', { Name: 'nope' });
    assert.equal(missing.status, 200);
    assert.deepEqual(missing.body, { Err: 'no such volume: nope' });
  });

  it('mounts, gives Path and List the mountpoint, unmounts, and removes', async () => {
    await call('VolumeDriver.Create', { Name: 'a', Opts: null });
    const mp = '/var/lib/dmthin/volumes/a/_data';
    assert.deepEqual((await call('VolumeDriver.Mount', { Name: 'a', ID: 'id1' })).body, { Mountpoint: mp });
    assert.deepEqual((await call('VolumeDriver.Path', { Name: 'a' })).body, { Mountpoint: mp });
    assert.deepEqual((await call('VolumeDriver.List', {})).body, { Volumes: [{ Name: 'a', Mountpoint: mp }] });
    assert.deepEqual((await call('VolumeDriver.Remove', { Name: 'a' })).body, { Err: 'volume a is in use' });
    assert.deepEqual((await call('VolumeDriver.Unmount', { Name: 'a', ID: 'id1' })).body, {});
    assert.deepEqual((await call('VolumeDriver.Remove', { Name: 'a' })).body, {});
    assert.deepEqual((await call('VolumeDriver.List', {})).body, { Volumes: [] });
  });

  it('answers List and Capabilities to an empty body too', async () => {
    assert.deepEqual((await request(app).post('/VolumeDriver.List')).body, { Volumes: [] });
    assert.deepEqual((await request(app).post('/VolumeDriver.Capabilities')).body, { Capabilities: { Scope: 'local' } });
  });

  const malformed: Array<[string, unknown, RegExp]> = [
    ['VolumeDriver.Create', {}, /^VolumeDriver\.Create: request body must have required property 'Name'$/],
    ['VolumeDriver.Create', { Name: 7 }, /Name must be string/],
    ['VolumeDriver.Create', { Name: 'a', Opts: ['size=1G'] }, /Opts must be object/],
    ['VolumeDriver.Create', { Name: 'a', Opts: { size: 5 } }, /Opts\.size must be string/],
    ['VolumeDriver.Create', { Name: 'x'.repeat(5000) }, /Name must NOT have more than 4096 characters/],
    ['VolumeDriver.Mount', { Name: 'a' }, /must have required property 'ID'/],
    ['VolumeDriver.Mount', { Name: 'a', ID: null }, /ID must be string/],
    ['VolumeDriver.Unmount', { ID: 'x' }, /must have required property 'Name'/],
    ['VolumeDriver.Remove', [], /request body must be object/],
    ['VolumeDriver.Path', { Name: null }, /Name must be string/],
    ['VolumeDriver.Get', 'a', /VolumeDriver\.Get: malformed JSON body/],
  ];
  for (const [method, body, why] of malformed) {
    it(`refuses ${method} ${JSON.stringify(body).slice(0, 40)} with an Err and calls nothing`, async () => {
      const res = await call(method, body);
      assert.equal(res.status, 200);
      assert.match(String((res.body as { Err?: string }).Err), why);
      assert.deepEqual(volumes.calls, []);
    });
  }

  it('passes the store\'s refusals of hostile names and options back as Err', async () => {
    for (const Name of ['', '../x', 'a/b', '..', 'a\u0000', 'x'.repeat(256), '-a']) {
      const res = await call('VolumeDriver.Create', { Name, Opts: null });
      assert.equal(res.status, 200);
      assert.match(String((res.body as { Err?: string }).Err), /^invalid volume name|includes invalid characters for a local volume name/);
      const got = await call('VolumeDriver.Get', { Name });
      assert.match(String((got.body as { Err?: string }).Err), /^invalid volume name|includes invalid characters for a local volume name/);
    }
    assert.deepEqual((await call('VolumeDriver.Create', { Name: 'a', Opts: { size: 'boom' } })).body, { Err: 'size: invalid size "boom"' });
    assert.deepEqual((await call('VolumeDriver.Mount', { Name: 'zz', ID: 'i' })).body, { Err: 'no such volume: zz' });
  });

  it('answers malformed JSON with an Err and keeps serving', async () => {
    const res = await request(app).post('/VolumeDriver.Create').send('{"Name":').unset('Content-Type');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { Err: 'VolumeDriver.Create: malformed JSON body' });
    assert.deepEqual(volumes.calls, []);
    assert.deepEqual((await call('VolumeDriver.Capabilities', {})).body, { Capabilities: { Scope: 'local' } });
  });
});
