/**
 * What a route says about itself, in its own options: Tinybird's handler name in `config` (messages
 * that name the handler, such as a JWT refused by a route that takes none, read it from
 * `req.routeOptions`) and a JSON schema of its path, query, body and stable responses.
 *
 * Schemas describe; they do not validate or serialize. Tinybird answers a bad parameter with its
 * own status and message, which the handlers give (the suites check them), so the server installs
 * a validator that accepts everything and a serializer that sends what the handler returned (a
 * response schema never drops a field). The schemas type the handlers (`app.get<R>`) and make the
 * machine-readable description of /v0 served at `GET /v0/openapi.json` (src/http/openapi.ts).
 *
 * @example
 * app.get<{ Params: { pipe: string } }>('/v0/pipes/:pipe/last_update', named('APIPipeLastUpdateHandler', {
 *   summary: 'When a pipe last changed', params: pathParams('pipe'),
 * }), handler)
 */
import type { FastifyInstance, FastifyRequest, FastifySchema } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Tinybird's handler class for the route, as its messages name it. */
    handler?: string;
  }
}

/** A route's schema plus the words of its description. */
export interface RouteSchema extends FastifySchema {
  summary?: string;
  description?: string;
  /** Body media types besides JSON (forms, raw SQL, CSV, NDJSON). */
  consumes?: string[];
}

export type JsonSchema = Record<string, unknown>;

/** Route options that name the route's handler (null: Tinybird's generic `APIHandler`) and describe it. */
export const named = (handler: string | null, schema?: RouteSchema): { config: { handler?: string }; schema?: RouteSchema } =>
  schema ? { config: handler ? { handler } : {}, schema } : { config: handler ? { handler } : {} };

/**
 * The body limit of the routes a plugin registers after this call (a route's own `bodyLimit`
 * wins): `readBody` reads up to it, and /v0/openapi.json shows it.
 */
export function bodyLimit(app: FastifyInstance, bytes: number): void {
  app.addHook('onRoute', (r) => {
    r.bodyLimit ??= bytes;
  });
}

/** The route's handler name; routes that declare none are Tinybird's generic `APIHandler`. */
export const handlerName = (req: FastifyRequest): string => req.routeOptions?.config?.handler ?? 'APIHandler';

const PATH_PARAMS: Record<string, string> = {
  pipe: 'Pipe name or id (`name.pipe` for its datafile, `name.json|csv|ndjson|parquet|prometheus` for its endpoint data)',
  node: 'Node name or id',
  name: 'Data Source name or id',
  token: 'Token name or id',
  id: 'Job id',
};

/** The path parameters of a route (all strings): names with their usual description, or `{ name: description }`. */
export function pathParams(...params: Array<string | Record<string, string>>): JsonSchema {
  const described = params.flatMap((p) => (typeof p === 'string' ? [[p, PATH_PARAMS[p] ?? p]] : Object.entries(p)));
  return {
    type: 'object',
    required: described.map(([n]) => n),
    properties: Object.fromEntries(described.map(([n, d]) => [n, { type: 'string', description: d }])),
  };
}

/** Query parameters (strings unless said otherwise): name → description, or a schema. */
export function queryParams(props: Record<string, string | JsonSchema>, required: string[] = []): JsonSchema {
  return {
    type: 'object',
    ...(required.length ? { required } : {}),
    properties: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, typeof v === 'string' ? { type: 'string', description: v } : v])),
  };
}

/** Tinybird's boolean parameters: the strings `true` and `false`. */
export const boolParam = (description: string): JsonSchema => ({ type: 'string', enum: ['true', 'false'], description });

/** The body of every error answer. */
export const ERROR_BODY: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'string' }, documentation: { type: 'string' } },
};
