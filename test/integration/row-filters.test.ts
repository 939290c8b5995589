/**
 * Row-level filters: a `DATASOURCES:READ:<ds>:<filter>` scope restricts every read of the data
 * source made with that token — /v0/sql, an endpoint, and a pipe that reads another pipe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let esToken: string;
let frPipeToken: string;
const rows = Array.from({ length: 30 }, (_, i) => ({ country: ['ES', 'FR', 'US'][i % 3], n: i }));
const sum = (c: string) => rows.filter((r) => r.country === c).reduce((a, r) => a + r.n, 0);

beforeAll(async () => {
  s = await startServer();
  const schema = 'country String `json:$.country`, n Int32 `json:$.n`';
  expect((await s.req('POST', '/v0/datasources?name=ev&mode=create', { body: new URLSearchParams({ schema }) })).status).toBe(200);
  expect(
    (await s.req('POST', '/v0/events?name=ev&wait=true', { body: rows.map((r) => JSON.stringify(r)).join('\n') + '\n{"country":"ES","n":"bad"}' })).status,
  ).toBe(200);
  const json = { 'content-type': 'application/json' };
  let r = await s.req('POST', '/v0/pipes', {
    headers: json,
    body: JSON.stringify({ name: 'base', nodes: [{ name: 'b', sql: 'SELECT country, n FROM ev', type: 'endpoint' }] }),
  });
  expect(r.status).toBe(200);
  r = await s.req('POST', '/v0/pipes', {
    headers: json,
    body: JSON.stringify({
      name: 'totals',
      nodes: [{ name: 't', sql: 'SELECT country, sum(n) AS s FROM base GROUP BY country ORDER BY country', type: 'endpoint' }],
    }),
  });
  expect(r.status).toBe(200);
  const ws = s.app.services.access.defaultWorkspace;
  const ev = await s.app.services.datasources.get(ws, 'ev');
  const totals = await s.app.services.pipes.get(ws, 'totals');
  esToken = (await s.app.services.access.createToken(ws.id, 'es', [{ type: 'DATASOURCES:READ', resource: ev.id, filter: "country = 'ES'" }])).token;
  frPipeToken = (
    await s.app.services.access.createToken(ws.id, 'fr', [
      { type: 'PIPES:READ', resource: totals.id },
      { type: 'DATASOURCES:READ', resource: ev.id, filter: "country = 'FR'" },
    ])
  ).token;
}, 60_000);

afterAll(async () => {
  await s?.close();
});

const sql = (q: string, token: string) => s.req('GET', `/v0/sql?q=${encodeURIComponent(q)}`, { token });

describe('row filters', () => {
  it('apply to /v0/sql however the data source is read', async () => {
    expect(await (await sql('SELECT count() FROM ev FORMAT CSV', esToken)).text()).toBe('10\n');
    expect(await (await sql('SELECT DISTINCT country FROM ev FORMAT CSV', esToken)).text()).toBe('"ES"\n');
    // A WHERE of the query cannot widen the filter.
    expect(await (await sql("SELECT count() FROM ev WHERE country = 'FR' OR 1 FORMAT CSV", esToken)).text()).toBe('10\n');
    expect(await (await sql('SELECT count() FROM (SELECT * FROM ev) AS x FORMAT CSV', esToken)).text()).toBe('10\n');
    expect(await (await sql('WITH e AS (SELECT * FROM ev) SELECT count() FROM e FORMAT CSV', esToken)).text()).toBe('10\n');
    expect(await (await sql('SELECT count() FROM ev AS a JOIN ev AS b ON a.n = b.n FORMAT CSV', esToken)).text()).toBe('10\n');
    expect(await (await sql('SELECT count() FROM numbers(30) WHERE number IN (SELECT n FROM ev) FORMAT CSV', esToken)).text()).toBe('10\n');
    // The admin token sees everything.
    expect(await (await sql('SELECT count() FROM ev FORMAT CSV', s.token)).text()).toBe('30\n');
  });

  it('hide the quarantine from a filtered token', async () => {
    const r = await sql('SELECT count() FROM ev_quarantine', esToken);
    expect(r.status).toBe(403);
    expect((await r.json()).error).toBe("Resource 'ev_quarantine' not found");
  });

  it('apply through an endpoint that reads another pipe, and through /v0/sql on that pipe', async () => {
    let r = await s.req('GET', '/v0/pipes/totals.json', { token: frPipeToken });
    expect((await r.json()).data).toEqual([{ country: 'FR', s: sum('FR') }]);
    r = await s.req('GET', '/v0/pipes/totals.json');
    expect((await r.json()).data).toEqual(['ES', 'FR', 'US'].map((c) => ({ country: c, s: sum(c) })));
    r = await sql('SELECT sum(s) FROM totals FORMAT CSV', frPipeToken);
    expect(await r.text()).toBe(`${sum('FR')}\n`);
    // Its own READ scope on the data source is filtered too.
    r = await sql('SELECT count() FROM ev FORMAT CSV', frPipeToken);
    expect(await r.text()).toBe('10\n');
  });

  it('a prepared endpoint query is never shared between tokens with other filters, nor kept after a filter changes', async () => {
    const scopes = (c: string) => `scope=PIPES:READ:totals&scope=${encodeURIComponent(`DATASOURCES:READ:ev:country = '${c}'`)}`;
    const tokenFor = async (name: string, c: string) => (await (await s.req('POST', `/v0/tokens?name=${name}&${scopes(c)}`)).json()).token as string;
    const es = await tokenFor('prep_es', 'ES');
    const us = await tokenFor('prep_us', 'US');
    const totals = async (token: string) => (await (await s.req('GET', '/v0/pipes/totals.json', { token })).json()).data;
    // The same request, alternately from each token (and again: a second request may be served prepared).
    for (let i = 0; i < 2; i++) {
      expect(await totals(es)).toEqual([{ country: 'ES', s: sum('ES') }]);
      expect(await totals(us)).toEqual([{ country: 'US', s: sum('US') }]);
    }
    expect((await s.req('PUT', `/v0/tokens/prep_es?${scopes('FR')}`)).status).toBe(200);
    expect(await totals(es)).toEqual([{ country: 'FR', s: sum('FR') }]);
    expect(await totals(us)).toEqual([{ country: 'US', s: sum('US') }]);
  });
});
