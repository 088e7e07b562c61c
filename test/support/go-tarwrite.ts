// Go's writer for the Diff differential test: test/go/tarwrite writes
// entries with archive/tar as dockerd 20.10's Diff does. Built once into
// build/go/ with no network (GOPATH mode, standard library only).
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

const repo = path.resolve(__dirname, '..', '..', '..');
const source = path.join(repo, 'test', 'go', 'tarwrite', 'main.go');
const outDir = path.join(repo, 'build', 'go');
const binary = path.join(outDir, 'tarwrite');

export interface GoTarEntry {
  /** binary strings (one char per byte) */
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Array<[string, Buffer]>;
  body?: Buffer;
  whiteout?: boolean;
}

function build(): string {
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
  execFileSync('go', ['build', '-o', binary, '.'], {
    cwd: path.dirname(source),
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, GO111MODULE: 'off', GOFLAGS: '', GOPROXY: 'off', GOCACHE: path.join(outDir, 'cache'), GOPATH: path.join(outDir, 'gopath') },
  });
  return binary;
}

/** The tar Go's archive/tar writes for these entries, as dockerd's Diff would. */
export function goWriteTar(entries: GoTarEntry[]): Buffer {
  const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');
  const input = entries.map((e) => ({
    name: b64(e.name),
    typeflag: e.typeflag,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    mtime: e.mtime,
    linkname: b64(e.linkname ?? ''),
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
    xattrs: Object.fromEntries((e.xattrs ?? []).map(([k, v]) => [b64(k), v.toString('base64')])),
    body: (e.body ?? Buffer.alloc(0)).toString('base64'),
    whiteout: e.whiteout ?? false,
  }));
  return execFileSync(build(), [], { input: JSON.stringify(input), maxBuffer: 1 << 28 });
}
