// Debian 13 ("trixie") dockerd 26 and containerd 1.7, unpacked (never
// installed) by scripts/fetch-trixie into a cache outside the checkout,
// for the tests that run a newer Docker and containerd than Debian 12's.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The cache scripts/fetch-trixie fills; DMTHIN_TRIXIE_CACHE moves it (the VM sees the host's, read-only). */
export function trixieCache(): string {
  return process.env['DMTHIN_TRIXIE_CACHE'] ?? '/var/cache/dmthin/trixie';
}

/** The unpacked packages: `usr/sbin/dockerd`, `usr/bin/containerd`, `usr/bin/ctr`, ... */
export function trixieRoot(): string {
  return path.join(trixieCache(), 'root');
}

/**
 * A directory with only dockerd, containerd, containerd-shim-runc-v2 and
 * ctr of trixie: put it first on PATH, and Debian 12's runc (trixie's
 * needs a newer glibc) is still the runc found after it.
 */
export function trixieBin(): string {
  return path.join(trixieCache(), 'bin');
}

/** `{ 'docker.io': '26.1.5+dfsg1-...', containerd: '1.7.24~ds1-...' }`, or null when the cache is not complete. */
export function trixieVersions(): Record<string, string> | null {
  const file = path.join(trixieCache(), 'versions');
  if (!existsSync(file) || !existsSync(path.join(trixieBin(), 'dockerd'))) return null;
  const versions: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [name, version] = line.trim().split(/\s+/);
    if (name !== undefined && version !== undefined) versions[name] = version;
  }
  return versions;
}

/** Why the trixie binaries cannot be used, or null when they can. */
export function trixieMissing(): string | null {
  if (trixieVersions() !== null) return null;
  return `Debian 13's dockerd 26 and containerd 1.7 are not in ${trixieCache()} (scripts/setup --test runs scripts/fetch-trixie, which fetches them)`;
}

/** An environment whose PATH finds trixie's dockerd and containerd first, Debian 12's runc and the rest after. */
export function trixieEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, PATH: `${trixieBin()}:${base['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
}
