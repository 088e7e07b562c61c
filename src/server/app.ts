// The plugin's HTTP API: Plugin.Activate, GraphDriver.* and VolumeDriver.*
// (volume-routes.ts), as dockerd 20.10 calls them. Every answer is HTTP 200 with a JSON body, an error
// as {"Err": "..."} (dockerd then uses the message verbatim). Requests
// carry no Content-Type, so bodies are parsed as JSON whatever they say.
//
// The JSON calls (all but ApplyDiff and Diff, which stream) are answered
// by a small dispatcher before Express: a plugin call is a few hundred
// bytes each way, and Express's router, body parser and ETag cost several
// times the round trip itself (bench/plugin-calls.ts). Requests it does
// not recognise exactly (another method, a query string, an encoded
// body, a charset) go through Express, which serves the same routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { GraphDriverApi } from '../graphdriver/types';
import type { Logger } from '../shared/log';
import type { VolumeDriverApi } from '../volume/types';
import { addVolumeRoutes, type JsonRoute } from './volume-routes';
import type { DriverSwitches } from '../config';
import { ALL_DRIVERS, implementsOf, refuseTurnedOff, turnedOffBy } from './drivers';
import { schemaError, validateInit, validateLayer, type LayerBody } from './schemas';

export interface AppDeps {
  graph: GraphDriverApi;
  volumes: VolumeDriverApi;
  log: Logger;
  /** which drivers are served; all by default */
  drivers?: DriverSwitches;
  /** told the code of every call that fails with a thrown error (the metrics count them) */
  onError?: (req: IncomingMessage, code: string) => void;
}

type Handler = (body: LayerBody) => Promise<object> | object;

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

  // ApplyDiff's body is the raw layer tar: streamed to the driver, never parsed as JSON.
  app.post('/GraphDriver.ApplyDiff', async (req: Request, res: Response) => {
    const id = typeof req.query['id'] === 'string' ? req.query['id'] : '';
    const parent = typeof req.query['parent'] === 'string' ? req.query['parent'] : '';
    const checked = { ID: id, Parent: parent };
    if (id === '' || !validateLayer(checked)) {
      req.resume();
      return fail(res, `GraphDriver.ApplyDiff: ${id === '' ? 'id is required' : schemaError(validateLayer)}`);
    }
    return res.json({ Size: await graph.applyDiff(id, parent, req) });
  });

  app.use(express.json({ type: () => true, limit: BODY_LIMIT }));

  const route = (name: string, handler: JsonRoute): void => {
    // A turned-off driver's calls go through express, to refuseTurnedOff.
    if (turnedOffBy(drivers, name) !== null) return;
    routes.set(`/${name}`, handler);
    app.post(`/${name}`, async (req: Request, res: Response) => res.json(await handler(req.body ?? {})));
  };

  route('Plugin.Activate', () => ({ Implements: implementsOf(drivers) }));

  route('GraphDriver.Init', async (body) => {
    if (!validateInit(body)) return { Err: `GraphDriver.Init: ${schemaError(validateInit)}` };
    await graph.init(body.Home, body.Opts ?? []);
    log.info('graph driver initialized', { home: body.Home, opts: body.Opts ?? [] });
    return {};
  });

  const layer = (name: string, needsId: boolean, handler: Handler): void => {
    route(`GraphDriver.${name}`, async (body) => {
      if (!validateLayer(body)) return { Err: `GraphDriver.${name}: ${schemaError(validateLayer)}` };
      if (needsId && (body.ID ?? '') === '') return { Err: `GraphDriver.${name}: ID is required` };
      return handler(body);
    });
  };

  const createRequest = (b: LayerBody) => ({ id: b.ID ?? '', parent: b.Parent ?? '', mountLabel: b.MountLabel ?? '', storageOpt: b.StorageOpt ?? {} });
  layer('Capabilities', false, () => ({ Capabilities: graph.capabilities() }));
  layer('Create', true, async (b) => (await graph.create(createRequest(b)), {}));
  layer('CreateReadWrite', true, async (b) => (await graph.createReadWrite(createRequest(b)), {}));
  layer('Remove', true, async (b) => (await graph.remove(b.ID ?? ''), {}));
  layer('Get', true, async (b) => ({ Dir: await graph.get(b.ID ?? '', b.MountLabel ?? '') }));
  layer('Put', true, async (b) => (await graph.put(b.ID ?? ''), {}));
  layer('Exists', true, async (b) => ({ Exists: await graph.exists(b.ID ?? '') }));
  layer('Status', false, async () => ({ Status: await graph.status() }));
  layer('GetMetadata', true, async (b) => ({ Metadata: await graph.getMetadata(b.ID ?? '') }));
  layer('Cleanup', false, async () => (await graph.cleanup(), {}));
  layer('Changes', true, async (b) => ({ Changes: await graph.changes(b.ID ?? '', b.Parent ?? '') }));
  layer('DiffSize', true, async (b) => ({ Size: await graph.diffSize(b.ID ?? '', b.Parent ?? '') }));

  addVolumeRoutes(route, volumes);

  // Diff answers with the tar itself. dockerd takes any 200 body as the tar,
  // so an error found before streaming is a 500 with Err; one found midway
  // can only cut the connection.
  app.post('/GraphDriver.Diff', async (req: Request, res: Response) => {
    const body: unknown = req.body ?? {};
    if (!validateLayer(body) || (body.ID ?? '') === '') {
      return res.status(500).json({ Err: `GraphDriver.Diff: ${validateLayer(body) ? 'ID is required' : schemaError(validateLayer)}` });
    }
    let diff: Awaited<ReturnType<GraphDriverApi['diff']>>;
    try {
      diff = await graph.diff(body.ID ?? '', body.Parent ?? '');
    } catch (err) {
      return res.status(500).json({ Err: err instanceof Error ? err.message : String(err) });
    }
    res.status(200).type('application/x-tar');
    try {
      await pipeline(diff.stream, res);
    } catch (err) {
      log.warn('diff stream failed', { id: body.ID, err: String(err) });
      res.destroy();
    } finally {
      await diff.release();
    }
    return undefined;
  });

  /** Why a call failed, as its Err answer; unexpected failures are logged. */
  const errorMessage = (method: string, err: unknown, req: IncomingMessage): string => {
    const bodyError = (err as { type?: string }).type;
    if (err instanceof SyntaxError || bodyError === 'entity.parse.failed') {
      deps.onError?.(req, 'EBADJSON');
      return `${method}: malformed JSON body`;
    }
    // body-parser's own refusals: too large, bad encoding, aborted.
    if (bodyError !== undefined) {
      deps.onError?.(req, 'EBADREQUEST');
      return `${method}: ${err instanceof Error ? err.message : String(err)}`;
    }
    const message = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: string }).code;
    log.warn('request failed', { method, code, err: message });
    deps.onError?.(req, typeof code === 'string' ? code : 'EUNKNOWN');
    return message;
  };

  // Malformed JSON and every thrown error end here, as an Err answer.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => fail(res, errorMessage(req.path.slice(1), err, req)));

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
    const answer = (body: object): void => {
      const text = JSON.stringify(body);
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    readJson(req)
      .then(async (body) => {
        parsed = body;
        answer(await handler(body));
      })
      .catch((err: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        answer({ Err: errorMessage(method, err, req) });
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

function fail(res: Response, message: string): Response {
  return res.status(200).json({ Err: message });
}
