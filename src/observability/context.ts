/**
 * What the observability layer learns about one HTTP request while it runs: who called (token
 * name, workspace), what it ran (endpoint or Query API, engine statistics) and how it ended. The
 * HTTP hooks create it; routes and the query output path fill it in with one call each; domain
 * code reads its request id (through a ScopedContext) when it records an operation.
 */
import { ScopedContext } from '../basics/scoped-context.js';

export interface RequestInfo {
  id: string;
  /** The caller, once authenticated. */
  token?: { id: string; name: string };
  workspaceId?: string;
  /** Set by pipe endpoints (pipe_stats_rt's pipe) and the Query API (`query_api`). */
  pipe?: { id: string; name: string };
  /** The query read only service data sources: not recorded in pipe_stats_rt (Tinybird's rule). */
  serviceOnly?: boolean;
  /** Engine statistics of the query the request ran. */
  readRows?: number;
  readBytes?: number;
  resultRows?: number;
  /** Template parameters (GET endpoint calls only). */
  parameters?: Record<string, string>;
  /** The error message the client saw. */
  error?: string;
}

/**
 * The request domain code runs for. Reads (endpoints, the Query API) record no operation or job
 * and do not enter it: see http/observability.ts.
 */
export const requestContext = new ScopedContext<RequestInfo>();

/** The running request's info, if any (domain code: request id of an operation). */
export function currentRequest(): RequestInfo | undefined {
  return requestContext.get();
}

const KEY = Symbol('pipit.requestInfo');

/** The info attached to a request object (HTTP code). */
export function infoOf(req: object): RequestInfo | undefined {
  return (req as { [KEY]?: RequestInfo })[KEY];
}

export function attachInfo(req: object, info: RequestInfo): void {
  (req as { [KEY]?: RequestInfo })[KEY] = info;
}

/** Records the caller of a request (called by authenticate). */
export function noteCaller(req: object, token: { id: string; name: string }, workspaceId: string): void {
  const info = infoOf(req);
  if (!info) return;
  info.token = token;
  info.workspaceId = workspaceId;
}

/** Marks a request as a call of a pipe's endpoint, or of the Query API. */
export function notePipe(req: object, pipe: { id: string; name: string }, parameters?: Record<string, unknown>): void {
  const info = infoOf(req);
  if (!info) return;
  info.pipe = { id: pipe.id, name: pipe.name };
  if (parameters) {
    const p: Record<string, string> = {};
    for (const k in parameters) p[k] = Array.isArray(parameters[k]) ? (parameters[k] as unknown[]).join(',') : String(parameters[k]);
    info.parameters = p;
  }
}

/** Engine statistics of the request's query (the query output path). */
export function noteQuery(req: object, stats: { readRows?: number; readBytes?: number; resultRows?: number; serviceOnly?: boolean }): void {
  const info = infoOf(req);
  if (!info) return;
  Object.assign(info, stats);
}
