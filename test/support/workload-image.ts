// The base image of the docker workload, made here (no registry is
// reachable): busybox-static with every applet, plus a tree of owners,
// modes, links, a device node, a file capability, old timestamps and odd
// names for the build to change. Deterministic: the same bytes each time
// for the same /bin/busybox.
import { execFileSync } from 'node:child_process';
import { createWriteStream, promises as fsp } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/** 2020-09-13T12:26:40Z: every entry's time unless it says otherwise. */
export const BASE_MTIME = 1_600_000_000;

/**
 * cap_net_bind_service+ep in the kernel's v2 layout. Every byte is below
 * 0x80, so it survives tar-stream's text PAX records unchanged.
 */
export const NET_BIND_CAPABILITY = Buffer.from('0100000200040000000000000000000000000000', 'hex');

type Entry = Partial<tar.Header> & { name: string; body?: Buffer | string };

const dir = (name: string, mode = 0o755, uid = 0, gid = 0): Entry => ({ name: `${name}/`, type: 'directory', mode, uid, gid });
const file = (name: string, body: string | Buffer, mode = 0o644, uid = 0, gid = 0): Entry => ({ name, body, mode, uid, gid });

const PASSWD = ['root:x:0:0:root:/root:/bin/sh', 'daemon:x:1:1:daemon:/:/bin/false', 'app:x:1000:1000:app:/home/app:/bin/sh', 'nobody:x:65534:65534:nobody:/:/bin/false', ''].join('\n');
const GROUP = ['root:x:0:', 'daemon:x:1:', 'users:x:100:', 'mail:x:8:', 'app:x:1000:', 'nogroup:x:65534:', ''].join('\n');

/** A body that is not all one byte, so a wrong offset shows in the hash. */
function pattern(bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function baseEntries(busybox: Buffer, applets: string[]): Entry[] {
  return [
    dir('.'),
    dir('bin'),
    file('bin/busybox', busybox, 0o755),
    ...applets.filter((a) => a !== 'busybox').map((a): Entry => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox', mode: 0o777 })),
    dir('etc'),
    file('etc/passwd', PASSWD),
    file('etc/group', GROUP),
    file('etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o640, 0, 42),
    dir('tmp', 0o1777),
    dir('root', 0o700),
    dir('home'),
    dir('home/app', 0o750, 1000, 1000),
    file('home/app/.profile', 'export PS1=app\n', 0o640, 1000, 1000),
    dir('var'),
    dir('var/mail', 0o2775, 0, 8),
    file('var/mail/app', '', 0o660, 1000, 8),
    // Lower-layer things the build deletes, replaces or links to.
    dir('opt'),
    dir('opt/lower'),
    file('opt/lower/gone-file', 'deleted by the build\n'),
    file('opt/lower/kept', 'kept, its owner changed\n'),
    dir('opt/lower/gone-dir'),
    file('opt/lower/gone-dir/a', 'a\n'),
    dir('opt/lower/gone-dir/sub'),
    file('opt/lower/gone-dir/sub/b', 'b\n', 0o600),
    dir('opt/lower/empty-dir', 0o711),
    // No entry for its directory: the applier has to make one.
    file('opt/implicit/child', 'parent made on the fly\n'),
    file('opt/ünïcode-名前.txt', 'utf-8 name\n'),
    file(`opt/${'long-name-'.repeat(12)}end`, 'a name past 100 bytes\n'),
    { ...file('opt/old-times', 'from 2010\n'), mtime: new Date(1_262_304_000_000) },
    file('opt/empty', ''),
    file('opt/big', pattern(3 * 1024 * 1024 + 17, 7)),
    dir('usr'),
    dir('usr/share'),
    file('usr/share/hl-a', 'hard linked in the base\n'),
    { name: 'usr/share/hl-b', type: 'link', linkname: 'usr/share/hl-a', mode: 0o644 },
    file('usr/share/moved-from', 'renamed by the build\n'),
    { name: 'usr/share/abs-link', type: 'symlink', linkname: '/bin/busybox', mode: 0o777 },
    dir('usr/bin'),
    { ...file('usr/bin/capped', busybox.subarray(0, 4096), 0o755), pax: { 'SCHILY.xattr.security.capability': NET_BIND_CAPABILITY.toString('latin1') } },
    { ...file('usr/bin/noted', 'user xattr\n', 0o755), pax: { 'SCHILY.xattr.user.origin': 'base image' } },
    dir('usr/lib'),
    { name: 'usr/lib/null-node', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    dir('srv'),
    dir('srv/tree'),
    dir('srv/tree/old'),
    file('srv/tree/old/file', 'replaced by the build\n'),
    file('srv/tree/top', 'top\n'),
  ];
}

/** Writes the base image's tar (for `docker import`) to `out`. */
export async function writeBaseImageTar(out: string): Promise<void> {
  const busybox = await fsp.readFile('/bin/busybox');
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a)).sort();
  const pack = tar.pack();
  const writing = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(out));
  for (const { body, ...header } of baseEntries(busybox, applets)) {
    await new Promise<void>((resolve, reject) => {
      pack.entry({ mtime: new Date(BASE_MTIME * 1000), ...header }, body ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await writing;
}
