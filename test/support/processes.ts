// Long-running helpers for end-to-end tests: dmthin and dockerd.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, promises as fsp } from 'node:fs';

export interface Started {
  child: ChildProcess;
  /** SIGTERM, then resolves to the exit code once it has exited. */
  stop(): Promise<number | null>;
}

/** Starts a command with its output in logFile. */
export function startLogged(command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): Started {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Polls check() until it resolves true, or fails after timeoutMs saying what it waited for. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The last lines of a log file, or why it cannot be read. */
export async function logTail(logFile: string, lines = 20): Promise<string> {
  const text = await fsp.readFile(logFile, 'utf8').catch((err: unknown) => `(cannot read: ${String(err)})`);
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Prints the last lines of a log file: a VM run's files are gone once it ends, its output stays. */
export async function printLogTail(logFile: string, lines = 40): Promise<void> {
  process.stdout.write(`\n----- last ${lines} lines of ${logFile} -----\n${await logTail(logFile, lines)}\n-----\n`);
}
