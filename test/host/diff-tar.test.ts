// The Diff tar as readers see it: tar-stream, GNU tar and the header
// bytes Go's writer would put there (USTAR when it fits, PAX otherwise);
// a stream that is pulled, not buffered; and a server that keeps
// answering while a large Diff streams.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fs as kfs } from '../../src/devmapper';
import { rawChanges } from '../../src/graphdriver/changes';
import { exportRawChanges } from '../../src/graphdriver/diff';
import type { GraphDriverApi } from '../../src/graphdriver/types';
import { createLogger } from '../../src/shared/log';
import { createApp } from '../../src/server/app';
import type { VolumeDriverApi } from '../../src/volume/types';
import { requireRoot, skipBecause } from '../support/env';
import { goMissing, goTarViews } from '../support/go-tarview';
import { notUsed } from '../support/not-used';
import { listTar } from '../support/tar-listing';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

interface RawEntry {
  /** the 512-byte header block */
  block: Buffer;
  name: string;
  type: string;
  /** records of the 'x' entry before it, keys and values as binary strings */
  pax: Map<string, string>;
  paxName: string;
}

/** Walks the blocks of a tar: each entry's own header and the PAX records before it. */
function rawEntries(tar: Buffer): RawEntry[] {
  const out: RawEntry[] = [];
  let pax = new Map<string, string>();
  let paxName = '';
  for (let at = 0; at + 512 <= tar.length; ) {
    const block = tar.subarray(at, at + 512);
    if (block.every((b) => b === 0)) break;
    const text = (from: number, len: number): string => block.toString('latin1', from, from + len).replace(/\0.*$/s, '');
    const size = parseInt(text(124, 12), 8);
    const type = text(156, 1);
    const body = tar.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      paxName = text(0, 100);
      for (let p = 0; p < body.length; ) {
        const space = body.indexOf(0x20, p);
        const length = Number(body.toString('latin1', p, space));
        const record = body.toString('latin1', space + 1, p + length - 1);
        const eq = record.indexOf('=');
        pax.set(record.slice(0, eq), record.slice(eq + 1));
        p += length;
      }
      continue;
    }
    out.push({ block, name: text(0, 100), type, pax, paxName });
    pax = new Map();
    paxName = '';
  }
  return out;
}

describe('Diff tar writer (root)', function () {
  let top = '';
  let lower = '';
  let upper = '';

  before(function () {
    requireRoot(this);
  });

  beforeEach(async () => {
    top = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-difftar-'));
    lower = path.join(top, 'lower');
    upper = path.join(top, 'upper');
    await fsp.mkdir(path.join(lower, 'etc'), { recursive: true });
    await fsp.writeFile(path.join(lower, 'etc/gone'), 'x');
    await fsp.mkdir(path.join(upper, 'etc'), { recursive: true });
    await fsp.utimes(path.join(upper, 'etc'), 1_600_000_000, 1_600_000_000);
  });

  afterEach(async () => {
    await fsp.rm(top, { recursive: true, force: true });
  });

  it('writes USTAR headers as Go does, with the type bits in the mode, and PAX only where USTAR cannot say it', async () => {
    const longDir = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
    await fsp.mkdir(path.join(upper, longDir), { recursive: true });
    await fsp.writeFile(path.join(upper, longDir, 'split-into-prefix'), 'p');
    const longBase = 'n'.repeat(150);
    await fsp.writeFile(path.join(upper, longBase), 'long');
    await fsp.writeFile(path.join(upper, 'plain'), 'plain body');
    await fsp.writeFile(path.join(upper, 'café'), 'utf-8');
    await fsp.symlink(`${'t'.repeat(120)}`, path.join(upper, 'longlink'));
    await fsp.writeFile(path.join(upper, 'bigid'), '');
    await fsp.chown(path.join(upper, 'bigid'), 3_000_000, 5);
    const capability = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    await fsp.writeFile(path.join(upper, 'ping'), 'ELF');
    await kfs.lsetxattr(path.join(upper, 'ping'), 'security.capability', capability);
    await kfs.mknod(path.join(upper, 'null'), kfs.constants.S_IFCHR | 0o666, 1, 3);
    const tar = await collect(exportRawChanges(upper, await rawChanges(upper, lower)));
    const entries = new Map(rawEntries(tar).map((e) => [e.pax.get('path') ?? (e.block.toString('latin1', 345, 500).replace(/\0.*$/s, '') === '' ? e.name : `${e.block.toString('latin1', 345, 500).replace(/\0.*$/s, '')}/${e.name}`), e]));
    const get = (name: string): RawEntry => {
      const e = entries.get(name);
      assert.ok(e !== undefined, `${name} among ${[...entries.keys()].join(', ')}`);
      return e;
    };
    const plain = get('plain');
    assert.deepEqual(plain.pax, new Map(), 'no PAX entry for what USTAR holds');
    assert.equal(plain.block.toString('latin1', 100, 108), '0100644\0', 'mode with S_IFREG, zero-padded octal and NUL');
    assert.equal(plain.block.toString('latin1', 257, 265), 'ustar\u000000');
    assert.equal(plain.block.toString('latin1', 148, 156).slice(6), '\0 ', 'checksum ends in NUL, space');
    assert.equal(get('etc/').block.toString('latin1', 100, 108), '0040755\0', 'a directory named with a trailing slash');
    assert.equal(get('etc/').block.toString('latin1', 136, 148), `${(1_600_000_000).toString(8)}\0`);
    assert.equal(get('etc/.wh.gone').block.toString('latin1', 100, 124), '0000000\0'.repeat(3), 'whiteout: mode, uid, gid 0');
    const split = get(`${longDir}/split-into-prefix`);
    assert.deepEqual([split.pax.size, split.name], [0, 'split-into-prefix'], 'a long name that splits stays USTAR');
    const long = get(longBase);
    assert.equal(long.paxName, `PaxHeaders.0/${longBase}`.slice(0, 100), "the 'x' entry is named as Go names it");
    assert.equal(long.name, longBase.slice(0, 100), 'the USTAR name is cut to 100 bytes');
    assert.equal(get(Buffer.from('café').toString('latin1')).pax.get('path'), Buffer.from('café').toString('latin1'));
    assert.equal(get('longlink').pax.get('linkpath'), 't'.repeat(120));
    const bigid = get('bigid');
    assert.deepEqual([bigid.pax.get('uid'), bigid.block.toString('latin1', 108, 116)], ['3000000', '0000000\0'], 'a uid over 07777777 goes to PAX, 0 in the block');
    assert.equal(get('ping').pax.get('SCHILY.xattr.security.capability'), capability.toString('latin1'), 'the capability byte for byte');
    assert.deepEqual([get('null').block.toString('latin1', 329, 345)], ['0000001\u00000000003\0']);
    assert.ok(tar.subarray(-1024).every((b) => b === 0) && tar.length % 512 === 0, 'ends with two zero blocks');

    // tar-stream and GNU tar read it back.
    const listing = await listTar(exportRawChanges(upper, await rawChanges(upper, lower)));
    assert.equal(listing.items.get('plain')?.sha256, createHash('sha256').update('plain body').digest('hex'));
    assert.deepEqual(listing.items.get('ping')?.xattrs, [`security.capability=${capability.toString('hex')}`]);
    assert.equal(listing.items.get('longlink')?.linkname, 't'.repeat(120));
    const out = path.join(top, 'gnu');
    await fsp.mkdir(out);
    await fsp.writeFile(path.join(top, 'diff.tar'), tar);
    execFileSync('tar', ['-x', '--warning=no-timestamp', '--xattrs', '--xattrs-include=security.capability', '-f', path.join(top, 'diff.tar'), '-C', out], { env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    assert.equal(await fsp.readFile(path.join(out, longBase), 'utf8'), 'long');
    assert.equal(await fsp.readFile(path.join(out, longDir, 'split-into-prefix'), 'utf8'), 'p');
    assert.equal(await fsp.readFile(path.join(out, 'café'), 'utf8'), 'utf-8');
    assert.equal(await fsp.readlink(path.join(out, 'longlink')), 't'.repeat(120));
    assert.equal((await fsp.lstat(path.join(out, 'bigid'))).uid, 3_000_000);
    assert.deepEqual(await kfs.lgetxattr(path.join(out, 'ping'), 'security.capability'), capability);
  });

  it("is read by Go's archive/tar (dockerd's) as written: names as bytes, PAX records, bodies", async function () {
    this.timeout(120_000);
    const missing = goMissing();
    if (missing) skipBecause(this, missing);
    const notUtf8 = Buffer.from([0x78, 0xe9, 0xff]);
    await fsp.writeFile(Buffer.concat([Buffer.from(`${upper}/`), notUtf8]), 'bytes');
    await fsp.writeFile(path.join(upper, 'n'.repeat(150)), 'long');
    await fsp.symlink('t'.repeat(120), path.join(upper, 'longlink'));
    await fsp.writeFile(path.join(upper, 'bigid'), '');
    await fsp.chown(path.join(upper, 'bigid'), 3_000_000, 5);
    const capability = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    await kfs.lsetxattr(path.join(upper, 'bigid'), 'security.capability', capability);
    await fsp.link(path.join(upper, 'bigid'), path.join(upper, 'hard'));
    const file = path.join(top, 'diff.tar');
    writeFileSync(file, await collect(exportRawChanges(upper, await rawChanges(upper, lower))));
    const [view] = goTarViews([file]);
    assert.ok(view !== undefined);
    assert.equal(view.error, null);
    const byName = new Map(view.entries.map((e) => [e.name, e]));
    assert.deepEqual([...byName.keys()].sort(), ['bigid', 'etc/', 'etc/.wh.gone', 'hard', 'longlink', 'n'.repeat(150), notUtf8.toString('latin1')].sort());
    const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
    assert.equal(byName.get(notUtf8.toString('latin1'))?.sha256, sha('bytes'));
    assert.equal(byName.get('n'.repeat(150))?.sha256, sha('long'));
    assert.equal(byName.get('longlink')?.linkname, 't'.repeat(120));
    const bigid = byName.get('bigid');
    assert.deepEqual([bigid?.uid, bigid?.gid, bigid?.mode], ['3000000', '5', String(0o100644)]);
    assert.equal(bigid?.pax['SCHILY.xattr.security.capability'], capability.toString('base64'));
    assert.deepEqual([byName.get('hard')?.typeflag, byName.get('hard')?.linkname], ['1'.charCodeAt(0), 'bigid']);
  });

  it('delivers the tar as the client reads it, not the whole layer at once', async () => {
    await fsp.writeFile(path.join(upper, 'big'), Buffer.alloc(32 * 1024 * 1024, 1));
    const stream = exportRawChanges(upper, await rawChanges(upper, lower));
    const first = await new Promise<Buffer>((resolve) => stream.once('data', resolve));
    stream.pause();
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    assert.ok(first.length <= 2 * 1024 * 1024);
    assert.ok(stream.readableLength <= 4 * 1024 * 1024, `at most a few MiB waiting for the reader, not ${stream.readableLength} bytes`);
    stream.resume();
    assert.equal((await collect(stream)).length > 32 * 1024 * 1024 - first.length, true);
  });

  it('answers other calls while a large Diff streams through the server', async function () {
    this.timeout(120_000);
    // 1,000 small files and 32 MiB of large ones: a Diff long enough to ask something in the middle.
    for (let d = 0; d < 10; d++) {
      await fsp.mkdir(path.join(upper, `d${d}`));
      for (let f = 0; f < 100; f++) await fsp.writeFile(path.join(upper, `d${d}`, `f${f}`), `file ${d}/${f}`);
    }
    for (let i = 0; i < 2; i++) await fsp.writeFile(path.join(upper, `large${i}`), Buffer.alloc(16 * 1024 * 1024, i));
    const graph: GraphDriverApi = {
      ...notUsed<GraphDriverApi>('graph'),
      exists: async (id: string) => id === 'layer',
      diff: async () => ({ stream: exportRawChanges(upper, await rawChanges(upper, lower)), release: async () => undefined }),
    };
    const app = createApp({ graph, volumes: notUsed<VolumeDriverApi>('volumes'), log: createLogger('error') });
    const socketPath = path.join(top, 'plugin.sock');
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const post = (method: string, body: string, onData?: (chunk: Buffer) => void): Promise<{ body: Buffer; endedAt: bigint }> =>
      new Promise((resolve, reject) => {
        const req = http.request({ socketPath, path: `/${method}`, method: 'POST' }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            onData?.(c);
          });
          res.on('end', () => resolve({ body: Buffer.concat(chunks), endedAt: process.hrtime.bigint() }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      let exists: Promise<{ body: Buffer; endedAt: bigint }> | null = null;
      const diff = post('GraphDriver.Diff', '{"ID":"layer","Parent":"lower"}\n', () => {
        exists ??= post('GraphDriver.Exists', '{"ID":"layer"}\n');
      });
      const diffDone = await diff;
      assert.ok(exists !== null, 'the Diff sent bytes');
      const answer = await (exists as Promise<{ body: Buffer; endedAt: bigint }>);
      assert.deepEqual(JSON.parse(answer.body.toString()), { Exists: true });
      assert.ok(answer.endedAt < diffDone.endedAt, 'Exists was answered before the Diff finished');
      assert.ok(diffDone.body.length > 32 * 1024 * 1024);
    } finally {
      server.close();
    }
  });
});
