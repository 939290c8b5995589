/**
 * Domain errors: one class per family with a stable `code`. They carry Tinybird's user-facing
 * message; the HTTP status for each code lives in one table (src/http/errors.ts).
 */

export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'length_required'
  | 'timeout'
  | 'too_many_requests'
  | 'unprocessable'
  | 'unavailable'
  | 'not_implemented';

export class PipitError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra keys merged into the JSON error body (e.g. `errors: [...]`). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'PipitError';
  }
}

export const badRequest = (msg: string, extra?: Record<string, unknown>) => new PipitError('bad_request', msg, extra);
export const unauthorized = (msg: string) => new PipitError('unauthorized', msg);
export const forbidden = (msg: string) => new PipitError('forbidden', msg);
export const notFound = (msg: string) => new PipitError('not_found', msg);
export const conflict = (msg: string) => new PipitError('conflict', msg);
