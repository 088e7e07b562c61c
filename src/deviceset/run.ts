// The external tools the DeviceSet calls: mkfs, blkid, resize2fs, xfs_growfs.
import { execFile } from 'node:child_process';
import { DmthinError } from '../shared/errors';

/** Runs a command; resolves to its stdout, rejects with its stderr in an EEXEC error. */
export function runTool(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) return resolve(stdout);
      const reason = stderr.trim() || err.message;
      reject(new DmthinError('EEXEC', `${command} ${args.join(' ')} failed: ${reason}`, { cause: err }));
    });
  });
}

/** Whether a program is on PATH. */
export async function hasTool(command: string): Promise<boolean> {
  try {
    await runTool('sh', ['-c', `command -v ${command}`]);
    return true;
  } catch {
    return false;
  }
}
