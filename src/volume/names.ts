// Volume names, and the names derived from them on disk and in the pool.
// A name becomes a directory under <root>/volumes, so anything that could
// leave that directory or hide in it is refused before any use.
import { createHash } from 'node:crypto';
import { DmthinError } from '../errors';
import { VOLUME_DEVICE_PREFIX } from '../graphdriver/driver';

export const MAX_NAME_LENGTH = 255;
/** Docker's names.RestrictedNamePattern, one character allowed. */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Throws EINVALIDNAME, saying why, unless `name` is a plain volume name. */
export function checkVolumeName(name: string): void {
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
  let problem: string | null = null;
  if (name === '') problem = 'is empty';
  else if (name.length > MAX_NAME_LENGTH) problem = `is longer than ${MAX_NAME_LENGTH} characters`;
  else if (name.includes('\u0000')) problem = 'contains a NUL character';
  else if (name.includes('/')) problem = 'contains "/"';
  else if (name.includes('..')) problem = 'contains ".."';
  else if (!NAME_PATTERN.test(name)) problem = 'includes invalid characters';
  if (problem !== null) {
    throw new DmthinError(
      'EINVALIDNAME',
      `invalid volume name ${shown}: it ${problem}; a volume name is 1 to ${MAX_NAME_LENGTH} characters of [a-zA-Z0-9_.-], starting with a letter or digit`,
    );
  }
}

/**
 * The thin device of volume `name`: derived, not recorded, so a volume
 * whose opts.json is lost or corrupt still names its device, and a device
 * no volume derives is known to be an orphan.
 */
export function volumeDeviceHash(name: string): string {
  return `${VOLUME_DEVICE_PREFIX}${createHash('sha256').update(name).digest('hex')}`;
}
