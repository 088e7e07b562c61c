// The fuzzer's second property: applying a case (whatever it is) to a
// layer in a sandbox changes nothing outside the layer, keeps the layer's
// root a directory, and fails, if it fails, with a DmthinError. Needs root.
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DmthinError } from '../../src/shared/errors';
import { applyTar } from '../../src/graphdriver/apply';
import type { FuzzCase } from './tar-fuzz';
import { treeState } from './tree-state';

const APPLY_DEADLINE_MS = 30_000;

/** A layer with a parent's files, beside a sibling whose name starts like it and files above it. */
function sandbox(top: string): string {
  const layer = path.join(top, 'box', 'layer');
  mkdirSync(path.join(layer, 'etc'), { recursive: true });
  writeFileSync(path.join(layer, 'etc', 'passwd'), 'root:x:0:0\n');
  mkdirSync(path.join(layer, 'dir', 'sub'), { recursive: true });
  writeFileSync(path.join(layer, 'dir', 'sub', 'f'), 'lower');
  symlinkSync('/', path.join(layer, 'rootlink'));
  mkdirSync(path.join(top, 'box', 'layerX'));
  writeFileSync(path.join(top, 'box', 'layerX', 'f'), 'sibling');
  writeFileSync(path.join(top, 'above'), 'above');
  return layer;
}

/** Applies a fuzz case in a fresh sandbox under dir; a finding, or null. */
export async function applyInSandbox(c: FuzzCase, dir: string): Promise<string | null> {
  const top = mkdtempSync(path.join(dir, 'apply-'));
  try {
    const layer = sandbox(top);
    const outside = (): string[] => treeState(top, 'box/layer').filter((l) => !l.startsWith('"box/layer" '));
    const before = outside();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), APPLY_DEADLINE_MS);
    });
    try {
      const result = await Promise.race([applyTar(layer, Readable.from([c.bytes])), deadline]);
      if (result === 'timeout') return `applying did not finish within ${APPLY_DEADLINE_MS} ms`;
    } catch (err) {
      if (!(err instanceof DmthinError)) return `applying threw ${String(err)}`;
    } finally {
      clearTimeout(timer);
    }
    if (!lstatSync(layer).isDirectory()) return 'the layer root is no longer a directory';
    const after = outside();
    const changed = after.filter((l) => !before.includes(l)).concat(before.filter((l) => !after.includes(l)));
    return changed.length > 0 ? `applying changed outside the layer: ${changed.slice(0, 4).join('; ')}` : null;
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
}
