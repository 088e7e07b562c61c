// Long-running processes for end-to-end tests and benchmarks (dmthin,
// dockerd): output kept for waitFor() and, when asked, in a log file.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, promises as fsp } from 'node:fs';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Started {
  child: ChildProcess;
  /** code and signal, once it has exited */
  exited: Promise<Exit>;
  /** resolves once its output contains `text`; rejects if it exits first */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  /** everything it wrote so far, stdout and stderr */
  output(): string;
  /** SIGTERM, then the exit */
  stop(): Promise<Exit>;
  /** SIGKILL, then the exit */
  kill(): Promise<Exit>;
}

/** Starts a command with `env`; its output also goes to logFile when given. */
export function startLogged(command: string, args: readonly string[], logFile?: string, env: NodeJS.ProcessEnv = process.env): Started {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = logFile === undefined ? null : createWriteStream(logFile, { flags: 'a' });
  let out = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  const onData = (chunk: Buffer): void => {
    out += chunk.toString();
    log?.write(chunk);
    for (const w of [...waiters]) {
      if (out.includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const waitFor = (text: string, timeoutMs = 120_000): Promise<void> => {
    if (out.includes(text)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for "${text}" from ${command}: ${out.slice(-2000)}`)), timeoutMs);
      waiters.push({
        text,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        if (!out.includes(text)) reject(new Error(`${command} exited (${String(code ?? signal)}) before "${text}": ${out.slice(-2000)}`));
      });
    });
  };
  const signal = (sig: NodeJS.Signals) => async (): Promise<Exit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    return exited;
  };
  return { child, exited, waitFor, output: () => out, stop: signal('SIGTERM'), kill: signal('SIGKILL') };
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
