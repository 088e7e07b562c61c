// /proc/self/mountinfo, parsed: what `findmnt --raw` lists.
import { readFileSync } from 'node:fs';

export interface MountEntry {
  /** "MAJOR:MINOR" of the mounted filesystem */
  device: string;
  mountpoint: string;
  fstype: string;
  source: string;
}

/** Every mount of this process's namespace, in mount order (`findmnt --raw --list`). */
export function readMountinfo(file = '/proc/self/mountinfo'): MountEntry[] {
  return parseMountinfo(readFileSync(file, 'utf8'));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    // Optional fields end at a lone "-"; filesystem type and source follow it.
    const dash = fields.indexOf('-', 6);
    if (fields.length < 10 || dash < 0) continue;
    entries.push({
      device: fields[2] ?? '',
      mountpoint: unescapeMountPath(fields[4] ?? ''),
      fstype: unescapeMountPath(fields[dash + 1] ?? ''),
      source: unescapeMountPath(fields[dash + 2] ?? ''),
    });
  }
  return entries;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
