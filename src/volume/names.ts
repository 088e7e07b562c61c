// Volume names, and the names derived from them on disk and in the pool.
// A name becomes a directory under <root>/volumes, so anything that could
// leave that directory or hide in it is refused before any use. New names
// follow Docker's local driver (moby volume/local validateName): its rule
// and its words, so a name refused by one is refused by the other alike.
import { createHash } from 'node:crypto';
import { DmthinError } from '../shared/errors';

export const MAX_NAME_LENGTH = 255;
/** Docker's names.RestrictedNameChars, as its message quotes it. */
export const NAME_CHARS = '[a-zA-Z0-9][a-zA-Z0-9_.-]';
/** Docker's local-driver rule for a new volume: two characters at least. */
export const NEW_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
/** A name already on disk may be one character (made before dmthin followed Docker's rule). */
const EXISTING_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function invalidName(name: string, message: string): DmthinError {
  return new DmthinError('EINVALIDNAME', message.replace('%s', JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name)));
}

/**
 * Throws EINVALIDNAME, saying why, unless `name` names a volume: for a new
 * one (`creating`), Docker's local-driver rule; for one looked up, the same
 * characters with one character allowed, so volumes made before still work.
 */
export function checkVolumeName(name: string, creating = false): void {
  if (name === '') throw invalidName(name, 'invalid volume name %s: it is empty');
  if (name.length > MAX_NAME_LENGTH) throw invalidName(name, `invalid volume name %s: it is longer than ${MAX_NAME_LENGTH} characters`);
  if (name.includes('\u0000')) throw invalidName(name, 'invalid volume name %s: it contains a NUL character');
  if (creating && name.length === 1) throw invalidName(name, 'volume name is too short, names should be at least two alphanumeric characters');
  if (!(creating ? NEW_NAME_PATTERN : EXISTING_NAME_PATTERN).test(name)) {
    throw invalidName(name, `%s includes invalid characters for a local volume name, only ${JSON.stringify(NAME_CHARS)} are allowed. If you intended to pass a host directory, use absolute path`);
  }
}

/**
 * The id of volume `name`'s thin device in the volume namespace (the
 * DeviceSet's volume view names the device): derived, not recorded, so a
 * volume whose opts.json is lost or corrupt still names its device, and a
 * device no volume derives is known to be an orphan. Also a name for the
 * volume's staging directories that any volume name fits in.
 */
export function volumeDeviceId(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}
