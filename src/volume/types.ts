// What the HTTP layer needs from a volume driver: VolumeDriver's calls in
// dockerd's terms. The store implements it; protocol tests can stand in a fake.

/** A volume as Get answers it (dockerd's proxyVolume). */
export interface VolumeInfo {
  Name: string;
  Mountpoint: string;
  /** RFC 3339 */
  CreatedAt: string;
  Status: Record<string, unknown>;
}

/** A volume as List answers it: dockerd reads only these two. */
export interface VolumeListEntry {
  Name: string;
  Mountpoint: string;
}

export interface VolumeDriverApi {
  /** Opts is null when dockerd creates a volume without options. */
  create(name: string, opts: Readonly<Record<string, string>> | null): Promise<void>;
  remove(name: string): Promise<void>;
  /** Mounts at the first mount ID, and returns the mountpoint. */
  mount(name: string, id: string): Promise<string>;
  /** Unmounts at the last mount ID; an ID it does not know is a success. */
  unmount(name: string, id: string): Promise<void>;
  path(name: string): Promise<string>;
  /** null for a volume that does not exist; never an error for one that does. */
  get(name: string): Promise<VolumeInfo | null>;
  list(): Promise<VolumeListEntry[]>;
}
