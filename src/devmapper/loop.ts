// Loop devices: the backing of a pool made of two plain files.
import { close } from 'node:fs';
import { promisify } from 'node:util';
import { binding, type LoopStatus } from '../native/binding';

export type { LoopStatus };

const closeFd = promisify(close);

/** `losetup --find --show [--read-only] FILE`: a free device from /dev/loop-control. */
export async function attach(file: string, options: { readOnly?: boolean } = {}): Promise<string> {
  const { device } = await binding.loop.attach(file, { ...options, autoclear: false });
  return device;
}

/** A loop device that the kernel detaches when its last opener closes it. */
export interface AutoclearLoop {
  device: string;
  /** Closes the descriptor that keeps the device alive; call it once a dm table or mount holds the device. */
  release(): Promise<void>;
}

/**
 * `losetup --find --show FILE` with LO_FLAGS_AUTOCLEAR: nothing leaks when
 * the process dies, since the device goes away with its last user. Until
 * `release()` the attach call's own descriptor is that user.
 */
export async function attachAutoclear(file: string, options: { readOnly?: boolean } = {}): Promise<AutoclearLoop> {
  const { device, fd } = await binding.loop.attach(file, { ...options, autoclear: true });
  let open = true;
  return {
    device,
    release: async () => {
      if (!open) return;
      open = false;
      await closeFd(fd);
    },
  };
}

/** `losetup --detach DEVICE`. */
export function detach(device: string): Promise<void> {
  return binding.loop.detach(device);
}

/** `losetup --set-capacity DEVICE`: picks up a backing file that grew. */
export function setCapacity(device: string): Promise<void> {
  return binding.loop.setCapacity(device);
}

/** `losetup --list DEVICE`; null when the device has no backing file. */
export function status(device: string): Promise<LoopStatus | null> {
  return binding.loop.status(device);
}

/** `losetup --associated FILE`: the first device backed by the file, or null. */
export function find(file: string): Promise<string | null> {
  return binding.loop.find(file);
}
