// The plugin as `npm start` runs it (dist/src/main.js), for tests that
// kill it, restart it, or put dockerd in front of it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';

export const MAIN = path.join(__dirname, '..', '..', 'src', 'main.js');

export interface PluginProcess {
  child: ChildProcess;
  /** resolves once a stdout line contains `text` (JSON log lines carry the message) */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  /** code and signal, once it has exited */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then the exit */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL, then the exit */
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** Starts the plugin with `env` on top of this process's environment; its output also goes to logFile when given. */
export function startPlugin(env: Record<string, string>, logFile?: string): PluginProcess {
  const child = spawn(process.execPath, [MAIN], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const waitFor = (text: string, timeoutMs = 120_000): Promise<void> => {
    if (out.includes(text)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for "${text}" from dmthin: ${out.slice(-2000)}`)), timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      waiters.push({ text, resolve: done });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        if (!out.includes(text)) reject(new Error(`dmthin exited (${String(code ?? signal)}) before "${text}": ${out.slice(-2000)}`));
      });
    });
  };
  const signal = (sig: NodeJS.Signals) => async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    return exited;
  };
  return { child, waitFor, exited, stop: signal('SIGTERM'), kill: signal('SIGKILL'), output: () => out };
}
