// The dmthin command's side of the admin calls (src/admin/routes.ts): one
// POST on the daemon's socket. Nothing answering there is its own exit code.
import http from 'node:http';
import { EXIT } from './exit';

export { socketAnswers as daemonAnswers } from '../shared/socket-path';

/** config.ts's DEFAULT_SOCKET, not imported from there: config.ts loads the native addon. */
const DEFAULT_SOCKET = '/run/docker/plugins/dmthin.sock';

/** An error that ends the command with a given exit code and one line on stderr. */
export class CliExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliExit';
  }
}

/** --socket, else DMTHIN_SOCKET, else the default. */
export function socketPath(option: string | undefined): string {
  return option ?? process.env['DMTHIN_SOCKET'] ?? DEFAULT_SOCKET;
}

/** POST /Admin.<call>; resolves to the JSON answer, rejects with a CliExit. */
export function callAdmin<T>(socket: string, call: string, body: object = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path: `/Admin.${call}`, method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (err) => reject(new CliExit(EXIT.PROBLEM, `reading dmthin's answer on ${socket}: ${err.message}`)));
      res.on('end', () => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reject(new CliExit(EXIT.PROBLEM, `the answer on ${socket} is not JSON: is it dmthin's socket?`));
        }
        const err = (parsed as { Err?: unknown } | null)?.Err;
        if (typeof err === 'string' && err !== '') return reject(new CliExit(EXIT.PROBLEM, err));
        resolve(parsed as T);
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new CliExit(EXIT.UNREACHABLE, `nothing answers on ${socket}: dmthin is not running there (start it, or give --socket or DMTHIN_SOCKET)`));
      } else {
        reject(new CliExit(EXIT.PROBLEM, `cannot reach dmthin on ${socket}: ${err.message}`));
      }
    });
    req.end(JSON.stringify(body));
  });
}
