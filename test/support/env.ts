// Where a suite can run, and a way to skip that says why.
import { dm } from '../../src/devmapper';
import type { Context } from 'mocha';

export const isRoot = process.getuid?.() === 0;
export const inVm = process.env['DMTHIN_IN_VM'] === '1';

/** Skips the current test or hook with the reason printed, so a skip is never silent. */
export function skipBecause(context: Context, reason: string): never {
  process.stdout.write(`      skipped: ${reason}\n`);
  context.skip();
}

/** In a before() hook: skip the whole describe() unless running as root. */
export function requireRoot(context: Context): void {
  if (!isRoot) skipBecause(context, 'needs root (run the suite with sudo)');
}

/** In a before() hook: skip unless inside the test VM, where device-mapper exists. */
export function requireVm(context: Context): void {
  if (!inVm) skipBecause(context, 'needs the device-mapper VM (run it with `npm run test:vm`)');
}

/** The scratch disk of the VM run, or a fallback directory on the host. */
export function scratchDir(): string {
  return process.env['DMTHIN_VM_SCRATCH'] ?? '/var/tmp';
}

/** Whether the running kernel has a device-mapper driver (a /dev/mapper/control node alone proves nothing). */
export function kernelHasDeviceMapper(): boolean {
  return dm.driverLoaded();
}
