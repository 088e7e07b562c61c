// How long `dmthin migrate` takes on a data root of Docker's in-tree
// devicemapper driver with many layers. No dockerd: the state it would have
// left is made directly, as the driver makes it (moby v20.10.24's
// deviceset.go): a loop-lvm pool whose thin devices come from dmsetup
// messages (the base device, then each layer a snapshot of its parent),
// one JSON record per device, deviceset-metadata and transaction-metadata,
// and dockerd's layer database naming each device. Then the command runs,
// as a user runs it, on a small root and on a large one: the ratio says how
// its time grows with the layers.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { dm, loop, thin } from '../src/devmapper';
import { inTreePrefix } from '../src/migrate/pool-facts';
import { tempHome } from '../test/support/deviceset';
import { CLI } from '../test/support/plugin-process';
import { table, timeOnce } from './timing';

const execFileAsync = promisify(execFile);
const GiB = 1024 * 1024 * 1024;
const DEVICE_BYTES = 10 * GiB;
/** Layers per image: every LAYERS_PER_IMAGE-th layer starts a new chain on the base device. */
const LAYERS_PER_IMAGE = 10;
const BASE_ID = 1;

export interface MigrateRow {
  layers: number;
  containers: number;
  setupMs: number;
  dryRunMs: number;
  migrateMs: number;
}

const hex = (): string => randomBytes(32).toString('hex');

/** A data root as dockerd 20.10 on loop-lvm devicemapper leaves it when stopped, with `layers` image layers. */
async function makeDataRoot(dataRoot: string, layers: number, containers: number): Promise<void> {
  const home = path.join(dataRoot, 'devicemapper');
  const loopDir = path.join(home, 'devicemapper');
  const records = path.join(home, 'metadata');
  await fsp.mkdir(loopDir, { recursive: true });
  await fsp.mkdir(records, { recursive: true });
  const dataFile = path.join(loopDir, 'data');
  const metadataFile = path.join(loopDir, 'metadata');
  await fsp.writeFile(dataFile, '');
  await fsp.truncate(dataFile, 100 * GiB);
  await fsp.writeFile(metadataFile, Buffer.alloc(4096));
  await fsp.truncate(metadataFile, 2 * GiB);

  const poolName = `${inTreePrefix(home)}-pool`;
  const data = await loop.attachAutoclear(dataFile);
  const metadata = await loop.attachAutoclear(metadataFile);
  try {
    await dm.create(poolName, [thin.thinPoolTable(metadata.device, data.device, (100 * GiB) / 512, { blockSize: 128, lowWaterMark: 32768, errorIfNoSpace: false })]);
  } finally {
    await data.release();
    await metadata.release();
  }

  const devices: Array<{ hash: string; id: number }> = [];
  try {
    await thin.createThin(poolName, BASE_ID);
    const record = (id: number): string => JSON.stringify({ device_id: id, size: DEVICE_BYTES, transaction_id: id, initialized: true, deleted: false });
    await fsp.writeFile(path.join(records, 'base'), record(BASE_ID));
    const layerDb = path.join(dataRoot, 'image', 'devicemapper', 'layerdb', 'sha256');
    let parentChain = '';
    for (let i = 0; i < layers + 2 * containers; i++) {
      const id = BASE_ID + 1 + i;
      const startsImage = i % LAYERS_PER_IMAGE === 0;
      const origin = startsImage || i >= layers ? BASE_ID : id - 1;
      await thin.createSnap(poolName, id, origin);
      const hash = hex();
      devices.push({ hash, id });
      await fsp.writeFile(path.join(records, hash), record(id));
      if (i >= layers) continue;
      // dockerd's record of the layer: its chain id names a directory whose cache-id is the device.
      const chain = hex();
      const dir = path.join(layerDb, chain);
      await fsp.mkdir(dir, { recursive: true });
      await fsp.writeFile(path.join(dir, 'cache-id'), hash);
      await fsp.writeFile(path.join(dir, 'diff'), `sha256:${hex()}`);
      await fsp.writeFile(path.join(dir, 'size'), '1024');
      if (!startsImage) await fsp.writeFile(path.join(dir, 'parent'), `sha256:${parentChain}`);
      parentChain = chain;
    }
    // Each container: a writable layer and an init layer (the last 2 * containers devices).
    const containerDevices = devices.slice(layers);
    for (let c = 0; c < containers; c++) {
      const id = hex();
      const mounts = path.join(dataRoot, 'image', 'devicemapper', 'layerdb', 'mounts', id);
      await fsp.mkdir(mounts, { recursive: true });
      await fsp.writeFile(path.join(mounts, 'mount-id'), containerDevices[2 * c]?.hash ?? '');
      await fsp.writeFile(path.join(mounts, 'init-id'), containerDevices[2 * c + 1]?.hash ?? '');
      await fsp.mkdir(path.join(dataRoot, 'containers', id), { recursive: true });
      await fsp.writeFile(path.join(dataRoot, 'containers', id, 'config.v2.json'), JSON.stringify({ ID: id, Driver: 'devicemapper', Name: `/c${c}` }));
    }
    await fsp.writeFile(path.join(dataRoot, 'image', 'devicemapper', 'repositories.json'), '{"Repositories":{}}');
    const lastId = BASE_ID + devices.length;
    await thin.setTransactionId(poolName, 0, lastId);
    await fsp.writeFile(path.join(records, 'deviceset-metadata'), JSON.stringify({ next_device_id: lastId + 1, BaseDeviceUUID: '', BaseDeviceFilesystem: 'ext4' }));
    await fsp.writeFile(path.join(records, 'transaction-metadata'), JSON.stringify({ open_transaction_id: lastId, device_hash: devices.at(-1)?.hash ?? '', device_id: lastId }));
  } finally {
    // dockerd removes its pool when it stops: migrate finds it inactive.
    await dm.remove(poolName, { retry: true });
  }
}

async function runMigrate(dataRoot: string, root: string, extra: string[]): Promise<void> {
  await execFileAsync(process.execPath, [CLI, 'migrate', '--data-root', dataRoot, '--root', root, ...extra], { maxBuffer: 16 * 1024 * 1024 });
}

async function measure(layers: number, containers: number): Promise<MigrateRow> {
  const top = await tempHome(`bench-migrate-${layers}`);
  const dataRoot = path.join(top, 'docker');
  const root = path.join(top, 'dmthin-root');
  try {
    const setupMs = await timeOnce(() => makeDataRoot(dataRoot, layers, containers));
    const dryRunMs = await timeOnce(() => runMigrate(dataRoot, root, ['--dry-run']));
    const migrateMs = await timeOnce(() => runMigrate(dataRoot, root, []));
    return { layers, containers, setupMs, dryRunMs, migrateMs };
  } finally {
    await fsp.rm(top, { recursive: true, force: true });
  }
}

/** `dmthin migrate` of a small data root and of one with `layers` layers, in one run. */
export async function benchMigrate(layers: number): Promise<MigrateRow[]> {
  return [await measure(10, 2), await measure(layers, 20)];
}

export function formatMigrate(rows: MigrateRow[]): string {
  const [small, big] = rows;
  const s = (ms: number): string => (ms / 1000).toFixed(1);
  const ratio = small !== undefined && big !== undefined ? (big.migrateMs / small.migrateMs).toFixed(2) : '-';
  return [
    "dmthin migrate of an in-tree devicemapper data root (loop-lvm; seconds, one run each)",
    table(
      ['layers', 'containers', 'setup', 'migrate --dry-run', 'migrate'],
      rows.map((r) => [String(r.layers), String(r.containers), s(r.setupMs), s(r.dryRunMs), s(r.migrateMs)]),
    ),
    `migrate ${big?.layers ?? '?'} layers / ${small?.layers ?? '?'} layers: ${ratio}`,
  ].join('\n');
}
