// The plugin's HTTP API: Plugin.Activate, GraphDriver.* and VolumeDriver.*
// (volume-routes.ts), as dockerd 20.10 calls them. Every answer is HTTP 200 with a JSON body, an error
// as {"Err": "..."} (dockerd then uses the message verbatim). Requests
// carry no Content-Type, so bodies are parsed as JSON whatever they say.
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { GraphDriverApi } from '../graphdriver/types';
import type { Logger } from '../log';
import type { VolumeDriverApi } from '../volume/types';
import { addVolumeRoutes } from './volume-routes';
import { schemaError, validateInit, validateLayer, type LayerBody } from './schemas';

export interface AppDeps {
  graph: GraphDriverApi;
  volumes: VolumeDriverApi;
  log: Logger;
}

type Handler = (body: LayerBody) => Promise<object> | object;

export function createApp(deps: AppDeps): express.Express {
  const { graph, volumes, log } = deps;
  const app = express();
  app.disable('x-powered-by');

  // DMTHIN_LOG_LEVEL=debug: one line per call, what it was about and how
  // long it took: where a slow docker command spends its time.
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!log.isDebugEnabled()) return next();
    const start = performance.now();
    res.once('close', () => {
      const body = (req.body ?? {}) as { ID?: unknown; Name?: unknown };
      const about = body.ID ?? body.Name ?? req.query['id'];
      log.debug('request', { method: req.path.slice(1), about: typeof about === 'string' ? about : undefined, ms: Math.round(performance.now() - start) });
    });
    return next();
  });

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

  app.use(express.json({ type: () => true, limit: '1mb' }));

  app.post('/Plugin.Activate', (_req, res) => {
    res.json({ Implements: ['GraphDriver', 'VolumeDriver'] });
  });

  app.post('/GraphDriver.Init', async (req: Request, res: Response) => {
    const body: unknown = req.body ?? {};
    if (!validateInit(body)) return fail(res, `GraphDriver.Init: ${schemaError(validateInit)}`);
    await graph.init(body.Home, body.Opts ?? []);
    log.info('graph driver initialized', { home: body.Home, opts: body.Opts ?? [] });
    return res.json({});
  });

  const layer = (name: string, needsId: boolean, handler: Handler): void => {
    app.post(`/GraphDriver.${name}`, async (req: Request, res: Response) => {
      const body: unknown = req.body ?? {};
      if (!validateLayer(body)) return fail(res, `GraphDriver.${name}: ${schemaError(validateLayer)}`);
      if (needsId && (body.ID ?? '') === '') return fail(res, `GraphDriver.${name}: ID is required`);
      return res.json(await handler(body));
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

  addVolumeRoutes(app, volumes);

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

  // Malformed JSON and every thrown error end here, as an Err answer.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const method = req.path.slice(1);
    const bodyError = (err as { type?: string }).type;
    if (err instanceof SyntaxError || bodyError === 'entity.parse.failed') {
      return fail(res, `${method}: malformed JSON body`);
    }
    if (bodyError !== undefined) {
      // body-parser's own refusals: too large, bad encoding, aborted.
      return fail(res, `${method}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const message = err instanceof Error ? err.message : String(err);
    log.warn('request failed', { method, code: (err as { code?: string }).code, err: message });
    return fail(res, message);
  });
  return app;
}

function fail(res: Response, message: string): Response {
  return res.status(200).json({ Err: message });
}
