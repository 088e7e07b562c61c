// `npm start`: the plugin process on its embedded default, a loop-backed
// pool under DMTHIN_ROOT, started and stopped as a user would.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { dm } from '../../src/devmapper';
import { requireRoot, requireVm } from '../support/env';
import { tempHome } from '../support/deviceset';

const MAIN = path.join(__dirname, '..', '..', 'src', 'main.js');

describe('the dmthin process (VM)', function () {
  before(function () {
    requireVm(this);
    requireRoot(this);
  });

  it('makes its pool under DMTHIN_ROOT, logs its status, and leaves nothing behind on SIGTERM', async () => {
    const home = await tempHome('main');
    const child = spawn(process.execPath, [MAIN], {
      env: { ...process.env, DMTHIN_ROOT: home, DMTHIN_STORAGE_OPTS: 'dm.loopdatasize=2G dm.loopmetadatasize=64M dm.basesize=512M' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('"device set ready"')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`exited ${String(code)} before it was ready: ${out}${err}`)));
    });
    const ready = out.split('\n').map((l) => JSON.parse(l || '{}') as Record<string, unknown>).find((l) => l['message'] === 'device set ready');
    const status = ready?.['status'] as Record<string, string>;
    assert.equal(status['Data loop file'], path.join(home, 'devicemapper', 'data'));
    assert.equal(status['Base Device Size'], '536.9MB');
    assert.ok(existsSync(path.join(home, 'metadata', 'base')));
    const pool = status['Pool Name'] ?? '';
    assert.equal((await dm.info(pool)).exists, true);

    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, err);
    assert.equal((await dm.info(pool)).exists, false, 'the pool is removed on shutdown');
  });
});
