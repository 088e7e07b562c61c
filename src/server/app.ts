// The plugin's HTTP API: Plugin.Activate here (naming the drivers that
// drivers.ts says are served), GraphDriver.* in
// graphdriver-routes.ts, VolumeDriver.* in volume-routes.ts, each protocol
// with its schemas beside it, every answer made by reply.ts: HTTP 200 with
// a JSON body, an error as {"Err": "..."} (dockerd then uses the message
// verbatim). Requests carry no Content-Type, so bodies are parsed as JSON
// whatever they say.
//
// The JSON calls (all but ApplyDiff and Diff, which stream) are answered
// by a small dispatcher before Express: a plugin call is a few hundred
// bytes each way, and Express's router, body parser and ETag cost several
// times the round trip itself (bench/plugin-calls.ts). Requests it does
// not recognise exactly (another method, a query string, an encoded
// body, a charset) go through Express, which serves the same routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { GraphDriverApi } from '../graphdriver/types';
import type { Logger } from '../shared/log';
import type { VolumeDriverApi } from '../volume/types';
import type { DriverSwitches } from '../config';
import { ALL_DRIVERS, implementsOf, refuseTurnedOff, turnedOffBy } from './drivers';
import { addGraphDriverRoutes, applyDiffHandler, diffHandler } from './graphdriver-routes';
import { failure, reply, type JsonRoute } from './reply';
import { addVolumeRoutes } from './volume-routes';

export interface AppDeps {
  graph: GraphDriverApi;
  volumes: VolumeDriverApi;
  log: Logger;
  /** which drivers are served; all by default */
  drivers?: DriverSwitches;
  /** told the code of every call that fails with a thrown error (the metrics count them) */
  onError?: (req: IncomingMessage, code: string) => void;
}

/** Largest JSON body taken, as express.json's limit. */
const BODY_LIMIT = 1024 * 1024;

/** The app: a request listener for node:http (and supertest). */
export type PluginApp = ((req: IncomingMessage, res: ServerResponse) => void) & { express: express.Express };

export function createApp(deps: AppDeps): PluginApp {
  const { graph, volumes, log, drivers = ALL_DRIVERS } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  /** The JSON calls, by path: each takes the parsed body and gives the answer. */
  const routes = new Map<string, JsonRoute>();

  const logRequest = (req: IncomingMessage, res: ServerResponse, body: () => unknown, query: () => unknown): void => {
    // DMTHIN_LOG_LEVEL=debug: one line per call, what it was about and how
    // long it took: where a slow docker command spends its time.
    if (!log.isDebugEnabled()) return;
    const start = performance.now();
    res.once('close', () => {
      const b = (body() ?? {}) as { ID?: unknown; Name?: unknown };
      const about = b.ID ?? b.Name ?? query();
      log.debug('request', { method: (req.url ?? '').replace(/^\//, '').replace(/\?.*$/, ''), about: typeof about === 'string' ? about : undefined, ms: Math.round(performance.now() - start) });
    });
  };

  app.use((req: Request, res: Response, next: NextFunction) => {
    logRequest(req, res, () => req.body, () => req.query['id']);
    return next();
  });

  app.use(refuseTurnedOff(drivers));

  // ApplyDiff's body is the raw layer tar: registered before the JSON body parser.
  app.post('/GraphDriver.ApplyDiff', applyDiffHandler(graph));

  app.use(express.json({ type: () => true, limit: BODY_LIMIT }));

  const route = (name: string, handler: JsonRoute): void => {
    // A turned-off driver's calls go through express, to refuseTurnedOff.
    if (turnedOffBy(drivers, name) !== null) return;
    routes.set(`/${name}`, handler);
    app.post(`/${name}`, async (req: Request, res: Response) => reply(res, await handler(req.body ?? {})));
  };

  route('Plugin.Activate', () => ({ Implements: implementsOf(drivers) }));

  addGraphDriverRoutes(route, graph, log);
  addVolumeRoutes(route, volumes);

  app.post('/GraphDriver.Diff', diffHandler(graph, log));

  /** Tells the metrics the code of a call that failed. */
  const counter = (req: IncomingMessage) => (code: string): void => deps.onError?.(req, code);

  // Malformed JSON and every thrown error end here, as an Err answer.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => reply(res, failure(req.path.slice(1), err, log, counter(req))));

  const plugin = (req: IncomingMessage, res: ServerResponse): void => {
    const handler = req.method === 'POST' ? routes.get(req.url ?? '') : undefined;
    const type = req.headers['content-type'];
    if (handler === undefined || req.headers['content-encoding'] !== undefined || (type !== undefined && /charset/i.test(type))) {
      app(req, res);
      return;
    }
    let parsed: unknown;
    logRequest(req, res, () => parsed, () => undefined);
    const method = (req.url ?? '').slice(1);
    readJson(req)
      .then(async (body) => {
        parsed = body;
        reply(res, await handler(body));
      })
      .catch((err: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        reply(res, failure(method, err, log, counter(req)));
      });
  };
  return Object.assign(plugin, { express: app });
}

/** A JSON body as express.json({ limit: BODY_LIMIT }) reads it: empty is {}, only an object or array at the top. */
function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    const tooLarge = (): void => {
      req.resume();
      reject(Object.assign(new Error('request entity too large'), { type: 'entity.too.large' }));
    };
    if (declared > BODY_LIMIT) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size > BODY_LIMIT) return;
      size += chunk.length;
      if (size > BODY_LIMIT) return tooLarge();
      chunks.push(chunk);
    });
    req.on('error', (err) => reject(Object.assign(err, { type: 'request.aborted' })));
    req.on('end', () => {
      if (size > BODY_LIMIT) return;
      const text = Buffer.concat(chunks).toString('utf8').replace(/^\uFEFF/, '');
      if (text.length === 0) return resolve({});
      const first = /^[ \t\n\r]*(.)/.exec(text)?.[1];
      if (first !== '{' && first !== '[') return reject(new SyntaxError('not a JSON object'));
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(err);
      }
    });
  });
}
