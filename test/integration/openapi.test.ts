/**
 * GET /v0/openapi.json: every /v0 route as registered, with the Tinybird handler name and the
 * schema it declares in its own options; schemas describe without changing what a bad parameter
 * answers (the handler's Tinybird message, not a framework validation error).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.close();
});

type Op = {
  operationId: string;
  'x-tinybird-handler': string;
  parameters: Array<{ in: string; name: string; required: boolean; schema: Record<string, unknown> }>;
  requestBody?: { content: Record<string, unknown> };
  responses: Record<string, unknown>;
};

describe('the description of /v0', () => {
  it('needs a valid token', async () => {
    const r = await s.req('GET', '/v0/openapi.json', { token: null });
    expect(r.status).toBe(403);
  });

  it('lists every route with its handler name, parameters, body and response schemas', async () => {
    const r = await s.req('GET', '/v0/openapi.json');
    expect(r.status).toBe(200);
    const doc = (await r.json()) as { openapi: string; paths: Record<string, Record<string, Op>> };
    expect(doc.openapi).toMatch(/^3\./);
    const create = doc.paths['/v0/pipes'].post;
    expect(create['x-tinybird-handler']).toBe('APIPipeListHandler');
    expect(create.parameters.find((p) => p.name === 'force')).toMatchObject({ in: 'query', schema: { enum: ['true', 'false'] } });
    expect(Object.keys(create.requestBody?.content ?? {})).toEqual(['application/json', 'application/x-www-form-urlencoded']);
    expect(create.requestBody).toMatchObject({ 'x-body-limit': 8 * 1024 * 1024 });
    expect(create.responses['200']).toMatchObject({ content: { 'application/json': { schema: { properties: { nodes: { type: 'array' } } } } } });
    // Routes that declare no schema still show their path parameters and handler name.
    const ds = doc.paths['/v0/datasources/{name}'].get;
    expect(ds['x-tinybird-handler']).toBe('APIDataSourceHandler');
    expect(ds.parameters).toEqual([expect.objectContaining({ in: 'path', name: 'name', required: true })]);
    expect(doc.paths['/v0/pipes/{pipe}/nodes/{node}/copy'].put.parameters.map((p) => p.name)).toEqual([
      'pipe',
      'node',
      'target_datasource',
      'schedule_cron',
      'mode',
    ]);
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId));
    expect(new Set(ids).size).toBe(ids.length);
    for (const path of ['/v0/sql', '/v0/events', '/v0/tokens', '/v0/jobs/{id}', '/v0/variables']) expect(doc.paths[path], path).toBeDefined();
  });

  it('each API family reads bodies up to its declared limit (413 beyond, naming it)', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    for (const [path, limit] of [
      ['/v0/variables', 64 * 1024],
      ['/v0/tokens?name=t', 1024 * 1024],
      ['/v0/pipes', 8 * 1024 * 1024],
    ] as const) {
      const r = await s.req('POST', path, { body: `name=${'x'.repeat(limit)}`, headers: form });
      expect(r.status, path).toBe(413);
      expect(await r.json()).toEqual({ error: `The message-body is too large. The limit is ${limit} bytes` });
    }
  });

  it('a value outside a schema gets the Tinybird answer, not a validation error', async () => {
    const r = await s.req('GET', '/v0/pipes?dependencies=maybe');
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: `The parameter "dependencies" value "maybe" is invalid. Valid values are: 'true', 'false'` });
    // Fields a response schema does not list (last_commit) are still sent.
    const made = await s.req('POST', '/v0/pipes', {
      body: new URLSearchParams({ name: 'p1', sql: 'SELECT 1 AS x' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(made.status).toBe(200);
    expect(await made.json()).toHaveProperty('last_commit');
    const list = (await (await s.req('GET', '/v0/pipes')).json()) as { pipes: Array<Record<string, unknown>> };
    expect(list.pipes[0]).toHaveProperty('last_commit');
  });
});
