// The TarView of a tar as dmthin's TarReader sees it: the same JSON the Go
// lister (test/go/tarview) prints from archive/tar, so the two can be
// compared entry by entry (see TAR-CONTRACT.md).
import { createHash } from 'node:crypto';
import { TarError, TarReader, type TarTime } from '../../src/graphdriver/tar/reader';

export interface TarViewEntry {
  name: string;
  linkname: string;
  typeflag: number;
  size: string;
  mode: string;
  uid: string;
  gid: string;
  devmajor: string;
  devminor: string;
  uname: string;
  gname: string;
  mtime: string | null;
  atime: string | null;
  ctime: string | null;
  pax: Record<string, string>;
  sha256: string;
  bodySize: number;
}

export interface TarView {
  entries: TarViewEntry[];
  error: string | null;
}

/** The view of a tar, plus dmthin's own error when it refused what Go reads (a documented divergence). */
export interface TarViewResult {
  view: TarView;
  beyondGo: TarError | null;
}

/** Both listers stop a body here, so a sparse file of a petabyte of holes lists in bounded time. */
export const LISTER_BODY_CAP = 64 * 1024 * 1024;
export const LISTER_CAP_ERROR = 'other: body larger than the lister reads';

function time(t: TarTime | null): string | null {
  return t === null ? null : `${t.sec}.${String(t.nsec).padStart(9, '0')}`;
}

/** Splits the tar into chunks: the whole, every byte alone, or sizes from a seeded generator. */
export type Chunking = 'whole' | 'bytes' | ((remaining: number) => number);

export function tarViewOf(tar: Buffer, chunking: Chunking = 'whole'): TarViewResult {
  const reader = new TarReader();
  const entries: TarViewEntry[] = [];
  let pushed = 0;
  let current: { entry: Omit<TarViewEntry, 'sha256' | 'bodySize'>; hash: ReturnType<typeof createHash>; size: number } | null = null;
  const result = (error: string | null, beyondGo: TarError | null = null): TarViewResult => ({ view: { entries, error }, beyondGo });
  try {
    for (;;) {
      const event = reader.next();
      if (event === null) {
        if (pushed === tar.length) {
          reader.finish();
          continue;
        }
        const n = chunking === 'whole' ? tar.length : chunking === 'bytes' ? 1 : Math.max(1, chunking(tar.length - pushed));
        reader.push(tar.subarray(pushed, pushed + n));
        pushed = Math.min(tar.length, pushed + n);
        continue;
      }
      if (event.kind === 'end') return result(null);
      if (event.kind === 'entry') {
        const h = event.header;
        const pax: Record<string, string> = {};
        for (const [k, v] of h.pax) pax[k] = v.toString('base64');
        current = {
          entry: {
            name: h.name,
            linkname: h.linkname,
            typeflag: h.typeflag,
            size: String(h.size),
            mode: String(h.mode),
            uid: String(h.uid),
            gid: String(h.gid),
            devmajor: String(h.devmajor),
            devminor: String(h.devminor),
            uname: h.uname,
            gname: h.gname,
            mtime: time(h.mtime),
            atime: time(h.atime),
            ctime: time(h.ctime),
            pax,
          },
          hash: createHash('sha256'),
          size: 0,
        };
      } else if (event.kind === 'data' && current) {
        const room = LISTER_BODY_CAP - current.size;
        current.hash.update(event.chunk.subarray(0, Math.max(0, room)));
        current.size += event.chunk.length;
        if (current.size > LISTER_BODY_CAP) return result(LISTER_CAP_ERROR);
      } else if (event.kind === 'entry-end' && current) {
        entries.push({ ...current.entry, sha256: current.hash.digest('hex'), bodySize: current.size });
        current = null;
      }
    }
  } catch (err) {
    if (err instanceof TarError) return result(err.beyondGo ? `other: ${err.message}` : err.goError, err.beyondGo ? err : null);
    return result(`other: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Just the view (chunked as asked). */
export function tarView(tar: Buffer, chunking: Chunking = 'whole'): TarView {
  return tarViewOf(tar, chunking).view;
}
