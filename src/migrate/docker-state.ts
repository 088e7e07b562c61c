// What dockerd keeps per storage driver in its data root, and whether
// anything still uses that root: for `dmthin migrate`.
//   image/<driver>/                  imagedb, layerdb (incl. mounts/), repositories.json
//   image/<driver>/layerdb/sha256/<chain>/cache-id    the driver id of an image layer
//   image/<driver>/layerdb/mounts/<container>/mount-id, init-id   a container's two layers
//   containers/<id>/config.v2.json   {"Driver": "<driver>", ...}
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { mountinfo } from '../devmapper';
import { DmthinError } from '../shared/errors';

export const CONTAINER_CONFIG = 'config.v2.json';

/** A layer the driver must have: which record names it. */
export interface LayerRef {
  hash: string;
  /** e.g. "image layer sha256:…" or "container 1a2b… (writable layer)" */
  usedBy: string;
}

export interface ContainerConfig {
  id: string;
  file: string;
  driver: string;
  /** the parsed config.v2.json, to be written back with Driver changed */
  json: Record<string, unknown>;
}

/** The driver ids image/<driver>/layerdb refers to: image layers and each container's layer and init layer. */
export function layerRefs(imageDir: string): LayerRef[] {
  const refs: LayerRef[] = [];
  const layers = path.join(imageDir, 'layerdb', 'sha256');
  for (const chain of listDir(layers)) {
    const id = readId(path.join(layers, chain, 'cache-id'));
    if (id !== null) refs.push({ hash: id, usedBy: `image layer sha256:${chain.slice(0, 12)}` });
  }
  const mounts = path.join(imageDir, 'layerdb', 'mounts');
  for (const container of listDir(mounts)) {
    const mountId = readId(path.join(mounts, container, 'mount-id'));
    const initId = readId(path.join(mounts, container, 'init-id'));
    if (mountId !== null) refs.push({ hash: mountId, usedBy: `container ${container.slice(0, 12)} (writable layer)` });
    if (initId !== null) refs.push({ hash: initId, usedBy: `container ${container.slice(0, 12)} (init layer)` });
  }
  return refs;
}

/** Every container's config.v2.json; one that does not parse is an error naming it. */
export function containerConfigs(dataRoot: string): ContainerConfig[] {
  const dir = path.join(dataRoot, 'containers');
  const configs: ContainerConfig[] = [];
  for (const id of listDir(dir)) {
    const file = path.join(dir, id, CONTAINER_CONFIG);
    if (!existsSync(file)) continue;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    } catch (err) {
      throw new DmthinError('EMETADATA', `container ${id}: ${file} is not valid JSON (${(err as Error).message})`, { cause: err });
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new DmthinError('EMETADATA', `container ${id}: ${file} is not a JSON object`);
    const o = json as Record<string, unknown>;
    configs.push({ id, file, driver: typeof o['Driver'] === 'string' ? o['Driver'] : '', json: o });
  }
  return configs;
}

/** Who uses the data root: processes with a file open under it, and mounts under it. Empty when nothing does. */
export function dataRootUsers(dataRoot: string): string[] {
  const inside = (p: string): boolean => p === dataRoot || p.startsWith(`${dataRoot}/`);
  const users: string[] = [];
  for (const pid of listDir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    for (const fd of listDir(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (inside(target)) {
        users.push(`process ${pid} (${processName(pid)}) has ${target} open`);
        break;
      }
    }
  }
  for (const m of mountinfo.readMountinfo()) {
    if (inside(m.mountpoint)) users.push(`${m.mountpoint} is mounted`);
  }
  return users;
}

function processName(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

function readId(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
