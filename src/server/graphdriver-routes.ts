// GraphDriver.* as dockerd 20.10 calls them (docker-plugin-protocols.md
// §2): each body checked against its schema (graphdriver-schemas.ts), then
// handed to the driver. ApplyDiff and Diff stream a tar, so they are
// Express handlers; the others are JSON calls, served by the app's
// dispatcher and by Express alike.
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import type { GraphDriverApi } from '../graphdriver/types';
import type { Logger } from '../shared/log';
import { validateInit, validateLayer, type LayerBody } from './graphdriver-schemas';
import { failure, invalidBody, refusal, reply, type AddRoute } from './reply';

export function addGraphDriverRoutes(add: AddRoute, graph: GraphDriverApi, log: Logger): void {
  add('GraphDriver.Init', async (body) => {
    if (!validateInit(body)) return invalidBody('GraphDriver.Init', validateInit);
    await graph.init(body.Home, body.Opts ?? []);
    log.info('graph driver initialized', { home: body.Home, opts: body.Opts ?? [] });
    return {};
  });

  const layer = (name: string, needsId: boolean, handler: (body: LayerBody) => Promise<object> | object): void => {
    const method = `GraphDriver.${name}`;
    add(method, async (body) => {
      if (!validateLayer(body)) return invalidBody(method, validateLayer);
      if (needsId && (body.ID ?? '') === '') return refusal(method, 'ID is required');
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
}

/** ApplyDiff: the body is the raw layer tar, streamed to the driver, never parsed as JSON; ID and Parent come in the query. */
export function applyDiffHandler(graph: GraphDriverApi) {
  return async (req: Request, res: Response): Promise<void> => {
    const id = typeof req.query['id'] === 'string' ? req.query['id'] : '';
    const parent = typeof req.query['parent'] === 'string' ? req.query['parent'] : '';
    const checked = { ID: id, Parent: parent };
    if (id === '' || !validateLayer(checked)) {
      req.resume();
      return reply(res, id === '' ? refusal('GraphDriver.ApplyDiff', 'id is required') : invalidBody('GraphDriver.ApplyDiff', validateLayer));
    }
    return reply(res, { Size: await graph.applyDiff(id, parent, req) });
  };
}

/**
 * Diff answers with the tar itself. dockerd takes any 200 body as the tar,
 * so bad or unknown ids are a 500 with Err; an error once the answer has
 * started (mounting the layers, reading them) can only cut the connection.
 */
export function diffHandler(graph: GraphDriverApi, log: Logger) {
  return async (req: Request, res: Response): Promise<void> => {
    const body: unknown = req.body ?? {};
    if (!validateLayer(body)) return reply(res, invalidBody('GraphDriver.Diff', validateLayer), 500);
    if ((body.ID ?? '') === '') return reply(res, refusal('GraphDriver.Diff', 'ID is required'), 500);
    let diff: Awaited<ReturnType<GraphDriverApi['diff']>>;
    try {
      diff = await graph.diff(body.ID ?? '', body.Parent ?? '');
    } catch (err) {
      return reply(res, failure('GraphDriver.Diff', err, log), 500);
    }
    res.status(200).type('application/x-tar');
    // Headers first: a client piping this into ApplyDiff starts it while the layers mount (graphdriver/lazy-diff.ts).
    res.flushHeaders();
    try {
      await pipeline(diff.stream, res);
    } catch (err) {
      log.warn('diff stream failed', { id: body.ID, err: String(err) });
      res.destroy();
    } finally {
      await diff.release();
    }
  };
}
