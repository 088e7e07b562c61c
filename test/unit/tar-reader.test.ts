// The layer tar reader on its own: the same result however the stream is
// cut into chunks, each header format's fields, the limits, and errors
// that name the entry. (test/host/tar-go-differential.test.ts compares it
// with Go's archive/tar over the whole corpus.)
import assert from 'node:assert/strict';
import { DmthinError } from '../../src/shared/errors';
import { TarError, TarReader, type TarEvent, type TarHeader } from '../../src/graphdriver/tar/reader';
import { seededBytes, tarCorpus } from '../support/tar-corpus';
import { endMarker, entry, headerBlock, paxEntry, tarOf } from '../support/tar-blocks';
import { tarView } from '../support/tar-view';

/** Every event of a tar pushed whole; the error thrown, if any. */
function events(tar: Buffer, limits?: ConstructorParameters<typeof TarReader>[0]): { events: TarEvent[]; error: TarError | null } {
  const reader = new TarReader(limits);
  reader.push(tar);
  reader.finish();
  const out: TarEvent[] = [];
  try {
    for (let e = reader.next(); e !== null; e = reader.next()) {
      out.push(e.kind === 'data' ? { kind: 'data', chunk: Buffer.from(e.chunk) } : e);
      if (e.kind === 'end') break;
    }
    return { events: out, error: null };
  } catch (err) {
    assert.ok(err instanceof TarError, String(err));
    return { events: out, error: err };
  }
}

function headers(tar: Buffer): TarHeader[] {
  return events(tar).events.flatMap((e) => (e.kind === 'entry' ? [e.header] : []));
}

function errorOf(tar: Buffer, limits?: ConstructorParameters<typeof TarReader>[0]): TarError {
  const { error } = events(tar, limits);
  assert.ok(error, 'the reader accepted the tar');
  return error;
}

describe('tar reader', () => {
  const corpus = tarCorpus();
  const byName = (name: string): Buffer => {
    const t = corpus.find((c) => c.name === name);
    assert.ok(t, name);
    return t.bytes;
  };

  describe('chunk boundaries', () => {
    it('gives the same view when every byte of a tar comes as its own chunk', () => {
      let checked = 0;
      for (const t of corpus) {
        if (t.bytes.length > 64 * 1024) continue;
        assert.deepEqual(tarView(t.bytes, 'bytes'), tarView(t.bytes), t.name);
        checked++;
      }
      assert.ok(checked > 200, `only ${checked} tars checked`);
    });

    it('gives the same view for seeded random splits of every tar in the corpus', () => {
      for (const [i, t] of corpus.entries()) {
        const sizes = seededBytes(1000 + i, 4096);
        let at = 0;
        // chunk sizes from 1 byte to ~64 KiB, most of them small
        const split = (): number => {
          const b = sizes[at++ % sizes.length] ?? 1;
          return b < 128 ? b + 1 : b < 240 ? (b - 127) * 512 + (b & 7) : (b - 239) * 4096 - 1;
        };
        assert.deepEqual(tarView(t.bytes, split), tarView(t.bytes), t.name);
      }
    });

    it('hands out body bytes as views of the pushed chunk, without copying', () => {
      const body = seededBytes(1, 5000);
      const tar = tarOf(entry({ name: 'f' }, body), endMarker());
      const reader = new TarReader();
      reader.push(tar);
      reader.finish();
      assert.equal(reader.next()?.kind, 'entry');
      const data = reader.next();
      assert.ok(data?.kind === 'data');
      assert.equal(data.chunk.buffer, tar.buffer);
      assert.deepEqual(Buffer.from(data.chunk), body);
    });

    it('asks for more bytes (null) instead of guessing before finish()', () => {
      const tar = tarOf(entry({ name: 'f' }, 'abc'), endMarker());
      const reader = new TarReader();
      reader.push(tar.subarray(0, 511));
      assert.equal(reader.next(), null);
      reader.push(tar.subarray(511, 513));
      assert.equal(reader.next()?.kind, 'entry');
      assert.deepEqual(reader.next(), { kind: 'data', chunk: Buffer.from('a') });
      assert.equal(reader.next(), null);
      reader.push(tar.subarray(513));
      reader.finish();
      assert.deepEqual(reader.next(), { kind: 'data', chunk: Buffer.from('bc') });
      assert.deepEqual(reader.next(), { kind: 'entry-end' });
      assert.deepEqual(reader.next(), { kind: 'end' });
      assert.deepEqual(reader.next(), { kind: 'end' });
    });
  });

  describe('formats', () => {
    it('reads V7: no owner names, device numbers or prefix', () => {
      const [, h] = headers(byName('format-v7-char'));
      assert.ok(h);
      assert.deepEqual([h.name, h.typeflag, h.uname, h.devmajor, h.uid], ['dir/char', 0x33, '', 0, 1000]);
    });

    it('reads USTAR with its prefix and device numbers', () => {
      const [h] = headers(byName('ustar-prefix'));
      assert.equal(h?.name, 'a/very/long/prefix/directory/name-part');
      const [, c] = headers(byName('format-ustar-block'));
      assert.deepEqual([c?.devmajor, c?.devminor, c?.uname, c?.gname], [7, 0, 'user', 'staff']);
    });

    it('reads STAR with its access and change times', () => {
      const [h] = headers(byName('star-prefix'));
      assert.equal(h?.name, 'star/prefix/name-part');
      assert.deepEqual([h?.atime, h?.ctime], [{ sec: 1_600_000_001, nsec: 0 }, { sec: 1_600_000_002, nsec: 0 }]);
    });

    it('reads GNU long names and links, which beat PAX path', () => {
      const [h] = headers(byName('gnu-longname-and-link'));
      assert.deepEqual([h?.name, h?.linkname], ['n'.repeat(200), 'k'.repeat(200)]);
      assert.equal(headers(byName('gnu-longname-beats-pax-path'))[0]?.name, 'from-gnu');
    });

    it('reads PAX records byte for byte, and keeps every one of them', () => {
      const [h] = headers(byName('pax-xattr-capability'));
      assert.deepEqual(h?.pax.get('SCHILY.xattr.security.capability'), Buffer.from('0100000200000000200000000000000000000000', 'hex'));
      const [t] = headers(byName('pax-mtime-negative-fraction'));
      assert.deepEqual([t?.mtime, t?.atime], [{ sec: -2, nsec: 500_000_000 }, { sec: -1, nsec: 750_000_000 }]);
      assert.equal(headers(byName('pax-two-x-only-last'))[0]?.uid, 0);
    });

    it('reads base-256 numbers, negative ones included', () => {
      const [h] = headers(byName('base256-uid-gid-mtime'));
      assert.deepEqual([h?.uid, h?.gid, h?.mtime], [0x7fffffff, 2 ** 40, { sec: -1, nsec: 0 }]);
    });

    it('reads no body for header-only types: what follows is the next header', () => {
      const names = headers(byName('fifo-size-body-is-header')).map((h) => [h.name, h.size]);
      assert.deepEqual(names, [['fifo', 512], ['smuggled', 23]]);
    });

    it('returns a global PAX header as an entry of its own', () => {
      const [g, f] = headers(byName('pax-global-then-file'));
      assert.deepEqual([g?.typeflag, g?.name, g?.size, g?.mtime, f?.uid], [0x67, 'global', 0, null, 0]);
    });

    it('expands sparse holes into zeros, in bounded chunks', () => {
      const { events: all } = events(byName('sparse-pax-0.0'));
      const data = all.flatMap((e) => (e.kind === 'data' ? [e.chunk] : []));
      const body = Buffer.concat(data);
      assert.equal(body.length, 50_000);
      assert.ok(Math.max(...data.map((c) => c.length)) <= 64 * 1024);
      assert.ok(body.subarray(100, 40_000).every((b) => b === 0));
      assert.equal(headers(byName('sparse-old-gnu'))[0]?.typeflag, 0x53);
    });

    it('ignores what follows the end marker, and ends cleanly without one', () => {
      assert.equal(tarView(byName('junk-header-after-end')).entries.length, 1);
      assert.deepEqual(tarView(byName('no-end-marker')).error, null);
      assert.deepEqual(tarView(byName('partial-padding')).error, null);
    });
  });

  describe('limits', () => {
    it('refuses a PAX header over the limit with ErrFieldTooLong, without gathering it', () => {
      const tar = tarOf(paxEntry([['comment', 'c'.repeat(200)]]), entry({ name: 'f' }, 'x'), endMarker());
      assert.equal(errorOf(tar, { maxSpecialFileBytes: 100 }).goError, 'field-too-long');
      assert.equal(tarView(tar).error, null);
      assert.equal(tarView(byName('pax-body-over-1mib')).error, 'field-too-long');
      assert.equal(tarView(byName('gnu-longname-over-1mib')).error, 'field-too-long');
      // A huge declared size on a short stream ends early: nothing was waiting for it.
      assert.equal(tarView(byName('pax-size-huge-truncated')).error, 'unexpected-eof');
    });

    it('refuses numbers past 2^53 that Go would read, saying so', () => {
      const err = errorOf(byName('base256-uid-2-55'));
      assert.equal(err.beyondGo, true);
      assert.match(err.message, /uid 36028797018963968 is beyond 2\^53/);
    });

    it('refuses a sparse map with more regions than the limit', () => {
      const map = Array.from({ length: 20 }, (_, i) => `${i * 10},1`).join(',');
      const tar = tarOf(paxEntry([['GNU.sparse.size', '1000'], ['GNU.sparse.numblocks', '20'], ['GNU.sparse.map', map]]), entry({ name: 'f' }, 'x'.repeat(20)), endMarker());
      assert.equal(errorOf(tar, { maxSparseEntries: 10 }).beyondGo, true);
      assert.equal(tarView(tar).entries[0]?.size, '1000');
    });
  });

  describe('errors', () => {
    it('throws a DmthinError EBADTAR naming the entry by index and name, and what is wrong', () => {
      const tar = tarOf(entry({ name: 'ok' }, 'x'), paxEntry([['size', '0x10']]), entry({ name: 'usr/bin/tool' }, 'y'), endMarker());
      const err = errorOf(tar);
      assert.ok(err instanceof DmthinError);
      assert.equal(err.code, 'EBADTAR');
      assert.equal(err.goError, 'header');
      assert.equal(err.entryIndex, 1);
      assert.equal(err.entryName, 'usr/bin/tool');
      assert.equal(err.message, 'layer tar is malformed at entry 1 ("usr/bin/tool"): PAX header: record size="0x10" is not a decimal integer');
    });

    it('names the entry whose body is cut short', () => {
      const err = errorOf(byName('truncated-body'));
      assert.deepEqual([err.goError, err.entryIndex, err.entryName], ['unexpected-eof', 0, 'f']);
      assert.match(err.message, /entry 0 \("f"\): the tar ends early: 1000 bytes of the body are missing/);
    });

    it('shows unprintable name bytes escaped', () => {
      const tar = tarOf(headerBlock({ name: Buffer.from([0x61, 0xff, 0x0a]), size: 10 }));
      assert.match(errorOf(tar).message, /\("a\\xff\\n"\)/);
    });

    it('says which header field is not a number', () => {
      assert.match(errorOf(byName('octal-inner-space')).message, /field uid not a number/);
      assert.match(errorOf(byName('checksum-wrong')).message, /checksum is wrong/);
      assert.match(errorOf(byName('zero-block-then-header')).message, /zero block/);
    });

    it('keeps throwing the same error (errors are sticky, like Go)', () => {
      const reader = new TarReader();
      reader.push(byName('pax-record-short-length'));
      reader.finish();
      const first = (() => {
        try {
          while (reader.next()?.kind !== 'end');
        } catch (err) {
          return err;
        }
        return null;
      })();
      assert.ok(first instanceof TarError);
      assert.throws(() => reader.next(), (err) => err === first);
    });

    it('ends a PAX size that is not a number promptly (the old xattr tap looped forever on it)', () => {
      for (const name of ['pax-size-abc', 'pax-size-hex', 'pax-size-space', 'pax-record-length-zero', 'pax-record-garbage']) {
        assert.equal(errorOf(byName(name)).goError, 'header', name);
      }
    });
  });
});
