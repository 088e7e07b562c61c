// `dmthin check --thin-check`: thin_check on the metadata of a stopped
// pool. thin_check reads the metadata device directly, which is only
// consistent while no kernel pool uses it, so a metadata file still
// attached to a loop device, or a block device something holds, is refused.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { EXIT } from './exit';
import { CliExit } from './admin-client';

export interface ThinCheckResult {
  /** what thin_check read */
  metadata: string;
  ok: boolean;
  /** thin_check's exit code */
  exitCode: number;
  output: string;
}

/** The loop devices backed by `file` that something (the pool) holds, from sysfs (no native addon needed). */
async function loopsBackedBy(file: string): Promise<string[]> {
  const found: string[] = [];
  const real = await fsp.realpath(file);
  for (const dev of await fsp.readdir('/sys/block').catch(() => [] as string[])) {
    if (!dev.startsWith('loop')) continue;
    const backing = (await fsp.readFile(`/sys/block/${dev}/loop/backing_file`, 'utf8').catch(() => '')).trim();
    // A loop device nothing holds (one the kernel is still clearing, say) is no pool.
    const holders = await fsp.readdir(`/sys/block/${dev}/holders`).catch(() => [] as string[]);
    if (backing === real && holders.length > 0) found.push(`/dev/${dev}`);
  }
  return found;
}

/** What holds a block device (a dm table), from sysfs. */
async function holdersOf(rdev: number): Promise<string[]> {
  const majorMinor = `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | (Math.floor(rdev / 4096) & ~0xff)}`;
  return fsp.readdir(`/sys/dev/block/${majorMinor}/holders`).catch(() => []);
}

/** Runs thin_check on `metadata` (default: the loop pool's file under root) after making sure no pool uses it. */
export async function thinCheckStoppedPool(root: string, metadata: string | undefined): Promise<ThinCheckResult> {
  const target = metadata ?? path.join(root, 'devicemapper', 'metadata');
  const st = await fsp.stat(target).catch(() => null);
  if (st === null) {
    throw new CliExit(EXIT.USAGE, `no pool metadata at ${target}: give --metadata DEVICE, the metadata device of your pool (for an LVM pool, activate its metadata LV read-only: lvchange -ay VG/thinpool_tmeta)`);
  }
  if (st.isFile()) {
    const loops = await loopsBackedBy(target);
    if (loops.length > 0) {
      throw new CliExit(
        EXIT.PROBLEM,
        `${target} is in use: ${loops.join(', ')} holds it for the pool, which is active. Stop dmthin (a stop leaves the pool active while running containers' layers stay mounted: stop them, or dockerd) and try again`,
      );
    }
  } else if (st.isBlockDevice()) {
    const holders = await holdersOf(st.rdev);
    if (holders.length > 0) throw new CliExit(EXIT.PROBLEM, `${target} is held by ${holders.join(', ')}: the pool is active; stop dmthin and deactivate the pool first`);
  } else {
    throw new CliExit(EXIT.USAGE, `${target} is neither a file nor a block device`);
  }
  return new Promise((resolve, reject) => {
    execFile('thin_check', [target], { maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT') return reject(new CliExit(EXIT.PROBLEM, 'thin_check is not installed (Debian: apt-get install thin-provisioning-tools)'));
      const exitCode = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? Number((err as { code?: unknown }).code) : 1;
      resolve({ metadata: target, ok: exitCode === 0, exitCode, output: `${stdout}${stderr}`.trim() });
    });
  });
}
