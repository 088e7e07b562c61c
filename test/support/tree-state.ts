// What a directory tree holds, byte for byte, for "nothing changed"
// checks: every path with its type, mode, owner, size, mtime, content
// hash or link target. Never follows a symlink.
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';

/**
 * One line per path under dir (dir itself first, as "."), sorted. Paths
 * are binary strings, so names that are not UTF-8 compare exactly. Below
 * `skip` (a path relative to dir) only the entry itself is listed, not
 * what it holds.
 */
export function treeState(dir: string, skip?: string): string[] {
  const lines: string[] = [];
  const visit = (rel: string): void => {
    const full = Buffer.from(rel === '.' ? dir : `${dir}/${rel}`, 'latin1');
    const st = lstatSync(full, { bigint: true });
    let what = '';
    if (st.isFile()) what = `file ${createHash('sha256').update(readFileSync(full)).digest('hex')}`;
    else if (st.isSymbolicLink()) what = `symlink ${readlinkSync(full, { encoding: 'buffer' }).toString('hex')}`;
    else if (st.isDirectory()) what = 'dir';
    else what = `special rdev=${st.rdev}`;
    lines.push(`${JSON.stringify(rel)} ${what} mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid} size=${st.isDirectory() ? '-' : st.size} mtime=${st.mtimeNs} nlink=${st.nlink}`);
    if (!st.isDirectory() || rel === skip) return;
    for (const name of readdirSync(full, { encoding: 'buffer' })) visit(rel === '.' ? name.toString('latin1') : `${rel}/${name.toString('latin1')}`);
  };
  visit('.');
  return lines.sort();
}
