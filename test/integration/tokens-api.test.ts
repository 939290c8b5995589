/**
 * The Tokens API over real HTTP (reference §7): static tokens (list, create, get, `.token`,
 * PUT, refresh, delete) with their JSON shapes and every documented error; JWTs minted by the
 * API and self-signed, verified on the routes that accept them, with fixed_params that request
 * parameters cannot widen; @tinybirdco/sdk createJWT/createToken against the server; rate limits.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, createJWT } from '@tinybirdco/sdk';
import { createTinybirdApi, TinybirdApiError } from '@tinybirdco/sdk/api';
import { count, startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let wsId: string;
/** The admin token JWTs are signed with (`admin token`, not the helper's `workspace admin token`). */
let signer: string;

const AUTH_DOC = 'https://docs.tinybird.co/api-reference/overview#authentication';
const json = { 'content-type': 'application/json' };
const form = (o: Record<string, string> | URLSearchParams) => ({ body: o instanceof URLSearchParams ? o : new URLSearchParams(o) });
const j = async (r: Response) => ({ status: r.status, body: await r.json() });
const now = () => Math.floor(Date.now() / 1000);
const rows = Array.from({ length: 30 }, (_, i) => ({ country: ['ES', 'FR', 'US'][i % 3], n: i }));
const sum = (c: string) => rows.filter((r) => r.country === c).reduce((a, r) => a + r.n, 0);

/** A JWT signed by hand (independent of the server's code), with any header. */
function selfSigned(payload: Record<string, unknown>, secret: string, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }): string {
  const b = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b(header)}.${b(payload)}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** POST /v0/tokens with query args (scope repeated). */
function create(params: Array<[string, string]>, token?: string | null) {
  return s.req('POST', `/v0/tokens?${new URLSearchParams(params)}`, { token });
}

async function tokenNames(): Promise<string[]> {
  return (await (await s.req('GET', '/v0/tokens')).json()).tokens.map((t: { name: string }) => t.name);
}

beforeAll(async () => {
  s = await startServer();
  wsId = s.app.services.access.defaultWorkspace.id;
  signer = s.app.services.localTokens.admin_token;
  const schema = 'country String `json:$.country`, n Int32 `json:$.n`';
  expect((await s.req('POST', '/v0/datasources?name=events&mode=create', form({ schema }))).status).toBe(200);
  expect((await s.req('POST', '/v0/datasources?name=other&mode=create', form({ schema }))).status).toBe(200);
  expect((await s.req('POST', '/v0/events?name=events&wait=true', { body: rows.map((r) => JSON.stringify(r)).join('\n') })).status).toBe(200);
  const pipe = (name: string, sql: string) =>
    s.req('POST', '/v0/pipes', { headers: json, body: JSON.stringify({ name, nodes: [{ name: `${name}_0`, sql, type: 'endpoint' }] }) });
  expect((await pipe('by_country', "% SELECT country, sum(n) AS total FROM events WHERE country = {{String(country, 'ES')}} GROUP BY country")).status).toBe(
    200,
  );
  expect(
    (await pipe('by_country_copy', "% SELECT country, sum(n) AS total FROM events WHERE country = {{String(country, 'ES')}} GROUP BY country")).status,
  ).toBe(200);
  expect((await pipe('all_rows', 'SELECT count() AS c FROM events')).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await s?.close();
});

describe('static tokens', () => {
  it('lists the workspace tokens with Tinybird shape', async () => {
    const { status, body } = await j(await s.req('GET', '/v0/tokens'));
    expect(status).toBe(200);
    // `admin token` is the user's admin token (admin_token of GET /tokens, Tinybird's ADMIN_USER):
    // only it sees its value, not the workspace's other admin tokens (issue 11 item 7).
    expect(body.tokens.find((t: { name: string }) => t.name === 'admin token')).not.toHaveProperty('token');
    const own = (await j(await s.req('GET', '/v0/tokens', { token: signer }))).body;
    const admin = own.tokens.find((t: { name: string }) => t.name === 'admin token');
    expect(admin).toEqual({
      id: expect.stringMatching(/^t_[0-9a-f]{32}$/),
      token: signer,
      scopes: [{ type: 'ADMIN' }],
      name: 'admin token',
      description: '',
      origin: { type: 'C' },
      host: 'pipit',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/),
    });
    expect(Object.keys(admin)).toEqual(['id', 'token', 'scopes', 'name', 'description', 'origin', 'host', 'created_at']);
    // The server-level user token belongs to no workspace.
    // (Both are made in the same start, possibly the same millisecond: their order is not the point.)
    expect(body.tokens.map((t: { name: string }) => t.name).sort()).toEqual(['admin token', 'workspace admin token']);
  });

  it('creates a token from repeated scope= (names or ids, filters with colons), shown by name', async () => {
    const ev = await s.app.services.datasources.get(s.app.services.access.defaultWorkspace, 'events');
    const r = await create([
      ['name', 'reader'],
      ['description', 'reads ES'],
      ['scope', "DATASOURCES:READ:events:country = 'ES' AND toString(n) != 'a:b'"],
      ['scope', `DATASOURCES:APPEND:${ev.id}`],
      ['scope', 'PIPES:READ:by_country'],
      ['scope', 'PIPES:DROP:all_rows'],
      ['scope', 'DATASOURCES:DROP:other'],
      ['scope', 'PIPES:CREATE'],
      ['scope', 'TOKENS'],
    ]);
    const { status, body } = await j(r);
    expect(status).toBe(200);
    expect(body).toEqual({
      id: expect.stringMatching(/^t_/),
      token: expect.stringMatching(/^p\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/),
      scopes: [
        { type: 'DATASOURCES:READ', resource: 'events', filter: "country = 'ES' AND toString(n) != 'a:b'" },
        { type: 'DATASOURCES:APPEND', resource: 'events' },
        { type: 'PIPES:READ', resource: 'by_country', filter: '' },
        { type: 'PIPES:DROP', resource: 'all_rows' },
        { type: 'DATASOURCES:DROP', resource: 'other' },
        { type: 'PIPES:CREATE' },
        { type: 'TOKENS' },
      ],
      name: 'reader',
      description: 'reads ES',
      origin: { type: 'C' },
      host: 'pipit',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/),
    });
    // Stored by id.
    const rec = (await s.app.services.catalog.listTokens(wsId)).find((t) => t.name === 'reader')!;
    expect(rec.scopes[0]).toEqual({ type: 'DATASOURCES:READ', resource: ev.id, filter: "country = 'ES' AND toString(n) != 'a:b'" });
  });

  it('accepts the parameters in a form body or a JSON body (as the SDK sends a static token)', async () => {
    const params = new URLSearchParams([
      ['name', 'from_form'],
      ['scope', 'DATASOURCES:READ:events'],
      ['scope', 'DATASOURCES:APPEND:events'],
    ]);
    let r = await s.req('POST', '/v0/tokens', form(params));
    expect((await j(r)).body.scopes).toEqual([
      { type: 'DATASOURCES:READ', resource: 'events', filter: '' },
      { type: 'DATASOURCES:APPEND', resource: 'events' },
    ]);
    r = await s.req('POST', '/v0/tokens/', {
      headers: json,
      body: JSON.stringify({
        name: 'from_json',
        description: 'd',
        scopes: [{ type: 'DATASOURCES:READ', resource: 'events', filter: 'n > 3' }, 'PIPES:READ:by_country'],
      }),
    });
    expect((await j(r)).body).toMatchObject({
      name: 'from_json',
      description: 'd',
      scopes: [
        { type: 'DATASOURCES:READ', resource: 'events', filter: 'n > 3' },
        { type: 'PIPES:READ', resource: 'by_country', filter: '' },
      ],
    });
    const api = createTinybirdApi({ baseUrl: s.url, token: s.token });
    const created = await api.createToken({ name: 'from_sdk', scope: ['DATASOURCES:APPEND:events'] });
    expect(created.token).toMatch(/^p\./);
    const ok = await fetch(`${s.url}/v0/events?name=events&token=${created.token}`, { method: 'POST', body: '{"country":"XX","n":0}' });
    expect(ok.status).toBe(202);
  });

  it('reads the token itself from a form body too (Tinybird takes every argument from the body)', async () => {
    const body = new URLSearchParams([
      ['name', 'by_form_token'],
      ['scope', 'DATASOURCES:READ:events'],
      ['token', s.token],
    ]);
    const r = await j(await s.req('POST', '/v0/tokens', { body, token: null }));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'by_form_token', scopes: [{ type: 'DATASOURCES:READ', resource: 'events', filter: '' }] });
    expect((await j(await s.req('GET', '/v0/tokens', { body: undefined, token: null }))).status).toBe(403);
    // A wrong one in the body is refused like anywhere else.
    const bad = new URLSearchParams([
      ['name', 'nope'],
      ['scope', 'DATASOURCES:READ:events'],
      ['token', `${s.token}x`],
    ]);
    expect(await j(await s.req('POST', '/v0/tokens', { body: bad, token: null }))).toEqual({
      status: 403,
      body: { error: 'invalid authentication token', documentation: AUTH_DOC },
    });
    expect(await tokenNames()).not.toContain('nope');
  });

  it('records the origin of a resource token (as the CLI creates them)', async () => {
    const ev = await s.app.services.datasources.get(s.app.services.access.defaultWorkspace, 'events');
    let r = await create([
      ['name', 'ds_origin'],
      ['origin', 'DS'],
      ['resource_id', 'events'],
      ['scope', 'DATASOURCES:APPEND:events'],
    ]);
    expect((await j(r)).body.origin).toEqual({ type: 'DS', resource_id: ev.id });
    r = await create([
      ['name', 'ds_origin2'],
      ['origin', 'DS'],
      ['scope', 'DATASOURCES:APPEND:events'],
    ]);
    expect(await j(r)).toEqual({ status: 400, body: { error: 'resource_id is required for origin DS' } });
  });

  it('answers every documented creation error and creates nothing', async () => {
    const before = await tokenNames();
    const cases: Array<[Array<[string, string]>, string]> = [
      [[['scope', 'ADMIN']], 'Missing argument name'],
      [[['name', 'x']], 'scope is mandatory'],
      [
        [
          ['name', 'x'],
          ['scope', ''],
        ],
        'scope is mandatory',
      ],
      [
        [
          ['name', 'x'],
          ['scope', 'INVALID:SCOPE'],
        ],
        'Unknown scope INVALID:SCOPE',
      ],
      [
        [
          ['name', 'x'],
          ['scope', 'ANOTHERINVALIDSCOPE'],
        ],
        'Unknown scope ANOTHERINVALIDSCOPE',
      ],
      [
        [
          ['name', 'x'],
          ['scope', 'ADMIN_USER'],
        ],
        'Cannot set ADMIN_USER scope, please provide a different target scope',
      ],
      [
        [
          ['name', 'x'],
          ['scope', 'AUTH'],
        ],
        'Cannot set ADMIN_USER scope, please provide a different target scope',
      ],
      [
        [
          ['name', 'x'],
          ['scope', 'DATASOURCES:DROP'],
        ],
        "scope 'DATASOURCES:DROP' requires a resource",
      ],
      [
        [
          ['name', 'x'],
          ['scope', 'PIPES:READ'],
        ],
        "scope 'PIPES:READ' requires a resource",
      ],
      [
        [
          ['name', 'x'],
          ['scope', 'DATASOURCES:APPEND:events:n > 1'],
        ],
        "filters can't only be applied to READ scope",
      ],
      [
        [
          ['name', 'x'],
          ['scope', 'DATASOURCES:READ:nonexistent'],
        ],
        'datasource or pipe nonexistent does not exist',
      ],
      [
        [
          ['name', 'x'],
          ['scope', 'PIPES:READ:events'],
        ],
        'datasource or pipe events does not exist',
      ],
      [
        [
          ['name', 'x'],
          ['scope', 'DATASOURCES:READ:events'],
          ['scope', 'DATASOURCES:READ:nope'],
        ],
        'datasource or pipe nope does not exist',
      ],
      [
        [
          ['name', 'admin token'],
          ['scope', 'ADMIN'],
        ],
        'Auth token with name "admin token" already exists',
      ],
    ];
    for (const [params, error] of cases) {
      const r = await j(await create(params));
      expect(r, error).toEqual({ status: 400, body: { error } });
    }
    // A filter is one safe SQL expression, checked like every user expression.
    for (const filter of ['1; DROP TABLE events', 'n IN (SELECT n FROM other)', "file('/etc/passwd') != ''", '(n > 1']) {
      const r = await create([
        ['name', 'x'],
        ['scope', `DATASOURCES:READ:events:${filter}`],
      ]);
      expect(r.status, filter).toBe(400);
      expect((await r.json()).error, filter).toMatch(/^Invalid filter/);
    }
    expect(await tokenNames()).toEqual(before);
  });

  it('needs ADMIN or TOKENS; TOKENS can not grant ADMIN nor see ADMIN values', async () => {
    const creator = (
      await j(
        await create([
          ['name', 'ds_creator'],
          ['scope', 'DATASOURCES:CREATE'],
        ]),
      )
    ).body.token;
    expect(await j(await s.req('GET', '/v0/tokens', { token: creator }))).toEqual({
      status: 403,
      body: { error: 'Token has not enough permissions to get information about Tokens', documentation: AUTH_DOC },
    });
    expect(
      await j(
        await create(
          [
            ['name', 'y'],
            ['scope', 'DATASOURCES:CREATE'],
          ],
          creator,
        ),
      ),
    ).toEqual({ status: 403, body: { error: 'token needs scope TOKENS', documentation: AUTH_DOC } });
    expect(await j(await s.req('GET', '/v0/tokens', { token: null }))).toEqual({
      status: 403,
      body: { error: 'invalid authentication token', documentation: AUTH_DOC },
    });

    const manager = (
      await j(
        await create([
          ['name', 'manager'],
          ['scope', 'TOKENS'],
        ]),
      )
    ).body.token;
    const list = (await j(await s.req('GET', '/v0/tokens', { token: manager }))).body.tokens as Array<Record<string, unknown>>;
    expect(list.find((t) => t.name === 'admin token')).not.toHaveProperty('token');
    expect(list.find((t) => t.name === 'ds_creator')!.token).toBe(creator);
    expect(
      await j(
        await create(
          [
            ['name', 'new_admin'],
            ['scope', 'ADMIN'],
          ],
          manager,
        ),
      ),
    ).toEqual({ status: 400, body: { error: 'Cannot set ADMIN scope, please provide a different target scope' } });
    expect(await j(await s.req('PUT', '/v0/tokens/manager?scope=ADMIN', { token: manager }))).toEqual({
      status: 400,
      body: { error: 'Cannot set ADMIN scope, please provide a different target scope' },
    });
    const r = await j(
      await create(
        [
          ['name', 'by_manager'],
          ['scope', 'DATASOURCES:READ:events'],
        ],
        manager,
      ),
    );
    expect(r.status).toBe(200);
    // An admin may create another admin token, which works as one.
    const admin2 = (
      await j(
        await create([
          ['name', 'admin2'],
          ['scope', 'ADMIN'],
        ]),
      )
    ).body;
    expect(admin2.scopes).toEqual([{ type: 'ADMIN' }]);
    expect((await s.req('GET', '/v0/tokens', { token: admin2.token })).status).toBe(200);
  });

  it('gets a token by name, id or value; a .token datafile; a token may read itself, nothing else', async () => {
    const all = (await j(await s.req('GET', '/v0/tokens'))).body.tokens as Array<Record<string, string>>;
    const reader = all.find((t) => t.name === 'reader')!;
    for (const ref of ['reader', reader.id, reader.token]) {
      expect(await j(await s.req('GET', `/v0/tokens/${encodeURIComponent(ref)}`)), ref).toEqual({ status: 200, body: reader });
    }
    const file = await s.req('GET', '/v0/tokens/reader.token');
    expect(file.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await file.text()).toBe(
      [
        'DESCRIPTION >',
        '    reads ES',
        '',
        "SCOPE 'DATASOURCES:READ'",
        'RESOURCE events',
        'FILTER >',
        "    country = 'ES' AND toString(n) != 'a:b'",
        '',
        "SCOPE 'DATASOURCES:APPEND'",
        'RESOURCE events',
        '',
        "SCOPE 'PIPES:READ'",
        'RESOURCE by_country',
        '',
        "SCOPE 'PIPES:DROP'",
        'RESOURCE all_rows',
        '',
        "SCOPE 'DATASOURCES:DROP'",
        'RESOURCE other',
        '',
        "SCOPE 'PIPES:CREATE'",
        '',
        "SCOPE 'TOKENS'",
        '',
      ].join('\n'),
    );
    const own = all.find((t) => t.name === 'from_form')!;
    expect(await j(await s.req('GET', '/v0/tokens/from_form', { token: own.token }))).toEqual({ status: 200, body: own });
    const hidden = { status: 403, body: { error: 'Token has not enough permissions to get information about this token', documentation: AUTH_DOC } };
    expect(await j(await s.req('GET', '/v0/tokens/reader', { token: own.token }))).toEqual(hidden);
    // Seed 003: an unknown token is a 404 for a caller that sees every token (ADMIN, TOKENS);
    // any other caller can not tell unknown from hidden.
    expect(await j(await s.req('GET', '/v0/tokens/nope'))).toEqual({ status: 404, body: { error: 'Token not found' } });
    expect(await j(await s.req('GET', '/v0/tokens/nope.token'))).toEqual({ status: 404, body: { error: 'Token not found' } });
    expect(await j(await s.req('GET', '/v0/tokens/nope', { token: own.token }))).toEqual(hidden);
  });

  it('PUT replaces name, description and every scope given; what is not sent stays', async () => {
    await create([
      ['name', 'to_change'],
      ['scope', 'DATASOURCES:CREATE'],
    ]);
    let r = await j(await s.req('PUT', '/v0/tokens/to_change?name=changed&description=new&scope=DATASOURCES:READ:events:n > 10&scope=PIPES:READ:by_country'));
    expect(r).toEqual({
      status: 200,
      body: expect.objectContaining({
        name: 'changed',
        description: 'new',
        scopes: [
          { type: 'DATASOURCES:READ', resource: 'events', filter: 'n > 10' },
          { type: 'PIPES:READ', resource: 'by_country', filter: '' },
        ],
      }),
    });
    const value = r.body.token;
    // In the body too.
    r = await j(
      await s.req(
        'PUT',
        '/v0/tokens/changed',
        form(
          new URLSearchParams([
            ['scope', 'DATASOURCES:APPEND:events'],
            ['description', 'body'],
          ]),
        ),
      ),
    );
    expect(r.body).toMatchObject({ name: 'changed', description: 'body', token: value, scopes: [{ type: 'DATASOURCES:APPEND', resource: 'events' }] });
    // Only a new name (query, form or seed 003's JSON body): the scopes and description stay.
    r = await j(await s.req('PUT', '/v0/tokens/changed?name=changed2'));
    expect(r.body).toMatchObject({ name: 'changed2', description: 'body', token: value, scopes: [{ type: 'DATASOURCES:APPEND', resource: 'events' }] });
    r = await j(await s.req('PUT', '/v0/tokens/changed2', { headers: json, body: JSON.stringify({ name: 'changed' }) }));
    expect(r.body).toMatchObject({ name: 'changed', description: 'body', scopes: [{ type: 'DATASOURCES:APPEND', resource: 'events' }] });
    expect((await s.req('POST', '/v0/events?name=events&wait=true', { token: value, body: '{"country":"PT","n":0}' })).status).toBe(200);
    // An empty scope list given removes them all.
    r = await j(await s.req('PUT', '/v0/tokens/changed?scope='));
    expect(r.body.scopes).toEqual([]);
    expect((await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() FROM events')}`, { token: value })).status).toBe(403);
    expect((await s.req('POST', '/v0/events?name=events&wait=true', { token: value, body: '{"country":"PT","n":0}' })).status).toBe(403);

    expect(await j(await s.req('PUT', '/v0/tokens/changed?scope=NOPE'))).toEqual({
      status: 400,
      body: {
        error:
          'Invalid provided scope, valid ones are: DATASOURCES:READ, DATASOURCES:APPEND, DATASOURCES:CREATE, DATASOURCES:DROP, PIPES:READ, PIPES:CREATE, PIPES:DROP, TOKENS, ADMIN',
      },
    });
    expect(await j(await s.req('PUT', '/v0/tokens/changed?name=admin token'))).toEqual({
      status: 400,
      body: { error: 'Auth token with name "admin token" already exists' },
    });
    expect(await j(await s.req('PUT', '/v0/tokens/nope?name=x'))).toEqual({ status: 404, body: { error: 'Static Token not found' } });
    expect(await j(await s.req('PUT', '/v0/tokens/changed?name=x', { token: value }))).toEqual({
      status: 403,
      body: { error: 'token needs scope TOKENS', documentation: AUTH_DOC },
    });
    expect((await j(await s.req('GET', '/v0/tokens/changed'))).body.name).toBe('changed');
  });

  it('scopes follow renamed resources (stored by id)', async () => {
    let r = await s.req('PUT', '/v0/datasources/other?name=other_renamed');
    expect(r.status).toBe(200);
    r = await s.req('GET', '/v0/tokens/reader');
    expect((await r.json()).scopes).toContainEqual({ type: 'DATASOURCES:DROP', resource: 'other_renamed' });
    r = await s.req('PUT', '/v0/datasources/other_renamed?name=other');
    expect(r.status).toBe(200);
  });

  it('refresh: a new value, same id and scopes; the old value stops working', async () => {
    const before = (
      await j(
        await create([
          ['name', 'to_refresh'],
          ['scope', 'PIPES:READ:all_rows'],
        ]),
      )
    ).body;
    expect((await s.req('GET', '/v0/pipes/all_rows.json', { token: before.token })).status).toBe(200);
    const { status, body } = await j(await s.req('POST', '/v0/tokens/to_refresh/refresh'));
    expect(status).toBe(200);
    expect(body).toEqual({ ...before, token: expect.stringMatching(/^p\./) });
    expect(body.token).not.toBe(before.token);
    expect(await j(await s.req('GET', '/v0/pipes/all_rows.json', { token: before.token }))).toEqual({
      status: 403,
      body: { error: 'invalid authentication token', documentation: AUTH_DOC },
    });
    expect((await s.req('GET', '/v0/pipes/all_rows.json', { token: body.token })).status).toBe(200);
    // By id, by value; errors.
    const again = (await j(await s.req('POST', `/v0/tokens/${body.id}/refresh`))).body;
    expect((await j(await s.req('POST', `/v0/tokens/${again.token}/refresh`))).status).toBe(200);
    expect(await j(await s.req('GET', '/v0/tokens/to_refresh/refresh'))).toEqual({ status: 405, body: { error: 'refresh must be done with POST' } });
    expect(await j(await s.req('POST', '/v0/tokens/nope/refresh'))).toEqual({ status: 404, body: { error: 'Static Token not found' } });
    const creator = (await j(await s.req('GET', '/v0/tokens/ds_creator'))).body.token;
    expect(await j(await s.req('POST', '/v0/tokens/ds_creator/refresh', { token: creator }))).toEqual({
      status: 403,
      body: { error: 'token needs scope TOKENS', documentation: AUTH_DOC },
    });
  });

  it('delete: {"ok": true}, the value stops working, then 404', async () => {
    const t = (
      await j(
        await create([
          ['name', 'to_delete'],
          ['scope', 'PIPES:READ:all_rows'],
        ]),
      )
    ).body;
    expect(await j(await s.req('DELETE', '/v0/tokens/to_delete'))).toEqual({ status: 200, body: { ok: true } });
    expect((await s.req('GET', '/v0/pipes/all_rows.json', { token: t.token })).status).toBe(403);
    expect(await j(await s.req('DELETE', '/v0/tokens/to_delete'))).toEqual({ status: 404, body: { error: 'Static Token not found' } });
    const t2 = (
      await j(
        await create([
          ['name', 'to_delete_by_id'],
          ['scope', 'TOKENS'],
        ]),
      )
    ).body;
    expect((await s.req('DELETE', `/v0/tokens/${t2.id}`, { token: t2.token })).status).toBe(200);
    expect(await tokenNames()).not.toContain('to_delete_by_id');
  });

  it('a forged or truncated static token is refused', async () => {
    const t = (await j(await s.req('GET', '/v0/tokens/reader'))).body.token as string;
    const [, payload] = t.split('.');
    for (const bad of [t.slice(0, -2), `p.${payload}.${'A'.repeat(43)}`, `${t}x`, 'p.', 'p..', `p.${payload}`]) {
      expect(await j(await s.req('GET', '/v0/tokens', { token: bad })), bad).toEqual({
        status: 403,
        body: { error: 'invalid authentication token', documentation: AUTH_DOC },
      });
    }
  });
});

describe('JWT tokens', () => {
  const exp = () => now() + 600;

  it('are minted by POST /v0/tokens?expiration_time= with a JSON body, and not stored', async () => {
    const before = await tokenNames();
    const e = exp();
    const r = await s.req('POST', `/v0/tokens?name=jwt_one&expiration_time=${e}`, {
      body: JSON.stringify({ scopes: [{ type: 'PIPES:READ', resource: 'by_country', fixed_params: { country: 'FR' } }], limits: { rps: 100 } }),
    });
    const { status, body } = await j(r);
    expect(status).toBe(200);
    expect(body).toEqual({
      token: expect.stringMatching(/^eyJ/),
      name: 'jwt_one',
      exp: e,
      scopes: [{ type: 'PIPES:READ', resource: 'by_country', fixed_params: { country: 'FR' } }],
      limits: { rps: 100 },
    });
    const claims = JSON.parse(Buffer.from(body.token.split('.')[1], 'base64url').toString());
    expect(claims).toEqual({ workspace_id: wsId, name: 'jwt_one', exp: e, scopes: body.scopes, limits: { rps: 100 } });
    // Signed with the workspace admin token: anyone holding it can sign the same.
    expect(body.token).toBe(selfSigned(claims, signer));
    expect(await tokenNames()).toEqual(before);
    const data = await j(await s.req('GET', '/v0/pipes/by_country.json', { token: body.token }));
    expect(data.body.data).toEqual([{ country: 'FR', total: sum('FR') }]);
    // A JSON body sent as a form (curl -d) is still JSON.
    const curl = await j(
      await s.req('POST', `/v0/tokens?name=jwt_curl&expiration_time=${e}`, {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: JSON.stringify({ scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }] }),
      }),
    );
    expect(curl.body.token).toMatch(/^eyJ/);
    // TOKENS may mint too; the name may come in the body; limits are optional.
    const manager = (await j(await s.req('GET', '/v0/tokens/manager'))).body.token;
    const r2 = await j(
      await s.req('POST', `/v0/tokens?expiration_time=${e}`, {
        token: manager,
        headers: json,
        body: JSON.stringify({ name: 'in_body', scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }] }),
      }),
    );
    expect(r2.body).toMatchObject({ name: 'in_body', limits: { rps: null } });
  });

  it('mint errors', async () => {
    const e = exp();
    const mint = (q: string, body: unknown, token?: string) =>
      s.req('POST', `/v0/tokens?${q}`, { token, headers: json, body: typeof body === 'string' ? body : JSON.stringify(body) });
    const past = now() - 86400;
    expect(await j(await mint(`name=x&expiration_time=${past}`, { scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }] }))).toEqual({
      status: 400,
      body: {
        error: `The specified expiration time: '${past}' is invalid, must be a future unix epoch timestamp indicating the token expiration time`,
        documentation: 'https://docs.tinybird.co/api-reference/token-api.html#post--v0-tokens-?',
      },
    });
    expect((await mint('name=x&expiration_time=soon', { scopes: [] })).status).toBe(400);
    const cases: Array<[unknown, string]> = [
      [{ scopes: 'PIPES:READ:all_rows' }, 'Invalid body, scopes must be a list of scope'],
      [{}, 'Invalid body, scopes must be a list of scope'],
      [{ scopes: [{ type: 'ADMIN' }] }, 'Invalid scope, only PIPES:READ, DATASOURCES:READ, DATASOURCES:APPEND are allowed'],
      [{ scopes: [{ type: 'PIPES:READ' }] }, 'When creating a jwt token for PIPES:READ, a resource name is required'],
      [{ scopes: [{ type: 'PIPES:READ', resource: 'nope' }] }, "Resource 'nope' not found"],
      [{ scopes: [{ type: 'DATASOURCES:READ', resource: 'by_country' }] }, "Resource 'by_country' not found"],
      [{ scopes: [{ type: 'DATASOURCES:APPEND', resource: 'events', filter: 'n > 1' }] }, "filters can't only be applied to READ scope"],
      [{ scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }], limits: { rps: -1 } }, 'Invalid limits, rps must be a positive number'],
      ['{not json', 'Invalid body, it must be a JSON object'],
    ];
    for (const [body, error] of cases) expect(await j(await mint(`name=x&expiration_time=${e}`, body)), error).toEqual({ status: 400, body: { error } });
    expect(await j(await mint(`expiration_time=${e}`, { scopes: [] }))).toEqual({ status: 400, body: { error: 'Missing argument name' } });
    const bad = await j(
      await mint(`name=x&expiration_time=${e}`, { scopes: [{ type: 'DATASOURCES:READ', resource: 'events', filter: '1; DROP TABLE events' }] }),
    );
    expect(bad.status).toBe(400);
    const creator = (await j(await s.req('GET', '/v0/tokens/ds_creator'))).body.token;
    expect(await j(await mint(`name=x&expiration_time=${e}`, { scopes: [] }, creator))).toEqual({
      status: 403,
      body: { error: 'token needs scope TOKENS', documentation: AUTH_DOC },
    });
  });

  it('self-signed JWTs (by name or id) work; malformed, badly signed, other algorithms and expired ones are refused', async () => {
    const ws = s.app.services.access.defaultWorkspace;
    const pipe = await s.app.services.pipes.get(ws, 'all_rows');
    const claims = (extra: Record<string, unknown> = {}) => ({
      workspace_id: wsId,
      name: 'self',
      exp: exp(),
      scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }],
      ...extra,
    });
    const get = (token: string) => s.req('GET', '/v0/pipes/all_rows.json', { token });
    expect((await get(selfSigned(claims(), signer))).status).toBe(200);
    expect((await get(selfSigned(claims({ scopes: [{ type: 'PIPES:READ', resource: pipe.id, fixed_params: '' }] }), signer))).status).toBe(200);
    // Any ADMIN token of the workspace signs (the helper's workspace admin token too); iat is not checked.
    expect((await get(selfSigned(claims({ iat: now() + 3600 }), s.token))).status).toBe(200);
    const invalid = { status: 403, body: { error: 'invalid authentication token', documentation: AUTH_DOC } };
    const good = selfSigned(claims(), signer);
    const [h, p] = good.split('.');
    const noneAlg = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
    for (const token of [
      selfSigned(claims(), 'not-the-admin-token'),
      selfSigned(claims(), signer, { alg: 'HS512', typ: 'JWT' }),
      selfSigned(claims(), signer, { alg: 'none' }),
      noneAlg,
      `${h}.${p}`,
      `${h}.${p}.${good.split('.')[2].slice(0, -3)}`,
      'eyJ.eyJ.sig',
      'garbage',
      selfSigned(claims({ workspace_id: crypto.randomUUID() }), signer),
      selfSigned(claims({ scopes: [{ type: 'ADMIN' }] }), signer),
      selfSigned(claims({ scopes: [{ type: 'DATASOURCES:CREATE', resource: 'events' }] }), signer),
      selfSigned(claims({ scopes: 'PIPES:READ' }), signer),
      selfSigned(claims({ scopes: [{ type: 'DATASOURCES:READ', resource: 'events', filter: '1; DROP TABLE events' }] }), signer),
      selfSigned(claims({ scopes: [{ type: 'PIPES:READ', resource: 'all_rows', fixed_params: [1] }] }), signer),
      selfSigned(claims({ exp: 'tomorrow' }), signer),
      selfSigned(claims({ limits: { rps: 'many' } }), signer),
    ]) {
      expect(await j(await get(token)), token).toEqual(invalid);
    }
    const noExp = claims();
    delete (noExp as Record<string, unknown>).exp;
    expect(await j(await get(selfSigned(noExp, signer)))).toEqual({
      status: 403,
      body: { error: "JWT tokens is missing the 'exp' claim", documentation: AUTH_DOC },
    });
    expect(await j(await get(selfSigned(claims({ exp: now() - 1 }), signer)))).toEqual({
      status: 403,
      body: { error: 'invalid authentication token. Signature has expired', documentation: AUTH_DOC },
    });
    // A scope on a pipe the workspace does not have grants nothing.
    expect(await j(await get(selfSigned(claims({ scopes: [{ type: 'PIPES:READ', resource: 'nope' }] }), signer)))).toEqual({
      status: 403,
      body: { error: "The token you have provided doesn't have access to this resource", documentation: AUTH_DOC },
    });
  });

  it('are refused by handlers that do not take them', async () => {
    const token = selfSigned({ workspace_id: wsId, name: 'x', exp: exp(), scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }] }, signer);
    const cases: Array<[string, string, string]> = [
      ['GET', '/v0/pipes', 'APIPipeListHandler'],
      ['POST', '/v0/pipes?name=p&sql=select+1', 'APIPipeListHandler'],
      ['GET', '/v0/pipes/all_rows', 'APIPipeHandler'],
      ['GET', '/v0/pipes/all_rows.pipe', 'APIPipeHandler'],
      ['GET', '/v0/datasources', 'APIDataSourcesHandler'],
      ['GET', '/v0/datasources/events', 'APIDataSourceHandler'],
      ['POST', '/v0/datasources/events/truncate', 'APIDataSourceTruncateHandler'],
      ['GET', '/v0/jobs', 'APIJobsHandler'],
      ['GET', '/v0/tokens', 'APITokensHandler'],
      ['POST', '/v0/tokens/admin token/refresh', 'APITokenRefreshHandler'],
    ];
    for (const [method, path, handler] of cases) {
      expect(await j(await s.req(method, path, { token })), path).toEqual({
        status: 403,
        body: { error: `invalid authentication token. Handler ${handler} does not support JWT tokens`, documentation: AUTH_DOC },
      });
    }
    expect(await count(s, 'events')).toBeGreaterThan(0);
  });

  it('stop working when the admin token that signed them is refreshed', async () => {
    const admin2 = (await j(await s.req('GET', '/v0/tokens/admin2'))).body.token;
    const token = selfSigned({ workspace_id: wsId, name: 'x', exp: exp(), scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }] }, admin2);
    expect((await s.req('GET', '/v0/pipes/all_rows.json', { token })).status).toBe(200);
    const refreshed = (await j(await s.req('POST', '/v0/tokens/admin2/refresh'))).body.token;
    expect((await s.req('GET', '/v0/pipes/all_rows.json', { token })).status).toBe(403);
    const again = selfSigned({ workspace_id: wsId, name: 'x', exp: exp(), scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }] }, refreshed);
    expect((await s.req('GET', '/v0/pipes/all_rows.json', { token: again })).status).toBe(200);
  });

  it('fixed_params win over query string, form and JSON parameters, per pipe', async () => {
    const token = selfSigned(
      {
        workspace_id: wsId,
        name: 'fixed',
        exp: exp(),
        scopes: [
          { type: 'PIPES:READ', resource: 'by_country', fixed_params: { country: 'FR' } },
          { type: 'PIPES:READ', resource: 'by_country_copy', fixed_params: { country: 'US' } },
        ],
      },
      signer,
    );
    const fr = [{ country: 'FR', total: sum('FR') }];
    const data = async (r: Response) => (await j(r)).body.data;
    expect(await data(await s.req('GET', '/v0/pipes/by_country.json', { token }))).toEqual(fr);
    expect(await data(await s.req('GET', '/v0/pipes/by_country.json?country=ES', { token }))).toEqual(fr);
    expect(await data(await s.req('GET', '/v0/pipes/by_country.json?country=ES&country=US', { token }))).toEqual(fr);
    expect(await data(await s.req('POST', '/v0/pipes/by_country.json', { token, headers: json, body: JSON.stringify({ country: 'ES' }) }))).toEqual(fr);
    expect(await data(await s.req('POST', '/v0/pipes/by_country.json', { token, ...form({ country: 'ES' }) }))).toEqual(fr);
    expect(await data(await s.req('GET', `/v0/pipes/by_country.json?token=${token}&country=ES`, { token: null }))).toEqual(fr);
    expect(await data(await s.req('GET', '/v0/pipes/by_country_copy.json?country=ES', { token }))).toEqual([{ country: 'US', total: sum('US') }]);
    // q= may read the endpoint (`_`), not another pipe with the first pipe's parameters.
    expect(await data(await s.req('GET', `/v0/pipes/by_country.json?q=${encodeURIComponent('SELECT total FROM _')}&country=ES`, { token }))).toEqual([
      { total: sum('FR') },
    ]);
    const r = await j(await s.req('GET', `/v0/pipes/by_country.json?q=${encodeURIComponent('SELECT * FROM by_country_copy')}`, { token }));
    expect(r).toEqual({
      status: 403,
      body: { error: "The token fixes the parameter 'country' of 'by_country_copy' to another value", documentation: AUTH_DOC },
    });
    // Through the Query API a pipe renders with its token's fixed values, whatever the request says.
    const one = selfSigned(
      { workspace_id: wsId, name: 'one', exp: exp(), scopes: [{ type: 'PIPES:READ', resource: 'by_country', fixed_params: { country: 'FR' } }] },
      signer,
    );
    const sql = (q: string, extra = '', t = token) => s.req('GET', `/v0/sql?q=${encodeURIComponent(q)}${extra}`, { token: t });
    expect(await (await sql('SELECT total FROM by_country FORMAT CSV', '&country=ES', one)).text()).toBe(`${sum('FR')}\n`);
    expect(await (await sql('SELECT total FROM by_country FORMAT CSV', '', one)).text()).toBe(`${sum('FR')}\n`);
    expect((await sql('SELECT count() FROM events', '', one)).status).toBe(403);
    // Two scopes fixing country differently: a query is answered only when the request pins the value of the pipe it reads.
    expect((await sql('SELECT total FROM by_country_copy FORMAT CSV')).status).toBe(403);
    expect((await sql('SELECT total FROM by_country_copy FORMAT CSV', '&country=FR')).status).toBe(403);
    expect(await (await sql('SELECT total FROM by_country_copy FORMAT CSV', '&country=US')).text()).toBe(`${sum('US')}\n`);
    expect((await sql('SELECT * FROM by_country, by_country_copy', '&country=US')).status).toBe(403);
  });

  it('DATASOURCES:READ (with filter) reads through /v0/sql; DATASOURCES:APPEND appends through /v0/events', async () => {
    const token = selfSigned(
      {
        workspace_id: wsId,
        name: 'ds',
        exp: exp(),
        scopes: [
          { type: 'DATASOURCES:READ', resource: 'events', filter: "country = 'ES'" },
          { type: 'DATASOURCES:APPEND', resource: 'other' },
        ],
      },
      signer,
    );
    const sql = (q: string) => s.req('GET', `/v0/sql?q=${encodeURIComponent(q)}`, { token });
    expect(await (await sql('SELECT count(), sum(n) FROM events FORMAT CSV')).text()).toBe(`${rows.filter((r) => r.country === 'ES').length},${sum('ES')}\n`);
    expect((await sql('SELECT count() FROM other')).status).toBe(403);
    expect((await sql('SELECT count() FROM by_country')).status).toBe(403);
    let r = await s.req('POST', '/v0/events?name=other&wait=true', { token, body: '{"country":"ES","n":1}' });
    expect([r.status, await r.json()]).toEqual([200, { successful_rows: 1, quarantined_rows: 0 }]);
    r = await s.req('POST', '/v0/events?name=events', { token, body: '{"country":"ES","n":1}' });
    expect([r.status, await r.text()]).toEqual([403, 'Invalid token\n']);
    r = await s.req('POST', '/v0/events?name=brand_new', { token, body: '{"country":"ES","n":1}' });
    expect([r.status, await r.text()]).toEqual([403, 'Invalid token for DS autocreation\n']);
    expect(await count(s, 'other')).toBe(1);
  });
});

describe('@tinybirdco/sdk', () => {
  it('createJWT / client.tokens.createJWT mint a JWT that queries an endpoint; fixed_params can not be widened', async () => {
    const { token } = await createJWT(
      { baseUrl: s.url, token: s.token },
      {
        name: 'sdk_user',
        expiresAt: new Date(Date.now() + 3600_000),
        scopes: [{ type: 'PIPES:READ', resource: 'by_country', fixed_params: { country: 'US' } }],
      },
    );
    expect(token).toMatch(/^eyJ/);
    const user = createClient({ baseUrl: s.url, token });
    const res = await user.query('by_country', { country: 'ES' });
    expect(res.data).toEqual([{ country: 'US', total: sum('US') }]);
    const api = createTinybirdApi({ baseUrl: s.url, token });
    expect((await api.query('by_country', { country: ['ES', 'FR'] })).data).toEqual([{ country: 'US', total: sum('US') }]);
    await expect(api.query('all_rows')).rejects.toMatchObject({ statusCode: 403 });
    await expect(api.sql('SELECT count() FROM events')).rejects.toBeInstanceOf(TinybirdApiError);

    const admin = createClient({ baseUrl: s.url, token: s.token });
    const viaClient = await admin.tokens.createJWT({
      name: 'sdk_ds',
      expiresAt: Math.floor(Date.now() / 1000) + 600,
      scopes: [{ type: 'DATASOURCES:READ', resource: 'events', filter: "country = 'FR'" }],
      limits: { rps: 50 },
    });
    const reader = createTinybirdApi({ baseUrl: s.url, token: viaClient.token });
    const out = (await reader.sql('SELECT count() AS c FROM events FORMAT JSON')) as { data: Array<{ c: number }> };
    expect(out.data).toEqual([{ c: rows.filter((r) => r.country === 'FR').length }]);
    await expect(createJWT({ baseUrl: s.url, token: s.token }, { name: 'bad', expiresAt: new Date(Date.now() - 1000), scopes: [] })).rejects.toMatchObject({
      status: 400,
    });
  });

  it('createToken with a scope list makes a static token', async () => {
    const api = createTinybirdApi({ baseUrl: s.url, token: s.token });
    const { token } = await api.createToken({ name: 'sdk_static', scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }] });
    expect(token).toMatch(/^p\./);
    const res = await createTinybirdApi({ baseUrl: s.url, token }).query('all_rows');
    expect(res.data).toEqual([{ c: expect.any(Number) }]);
  });
});

describe('rate limits', () => {
  /** Holds the app's clock (the limiters' time) still while `fn` runs; `fn` may move it with `advance`. */
  async function clockHeld(fn: (advance: (ms: number) => void) => Promise<void>): Promise<void> {
    const clock = s.app.services.clock;
    const real = clock.now;
    let t = Date.now();
    clock.now = () => new Date(t);
    try {
      await fn((ms) => {
        t += ms;
      });
    } finally {
      clock.now = real;
    }
  }

  it('a JWT with limits.rps answers 429 with Retry-After and X-RateLimit-* once over it', () =>
    clockHeld(async (advance) => {
      const token = selfSigned(
        { workspace_id: wsId, name: 'slow', exp: now() + 600, scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }], limits: { rps: 1 } },
        signer,
      );
      let r = await s.req('GET', '/v0/pipes/all_rows.json', { token });
      expect(r.status).toBe(200);
      expect([r.headers.get('x-ratelimit-limit'), r.headers.get('x-ratelimit-remaining')]).toEqual(['1', '0']);
      r = await s.req('GET', '/v0/pipes/all_rows.json', { token });
      expect(await j(r)).toEqual({
        status: 429,
        body: { error: 'Too many requests: retry after 1 seconds', documentation: 'https://docs.tinybird.co/api-reference/api-reference.html#limits' },
      });
      expect([
        r.headers.get('retry-after'),
        r.headers.get('x-ratelimit-limit'),
        r.headers.get('x-ratelimit-remaining'),
        r.headers.get('x-ratelimit-reset'),
      ]).toEqual(['1', '1', '0', '1']);
      // Another JWT has its own bucket; static tokens are not limited.
      const other = selfSigned(
        { workspace_id: wsId, name: 'other', exp: now() + 600, scopes: [{ type: 'PIPES:READ', resource: 'all_rows' }], limits: { rps: 1 } },
        signer,
      );
      expect((await s.req('GET', '/v0/pipes/all_rows.json', { token: other })).status).toBe(200);
      r = await s.req('GET', '/v0/pipes/all_rows.json');
      expect([r.status, r.headers.get('x-ratelimit-limit')]).toEqual([200, null]);
      advance(1100);
      expect((await s.req('GET', '/v0/pipes/all_rows.json', { token })).status).toBe(200);
    }));

  it('the Events API answers its 429 as text', () =>
    clockHeld(async () => {
      const token = selfSigned(
        { workspace_id: wsId, name: 'ingest', exp: now() + 600, scopes: [{ type: 'DATASOURCES:APPEND', resource: 'other' }], limits: { rps: 1 } },
        signer,
      );
      expect((await s.req('POST', '/v0/events?name=other', { token, body: '{"country":"ES","n":1}' })).status).toBe(202);
      const r = await s.req('POST', '/v0/events?name=other', { token, body: '{"country":"ES","n":1}' });
      expect([r.status, await r.text(), r.headers.get('retry-after')]).toEqual([429, 'Too many requests\n', '1']);
    }));

  it('PIPIT_ENDPOINT_RPS limits each endpoint for every token', () =>
    clockHeld(async () => {
      const config = s.app.services.config as { endpointRps: number };
      config.endpointRps = 2;
      try {
        const statuses = [];
        for (let i = 0; i < 4; i++) statuses.push((await s.req('GET', '/v0/pipes/all_rows.json')).status);
        expect(statuses).toEqual([200, 200, 429, 429]);
        const reader = (await j(await s.req('GET', '/v0/tokens/to_refresh'))).body.token;
        const r = await s.req('GET', '/v0/pipes/all_rows.json', { token: reader });
        expect(await j(r)).toEqual({
          status: 429,
          body: { error: expect.stringMatching(/^Too many requests: retry after 1 seconds$/), documentation: expect.any(String) },
        });
        const other = await s.req('GET', '/v0/pipes/by_country.json');
        expect([other.status, other.headers.get('x-ratelimit-limit'), other.headers.get('x-ratelimit-remaining')]).toEqual([200, '2', '1']);
        // Other routes are not endpoint-limited.
        expect((await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT 1')}`)).status).toBe(200);
      } finally {
        config.endpointRps = 0;
      }
    }));
});
