// dmthin must not open a pool that `dmthin migrate` is still moving into
// its state directory: the device records, the pool and dockerd's image
// databases would not yet agree. See migrate.ts for the commit point.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DmthinError } from '../shared/errors';

export function refuseUnfinishedMigration(root: string): void {
  const staging = path.join(root, '.migrate');
  if (!existsSync(staging)) return;
  if (existsSync(path.join(staging, 'committed.json'))) {
    throw new DmthinError('EMIGRATING', `a dmthin migrate into ${root} was interrupted after its commit point: run \`dmthin migrate\` again (same arguments) to finish it`);
  }
  throw new DmthinError('EMIGRATING', `a dmthin migrate into ${root} is running or was interrupted before its commit point: run it again, or remove ${staging} to give up on it`);
}
