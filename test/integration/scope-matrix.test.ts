/**
 * Scope matrix: every route against every kind of token — none, malformed, forged signature,
 * refreshed away, each scope kind on the right and on another resource, JWTs of each kind, an
 * expired JWT and a badly signed one. Allowed calls succeed; every other call is refused with the
 * reference's status and message, and leaves the workspace (data sources and their rows, pipes
 * and nodes, tokens) exactly as it was. After an allowed call that changed something, the world
 * is rebuilt (scoped tokens keep their values and are pointed at the new resources by name).
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
const AUTH_DOC = 'https://docs.tinybird.co/api-reference/overview#authentication';
const INVALID = 'invalid authentication token';
const json = { 'content-type': 'application/json' };
const schema = 'k Int32 `json:$.k`, country String `json:$.country`';
const ndjson = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ k: i, country: ['ES', 'FR'][i % 2] })).join('\n');

/** Static tokens: name → scopes (by resource name). */
const SCOPED: Record<string, string[]> = {
  tokens: ['TOKENS'],
  ds_create: ['DATASOURCES:CREATE'],
  append_ds: ['DATASOURCES:APPEND:ds'],
  append_ds2: ['DATASOURCES:APPEND:ds2'],
  drop_ds: ['DATASOURCES:DROP:ds'],
  drop_ds2: ['DATASOURCES:DROP:ds2'],
  read_ds: ['DATASOURCES:READ:ds'],
  read_ds2: ['DATASOURCES:READ:ds2'],
  pipes_create: ['PIPES:CREATE'],
  read_p: ['PIPES:READ:p'],
  read_p2: ['PIPES:READ:p2'],
  drop_p: ['PIPES:DROP:p'],
  drop_p2: ['PIPES:DROP:p2'],
  victim: ['DATASOURCES:READ:ds'],
};
const JWTS: Record<string, Array<Record<string, unknown>>> = {
  jwt_p: [{ type: 'PIPES:READ', resource: 'p' }],
  jwt_p2: [{ type: 'PIPES:READ', resource: 'p2' }],
  jwt_read: [{ type: 'DATASOURCES:READ', resource: 'ds' }],
  jwt_read2: [{ type: 'DATASOURCES:READ', resource: 'ds2' }],
  jwt_append: [{ type: 'DATASOURCES:APPEND', resource: 'ds' }],
  jwt_append2: [{ type: 'DATASOURCES:APPEND', resource: 'ds2' }],
};
const INVALID_KINDS = ['none', 'malformed', 'forged', 'refreshed', 'jwt_bad_sig'];
const KINDS = ['admin', ...Object.keys(SCOPED).filter((k) => k !== 'victim'), ...Object.keys(JWTS), 'jwt_expired', ...INVALID_KINDS];

/** Token values by kind (null: no token). */
const tok: Record<string, string | null> = {};
let jobId = '';

function sign(payload: Record<string, unknown>, secret: string): string {
  const b = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b({ alg: 'HS256', typ: 'JWT' })}.${b(payload)}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

async function ok(r: Promise<Response>, status = 200): Promise<Response> {
  const res = await r;
  if (res.status !== status) throw new Error(`${res.status} ${await res.text()}`);
  return res;
}

/** Drops everything and builds the canonical workspace again; scoped tokens keep their values. */
async function rebuild(): Promise<void> {
  const ws = s.app.services.access.defaultWorkspace;
  for (const p of await s.app.services.pipes.list(ws)) await ok(s.req('DELETE', `/v0/pipes/${p.name}`), 204);
  for (const d of await s.app.services.datasources.list(ws)) await ok(s.req('DELETE', `/v0/datasources/${d.name}`), 204);
  for (const name of ['ds', 'ds2']) {
    await ok(s.req('POST', `/v0/datasources?name=${name}&mode=create`, { body: new URLSearchParams({ schema }) }));
    await ok(s.req('POST', `/v0/events?name=${name}&wait=true`, { body: ndjson(10) }));
  }
  await ok(
    s.req('POST', '/v0/pipes', {
      headers: json,
      body: JSON.stringify({
        name: 'p',
        nodes: [
          { name: 'p_0', sql: 'SELECT count() AS c FROM ds', type: 'endpoint' },
          { name: 'p_extra', sql: 'SELECT 1 AS one' },
        ],
      }),
    }),
  );
  await ok(
    s.req('POST', '/v0/pipes', {
      headers: json,
      body: JSON.stringify({ name: 'p2', nodes: [{ name: 'p2_0', sql: 'SELECT count() AS c FROM ds2', type: 'endpoint' }] }),
    }),
  );
  const existing = await s.app.services.access.listTokens(ws);
  const keep = new Set(['admin token', 'workspace admin token', 'old_admin', ...Object.keys(SCOPED)]);
  for (const t of existing) if (!keep.has(t.name)) await ok(s.req('DELETE', `/v0/tokens/${t.id}`));
  for (const [name, scopes] of Object.entries(SCOPED)) {
    const q = new URLSearchParams([['name', name], ...scopes.map((sc) => ['scope', sc])]);
    if (existing.some((t) => t.name === name)) await ok(s.req('PUT', `/v0/tokens/${encodeURIComponent(name)}?${q}`));
    else tok[name] = (await (await ok(s.req('POST', `/v0/tokens?${q}`))).json()).token;
  }
}

/** Everything a call could change: data sources (schema, rows), pipes (nodes, endpoint), tokens. */
async function fingerprint(): Promise<string> {
  const ws = s.app.services.access.defaultWorkspace;
  const ds = [];
  for (const d of await s.app.services.datasources.list(ws)) {
    const [{ c }] = await s.app.services.engine.rows<{ c: string }>(`SELECT count() AS c FROM ${ws.database}.${d.id}`);
    const [{ q }] = await s.app.services.engine.rows<{ q: string }>(`SELECT count() AS q FROM ${ws.database}.${d.id}_quarantine`);
    ds.push({ id: d.id, name: d.name, description: d.description, columns: d.columns.map((x) => `${x.name} ${x.type}`), ttl: d.engine, c, q });
  }
  const pipes = (await s.app.services.pipes.list(ws)).map((p) => ({
    id: p.id,
    name: p.name,
    description: p.description,
    endpoint: p.endpoint,
    nodes: p.nodes.map((n) => [n.id, n.name, n.sql, n.description]),
  }));
  const tokens = (await s.app.services.access.listTokens(ws)).map((t) => ({ name: t.name, token: t.token, scopes: t.scopes, description: t.description }));
  return JSON.stringify({ ds, pipes, tokens });
}

interface Case {
  name: string;
  method: string;
  path: string | (() => string);
  body?: () => { body?: BodyInit; headers?: Record<string, string> };
  /** Tinybird's handler class (the JWT refusal names it); undefined when JWTs are accepted. */
  handler?: string;
  allowed: string[];
  /** Status of an allowed call (default 200). */
  okStatus?: number;
  /** Extra checks of an allowed answer. */
  check?: (kind: string, body: string) => void;
  /** Message of the 403 for a valid token without the scope (a function when it depends on the token). */
  deny: string | ((kind: string) => string);
  /** Errors are text/plain (Events API). */
  text?: boolean;
}

const names = (body: string, key: string) => (JSON.parse(body)[key] as Array<{ name: string }>).map((x) => x.name);
const ALL_DS = ['admin', 'ds_create', 'pipes_create'];
const seenDs: Record<string, string[]> = { read_ds: ['ds'], read_ds2: ['ds2'], read_p: ['ds'], read_p2: ['ds2'] };
const seenPipes: Record<string, string[]> = { read_p: ['p'], read_p2: ['p2'] };
const STATIC = ['admin', ...Object.keys(SCOPED).filter((k) => k !== 'victim')];
const form = (o: Record<string, string>) => () => ({ body: new URLSearchParams(o) });
const CREATE = 'token needs scope DATASOURCES:CREATE';
const PIPES_CREATE = 'token needs scope PIPES:CREATE';
const NO_ACCESS = "The token you have provided doesn't have access to this resource";
const NO_READ_P = 'token has no READ scope for p';
const EXPLAIN_DENIED = "Forbidden. Provided token doesn't have permissions to run the explain plan, it needs ADMIN or PIPE:READ and DATASOURCE:READ";
const TOKENS = 'token needs scope TOKENS';
const sql = (q: string) => `/v0/sql?q=${encodeURIComponent(q)}`;

const CASES: Case[] = [
  // Data Sources API
  {
    name: 'create a data source',
    method: 'POST',
    path: '/v0/datasources?name=new_ds&mode=create',
    body: form({ schema }),
    handler: 'APIDataSourcesHandler',
    allowed: ['admin', 'ds_create'],
    deny: CREATE,
  },
  {
    name: 'append to a data source',
    method: 'POST',
    path: '/v0/datasources?name=ds&mode=append&format=ndjson',
    body: () => ({ body: ndjson(2) }),
    handler: 'APIDataSourcesHandler',
    allowed: ['admin', 'ds_create', 'append_ds'],
    deny: 'Token does not have DATASOURCES:APPEND scope for Data Source "ds"',
  },
  {
    name: 'replace a data source',
    method: 'POST',
    path: '/v0/datasources?name=ds&mode=replace&format=ndjson',
    body: () => ({ body: ndjson(1) }),
    handler: 'APIDataSourcesHandler',
    allowed: ['admin', 'ds_create'],
    deny: 'Token does not have DATASOURCES:CREATE scope, replace mode requires the DATASOURCES:CREATE scope because is a destructive action',
  },
  {
    name: 'list data sources',
    method: 'GET',
    path: '/v0/datasources',
    handler: 'APIDataSourcesHandler',
    allowed: STATIC,
    deny: '',
    check: (k, b) => expect(names(b, 'datasources'), k).toEqual(ALL_DS.includes(k) ? ['ds', 'ds2'] : (seenDs[k] ?? [])),
  },
  {
    name: 'get a data source',
    method: 'GET',
    path: '/v0/datasources/ds',
    handler: 'APIDataSourceHandler',
    allowed: [...ALL_DS, 'read_ds', 'read_p'],
    deny: NO_ACCESS,
  },
  {
    name: 'get a .datasource file',
    method: 'GET',
    path: '/v0/datasources/ds.datasource',
    handler: 'APIDataSourceHandler',
    allowed: [...ALL_DS, 'read_ds', 'read_p'],
    deny: NO_ACCESS,
  },
  {
    name: 'update a data source',
    method: 'PUT',
    path: '/v0/datasources/ds?description=changed',
    handler: 'APIDataSourceHandler',
    allowed: ['admin', 'ds_create'],
    deny: CREATE,
  },
  {
    name: 'drop a data source (dry run)',
    method: 'DELETE',
    path: '/v0/datasources/ds?dry_run=true',
    handler: 'APIDataSourceHandler',
    allowed: ['admin', 'ds_create', 'drop_ds'],
    deny: 'User does not have permissions to drop Data Source "ds", set DROP scope',
  },
  {
    name: 'drop a data source',
    method: 'DELETE',
    path: '/v0/datasources/ds2',
    handler: 'APIDataSourceHandler',
    allowed: ['admin', 'ds_create', 'drop_ds2'],
    okStatus: 204,
    deny: 'User does not have permissions to drop Data Source "ds2", set DROP scope',
  },
  {
    name: 'truncate',
    method: 'POST',
    path: '/v0/datasources/ds/truncate',
    handler: 'APIDataSourceTruncateHandler',
    allowed: ['admin', 'ds_create'],
    okStatus: 205,
    deny: CREATE,
  },
  {
    name: 'delete rows (dry run)',
    method: 'POST',
    path: '/v0/datasources/ds/delete',
    body: form({ delete_condition: 'k > 1', dry_run: 'true' }),
    handler: 'APIDataSourceDeleteHandler',
    allowed: ['admin', 'ds_create'],
    deny: CREATE,
  },
  {
    name: 'alter',
    method: 'POST',
    path: '/v0/datasources/ds/alter',
    body: form({ description: 'altered' }),
    handler: 'APIDataSourceAlterHandler',
    allowed: ['admin', 'ds_create'],
    deny: CREATE,
  },
  {
    name: 'analyze',
    method: 'POST',
    path: '/v0/analyze',
    body: () => ({ body: 'a,b\n1,2\n' }),
    handler: 'APIAnalyzeHandler',
    allowed: ['admin', 'ds_create'],
    deny: CREATE,
  },
  // Jobs API
  { name: 'list jobs', method: 'GET', path: '/v0/jobs', handler: 'APIJobsHandler', allowed: ['admin', 'ds_create'], deny: CREATE },
  { name: 'get a job', method: 'GET', path: () => `/v0/jobs/${jobId}`, handler: 'APIJobHandler', allowed: ['admin', 'ds_create'], deny: CREATE },
  {
    name: 'cancel a job',
    method: 'POST',
    path: () => `/v0/jobs/${jobId}/cancel`,
    handler: 'APIJobCancelHandler',
    allowed: ['admin', 'ds_create'],
    okStatus: 400,
    deny: CREATE,
  },
  // Events API
  {
    name: 'events into a data source',
    method: 'POST',
    path: '/v0/events?name=ds&wait=true',
    body: () => ({ body: ndjson(3) }),
    text: true,
    allowed: ['admin', 'ds_create', 'append_ds', 'jwt_append'],
    deny: 'Invalid token',
  },
  {
    name: 'events creating a data source',
    method: 'POST',
    path: '/v0/events?name=brand_new&wait=true',
    body: () => ({ body: ndjson(3) }),
    text: true,
    allowed: ['admin', 'ds_create'],
    deny: 'Invalid token for DS autocreation',
  },
  // Query API
  {
    name: 'query a data source',
    method: 'GET',
    path: sql('SELECT count() FROM ds'),
    allowed: ['admin', 'pipes_create', 'read_ds', 'jwt_read'],
    deny: "Resource 'ds' not found",
  },
  {
    name: 'query a pipe',
    method: 'POST',
    path: '/v0/sql',
    body: () => ({ body: 'SELECT * FROM p' }),
    allowed: ['admin', 'pipes_create', 'read_p', 'jwt_p'],
    deny: "Resource 'p' not found",
  },
  // Pipes API
  {
    name: 'list pipes',
    method: 'GET',
    path: '/v0/pipes',
    handler: 'APIPipeListHandler',
    allowed: STATIC,
    deny: '',
    check: (k, b) => expect(names(b, 'pipes'), k).toEqual(['admin', 'pipes_create'].includes(k) ? ['p', 'p2'] : (seenPipes[k] ?? [])),
  },
  {
    name: 'OpenAPI of the endpoints',
    method: 'GET',
    path: '/v0/pipes/openapi.json',
    handler: 'APIPipeOpenAPIHandler',
    allowed: STATIC,
    deny: '',
    check: (k, b) =>
      expect(
        Object.keys(JSON.parse(b).paths).filter((x) => x.endsWith('.json')),
        k,
      ).toEqual((['admin', 'pipes_create'].includes(k) ? ['p', 'p2'] : (seenPipes[k] ?? [])).map((p) => `/pipes/${p}.json`)),
  },
  {
    name: 'create a pipe',
    method: 'POST',
    path: '/v0/pipes?name=new_pipe&sql=select+1',
    handler: 'APIPipeListHandler',
    allowed: ['admin', 'pipes_create'],
    deny: PIPES_CREATE,
  },
  {
    name: 'get a pipe',
    method: 'GET',
    path: '/v0/pipes/p',
    handler: 'APIPipeHandler',
    allowed: ['admin', 'pipes_create', 'read_p'],
    deny: NO_READ_P,
    check: (k, b) => expect(JSON.parse(b).nodes[0].sql === undefined, k).toBe(k === 'read_p'),
  },
  {
    name: 'get a .pipe file',
    method: 'GET',
    path: '/v0/pipes/p.pipe',
    handler: 'APIPipeHandler',
    allowed: ['admin', 'pipes_create'],
    deny: (k) => (k === 'read_p' ? 'token needs at least CREATE scope to retrieve the pipefile representation p' : NO_READ_P),
  },
  {
    name: 'update a pipe',
    method: 'PUT',
    path: '/v0/pipes/p?description=changed',
    handler: 'APIPipeHandler',
    allowed: ['admin', 'pipes_create'],
    deny: PIPES_CREATE,
  },
  {
    name: 'drop a pipe',
    method: 'DELETE',
    path: '/v0/pipes/p2',
    handler: 'APIPipeHandler',
    allowed: ['admin', 'pipes_create', 'drop_p2'],
    okStatus: 204,
    deny: 'token needs scope PIPES:DROP:p2',
  },
  {
    name: 'append a node',
    method: 'POST',
    path: '/v0/pipes/p/nodes?name=added',
    body: () => ({ body: 'SELECT 2 AS two' }),
    handler: 'APIPipeNodeAppendHandler',
    allowed: ['admin', 'pipes_create'],
    deny: PIPES_CREATE,
  },
  {
    name: 'change a node',
    method: 'PUT',
    path: '/v0/pipes/p/nodes/p_extra',
    body: () => ({ body: 'SELECT 3 AS three' }),
    handler: 'APIPipeNodeHandler',
    allowed: ['admin', 'pipes_create'],
    deny: PIPES_CREATE,
  },
  {
    name: 'delete a node',
    method: 'DELETE',
    path: '/v0/pipes/p/nodes/p_extra',
    handler: 'APIPipeNodeHandler',
    allowed: ['admin', 'pipes_create'],
    okStatus: 204,
    deny: PIPES_CREATE,
  },
  {
    name: 'publish a node',
    method: 'POST',
    path: '/v0/pipes/p/nodes/p_extra/endpoint',
    handler: 'APIPipeNodeEndpointHandler',
    allowed: ['admin', 'pipes_create'],
    deny: PIPES_CREATE,
  },
  {
    name: 'unpublish a node',
    method: 'DELETE',
    path: '/v0/pipes/p/nodes/p_0/endpoint',
    handler: 'APIPipeNodeEndpointHandler',
    allowed: ['admin', 'pipes_create'],
    deny: PIPES_CREATE,
  },
  {
    name: 'legacy publish',
    method: 'PUT',
    path: '/v0/pipes/p/endpoint',
    body: () => ({ body: 'p_0' }),
    handler: 'APIPipeEndpointHandler',
    allowed: ['admin', 'pipes_create'],
    deny: PIPES_CREATE,
  },
  // Explain shows the SQL and what it reads: PIPES:READ also needs DATASOURCES:READ on what the node
  // reads (seed 001); p's endpoint reads ds, p_extra reads no data source.
  {
    name: 'explain a pipe',
    method: 'GET',
    path: '/v0/pipes/p/explain',
    handler: 'APIPipeExplainHandler',
    allowed: ['admin', 'pipes_create'],
    deny: (k) => (k === 'read_p' ? EXPLAIN_DENIED : NO_READ_P),
  },
  {
    name: 'explain a node',
    method: 'GET',
    path: '/v0/pipes/p/nodes/p_extra/explain',
    handler: 'APIPipeNodeExplainHandler',
    allowed: ['admin', 'pipes_create', 'read_p'],
    deny: NO_READ_P,
  },
  {
    name: 'last update',
    method: 'GET',
    path: '/v0/pipes/p/last_update',
    handler: 'APIPipeLastUpdateHandler',
    allowed: ['admin', 'pipes_create', 'read_p'],
    deny: NO_READ_P,
  },
  {
    name: 'requests',
    method: 'GET',
    path: '/v0/pipes/p/requests',
    handler: 'APIPipeRequestsHandler',
    allowed: ['admin', 'pipes_create', 'read_p'],
    deny: NO_READ_P,
  },
  {
    name: 'endpoint data',
    method: 'GET',
    path: '/v0/pipes/p.json',
    allowed: ['admin', 'pipes_create', 'read_p', 'jwt_p'],
    deny: NO_ACCESS,
    check: (k, b) => expect(JSON.parse(b).data, k).toEqual([{ c: 10 }]),
  },
  {
    name: 'endpoint data by POST',
    method: 'POST',
    path: '/v0/pipes/p.csv',
    body: form({ x: '1' }),
    allowed: ['admin', 'pipes_create', 'read_p', 'jwt_p'],
    deny: NO_ACCESS,
  },
  // Tokens API
  {
    name: 'list tokens',
    method: 'GET',
    path: '/v0/tokens',
    handler: 'APITokensHandler',
    allowed: ['admin', 'tokens'],
    deny: 'Token has not enough permissions to get information about Tokens',
  },
  {
    name: 'create a token',
    method: 'POST',
    path: '/v0/tokens?name=new_tok&scope=DATASOURCES:READ:ds',
    handler: 'APITokensHandler',
    allowed: ['admin', 'tokens'],
    deny: TOKENS,
  },
  {
    name: 'mint a JWT',
    method: 'POST',
    path: () => `/v0/tokens?name=minted&expiration_time=${Math.floor(Date.now() / 1000) + 60}`,
    body: () => ({ headers: json, body: JSON.stringify({ scopes: [{ type: 'PIPES:READ', resource: 'p' }] }) }),
    handler: 'APITokensHandler',
    allowed: ['admin', 'tokens'],
    deny: TOKENS,
  },
  {
    name: 'get a token',
    method: 'GET',
    path: '/v0/tokens/read_ds',
    handler: 'APITokenHandler',
    allowed: ['admin', 'tokens', 'read_ds'],
    deny: 'Token has not enough permissions to get information about this token',
  },
  {
    name: 'change a token',
    method: 'PUT',
    path: '/v0/tokens/read_ds2?name=read_ds2&scope=DATASOURCES:READ:ds2',
    handler: 'APITokenHandler',
    allowed: ['admin', 'tokens'],
    deny: TOKENS,
  },
  { name: 'refresh a token', method: 'POST', path: '/v0/tokens/victim/refresh', handler: 'APITokenRefreshHandler', allowed: ['admin', 'tokens'], deny: TOKENS },
  { name: 'delete a token', method: 'DELETE', path: '/v0/tokens/victim', handler: 'APITokenHandler', allowed: ['admin', 'tokens'], deny: TOKENS },
  // Variables API (ADMIN only)
  { name: 'list variables', method: 'GET', path: '/v0/variables', handler: 'APIVariablesHandler', allowed: ['admin'], deny: 'token needs scope admin' },
];

/** What a call with a token of this kind must answer: null when allowed. */
function expected(c: Case, kind: string): { status: number; error: string } | null {
  if (INVALID_KINDS.includes(kind)) return { status: 403, error: c.text ? 'Invalid token' : INVALID };
  if (kind === 'jwt_expired') return { status: 403, error: c.text ? 'Invalid token' : `${INVALID}. Signature has expired` };
  if (kind.startsWith('jwt_') && c.handler) return { status: 403, error: `${INVALID}. Handler ${c.handler} does not support JWT tokens` };
  if (c.allowed.includes(kind)) return null;
  return { status: 403, error: typeof c.deny === 'function' ? c.deny(kind) : c.deny };
}

beforeAll(async () => {
  s = await startServer();
  const ws = s.app.services.access.defaultWorkspace;
  tok.admin = s.token;
  await rebuild();
  // A finished job for the Jobs API routes.
  const job = await (await ok(s.req('POST', '/v0/datasources/ds/delete', { body: new URLSearchParams({ delete_condition: 'k < 0' }) }), 201)).json();
  jobId = job.id;
  for (let i = 0; i < 100 && (await s.app.services.jobs.get(ws, jobId)).status !== 'done'; i++) await new Promise((r) => setTimeout(r, 50));
  // Invalid tokens.
  const oldAdmin = (await (await ok(s.req('POST', '/v0/tokens?name=old_admin&scope=ADMIN'))).json()).token as string;
  await ok(s.req('POST', '/v0/tokens/old_admin/refresh'));
  tok.refreshed = oldAdmin;
  tok.none = null;
  tok.malformed = 'not-a-token';
  const [, payload] = s.token.split('.');
  tok.forged = `p.${payload}.${crypto.createHmac('sha256', 'guess').update(payload).digest('base64url')}`;
  // JWTs (signed with the workspace's admin token).
  const signer = s.app.services.localTokens.admin_token;
  const exp = Math.floor(Date.now() / 1000) + 3600;
  for (const [kind, scopes] of Object.entries(JWTS)) tok[kind] = sign({ workspace_id: ws.id, name: kind, exp, scopes }, signer);
  tok.jwt_expired = sign({ workspace_id: ws.id, name: 'expired', exp: Math.floor(Date.now() / 1000) - 10, scopes: JWTS.jwt_p }, signer);
  tok.jwt_bad_sig = sign({ workspace_id: ws.id, name: 'bad', exp, scopes: JWTS.jwt_p }, `${signer}x`);
}, 120_000);

afterAll(async () => {
  await s?.close();
});

describe('scope matrix', () => {
  it('covers every token kind', () => {
    expect(KINDS).toHaveLength(26);
    for (const k of KINDS) expect(k in tok, k).toBe(true);
  });

  for (const c of CASES) {
    it(`${c.method} ${typeof c.path === 'string' ? c.path : c.name}: ${c.name}`, async () => {
      let before = await fingerprint();
      for (const kind of KINDS) {
        const path = typeof c.path === 'string' ? c.path : c.path();
        const extra = c.body?.() ?? {};
        const r = await s.req(c.method, path, { token: tok[kind], ...extra });
        const body = await r.text();
        const want = expected(c, kind);
        if (want === null) {
          expect(r.status, `${kind}: ${body}`).toBe(c.okStatus ?? 200);
          c.check?.(kind, body);
          const after = await fingerprint();
          if (after !== before) {
            await rebuild();
            before = await fingerprint();
          }
          continue;
        }
        expect(r.status, `${kind}: ${body}`).toBe(want.status);
        if (c.text) {
          expect(r.headers.get('content-type'), kind).toMatch(/^text\/plain/);
          expect(body, kind).toBe(`${want.error}\n`);
        } else {
          expect(JSON.parse(body), kind).toEqual({ error: want.error, documentation: AUTH_DOC });
        }
        expect(await fingerprint(), `${kind} changed something`).toBe(before);
      }
    });
  }
});
