// A copy of the built plugin on the guest's own disk, laid out as the
// managed plugin's rootfs lays it out (plugin/rootfs.sh's
// DMTHIN_APP_FILES and the production node_modules, with Node beside
// them), so that a benchmark runs the JavaScript from a local disk as
// production does, not over the VM's 9p share of the host.
import { spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';

/** The project's top, above dist/bench/. */
const TOP = path.join(__dirname, '..', '..');

export interface LocalApp {
  /** the copied Node binary */
  node: string;
  /** node's arguments that start the plugin, as the managed plugin's entrypoint does */
  serveArgs: string[];
}

/** The project's files the rootfs holds, from the one place that lists them. */
function appFiles(): string[] {
  const m = /^DMTHIN_APP_FILES="([^"]*)"/m.exec(readFileSync(path.join(TOP, 'plugin', 'rootfs.sh'), 'utf8'));
  if (m === null) throw new Error('plugin/rootfs.sh lists no DMTHIN_APP_FILES');
  return (m[1] as string).split(/\s+/).filter((f) => f !== '');
}

/** node_modules/… directories of the production dependencies (package-lock entries not marked dev), outermost only. */
function productionModules(): string[] {
  const lock = JSON.parse(readFileSync(path.join(TOP, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const wanted = Object.entries(lock.packages)
    .filter(([dir, entry]) => dir.startsWith('node_modules/') && entry.dev !== true)
    .map(([dir]) => dir)
    .sort();
  return wanted.filter((dir) => !wanted.some((outer) => dir.startsWith(`${outer}/`)));
}

/** Copies the built plugin and Node under `dest` (which must not exist yet). */
export async function copyAppLocally(dest: string): Promise<LocalApp> {
  const files = [...appFiles(), ...productionModules()];
  await fsp.mkdir(dest, { recursive: true });
  // cp -a keeps the tree's modes and links; --parents keeps each file's path under dest.
  const copied = spawnSync('cp', ['-a', '--parents', ...files, dest], { cwd: TOP, encoding: 'utf8' });
  if (copied.status !== 0) throw new Error(`copying the plugin to ${dest} failed: ${copied.stderr}`);
  const node = path.join(dest, 'node');
  await fsp.copyFile(process.execPath, node);
  await fsp.chmod(node, 0o755);
  return { node, serveArgs: ['--require', path.join(dest, 'dist', 'src', 'server', 'early.js'), path.join(dest, 'dist', 'src', 'cli.js'), 'serve'] };
}
