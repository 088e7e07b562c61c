// Every tar of the corpus (test/support/tar-corpus.ts: every format, type
// and hostile item of go-archive-tar.md §10) applied to a layer in a
// sandbox with neighbours: a sibling whose name starts like the layer's,
// a directory and a file beside it. Whatever the tar, the apply either
// works or fails with a DmthinError that names what is wrong, nothing
// outside the layer changes by a byte, and the layer root stays a
// directory. Then the same for mutated tars of the reader's fuzzer.
import assert from 'node:assert/strict';
import { promises as fsp, readdirSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fs as kfs } from '../../src/devmapper';
import { DmthinError } from '../../src/shared/errors';
import { applyTar } from '../../src/graphdriver/apply';
import { requireRoot } from '../support/env';
import { tarCorpus } from '../support/tar-corpus';
import { fuzzCase } from '../support/tar-fuzz';
import { treeState } from '../support/tree-state';

const FUZZ_SEED = 13;
const FUZZ_CASES = 300;

/** A lower layer with the kinds of things a hostile tar aims at. */
async function makeSandbox(top: string): Promise<string> {
  const layer = path.join(top, 'box', 'layer');
  await fsp.mkdir(path.join(layer, 'etc'), { recursive: true });
  await fsp.writeFile(path.join(layer, 'etc', 'passwd'), 'root:x:0:0\n');
  await fsp.mkdir(path.join(layer, 'a', 'b'), { recursive: true });
  await fsp.writeFile(path.join(layer, 'a', 'b', 'f'), 'lower');
  await fsp.symlink('/', path.join(layer, 'rootlink'));
  await fsp.symlink('../../..', path.join(layer, 'uplink'));
  await fsp.mkdir(path.join(top, 'box', 'layerX'));
  await fsp.writeFile(path.join(top, 'box', 'layerX', 'f'), 'sibling');
  await fsp.mkdir(path.join(top, 'box', 'outside'));
  await fsp.writeFile(path.join(top, 'box', 'outside', 'f'), 'outside');
  await fsp.writeFile(path.join(top, 'above'), 'above');
  return layer;
}

/** The host places a stray write would most likely reach. */
function hostState(): string[] {
  return ['/', '/etc'].map((d) => `${d}: ${readdirSync(d).sort().join(',')}`);
}

/** What went wrong applying one tar in a fresh sandbox under top: nothing when it applied or was refused cleanly. */
async function applyInSandbox(parent: string, name: string, bytes: Buffer): Promise<{ problems: string[]; refused: boolean }> {
  const top = await fsp.mkdtemp(path.join(parent, 'box-'));
  const problems: string[] = [];
  let refused = false;
  try {
    const layer = await makeSandbox(top);
    const outside = (): string[] => treeState(top, 'box/layer').filter((l) => !l.startsWith('"box/layer" '));
    const before = outside();
    try {
      await applyTar(layer, Readable.from([bytes]));
    } catch (err) {
      if (!(err instanceof DmthinError) || !['EBADTAR', 'ENOSPC'].includes(err.code)) problems.push(`${name}: threw ${String(err)}`);
      refused = true;
    }
    const after = outside();
    if (JSON.stringify(after) !== JSON.stringify(before)) {
      const changed = [...after.filter((l) => !before.includes(l)), ...before.filter((l) => !after.includes(l)).map((l) => `gone: ${l}`)];
      problems.push(`${name}: changed outside the layer: ${changed.slice(0, 4).join('; ')}`);
    }
    if (!(await fsp.lstat(layer)).isDirectory()) problems.push(`${name}: the layer root is no longer a directory`);
  } finally {
    await fsp.rm(top, { recursive: true, force: true });
  }
  return { problems, refused };
}

describe('ApplyDiff over the tar corpus, in a sandbox (root)', function () {
  let parent = '';

  before(async function () {
    requireRoot(this);
    // A small tmpfs: a tar that asks for more (a sparse file of a terabyte) is refused with ENOSPC at once.
    parent = await fsp.mkdtemp('/var/tmp/dmthin-corpus-');
    await kfs.mount('tmpfs', parent, 'tmpfs', 0, 'size=64m,mode=0755');
  });

  after(async () => {
    if (parent === '') return;
    await kfs.umount2(parent, kfs.constants.MNT_DETACH).catch(() => undefined);
    await fsp.rm(parent, { recursive: true, force: true });
  });

  it('applies or refuses every corpus tar, changing nothing outside the layer and keeping its root a directory', async () => {
    const corpus = tarCorpus();
    const problems: string[] = [];
    let refused = 0;
    const host = hostState();
    for (const t of corpus) {
      const r = await applyInSandbox(parent, t.name, t.bytes);
      problems.push(...r.problems);
      if (r.refused) refused++;
    }
    assert.deepEqual(hostState(), host, 'nothing appeared in / or /etc');
    assert.deepEqual(problems, []);
    assert.ok(refused > 0 && refused < corpus.length, `${refused} of ${corpus.length} refused`);
  });

  it(`does the same for ${FUZZ_CASES} mutated corpus tars (the reader's fuzzer, seed ${FUZZ_SEED})`, async () => {
    const problems: string[] = [];
    const host = hostState();
    for (let i = 0; i < FUZZ_CASES; i++) {
      const c = fuzzCase(FUZZ_SEED, i);
      problems.push(...(await applyInSandbox(parent, `fuzz case ${i} (${c.base}: ${c.ops.join(', ')})`, c.bytes)).problems);
    }
    assert.deepEqual(hostState(), host, 'nothing appeared in / or /etc');
    assert.deepEqual(problems, []);
  });
});
