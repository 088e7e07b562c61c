// Opening DeviceSets on throwaway homes in the VM's scratch disk.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DeviceSet, parseOptions } from '../../src/deviceset';
import { createLogger } from '../../src/shared/log';
import { scratchDir } from './env';

/** Small sizes so a test pool is quick to make: 4G data, 128M metadata, 512M base (xfs needs 300M). */
export const SMALL = ['dm.loopdatasize=4G', 'dm.loopmetadatasize=128M', 'dm.basesize=512M'];

export const quietLog = createLogger(process.env['DMTHIN_TEST_LOG'] === '1' ? 'debug' : 'error');

export async function tempHome(label: string): Promise<string> {
  return fsp.mkdtemp(path.join(scratchDir(), `dmthin-${label}-`));
}

export function openSet(home: string, options: string[] = []): Promise<DeviceSet> {
  return DeviceSet.open({ home, options: parseOptions([...SMALL, ...options]), log: quietLog });
}

/** Mounts a layer at the set's default place and returns its rootfs/, as the GraphDriver hands it out. */
export async function mountLayer(set: DeviceSet, id: string): Promise<string> {
  return path.join(await set.mountDevice(id), 'rootfs');
}

/** Reads a file inside a mounted layer. */
export function readIn(rootfs: string, file: string): Promise<string> {
  return fsp.readFile(path.join(rootfs, file), 'utf8');
}
