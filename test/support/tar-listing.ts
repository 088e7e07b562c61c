// What a tar holds, entry by entry, and the differences between two such
// listings in words a person can read: for comparing `docker export` and
// `docker save` output of dmthin with that of Docker's in-tree driver.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { TarReader, type TarEvent, type TarHeader } from '../../src/graphdriver/tar/reader';

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

const TYPE_NAMES: Record<string, string> = {
  '0': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  '7': 'contiguous-file',
};

const XATTR_PREFIX = 'SCHILY.xattr.';
const utf8 = (binary: string): string => Buffer.from(binary, 'latin1').toString('utf8');

function item(h: TarHeader, sha256: string): TarItem {
  const type = TYPE_NAMES[String.fromCharCode(h.typeflag)] ?? `type ${h.typeflag}`;
  const xattrs = [...h.pax]
    .filter(([k]) => k.startsWith(XATTR_PREFIX))
    .map(([k, v]) => `${utf8(k.slice(XATTR_PREFIX.length))}=${v.toString('hex')}`)
    .sort();
  const name = cleanName(utf8(h.name));
  return {
    name,
    type,
    mode: h.mode & 0o7777,
    uid: h.uid,
    gid: h.gid,
    linkname: utf8(h.linkname),
    size: h.size,
    sha256: type === 'file' || type === 'contiguous-file' ? sha256 : '',
    mtime: h.mtime?.sec ?? 0,
    device: type === 'character-device' || type === 'block-device' ? `${h.devmajor}:${h.devminor}` : '',
    xattrs,
  };
}

/** Reads a tar stream fully into a listing (PAX global headers are not files: left out). */
export async function listTar(input: Readable): Promise<TarListing> {
  const reader = new TarReader();
  const items = new Map<string, TarItem>();
  const order: string[] = [];
  let header: TarHeader | null = null;
  let hash = createHash('sha256');
  let ended = false;
  const take = (event: TarEvent): void => {
    if (event.kind === 'entry') {
      header = event.header;
      hash = createHash('sha256');
    } else if (event.kind === 'data') {
      hash.update(event.chunk);
    } else if (event.kind === 'entry-end' && header !== null) {
      if (header.typeflag !== 0x67) {
        const it = item(header, hash.digest('hex'));
        items.set(it.name, it);
        order.push(it.name);
      }
      header = null;
    } else if (event.kind === 'end') {
      ended = true;
    }
  };
  for await (const chunk of input as AsyncIterable<Buffer>) {
    if (ended) continue;
    reader.push(chunk);
    for (let e = reader.next(); e !== null && !ended; e = reader.next()) take(e);
  }
  if (!ended) {
    reader.finish();
    for (let e = reader.next(); e !== null && !ended; e = reader.next()) take(e);
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
