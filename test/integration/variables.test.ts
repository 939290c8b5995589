/**
 * The Variables API and tb_secret()/tb_var(): values encrypted at rest, never in any response,
 * and passed to the engine as bound parameters (not in the SQL text, not in explain output).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
const SECRET = "s3cr'et-\\value-" + Math.random().toString(36).slice(2);
const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });

beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.close();
});

describe('Variables API', () => {
  it('creates, lists, gets, updates and deletes; values are never returned', async () => {
    let r = await s.req('POST', '/v0/variables', form({ name: 'pg_password', value: SECRET, type: 'secret' }));
    expect(r.status).toBe(200);
    const created = await r.json();
    expect(Object.keys(created).sort()).toEqual(['created_at', 'edited_by', 'name', 'type', 'updated_at']);
    expect(created).toMatchObject({ name: 'pg_password', type: 'secret' });
    r = await s.req('GET', '/v0/variables');
    const list = await r.text();
    expect(JSON.parse(list).variables.map((v: { name: string }) => v.name)).toEqual(['pg_password']);
    expect(list).not.toContain(SECRET);
    r = await s.req('GET', '/v0/variables/pg_password');
    expect(await r.json()).toMatchObject({ name: 'pg_password', type: 'secret' });
    r = await s.req('PUT', '/v0/variables/pg_password', form({ value: SECRET }));
    expect(r.status).toBe(200);
    await s.req('POST', '/v0/variables', form({ name: 'gone', value: 'x' }));
    r = await s.req('DELETE', '/v0/variables/gone');
    expect(await r.json()).toEqual({ ok: true });
    expect((await s.req('GET', '/v0/variables/gone')).status).toBe(404);
  });

  it('errors', async () => {
    const cases: Array<[string, string, Record<string, string> | undefined, number, string]> = [
      ['POST', '/v0/variables', { value: 'x' }, 400, 'missing name'],
      ['POST', '/v0/variables', { name: 'a1' }, 400, 'missing value'],
      ['POST', '/v0/variables', { name: 'a1', value: 'x', type: 'plain' }, 400, 'Supported variable types are: secret'],
      ['POST', '/v0/variables', { name: 'a1', value: 'x'.repeat(8193) }, 400, 'Variable maximum size is 8KB'],
      ['POST', '/v0/variables', { name: 'pg_password', value: 'x' }, 400, 'Variable "pg_password" already exists'],
      ['PUT', '/v0/variables/pg_password', { value: 'x', type: 'secret' }, 400, 'Variable type cannot be changed'],
      ['PUT', '/v0/variables/nope', { value: 'x' }, 404, 'Variable not found'],
      ['DELETE', '/v0/variables/nope', undefined, 404, 'Variable not found'],
      ['GET', '/v0/variables/nope', undefined, 404, 'Not found'],
    ];
    for (const [m, p, body, status, msg] of cases) {
      const r = await s.req(m, p, body ? form(body) : {});
      expect(r.status, `${m} ${p}`).toBe(status);
      expect((await r.json()).error, `${m} ${p}`).toBe(msg);
    }
  });

  it('needs an admin token', async () => {
    const ws = s.app.services.access.defaultWorkspace;
    const tok = (await s.app.services.access.createToken(ws.id, 'creator', [{ type: 'DATASOURCES:CREATE' }])).token;
    for (const [m, p] of [
      ['GET', '/v0/variables'],
      ['POST', '/v0/variables'],
      ['GET', '/v0/variables/pg_password'],
      ['DELETE', '/v0/variables/pg_password'],
    ]) {
      const r = await s.req(m, p, { token: tok });
      expect(r.status).toBe(403);
      expect((await r.json()).error).toBe('token needs scope admin');
    }
  });

  it('/v0/env_vars (seed 003) is the same store: JSON {name, value}, list as env_vars, PUT/DELETE by name; no value returned', async () => {
    const json = { 'content-type': 'application/json' };
    const value = `env-${SECRET}`;
    let r = await s.req('POST', '/v0/env_vars', { headers: json, body: JSON.stringify({ name: 'api_key', value }) });
    expect(r.status).toBe(200);
    let text = await r.text();
    expect(text).not.toContain(value);
    expect(JSON.parse(text)).toMatchObject({ name: 'api_key', type: 'secret' });
    // Both lists show both names, neither shows a value.
    text = await (await s.req('GET', '/v0/env_vars')).text();
    expect(JSON.parse(text).env_vars.map((v: { name: string }) => v.name)).toEqual(expect.arrayContaining(['pg_password', 'api_key']));
    expect(text).not.toContain(value);
    expect(text).not.toContain(SECRET);
    text = await (await s.req('GET', '/v0/variables')).text();
    expect(JSON.parse(text).variables.map((v: { name: string }) => v.name)).toContain('api_key');
    expect(text).not.toContain(value);
    r = await s.req('PUT', '/v0/env_vars/api_key', { headers: json, body: JSON.stringify({ value: 'v2' }) });
    expect(r.status).toBe(200);
    expect(await r.text()).not.toContain('v2"');
    expect(await s.app.services.variables.values(s.app.services.access.defaultWorkspace)).toMatchObject({ api_key: 'v2' });
    // tb_secret reads it like any variable.
    r = await s.req('GET', `/v0/sql?q=${encodeURIComponent("% SELECT length({{ tb_secret('api_key') }}) AS n FORMAT CSV")}`);
    expect(await r.text()).toBe('2\n');
    expect(await (await s.req('DELETE', '/v0/env_vars/api_key')).json()).toEqual({ ok: true });
    expect((await s.req('GET', '/v0/variables/api_key')).status).toBe(404);
    expect((await s.req('DELETE', '/v0/env_vars/api_key')).status).toBe(404);
    // ADMIN only, as /v0/variables.
    const ws = s.app.services.access.defaultWorkspace;
    const tok = (await s.app.services.access.createToken(ws.id, 'env_reader', [{ type: 'DATASOURCES:CREATE' }])).token;
    expect((await s.req('GET', '/v0/env_vars', { token: tok })).status).toBe(403);
    expect((await s.req('POST', '/v0/env_vars', { token: tok, headers: json, body: JSON.stringify({ name: 'x', value: 'y' }) })).status).toBe(403);
  });

  it('JSON fields that are not strings are a 400 (never stored as "[object Object]")', async () => {
    const json = { 'content-type': 'application/json' };
    for (const [p, body] of [
      ['/v0/env_vars', { name: 'obj', value: { a: 1 } }],
      ['/v0/variables', { name: 'arr', value: ['a'] }],
      ['/v0/env_vars', { name: ['x'], value: 'a' }],
      ['/v0/env_vars', [{ name: 'x', value: 'a' }]],
    ] as const) {
      const r = await s.req('POST', p, { headers: json, body: JSON.stringify(body) });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect((await r.json()).error).toMatch(/must be a string|should be a JSON object/);
    }
    expect((await s.req('POST', '/v0/env_vars', { headers: json, body: '{"name": "x", ' })).status).toBe(400);
    const names = (await (await s.req('GET', '/v0/variables')).json()).variables.map((v: { name: string }) => v.name);
    expect(names).not.toEqual(expect.arrayContaining(['obj']));
    expect(names).not.toContain('arr');
  });

  it('values are encrypted at rest: the catalog does not hold them', async () => {
    // On a shared PostgreSQL catalog (npm run test:pg) the stored records are what the catalog holds.
    if (s.app.services.catalog.shared) {
      const stored = JSON.stringify(await s.app.services.catalog.listVariables(s.app.services.access.defaultWorkspace.id));
      expect(stored).toContain('v1.');
      expect(stored.includes(SECRET.slice(-10))).toBe(false);
      return;
    }
    const catalogDir = path.join(s.dataDir, 'catalog');
    const needle = Buffer.from(SECRET.slice(-10));
    const walk = (d: string): string[] =>
      fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
    for (const f of walk(catalogDir)) expect(fs.readFileSync(f).includes(needle), f).toBe(false);
  });
});

describe('tb_secret in templates', () => {
  it('reaches the engine as a bound parameter, never as text', async () => {
    const seen: string[] = [];
    const engine = s.app.services.engine;
    const orig = engine.select.bind(engine);
    engine.select = (sql, opts) => {
      seen.push(sql);
      return orig(sql, opts);
    };
    try {
      let r = await s.req(
        'GET',
        `/v0/sql?q=${encodeURIComponent("% SELECT {{ tb_secret('pg_password') }} = 'guess' AS ok, length({{ tb_secret('pg_password') }}) AS n FORMAT JSONEachRow")}`,
      );
      expect(await r.text()).toBe(`{"ok":0,"n":${Buffer.byteLength(SECRET)}}\n`);
      r = await s.req('GET', `/v0/sql?q=${encodeURIComponent("% SELECT {{ tb_secret('pg_password') }} AS v")}&explain=true`);
      const explained = await r.text();
      expect(explained).not.toContain(SECRET);
      expect(JSON.parse(explained).debug_query).toContain('{tb_secret_pg_password:String}');
      const pipe = {
        name: 'secret_pipe',
        nodes: [{ name: 'n', type: 'endpoint', sql: "%\nSELECT {{ tb_secret('pg_password') }} = {{ String(guess, 'x') }} AS ok" }],
      };
      r = await s.req('POST', '/v0/pipes', { body: JSON.stringify(pipe), headers: { 'content-type': 'application/json' } });
      expect(await r.text()).not.toContain(SECRET);
      r = await s.req('GET', `/v0/pipes/secret_pipe.json?guess=${encodeURIComponent(SECRET)}`);
      expect((await r.json()).data).toEqual([{ ok: 1 }]);
      r = await s.req('GET', '/v0/pipes/secret_pipe/explain');
      expect(await r.text()).not.toContain(SECRET);
    } finally {
      engine.select = orig;
    }
    expect(seen.length).toBeGreaterThan(0);
    for (const sql of seen) expect(sql).not.toContain(SECRET);
  });

  it('a cached endpoint answers with the current value of a secret it binds, not a result computed with the old one', async () => {
    expect((await s.req('POST', '/v0/variables', form({ name: 'cached_key', value: 'one' }))).status).toBe(200);
    const pipe = {
      name: 'cached_secret',
      nodes: [{ name: 'n', type: 'endpoint', sql: "%\n{{ cache_ttl('1h') }}\nSELECT length({{ tb_secret('cached_key') }}) AS n" }],
    };
    expect((await s.req('POST', '/v0/pipes', { body: JSON.stringify(pipe), headers: { 'content-type': 'application/json' } })).status).toBe(200);
    const n = async () => (await (await s.req('GET', '/v0/pipes/cached_secret.json')).json()).data[0].n;
    expect(await n()).toBe(3);
    expect(await n()).toBe(3); // from the cache
    expect((await s.req('PUT', '/v0/variables/cached_key', form({ value: 'three' }))).status).toBe(200);
    expect(await n()).toBe(5);
  });

  it('a missing secret is a template error; a default is used when unset', async () => {
    let r = await s.req('GET', `/v0/sql?q=${encodeURIComponent("% SELECT {{ tb_secret('nope') }}")}&x=1`);
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe(
      "Template Syntax Error: Cannot access secret 'nope'. Check the secret exists in the Workspace and the token has the required scope.",
    );
    r = await s.req('GET', `/v0/sql?q=${encodeURIComponent("% SELECT {{ tb_secret('nope', 'fallback') }} AS v FORMAT CSV")}&x=1`);
    expect(await r.text()).toBe('"fallback"\n');
  });

  it('a copy pipe binds the secrets of its node', async () => {
    const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
    expect((await s.req('POST', '/v0/datasources?name=secret_copy&mode=create', form({ schema: 'n UInt64' }))).status).toBe(200);
    const pipe = {
      name: 'secret_copy_pipe',
      nodes: [{ name: 'n', sql: "%\nSELECT length({{ tb_secret('pg_password') }}) AS n", type: 'copy', target_datasource: 'secret_copy' }],
    };
    let r = await s.req('POST', '/v0/pipes', { body: JSON.stringify(pipe), headers: { 'content-type': 'application/json' } });
    expect(r.status, await r.clone().text()).toBe(200);
    r = await s.req('POST', '/v0/pipes/secret_copy_pipe/copy');
    const { job } = await r.json();
    expect(job.query_sql).not.toContain(SECRET);
    await s.app.services.jobs.drain();
    expect((await (await s.req('GET', `/v0/jobs/${job.id}`)).json()).status).toBe('done');
    r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT n FROM secret_copy FORMAT CSV')}`);
    expect(await r.text()).toBe(`${Buffer.byteLength(SECRET)}\n`);
  });

  it.each([
    ['streamed (TSV)', '', ''],
    ['answered whole (format=JSON)', '', '&format=JSON'],
    ['answered whole (a FORMAT clause after the secret)', ' FORMAT JSON', ''],
  ])('a query with a bound secret is still cancelled when its client goes away: %s', async (_, clause, format) => {
    const q = `% SELECT count() FROM numbers(1000000000000) WHERE toString(number) != {{ tb_secret('pg_password') }}${clause}`;
    const ac = new AbortController();
    const p = fetch(`${s.url}/v0/sql?q=${encodeURIComponent(q)}&x=1${format}`, { headers: { authorization: `Bearer ${s.token}` }, signal: ac.signal }).catch(
      (e) => e,
    );
    const running = async () =>
      Number(
        (
          await s.app.services.engine.rows<{ c: string }>(
            "SELECT count() AS c FROM system.processes WHERE query LIKE '%numbers(1000000000000)%' AND query NOT LIKE '%system.processes%'",
          )
        )[0].c,
      );
    for (let i = 0; i < 60 && (await running()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await running()).toBe(1);
    ac.abort();
    await p;
    let left = 1;
    for (let i = 0; i < 60 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = await running();
    }
    expect(left).toBe(0);
  });

  it('user SQL cannot use engine parameters itself', async () => {
    const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT {tb_secret_pg_password:String}')}`);
    expect(r.status).toBe(400);
  });
});
