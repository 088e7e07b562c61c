// Go's side of the differential tests: test/go/tarview (archive/tar of
// Debian 12's Go 1.19, the Go dockerd 20.10 is built with), built once
// into build/go/ with no network (GOPATH mode, standard library only).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TarView } from './tar-view';

const repo = path.resolve(__dirname, '..', '..', '..');
const source = path.join(repo, 'test', 'go', 'tarview', 'main.go');
const outDir = path.join(repo, 'build', 'go');
const binary = path.join(outDir, 'tarview');

/** Why Go's lister cannot be built here, or null when it can. */
export function goMissing(): string | null {
  const found = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) return 'needs Go (Debian package golang-go, installed by `scripts/setup --test`)';
  return null;
}

/** The path of the built lister, rebuilt when main.go is newer. */
export function goTarview(): string {
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
  execFileSync('go', ['build', '-o', binary, '.'], {
    cwd: path.dirname(source),
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      GO111MODULE: 'off',
      GOFLAGS: '',
      GOPROXY: 'off',
      GOCACHE: path.join(outDir, 'cache'),
      GOPATH: path.join(outDir, 'gopath'),
    },
  });
  return binary;
}

/** Go's TarView of each file, in one process (one JSON line per file). */
export function goTarViews(files: string[], timeoutMs = 600_000): TarView[] {
  const run = spawnSync(goTarview(), ['-batch'], {
    input: files.map((f) => `${f}\n`).join(''),
    maxBuffer: 1 << 30,
    timeout: timeoutMs,
  });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`tarview -batch failed (${run.status ?? run.signal}): ${run.stderr.toString()}`);
  const lines = run.stdout.toString().split('\n').filter((l) => l !== '');
  if (lines.length !== files.length) throw new Error(`tarview -batch listed ${lines.length} of ${files.length} tars`);
  return lines.map((l) => JSON.parse(l) as TarView);
}
