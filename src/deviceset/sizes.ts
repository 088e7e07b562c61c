// Device sizes the DeviceSet takes: whole 512-byte sectors (what a dm
// table counts in), at least enough for a filesystem, at most what a
// JavaScript number holds exactly. Checked where a size comes in (a
// layer's size storage option, dm.basesize, a volume's size, the default
// volume size) so that a bad one is refused naming the option, and again
// by the DeviceSet's verbs, which every consumer goes through.

/** What a dm table counts in (devmapper/thin.ts's SECTOR_SIZE, not imported: option parsing loads nothing of the kernel side). */
const SECTOR_SIZE = 512;
const MiB = 1024 * 1024;
/** Smallest thin device the set makes: mkfs.ext4 needs room for its journal. */
export const MIN_DEVICE_SIZE = MiB;
/** mkfs.xfs refuses less than 300 MiB. */
export const MIN_XFS_SIZE = 300 * MiB;
/** Largest whole number of sectors a number holds exactly (8 PiB less a sector). */
export const MAX_DEVICE_SIZE = Math.floor(Number.MAX_SAFE_INTEGER / SECTOR_SIZE) * SECTOR_SIZE;

/** `1M`, `300M`, `10G`: the size in the largest binary unit that divides it, as the options spell sizes. */
export function shownSize(bytes: number): string {
  for (const [unit, factor] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', MiB], ['K', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes} bytes`;
}

/**
 * Why `bytes` cannot be a device's size, phrased to follow the size's name
 * ("dm.basesize=1000 ..."), or null when it can.
 */
export function deviceSizeProblem(bytes: number, min = MIN_DEVICE_SIZE): string | null {
  if (!Number.isSafeInteger(bytes) || bytes > MAX_DEVICE_SIZE) return `is too large: at most ${MAX_DEVICE_SIZE} bytes`;
  if (bytes < min) return `is too small: at least ${shownSize(min)}`;
  if (bytes % SECTOR_SIZE !== 0) {
    const below = Math.floor(bytes / SECTOR_SIZE) * SECTOR_SIZE;
    return `is not a whole number of ${SECTOR_SIZE}-byte sectors: ${bytes} bytes (${below} or ${below + SECTOR_SIZE} would be)`;
  }
  return null;
}
