/**
 * The one table from errors to HTTP: domain error codes and ClickHouse error codes map to a
 * status and Tinybird's body `{"error": "...", "documentation"?: "..."}`. Internal table names and
 * rewrite artefacts in engine messages are rewritten to what the user knows (userFacingNames):
 * here for engine errors, by the caller where it wraps an engine message in a domain error.
 */
import { PipitError, type ErrorCode } from '../basics/errors.js';
import { EngineError } from '../engine/engine.js';
import { userFacingNames } from '../ingest/physical.js';
import { SchemaError } from '../schema/errors.js';
import { CustomTemplateError, TemplateError } from '../template/errors.js';
import { asDiskFull } from '../basics/disk.js';

/**
 * The 404 message of an unknown route. The path is cut to its first 200 characters: echoing a
 * request line of up to 16 KB back made every probe a reflected payload.
 */
export function routeNotFound(method: string, url: string): string {
  const path = url.split('?')[0];
  return `Route not found: ${method} ${path.length > 200 ? `${path.slice(0, 200)}...` : path}`;
}

export const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  length_required: 411,
  timeout: 408,
  too_many_requests: 429,
  unprocessable: 422,
  unavailable: 503,
  not_implemented: 501,
};

/** ClickHouse error codes that are the user's doing, and the status Tinybird answers with. */
const ENGINE_STATUS: Record<number, number> = {
  159: 408, // TIMEOUT_EXCEEDED
  394: 499, // QUERY_WAS_CANCELLED (the client went away)
  241: 400, // MEMORY_LIMIT_EXCEEDED
  396: 400, // TOO_MANY_ROWS_OR_BYTES
  158: 400, // TOO_MANY_ROWS
  307: 400, // TOO_MANY_BYTES
};

const DOCS = 'https://docs.tinybird.co';

export interface HttpError {
  status: number;
  body: Record<string, unknown>;
  chCode?: number;
  /** Response headers that belong to the error (Retry-After on a retryable refusal). */
  headers?: Record<string, string>;
}

export function toHttpError(err: unknown, nameOf: (id: string) => string | undefined = () => undefined): HttpError {
  // A full disk, whichever store or file write met it, is the server's condition: retryable 503.
  err = asDiskFull(err);
  if (err instanceof PipitError) {
    const status = STATUS[err.code];
    const body: Record<string, unknown> = { error: err.message, ...err.extra };
    if (status === 403) body.documentation = `${DOCS}/api-reference/overview#authentication`;
    const retryAfter = (err as { retryAfter?: unknown }).retryAfter;
    return typeof retryAfter === 'number' ? { status, body, headers: { 'retry-after': String(retryAfter) } } : { status, body };
  }
  if (err instanceof SchemaError) return { status: 400, body: { error: err.message } };
  if (err instanceof TemplateError) return { status: 400, body: { error: err.message, documentation: err.documentation } };
  if (err instanceof CustomTemplateError) {
    // error() → {"error": msg}; custom_error(obj, code) → obj as sent, with its status.
    const status = err.status >= 400 && err.status < 600 ? err.status : 400;
    const body =
      err.body !== null && typeof err.body === 'object' && !Array.isArray(err.body) ? (err.body as Record<string, unknown>) : { error: String(err.body) };
    return { status, body };
  }
  if (err instanceof EngineError && (err.chType === 'ENGINE_UNAVAILABLE' || err.chType === 'ENGINE_CLOSED')) {
    // The server's condition (a remote engine that does not answer, a shutdown): retryable.
    return { status: 503, body: { error: 'The engine is unavailable, please retry' }, headers: { 'retry-after': '1' } };
  }
  if (err instanceof EngineError) {
    // Engine errors reaching HTTP come from user input (SQL expressions, conditions, values).
    const status = ENGINE_STATUS[err.chCode] ?? 400;
    return { status, body: { error: `[Error] ${userFacingNames(err.message, nameOf)}` }, chCode: err.chCode };
  }
  const e = err as { statusCode?: number; message?: string; code?: string };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { error: e.message ?? 'Bad request' } };
  }
  return { status: 500, body: { error: 'Internal server error. Please retry; if it persists, report it with the X-Request-ID header.' } };
}
