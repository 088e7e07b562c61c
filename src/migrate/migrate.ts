// `dmthin migrate`: a stopped dockerd's data root that ran Docker's in-tree
// devicemapper driver, made to run on dmthin without copying layer data.
//
// THE COMMIT POINT is one file, <root>/.migrate/committed.json, written
// atomically (temp file, fsync, rename) after everything is staged and
// synced to disk.
//   Before it exists nothing of the old state has changed: the staged
//   copies (dmthin's metadata in <root>/.migrate/metadata, the image and
//   layer databases in image/.<driver>.dmthin-migrate) have names dockerd
//   20.10 ignores, so it starts on devicemapper as before;
//   a rerun throws the staging away and starts over.
//   Once it exists the migration is decided: a rerun rolls forward from
//   the plan inside it. Each roll-forward step is a rename that is skipped
//   when already done, so it can be cut at any point and repeated. The
//   first step takes the pool from the old driver (it moves the loop
//   files, or sets the metadata of a dm.thinpooldev pool aside), so that
//   dockerd 20.10 on devicemapper fails loudly from then on instead of
//   running on a half-moved state; dmthin refuses to open the pool while
//   <root>/.migrate exists (see guard.ts). The last step removes it.
//   Should dockerd run on devicemapper between the commit and the pool's
//   move (the rerun compares the pool's transaction id and the tags with
//   the plan), the staging is stale: the rerun starts over. Containers'
//   configs are rewritten from their current content, one atomic write
//   each, so nothing dockerd wrote meanwhile is lost.
// The layer data never moves: the pool's loop files are renamed (same
// filesystem), a dm.thinpooldev pool stays where it is; dmthin's per-device
// metadata has the in-tree driver's format, so device ids, sizes and the
// next free id carry over as they are.
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { readJsonFile, syncDirectory, writeFileAtomic } from '../shared/atomic-file';
import { MetadataStore } from '../deviceset/metadata';
import { failpoint } from '../shared/failpoint';
import { DmthinError } from '../shared/errors';
import { CONTAINER_CONFIG, containerConfigs, dataRootUsers, layerRefs } from './docker-state';
import { inTreeHome, readInTreeMetadata, type InTreeMetadata } from './intree-metadata';
import { currentTransactionId, inspectPool, type PoolFacts } from './pool-facts';

const execFileAsync = promisify(execFile);

export const OLD_DRIVER = 'devicemapper';
export const STAGING_DIR = '.migrate';
const COMMITTED_FILE = 'committed.json';
export const RECORD_FILE = 'migrated-from-devicemapper.json';
export const SET_ASIDE_SUFFIX = '.migrated-to-dmthin';
const STAGED_SUFFIX = '.dmthin-migrate';
const DRIVER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;

export interface MigrateOptions {
  /** dockerd's --data-root */
  dataRoot: string;
  /** dmthin's state directory (DMTHIN_ROOT) */
  root: string;
  /** the name dockerd will know the driver by (-s NAME) */
  driverName: string;
  /** the pool the in-tree driver was given with dm.thinpooldev; null: its loop files */
  thinPoolDevice: string | null;
  dryRun: boolean;
  out: (line: string) => void;
}

/** What the commit marker holds: everything roll-forward needs, decided before the commit. */
export interface MigrationPlan {
  version: 1;
  dataRoot: string;
  root: string;
  driverName: string;
  pool: { kind: 'loop'; dataFile: string; metadataFile: string; dataBytes: number; metadataBytes: number; blockSize: number } | { kind: 'existing'; name: string };
  devices: number;
  nextDeviceId: number;
  /** the pool's transaction id when staged: if the old driver changes the pool before it moves, the plan is stale */
  transactionId: number;
  containers: string[];
}

interface Paths {
  home: string;
  staging: string;
  committed: string;
  stagedMetadata: string;
  imageOld: string;
  imageStaged: string;
  imageNew: string;
  record: string;
}

function pathsOf(dataRoot: string, root: string, driverName: string): Paths {
  const staging = path.join(root, STAGING_DIR);
  return {
    home: inTreeHome(dataRoot),
    staging,
    committed: path.join(staging, COMMITTED_FILE),
    stagedMetadata: path.join(staging, 'metadata'),
    imageOld: path.join(dataRoot, 'image', OLD_DRIVER),
    imageStaged: path.join(dataRoot, 'image', `.${driverName}${STAGED_SUFFIX}`),
    imageNew: path.join(dataRoot, 'image', driverName),
    record: path.join(root, RECORD_FILE),
  };
}

/** Runs the migration (or, with dryRun, prints it); resolves once the new state is complete. */
export async function migrate(options: MigrateOptions): Promise<void> {
  const dataRoot = path.resolve(options.dataRoot);
  const root = path.resolve(options.root);
  if (!DRIVER_NAME.test(options.driverName) || options.driverName === OLD_DRIVER) {
    throw new DmthinError('EINVALIDNAME', `invalid driver name ${JSON.stringify(options.driverName)}: use the name dockerd gets with -s (letters, digits, '_', '.', ':', '-'), not ${OLD_DRIVER}`);
  }
  const { out } = options;
  const p = pathsOf(dataRoot, root, options.driverName);

  const pending = await readJsonFile(p.committed).catch(() => null);
  if (pending !== null) {
    const plan = pending as MigrationPlan;
    checkNotInUse(plan.dataRoot, plan.root);
    const changed = await oldStateChangedSince(plan, pathsOf(plan.dataRoot, plan.root, plan.driverName));
    if (changed === null) {
      out(`dmthin migrate: finishing the migration of ${plan.dataRoot} that was interrupted after its commit point`);
      if (options.dryRun) {
        out('  (dry run: nothing changed; run without --dry-run to finish it)');
        return;
      }
      await rollForward(plan, out);
      return;
    }
    // The pool had not moved yet, and dockerd ran on devicemapper meanwhile: what was staged is stale.
    out(`dmthin migrate: an interrupted migration was staged, but ${changed} since; starting over`);
    if (!options.dryRun) await discardStaging(pathsOf(plan.dataRoot, plan.root, plan.driverName));
  }
  if (existsSync(p.record) && !existsSync(p.home)) {
    out(`dmthin migrate: ${dataRoot} was migrated to dmthin already (${p.record}); nothing to do`);
    out(goBackText(JSON.parse(await fsp.readFile(p.record, 'utf8')) as MigrationPlan));
    return;
  }

  const { plan, warnings } = await inspect(dataRoot, root, options.driverName, options.thinPoolDevice);
  describe(plan, warnings, out);
  if (options.dryRun) {
    out('dry run: nothing changed.');
    return;
  }
  await discardStaging(p);
  await stage(p);
  await writeFileAtomic(p.committed, JSON.stringify(plan));
  failpoint('migrate:committed');
  await rollForward(plan, out);
}

// ---- checks: read only -------------------------------------------------------------------------

function checkNotInUse(dataRoot: string, root: string): void {
  const users = dataRootUsers(dataRoot);
  if (users.length > 0) {
    throw new DmthinError('EBUSY', `dockerd (or something else) is using ${dataRoot}: stop it first, nothing was changed.\n  ${users.slice(0, 5).join('\n  ')}`);
  }
  const dmthinUsers = dataRootUsers(root);
  if (dmthinUsers.length > 0) {
    throw new DmthinError('EBUSY', `dmthin (or something else) is using ${root}: stop it first, nothing was changed.\n  ${dmthinUsers.slice(0, 5).join('\n  ')}`);
  }
}

async function inspect(dataRoot: string, root: string, driverName: string, thinPoolDevice: string | null): Promise<{ plan: MigrationPlan; warnings: string[] }> {
  const p = pathsOf(dataRoot, root, driverName);
  const refuse = (code: string, why: string): never => {
    throw new DmthinError(code, `${why}; nothing was changed`);
  };
  if (!existsSync(p.home)) refuse('ENOTDEVICEMAPPER', `${dataRoot} is not a data root of Docker's devicemapper driver: ${p.home} does not exist`);
  const meta = readInTreeMetadata(p.home);
  if (!existsSync(p.imageOld)) refuse('ENOTDEVICEMAPPER', `${dataRoot} is not a data root of Docker's devicemapper driver: ${p.imageOld} does not exist`);
  checkNotInUse(dataRoot, root);
  if (meta.unreadable.length > 0) {
    refuse('EMETADATA', `some devicemapper metadata in ${meta.dir} cannot be read: ${meta.unreadable.map((u) => `${u.file} (${u.reason})`).join(', ')}`);
  }
  for (const taken of [p.imageNew, `${p.imageOld}${SET_ASIDE_SUFFIX}`, `${p.home}${SET_ASIDE_SUFFIX}`]) {
    if (existsSync(taken)) refuse('EEXIST', `${taken} exists already`);
  }
  if ((await fsp.readdir(path.join(root, 'metadata')).catch(() => [])).length > 0) refuse('EEXIST', `${root} holds a dmthin pool already (${path.join(root, 'metadata')} is not empty)`);
  if (existsSync(path.join(root, 'devicemapper', 'data'))) refuse('EEXIST', `${root} holds a dmthin pool already (${path.join(root, 'devicemapper', 'data')} exists)`);

  const pool = await inspectPool(p.home, root, thinPoolDevice);
  checkTransaction(meta, pool);
  const warnings = [...meta.unknownFields.map((f) => `unknown field in devicemapper metadata (not carried over): ${f}`)];
  const inPool = new Set(pool.thinIds);
  for (const d of meta.devices) {
    if (!inPool.has(d.deviceId)) refuse('ENODEV', `device ${d.hash || 'base'} (thin id ${d.deviceId}) is missing from pool ${pool.name}`);
  }
  const known = new Map(meta.devices.filter((d) => !d.deleted).map((d) => [d.hash, d]));
  for (const ref of layerRefs(p.imageOld)) {
    if (!known.has(ref.hash)) refuse('ENODEV', `the ${ref.usedBy} has no device: ${ref.hash} is missing from ${meta.dir}`);
  }
  const named = new Set(meta.devices.map((d) => d.deviceId));
  const strays = pool.thinIds.filter((id) => !named.has(id));
  if (strays.length > 0) warnings.push(`thin ids ${strays.slice(0, 10).join(', ')} are in the pool but in no metadata (the in-tree driver leaked them); dmthin removes them when it starts`);

  const containers: string[] = [];
  for (const c of containerConfigs(dataRoot)) {
    if (c.driver === OLD_DRIVER) {
      checkSafeNumbers(c.json, c.file);
      containers.push(c.id);
    } else {
      warnings.push(`container ${c.id.slice(0, 12)} uses driver ${JSON.stringify(c.driver)}, not ${OLD_DRIVER}: left as it is`);
    }
  }
  const plan: MigrationPlan = {
    version: 1,
    dataRoot,
    root,
    driverName,
    pool:
      pool.kind === 'loop'
        ? { kind: 'loop', dataFile: pool.dataFile, metadataFile: pool.metadataFile, dataBytes: pool.dataBytes, metadataBytes: pool.metadataBytes, blockSize: pool.blockSize }
        : { kind: 'existing', name: pool.name },
    devices: meta.devices.length,
    nextDeviceId: meta.nextDeviceId,
    transactionId: pool.transactionId,
    containers,
  };
  return { plan, warnings };
}

/** The pool's transaction id must be the one the metadata last committed. */
function checkTransaction(meta: InTreeMetadata, pool: PoolFacts): void {
  const tx = meta.transaction;
  const highest = Math.max(0, ...meta.devices.map((d) => d.transactionId));
  if (tx !== null && tx.openTransactionId > pool.transactionId) {
    throw new DmthinError(
      'ETRANSACTION',
      `pool ${pool.name} has transaction id ${pool.transactionId} but the devicemapper metadata has transaction ${tx.openTransactionId} open (device ${tx.deviceHash || 'base'}): start dockerd 20.10 on devicemapper once, which rolls it back, stop it, and migrate again; nothing was changed`,
    );
  }
  if ((tx !== null && tx.openTransactionId < pool.transactionId) || highest > pool.transactionId) {
    throw new DmthinError(
      'ETRANSACTION',
      `pool ${pool.name} has transaction id ${pool.transactionId}, which disagrees with the devicemapper metadata (last transaction ${tx?.openTransactionId ?? highest}): is this the pool the driver used? nothing was changed`,
    );
  }
}

/** JSON.parse turns integers beyond 2^53 into approximations: never write such a file back. */
function checkSafeNumbers(value: unknown, file: string): void {
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    throw new DmthinError('EMETADATA', `${file} holds the integer ${value}, too large to rewrite exactly; nothing was changed`);
  }
  if (typeof value === 'object' && value !== null) for (const v of Object.values(value)) checkSafeNumbers(v, file);
}

// ---- staging: nothing of the old state changes -------------------------------------------------

/** Removes what an earlier run staged before it was cut short (before its commit point). */
async function discardStaging(p: Paths): Promise<void> {
  await fsp.rm(p.staging, { recursive: true, force: true });
  await fsp.rm(p.imageStaged, { recursive: true, force: true });
}

async function stage(p: Paths): Promise<void> {
  await fsp.mkdir(p.staging, { recursive: true, mode: 0o700 });
  const meta = readInTreeMetadata(p.home);
  const store = new MetadataStore(p.stagedMetadata);
  await store.init();
  for (const d of meta.devices) {
    // dmthin marks a snapshot initialized when it makes it; only the base device's flag means something.
    await store.saveDevice({ hash: d.hash, deviceId: d.deviceId, size: d.size, transactionId: d.transactionId, initialized: d.hash === '' ? d.initialized : true, deleted: d.deleted, filesystem: null });
  }
  await store.saveSet({ nextDeviceId: meta.nextDeviceId, baseDeviceUuid: meta.baseDeviceUuid, baseDeviceFilesystem: meta.baseDeviceFilesystem });
  failpoint('migrate:staging');
  await fsp.cp(p.imageOld, p.imageStaged, { recursive: true, preserveTimestamps: true, errorOnExist: true, force: false, verbatimSymlinks: true });
  // One sync makes every staged copy durable before the marker can be.
  await execFileAsync('sync');
  failpoint('migrate:staged');
}

// ---- roll forward: each step a rename, skipped when done ---------------------------------------

async function rollForward(plan: MigrationPlan, out: (line: string) => void): Promise<void> {
  const { dataRoot, root } = plan;
  const p = pathsOf(dataRoot, root, plan.driverName);
  // 1. Take the pool from the old driver: from here on dockerd 20.10 on devicemapper fails to start.
  if (plan.pool.kind === 'loop') {
    const dir = path.join(root, 'devicemapper');
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    for (const [name, from] of [['data', plan.pool.dataFile], ['metadata', plan.pool.metadataFile]] as const) {
      // Once moved, never again: a later dockerd on devicemapper may have made fresh files there.
      if (!existsSync(path.join(dir, name)) && existsSync(from)) await renameDurably(from, path.join(dir, name));
    }
  } else {
    const metadata = path.join(p.home, 'metadata');
    if (existsSync(metadata)) await renameDurably(metadata, `${metadata}${SET_ASIDE_SUFFIX}`);
  }
  failpoint('migrate:pool-moved');
  // 2. dmthin's metadata for every device.
  if (existsSync(p.stagedMetadata)) {
    await fsp.rm(path.join(root, 'metadata'), { recursive: true, force: true }); // empty: checked before the commit
    await renameDurably(p.stagedMetadata, path.join(root, 'metadata'));
  }
  failpoint('migrate:metadata-placed');
  // 3. The image and layer databases under the new driver's name.
  if (existsSync(p.imageStaged)) await renameDurably(p.imageStaged, p.imageNew);
  failpoint('migrate:images-placed');
  // 4. Each container's storage driver, in its current config (dockerd may have rewritten it since staging).
  const configs = new Map(containerConfigs(dataRoot).map((c) => [c.id, c]));
  for (const id of plan.containers) {
    const c = configs.get(id);
    if (c?.driver === OLD_DRIVER) await writeFileAtomic(c.file, JSON.stringify({ ...c.json, Driver: plan.driverName }));
    failpoint('migrate:container-placed');
  }
  // 5. The old driver's state, set aside for going back.
  if (existsSync(p.imageOld)) await renameDurably(p.imageOld, `${p.imageOld}${SET_ASIDE_SUFFIX}`);
  if (existsSync(p.home)) await renameDurably(p.home, `${p.home}${SET_ASIDE_SUFFIX}`);
  failpoint('migrate:old-set-aside');
  // 6. Done: the record stays, the marker and staging go.
  await writeFileAtomic(p.record, JSON.stringify({ ...plan, migratedAt: new Date().toISOString() }, null, 2));
  await fsp.rm(p.staging, { recursive: true, force: true });
  await syncDirectory(root);
  out(`migrated: ${plan.devices} devices, ${plan.containers.length} containers; dockerd now runs on ${plan.driverName}.`);
  for (const hint of startHints(plan)) out(hint);
  out(goBackText(plan));
}

/**
 * Why the staged plan no longer fits the old state, or null when it does:
 * before the pool moves (roll-forward's first step), dockerd may have run
 * on devicemapper again and made or removed devices, or changed tags.
 */
async function oldStateChangedSince(plan: MigrationPlan, p: Paths): Promise<string | null> {
  const poolMoved = plan.pool.kind === 'loop' ? existsSync(path.join(plan.root, 'devicemapper', 'metadata')) || !existsSync(plan.pool.metadataFile) : !existsSync(path.join(p.home, 'metadata'));
  if (poolMoved) return null;
  const transactionId = await currentTransactionId(plan.pool.kind === 'loop' ? { metadataFile: plan.pool.metadataFile } : { name: plan.pool.name });
  if (transactionId !== plan.transactionId) return `the pool's transaction id went from ${plan.transactionId} to ${transactionId}`;
  const tags = async (dir: string): Promise<string> => fsp.readFile(path.join(dir, 'repositories.json'), 'utf8').catch(() => '');
  if (existsSync(p.imageStaged) && (await tags(p.imageStaged)) !== (await tags(p.imageOld))) return `${path.join(p.imageOld, 'repositories.json')} changed`;
  return null;
}

async function renameDurably(from: string, to: string): Promise<void> {
  await fsp.rename(from, to);
  await syncDirectory(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) await syncDirectory(path.dirname(from));
}

// ---- what is printed ---------------------------------------------------------------------------

function describe(plan: MigrationPlan, warnings: readonly string[], out: (line: string) => void): void {
  const { dataRoot, root, driverName } = plan;
  const p = pathsOf(dataRoot, root, driverName);
  out(`dmthin migrate: ${dataRoot} (Docker's ${OLD_DRIVER} driver) -> dmthin (state in ${root}, dockerd -s ${driverName})`);
  if (plan.pool.kind === 'loop') {
    out(`  pool: move the loop files ${plan.pool.dataFile} (${plan.pool.dataBytes} bytes) and ${plan.pool.metadataFile} to ${path.join(root, 'devicemapper')}/ (renamed: no data is copied)`);
  } else {
    out(`  pool: keep the existing pool ${plan.pool.name} (dm.thinpooldev) as it is`);
  }
  out(`  devices: the base device and ${plan.devices - 1} layer and container devices, next free device id ${plan.nextDeviceId}: dmthin metadata in ${path.join(root, 'metadata')}`);
  out(`  images and layers: copy ${p.imageOld} to ${p.imageNew}`);
  out(`  containers: set the storage driver of ${plan.containers.length} containers to ${driverName} (${path.join(dataRoot, 'containers', '*', CONTAINER_CONFIG)})`);
  out(`  set aside for going back: ${p.home}${SET_ASIDE_SUFFIX}, ${p.imageOld}${SET_ASIDE_SUFFIX}`);
  for (const w of warnings) out(`  warning: ${w}`);
}

function startHints(plan: MigrationPlan): string[] {
  const opts =
    plan.pool.kind === 'loop'
      ? [`dm.loopdatasize=${plan.pool.dataBytes}`, `dm.loopmetadatasize=${plan.pool.metadataBytes}`, ...(plan.pool.blockSize === 128 ? [] : [`dm.blocksize=${plan.pool.blockSize * 512}`])]
      : [`dm.thinpooldev=${plan.pool.name}`];
  // A name with a tag is a managed plugin's (dockerd gets its full name): its state mount is the root.
  const start = plan.driverName.includes(':')
    ? `install the managed plugin as ${plan.driverName} with state.source=${plan.root} DMTHIN_STORAGE_OPTS="${opts.join(' ')}" (plus the dm.* options dockerd had),`
    : `start dmthin with DMTHIN_ROOT=${plan.root} DMTHIN_STORAGE_OPTS="${opts.join(' ')}" (plus the dm.* options dockerd had),`;
  return [start, `then dockerd with --experimental -s ${plan.driverName} --data-root ${plan.dataRoot}.`];
}

/** How to return to Docker's devicemapper driver (dockerd 20.10–24), with this migration's paths. */
export function goBackText(plan: MigrationPlan): string {
  const { dataRoot, root, driverName } = plan;
  const home = inTreeHome(dataRoot);
  const lines = [
    'to go back to the devicemapper driver (dockerd 20.10 to 24): stop dockerd and dmthin, then',
    `  mv ${home}${SET_ASIDE_SUFFIX} ${home}`,
    ...(plan.pool.kind === 'loop' ? [`  mv ${path.join(root, 'devicemapper', 'data')} ${path.join(root, 'devicemapper', 'metadata')} ${path.join(home, 'devicemapper')}/`] : []),
    // dmthin's device records have the driver's format and follow every change made since the migration.
    `  rm -rf ${path.join(home, 'metadata')} ${path.join(home, 'metadata')}${SET_ASIDE_SUFFIX}; cp -a ${path.join(root, 'metadata')} ${path.join(home, 'metadata')}`,
    `  rm -rf ${path.join(dataRoot, 'image', OLD_DRIVER)}${SET_ASIDE_SUFFIX}; mv ${path.join(dataRoot, 'image', driverName)} ${path.join(dataRoot, 'image', OLD_DRIVER)}`,
    `  sed -i 's/"Driver":"${driverName}"/"Driver":"${OLD_DRIVER}"/' ${path.join(dataRoot, 'containers')}/*/${CONTAINER_CONFIG}`,
    `  rm -rf ${path.join(root, 'metadata')} ${path.join(root, RECORD_FILE)}`,
    '  and start dockerd with --storage-driver=devicemapper. Thin volumes made by dmthin are not known to the in-tree driver.',
  ];
  return lines.join('\n');
}
