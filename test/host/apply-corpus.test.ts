// Every tar of the corpus (test/support/tar-corpus.ts: every format, type
// and hostile item of go-archive-tar.md §10) applied to a layer in a
// sandbox with neighbours: a sibling whose name starts like the layer's,
// a directory and a file beside it. Whatever the tar, the apply either
// works or fails with a DmthinError that names what is wrong, nothing
// outside the layer changes by a byte, and the layer root stays a
// directory.
import assert from 'node:assert/strict';
import { promises as fsp, readdirSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DmthinError } from '../../src/errors';
import { applyTar } from '../../src/graphdriver/apply';
import { requireRoot } from '../support/env';
import { tarCorpus } from '../support/tar-corpus';
import { treeState } from '../support/tree-state';

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
  return ['/', '/etc', '/var/tmp'].map((d) => `${d}: ${readdirSync(d).filter((n) => !n.startsWith('dmthin-') && !n.startsWith('tmp')).sort().join(',')}`);
}

describe('ApplyDiff over the tar corpus, in a sandbox (root)', function () {
  before(function () {
    requireRoot(this);
  });

  it('applies or refuses every corpus tar, changing nothing outside the layer and keeping its root a directory', async () => {
    const corpus = tarCorpus();
    const problems: string[] = [];
    const refused: string[] = [];
    const host = hostState();
    for (const t of corpus) {
      const top = await fsp.mkdtemp('/var/tmp/dmthin-corpus-');
      try {
        const layer = await makeSandbox(top);
        const outside = (): string[] => treeState(top, 'box/layer').filter((l) => !l.startsWith('"box/layer" '));
        const before = outside();
        try {
          await applyTar(layer, Readable.from([t.bytes]));
        } catch (err) {
          if (!(err instanceof DmthinError) || !['EBADTAR', 'ENOSPC'].includes(err.code)) problems.push(`${t.name}: threw ${String(err)}`);
          else refused.push(t.name);
        }
        const after = outside();
        if (JSON.stringify(after) !== JSON.stringify(before)) {
          const changed = [...after.filter((l) => !before.includes(l)), ...before.filter((l) => !after.includes(l)).map((l) => `gone: ${l}`)];
          problems.push(`${t.name}: changed outside the layer: ${changed.slice(0, 4).join('; ')}`);
        }
        if (!(await fsp.lstat(layer)).isDirectory()) problems.push(`${t.name}: the layer root is no longer a directory`);
      } finally {
        await fsp.rm(top, { recursive: true, force: true });
      }
    }
    assert.deepEqual(hostState(), host, 'nothing appeared in /, /etc or /var/tmp');
    assert.deepEqual(problems, []);
    assert.ok(refused.length > 0 && refused.length < corpus.length, `${refused.length} of ${corpus.length} refused`);
  });
});
