// What a tar holds, entry by entry, and the differences between two such
// listings in words a person can read: for comparing `docker export` and
// `docker save` output of dmthin with that of Docker's in-tree driver.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { PaxXattrTap } from '../../src/graphdriver/pax-xattrs';

export interface TarItem {
  /** without a leading "./" or "/" and without a trailing "/" */
  name: string;
  type: string;
  /** permission bits with setuid, setgid and sticky */
  mode: number;
  uid: number;
  gid: number;
  linkname: string;
  size: number;
  /** sha256 of the content; '' for entries without one */
  sha256: string;
  /** whole seconds */
  mtime: number;
  device: string;
  /** name=hex, sorted */
  xattrs: string[];
}

export interface TarListing {
  items: Map<string, TarItem>;
  /** names in the order the tar has them */
  order: string[];
}

export function cleanName(name: string): string {
  return name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '') || '.';
}

/** Reads a tar stream fully into a listing. */
export async function listTar(input: Readable): Promise<TarListing> {
  const tap = new PaxXattrTap();
  const extract = tar.extract();
  input.once('error', (err) => extract.destroy(err));
  input.pipe(tap).pipe(extract as unknown as NodeJS.WritableStream);
  const items = new Map<string, TarItem>();
  const order: string[] = [];
  for await (const entry of extract) {
    const h = entry.header;
    const xattrs = tap.next();
    const hash = createHash('sha256');
    for await (const chunk of entry as unknown as AsyncIterable<Buffer>) hash.update(chunk);
    const name = cleanName(h.name);
    const hasBody = h.type === 'file' || h.type === 'contiguous-file';
    items.set(name, {
      name,
      type: h.type ?? 'file',
      mode: (h.mode ?? 0) & 0o7777,
      uid: h.uid ?? 0,
      gid: h.gid ?? 0,
      linkname: h.linkname ?? '',
      size: h.size ?? 0,
      sha256: hasBody ? hash.digest('hex') : '',
      mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
      device: h.type === 'character-device' || h.type === 'block-device' ? `${h.devmajor ?? 0}:${h.devminor ?? 0}` : '',
      xattrs: [...xattrs].map(([k, v]) => `${k}=${v.toString('hex')}`).sort(),
    });
    order.push(name);
  }
  return { items, order };
}

export function listTarFile(file: string): Promise<TarListing> {
  return listTar(createReadStream(file));
}

export interface CompareOptions {
  /** how the two sides are called in the report, e.g. ['in-tree', 'dmthin'] */
  labels: [string, string];
  /**
   * Modification times are compared when either side's is older than this
   * (seconds): those came from a tar and must survive; newer ones were made
   * by each run on its own and differ anyway.
   */
  stableBefore: number;
  /** names left out of the comparison */
  ignore?: (name: string) => boolean;
}

const octal = (mode: number): string => mode.toString(8).padStart(4, '0');

const FIELDS: Array<[string, (v: TarItem) => string]> = [
  ['type', (v) => v.type],
  ['mode', (v) => octal(v.mode)],
  ['owner', (v) => `${v.uid}:${v.gid}`],
  ['link target', (v) => v.linkname],
  ['size', (v) => String(v.size)],
  ['content', (v) => v.sha256.slice(0, 16)],
  ['device', (v) => v.device],
  ['xattrs', (v) => v.xattrs.join(',') || '(none)'],
];

/** Every difference between two listings, one line each; empty when they match. */
export function compareListings(a: TarListing, b: TarListing, options: CompareOptions): string[] {
  const [la, lb] = options.labels;
  const ignored = options.ignore ?? (() => false);
  const out: string[] = [];
  const names = [...new Set([...a.items.keys(), ...b.items.keys()])].filter((n) => !ignored(n)).sort();
  for (const name of names) {
    const x = a.items.get(name);
    const y = b.items.get(name);
    if (x === undefined || y === undefined) {
      const [have, item] = x === undefined ? [lb, y as TarItem] : [la, x];
      out.push(`/${name}: only in ${have} (${item.type}, ${octal(item.mode)}, ${item.uid}:${item.gid})`);
      continue;
    }
    for (const [field, show] of FIELDS) {
      if (show(x) !== show(y)) out.push(`/${name}: ${field} ${show(x)} (${la}) vs ${show(y)} (${lb})`);
    }
    if (x.mtime !== y.mtime && Math.min(x.mtime, y.mtime) < options.stableBefore) {
      out.push(`/${name}: mtime ${new Date(x.mtime * 1000).toISOString()} (${la}) vs ${new Date(y.mtime * 1000).toISOString()} (${lb})`);
    }
  }
  return out;
}
