// Block device ioctls Node has no API for.
import { binding } from '../native/binding';

/** `blockdev --getsize64 PATH`: the size in bytes (BLKGETSIZE64). */
export function size(path: string): Promise<number> {
  return binding.blockdev.size(path);
}

/** `blkdiscard --offset OFFSET --length LENGTH PATH` (BLKDISCARD); both multiples of 512. */
export function discard(path: string, offset: number, length: number): Promise<void> {
  return binding.blockdev.discard(path, offset, length);
}
