// Plain volumes, as Docker's local driver makes them: a directory (_data)
// that dockerd binds itself, or a mount of the volume's type/device/o at
// its mountpoint (tmpfs, a bind, nfs...). With a mount root apart from the
// state directory, even a plain directory is bound at its mountpoint.
import { promises as fsp } from 'node:fs';
import { fs as kfs } from '../devmapper';
import { bindMount, mountPlain, removeEmptyDir } from './mounts';
import type { PlainSpec } from './options';
import type { VolumeRegistry } from './registry';

export async function mountPlainVolume(registry: VolumeRegistry, name: string, spec: PlainSpec, mountpoint: string): Promise<void> {
  if (spec.type === undefined && registry.legacyLayout) {
    // A plain directory: nothing to mount; dockerd binds _data itself.
    await fsp.mkdir(mountpoint, { recursive: true, mode: 0o755 });
    return;
  }
  await fsp.mkdir(mountpoint, { recursive: true, mode: 0o755 });
  try {
    if (spec.type === undefined) await bindMount(registry.dataDir(name), mountpoint);
    else await mountPlain(name, spec, mountpoint);
  } catch (err) {
    if (!registry.legacyLayout) await removeEmptyDir(mountpoint);
    throw err;
  }
}

export async function unmountPlainVolume(registry: VolumeRegistry, spec: PlainSpec, mountpoint: string): Promise<void> {
  if (spec.type === undefined && registry.legacyLayout) return;
  await kfs.umount2(mountpoint, kfs.constants.MNT_DETACH);
  if (!registry.legacyLayout) await removeEmptyDir(mountpoint);
}
