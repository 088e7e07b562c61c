// Device-mapper verbs, one per dmsetup command. No policy lives here: no
// retries, no naming schemes, no checks beyond the argument types.
import { readFileSync } from 'node:fs';
import { binding, type DmBinding, type DmDeviceNumber, type DmInfo, type DmListEntry, type DmLogger, type DmTarget } from '../native/binding';

export type { DmDeviceNumber, DmInfo, DmListEntry, DmLogger, DmTarget };

/** The addon's device-mapper calls; the addon loads at the first one. */
function native(): DmBinding {
  return binding.dm;
}

/** Where libdevmapper puts (or udev creates) the node of device `name`. */
export function devicePath(name: string): string {
  return `/dev/mapper/${name}`;
}

/** `dmsetup version`: libdevmapper's and the kernel driver's versions. */
export function version(): Promise<{ library: string; driver: string }> {
  return native().version();
}

/** `dmsetup create NAME --table TABLE [--uuid UUID] [--readonly]`; the device is left active. */
export function create(name: string, table: DmTarget[], options: { uuid?: string; readOnly?: boolean } = {}): Promise<void> {
  return native().create(name, table, options);
}

/** `dmsetup reload NAME --table TABLE`: loads an inactive table; resume makes it live. */
export function reload(name: string, table: DmTarget[]): Promise<void> {
  return native().reload(name, table);
}

/**
 * `dmsetup remove [--deferred] [--retry] NAME`. With `deferred`, a device
 * that is still open is removed by the kernel when its last user closes it.
 */
export function remove(name: string, options: { deferred?: boolean; retry?: boolean } = {}): Promise<void> {
  return native().remove(name, options);
}

/** `dmsetup suspend [--noflush] [--nolockfs] NAME`. */
export function suspend(name: string, options: { noFlush?: boolean; skipLockfs?: boolean } = {}): Promise<void> {
  return native().suspend(name, options);
}

/** `dmsetup resume NAME`. */
export function resume(name: string): Promise<void> {
  return native().resume(name);
}

/** `dmsetup message NAME SECTOR MESSAGE`; resolves to the target's reply, or null when it gave none. */
export function message(name: string, sector: number, text: string): Promise<string | null> {
  return native().message(name, sector, text);
}

/** `dmsetup info NAME`; `exists` is false (and nothing else set) when there is no such device. */
export function info(name: string): Promise<DmInfo> {
  return native().info(name);
}

/** `dmsetup status NAME`: one entry per target, params unparsed. */
export function status(name: string): Promise<DmTarget[]> {
  return native().status(name);
}

/** `dmsetup table NAME`. */
export function table(name: string): Promise<DmTarget[]> {
  return native().table(name);
}

/** `dmsetup deps NAME`: the devices the table refers to. */
export function deps(name: string): Promise<DmDeviceNumber[]> {
  return native().deps(name);
}

/** `dmsetup ls`. */
export function list(): Promise<DmListEntry[]> {
  return native().list();
}

/**
 * `dmsetup --noudevsync` when false. Without udev (containers, the test VM)
 * libdevmapper must create and remove the /dev/mapper nodes itself.
 */
export function setUdevSync(enabled: boolean): void {
  native().setUdevSync(enabled);
}

/** Whether libdevmapper waits for udev to create device nodes. */
export function udevSync(): boolean {
  return native().udevSync();
}

/** Receives every message libdevmapper logs at or above the log level; null stops it. */
export function setLogger(logger: DmLogger | null): void {
  native().setLogger(logger);
}

/** `dmsetup -v...`: the most verbose libdevmapper level passed on, 2 (fatal) to 7 (debug). */
export function setLogLevel(level: number): void {
  native().setLogLevel(level);
}

/** `grep device-mapper /proc/misc`: whether the running kernel has the device-mapper driver. */
export function driverLoaded(): boolean {
  try {
    return /\bdevice-mapper\b/.test(readFileSync('/proc/misc', 'utf8'));
  } catch {
    return false;
  }
}
