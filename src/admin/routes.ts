// The admin calls on the plugin's own socket, beside dockerd's: the
// dmthin command's status, check and gc run inside the daemon, under its
// pool lock, so they never race it. POST /Admin.Status, /Admin.Check,
// /Admin.Gc ({"DryRun": bool}), /Admin.PoolGrow ({"Data": "+10G", "Metadata": "4G"}); answers are JSON, errors {"Err": "..."}
// like every plugin call. The socket is root's (mode 0660), as dockerd's.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { growPool } from './pool-grow';
import { checkReport, collectGarbage, statusReport, type AdminDeps } from './inspect';

export const ADMIN_PREFIX = '/Admin.';

/** Largest admin request body read; they carry a flag or nothing. */
const BODY_LIMIT = 4096;

type AdminCall = (deps: AdminDeps, body: Record<string, unknown>) => Promise<object>;

const CALLS: ReadonlyMap<string, AdminCall> = new Map<string, AdminCall>([
  ['/Admin.Status', (deps) => statusReport(deps)],
  ['/Admin.Check', (deps) => checkReport(deps)],
  ['/Admin.Gc', (deps, body) => collectGarbage(deps, body['DryRun'] === true)],
  ['/Admin.PoolGrow', (deps, body) => growPool(deps, body)],
]);

function answer(res: ServerResponse, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= BODY_LIMIT) chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > BODY_LIMIT) return reject(new Error('request body too large'));
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (text === '') return resolve({});
      try {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return reject(new Error('the body must be a JSON object'));
        resolve(parsed as Record<string, unknown>);
      } catch {
        reject(new Error('malformed JSON body'));
      }
    });
  });
}

/** The plugin app with the admin calls in front of it; every other request goes to `app`. */
export function withAdminRoutes(app: RequestListener, deps: AdminDeps): RequestListener {
  return (req, res) => {
    const url = req.url ?? '';
    if (!url.startsWith(ADMIN_PREFIX)) {
      app(req, res);
      return;
    }
    const call = req.method === 'POST' ? CALLS.get(url) : undefined;
    const method = url.slice(1);
    if (call === undefined) {
      req.resume();
      answer(res, { Err: `${method}: no such admin call (POST ${[...CALLS.keys()].join(', ')})` });
      return;
    }
    readBody(req)
      .then((body) => call(deps, body))
      .then(
        (result) => answer(res, result),
        (err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          deps.log.warn('admin call failed', { method, code: (err as { code?: string }).code, err: message });
          if (!res.headersSent) answer(res, { Err: `${method}: ${message}` });
        },
      );
  };
}
