// How every plugin call answers, whatever its protocol: HTTP 200 with a
// JSON body, a failure as {"Err": "..."} (dockerd shows the message as it
// is). One place turns a refused body or a thrown error into that answer.
import type { ServerResponse } from 'node:http';
import type { ValidateFunction } from 'ajv';
import { errorText } from '../shared/errors';
import type { Logger } from '../shared/log';

/** A JSON call: the parsed request body in, the answer out (an {Err} answer for a refusal). */
export type JsonRoute = (body: unknown) => Promise<object> | object;

/** Adds a JSON call under its method name ("GraphDriver.Get"). */
export type AddRoute = (method: string, route: JsonRoute) => void;

/** Writes a JSON answer; 200 unless said (Diff's refusals before streaming are 500s). */
export function reply(res: ServerResponse, body: object, status = 200): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** A refusal of `method`: {"Err": "Method: why"}. */
export function refusal(method: string, why: string): { Err: string } {
  return { Err: `${method}: ${why}` };
}

/** A body its schema refused, saying ajv's first complaint. */
export function invalidBody(method: string, validate: ValidateFunction): { Err: string } {
  return refusal(method, schemaError(validate));
}

/** ajv's first complaint, phrased for an Err answer. */
export function schemaError(validate: ValidateFunction): string {
  const [first] = validate.errors ?? [];
  if (first === undefined) return 'invalid request body';
  const where = first.instancePath === '' ? 'request body' : first.instancePath.slice(1).replace(/\//g, '.');
  return `${where} ${first.message ?? 'is invalid'}`;
}

/**
 * Why a call failed, as its Err answer: a body that is not JSON or that
 * the body parser refused names the call; anything else is the error's
 * own message, logged as an unexpected failure. `count` is told the
 * failure's code (the metrics count them): the error's own, or EBADJSON,
 * EBADREQUEST, EUNKNOWN.
 */
export function failure(method: string, err: unknown, log: Logger, count?: (code: string) => void): { Err: string } {
  const bodyError = (err as { type?: string }).type;
  if (err instanceof SyntaxError || bodyError === 'entity.parse.failed') {
    count?.('EBADJSON');
    return refusal(method, 'malformed JSON body');
  }
  // body-parser's own refusals: too large, bad encoding, aborted.
  if (bodyError !== undefined) {
    count?.('EBADREQUEST');
    return refusal(method, errorText(err));
  }
  const message = errorText(err);
  const code = (err as { code?: string }).code;
  log.warn('request failed', { method, code, err: message });
  count?.(typeof code === 'string' ? code : 'EUNKNOWN');
  return { Err: message };
}
