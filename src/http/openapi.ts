/**
 * The machine-readable description of the API itself (`GET /v0/openapi.json`, OpenAPI 3.0): every
 * /v0 route as registered, with the handler name and schema it declares (src/http/route-docs.ts);
 * path parameters come from the URL when a route declares none. Not to be confused with
 * `GET /v0/pipes/openapi.json`, Tinybird's description of a workspace's endpoints.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { ERROR_BODY, type JsonSchema, type RouteSchema } from './route-docs.js';

interface RouteEntry {
  method: string;
  url: string;
  /** The options as registered; read when the document is made (later onRoute hooks fill in the body limit). */
  options: RouteOptions;
}

/** Records every route registered on `app` from now on; `document()` describes those under /v0. */
export function routeCatalog(app: FastifyInstance): { document(apiHost: string): JsonSchema } {
  const routes: RouteEntry[] = [];
  app.addHook('onRoute', (r: RouteOptions) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) {
      routes.push({ method, url: r.url, options: r });
    }
  });
  return { document: (apiHost) => openApiDocument(routes, apiHost) };
}

function operationId(method: string, url: string): string {
  return `${method.toLowerCase()}_${url
    .replace(/^\/v0\//, '')
    .replace(/[:.]/g, '')
    .replace(/[^A-Za-z0-9]+/g, '_')}`;
}

function openApiDocument(routes: RouteEntry[], apiHost: string): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  const sorted = routes.filter((r) => r.url.startsWith('/v0/') && !r.url.includes('*') && r.method !== 'HEAD' && r.method !== 'OPTIONS');
  sorted.sort((a, b) => a.url.localeCompare(b.url));
  for (const r of sorted) {
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const s = (r.options.schema ?? {}) as RouteSchema;
    const handler = (r.options.config as { handler?: string } | undefined)?.handler;
    const declared = (s.params as JsonSchema | undefined)?.properties as Record<string, JsonSchema> | undefined;
    const parameters: unknown[] = [...r.url.matchAll(/:([A-Za-z0-9_]+)/g)].map(([, name]) => ({
      in: 'path',
      name,
      required: true,
      schema: declared?.[name] ?? { type: 'string' },
    }));
    const query = s.querystring as JsonSchema | undefined;
    const required = new Set((query?.required as string[] | undefined) ?? []);
    for (const [name, schema] of Object.entries((query?.properties as Record<string, JsonSchema> | undefined) ?? {})) {
      const { description, ...rest } = schema;
      parameters.push({ in: 'query', name, required: required.has(name), schema: rest, ...(description ? { description } : {}) });
    }
    const op: Record<string, unknown> = {
      operationId: operationId(r.method, r.url),
      'x-tinybird-handler': handler ?? 'APIHandler',
      parameters,
      responses: {
        ...Object.fromEntries(
          Object.entries((s.response as Record<string, JsonSchema> | undefined) ?? { 200: {} }).map(([status, schema]) => [
            status,
            {
              description: (schema.description as string | undefined) ?? 'OK',
              ...(Object.keys(schema).length ? { content: { 'application/json': { schema } } } : {}),
            },
          ]),
        ),
        '4XX': { description: 'A request the server refuses', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        '5XX': { description: 'A server-side condition; retry later', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
    if (s.summary) op.summary = s.summary;
    if (s.description) op.description = s.description;
    if (s.body) {
      const content: Record<string, unknown> = { 'application/json': { schema: s.body } };
      for (const type of s.consumes ?? []) content[type] = type.includes('form') ? { schema: s.body } : {};
      op.requestBody = { content, ...(r.options.bodyLimit ? { 'x-body-limit': r.options.bodyLimit } : {}) };
    }
    paths[path] ??= {};
    paths[path][r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.0.3',
    info: { title: 'Pipit /v0 API', version: 'v0', description: "Tinybird's classic /v0 REST API as Pipit serves it" },
    servers: [{ url: apiHost }],
    paths,
    components: {
      schemas: { Error: ERROR_BODY },
      securitySchemes: { TokenAuth: { type: 'http', scheme: 'bearer' }, TokenParam: { type: 'apiKey', in: 'query', name: 'token' } },
    },
    security: [{ TokenAuth: [] }, { TokenParam: [] }],
  };
}
