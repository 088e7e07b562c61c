// dmthin keeps off a pool that `dmthin migrate` has not finished moving.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { refuseUnfinishedMigration } from '../../src/migrate/guard';

describe('dmthin migrate: the guard on dmthin start', () => {
  it('lets a root without a migration in progress open, and refuses one staged or committed', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'dmthin-guard-'));
    assert.doesNotThrow(() => refuseUnfinishedMigration(root));
    await fsp.mkdir(path.join(root, '.migrate'));
    assert.throws(() => refuseUnfinishedMigration(root), { code: 'EMIGRATING', message: /before its commit point: run it again, or remove/ });
    await fsp.writeFile(path.join(root, '.migrate', 'committed.json'), '{}');
    assert.throws(() => refuseUnfinishedMigration(root), { code: 'EMIGRATING', message: /after its commit point: run `dmthin migrate` again/ });
  });
});
