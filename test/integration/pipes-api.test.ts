/**
 * The Pipes API over real HTTP: pipes and nodes, publishing, endpoint data in every format with
 * template parameters, explain, the datafile, OpenAPI, and the errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;

const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
const JSON_HDR = { 'content-type': 'application/json' };
const j = async (r: Response) => ({ status: r.status, body: await r.json() });

beforeAll(async () => {
  s = await startServer();
  const schema = 'ts DateTime `json:$.ts`, user String `json:$.user`, country String `json:$.country`, n Int32 `json:$.n`';
  let r = await s.req('POST', '/v0/datasources?name=events&mode=create', form({ schema }));
  expect(r.status).toBe(200);
  const rows = [];
  for (let i = 0; i < 30; i++)
    rows.push({ ts: `2024-01-${String(1 + (i % 10)).padStart(2, '0')} 10:00:00`, user: `u${i % 5}`, country: ['ES', 'FR', 'US'][i % 3], n: i });
  r = await s.req('POST', '/v0/events?name=events&wait=true', { body: rows.map((x) => JSON.stringify(x)).join('\n') });
  expect(r.status).toBe(200);
}, 60_000);

afterAll(async () => {
  await s?.close();
});

describe('pipes and nodes', () => {
  it('creates a pipe from name + sql, with an auto-named first node and its dependencies', async () => {
    const { status, body } = await j(await s.req('POST', '/v0/pipes', form({ name: 'events_per_day', sql: 'select * from events' })));
    expect(status).toBe(200);
    expect(body.name).toBe('events_per_day');
    expect(body.id).toMatch(/^t_[0-9a-f]{32}$/);
    expect(body.endpoint).toBeNull();
    expect(body.type).toBe('default');
    expect(body.nodes).toHaveLength(1);
    expect(body.nodes[0]).toMatchObject({
      name: 'events_per_day_0',
      sql: 'select * from events',
      dependencies: ['events'],
      node_type: 'standard',
      params: [],
      materialized: null,
    });
    expect(body.url).toBe(`${s.url}/v0/pipes/events_per_day.json`);
  });

  it('appends a node reading an earlier node; names are unique in the pipe', async () => {
    let r = await s.req('POST', '/v0/pipes/events_per_day/nodes', {
      body: 'select toDate(ts) date, count() event_count from events_per_day_0 group by date order by date',
    });
    const { status, body } = await j(r);
    expect(status).toBe(200);
    expect(body).toMatchObject({ name: 'events_per_day_1', dependencies: ['events_per_day_0'] });
    r = await s.req('POST', '/v0/pipes/events_per_day/nodes?name=events_per_day_1', { body: 'select 1' });
    expect(await j(r)).toEqual({
      status: 409,
      body: { error: 'Node name "events_per_day_1" already exists in pipe. Node names must be unique within a given pipe.' },
    });
  });

  it('refuses bad SQL, unknown resources and forbidden SQL when a node is saved', async () => {
    let r = await s.req('POST', '/v0/pipes/events_per_day/nodes', { body: 'select nope from events' });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/nope/);
    r = await s.req('POST', '/v0/pipes/events_per_day/nodes', { body: 'select * from not_there' });
    expect(await j(r)).toEqual({ status: 400, body: { error: "Resource 'not_there' not found" } });
    r = await s.req('POST', '/v0/pipes/events_per_day/nodes', { body: 'select * from system.tables' });
    expect(r.status).toBe(403);
    r = await s.req('POST', '/v0/pipes/events_per_day/nodes', { body: '' });
    expect(r.status).toBe(400);
    r = await s.req('POST', '/v0/pipes/nope/nodes', { body: 'select 1' });
    expect(r.status).toBe(404);
  });

  it('creates a pipe from a JSON body; an endpoint-typed node is published', async () => {
    const body = {
      name: 'by_country',
      description: 'per country',
      nodes: [
        {
          name: 'filtered',
          sql: '%\nSELECT * FROM events WHERE 1 {% if defined(country) %} AND country = {{ String(country) }} {% end %}',
          description: 'filter',
        },
        { name: 'agg', sql: 'SELECT country, count() AS c, sum(n) AS total FROM filtered GROUP BY country ORDER BY country', type: 'endpoint' },
      ],
    };
    const r = await s.req('POST', '/v0/pipes', { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const { status, body: p } = await j(r);
    expect(status).toBe(200);
    expect(p.type).toBe('endpoint');
    expect(p.endpoint).toBe(p.nodes[1].id);
    // defined(country) adds no entry of its own: String(country) is a typed one (reference §6.8).
    expect(p.nodes[0].params).toEqual([{ name: 'country', type: 'String', default: null }]);
    expect(p.nodes[1].dependencies).toEqual(['filtered']);
  });

  it('pipe and data source names share one namespace', async () => {
    let r = await s.req('POST', '/v0/pipes', form({ name: 'events', sql: 'select 1' }));
    expect(r.status).toBe(409);
    r = await s.req('POST', '/v0/datasources?name=by_country&mode=create', form({ schema: 'a Int32' }));
    expect(await j(r)).toEqual({ status: 400, body: { error: 'A Pipe with the "by_country" name exists, Pipe and Data Source names are unique' } });
    r = await s.req('POST', '/v0/pipes', form({ name: '1bad', sql: 'select 1' }));
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/^Invalid pipe name "1bad"/);
  });

  it('lists, gets by name or id, attrs and node_attrs, dependencies flag', async () => {
    let { body } = await j(await s.req('GET', '/v0/pipes'));
    const names = body.pipes.map((p: { name: string }) => p.name);
    expect(names).toEqual(expect.arrayContaining(['events_per_day', 'by_country']));
    expect(body.pipes[0].nodes[0].dependencies).toBeUndefined();
    ({ body } = await j(await s.req('GET', '/v0/pipes?dependencies=true&attrs=name,nodes&node_attrs=name,dependencies')));
    const epd = body.pipes.find((p: { name: string }) => p.name === 'events_per_day');
    expect(epd).toEqual({
      name: 'events_per_day',
      nodes: [
        { name: 'events_per_day_0', dependencies: ['events'] },
        { name: 'events_per_day_1', dependencies: ['events_per_day_0'] },
      ],
    });
    expect((await s.req('GET', '/v0/pipes?dependencies=maybe')).status).toBe(400);
    const byName = await j(await s.req('GET', '/v0/pipes/by_country'));
    const byId = await j(await s.req('GET', `/v0/pipes/${byName.body.id}`));
    expect(byId.body.name).toBe('by_country');
    // Tinybird's wording, single quotes: a client's suite matches the text.
    expect(await j(await s.req('GET', '/v0/pipes/nope'))).toEqual({ status: 404, body: { error: "Pipe 'nope' not found" } });
    expect(await j(await s.req('DELETE', '/v0/pipes/nope'))).toEqual({ status: 404, body: { error: "Pipe 'nope' not found" } });
  });

  it('returns the .pipe datafile', async () => {
    const r = await s.req('GET', '/v0/pipes/by_country.pipe');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    const text = await r.text();
    expect(text).toContain('DESCRIPTION >\n    per country');
    expect(text).toContain('NODE filtered');
    expect(text).toContain('NODE agg');
    expect(text).toContain('TYPE endpoint');
    expect(text).toContain('    %\n    SELECT * FROM events');
  });

  it('updates a node (SQL, name, description) and refuses a name clash', async () => {
    await s.req('POST', '/v0/pipes', form({ name: 'editable', sql: 'select 1 as a' }));
    await s.req('POST', '/v0/pipes/editable/nodes?name=second', { body: 'select a from editable_0' });
    let r = await s.req('PUT', '/v0/pipes/editable/nodes/editable_0?description=first%20node', { body: 'select 2 as a' });
    expect((await j(r)).body).toMatchObject({ name: 'editable_0', sql: 'select 2 as a', description: 'first node' });
    r = await s.req('PUT', '/v0/pipes/editable/nodes/editable_0?name=second');
    expect(r.status).toBe(409);
    r = await s.req('PUT', '/v0/pipes/editable/nodes/editable_0?name=renamed');
    expect((await j(r)).body.name).toBe('renamed');
    r = await s.req('PUT', '/v0/pipes/editable/nodes/nope', { body: 'select 1' });
    expect(r.status).toBe(404);
  });

  it('renames a pipe and changes its description (409 on a clash); deletes nodes and pipes', async () => {
    let r = await s.req('PUT', '/v0/pipes/editable?name=edited&description=hello');
    expect((await j(r)).body).toMatchObject({ name: 'edited', description: 'hello' });
    r = await s.req('PUT', '/v0/pipes/edited?name=by_country');
    expect(r.status).toBe(409);
    r = await s.req('DELETE', '/v0/pipes/edited/nodes/second');
    expect(r.status).toBe(204);
    expect((await j(await s.req('GET', '/v0/pipes/edited'))).body.nodes).toHaveLength(1);
    r = await s.req('DELETE', '/v0/pipes/edited');
    expect(r.status).toBe(204);
    expect((await s.req('GET', '/v0/pipes/edited')).status).toBe(404);
    expect((await s.req('DELETE', '/v0/pipes/edited')).status).toBe(404);
  });

  it("PUT /v0/pipes/:p takes seed 003's JSON body {name, description}", async () => {
    expect((await s.req('POST', '/v0/pipes', form({ name: 'json_put', sql: 'select 1 as a' }))).status).toBe(200);
    let r = await s.req('PUT', '/v0/pipes/json_put', { headers: JSON_HDR, body: JSON.stringify({ name: 'json_put2', description: 'from JSON' }) });
    expect(await j(r)).toMatchObject({ status: 200, body: { name: 'json_put2', description: 'from JSON' } });
    expect((await s.req('GET', '/v0/pipes/json_put')).status).toBe(404);
    // Also sent as curl -d '{...}' (a form Content-Type).
    r = await s.req('PUT', '/v0/pipes/json_put2', { body: JSON.stringify({ description: 'curl' }) });
    expect(await j(r)).toMatchObject({ status: 200, body: { name: 'json_put2', description: 'curl' } });
    r = await s.req('PUT', '/v0/pipes/json_put2', { headers: JSON_HDR, body: JSON.stringify({ name: 42 }) });
    expect(await j(r)).toEqual({ status: 400, body: { error: 'Invalid "name": it must be a string, not the number 42' } });
    r = await s.req('PUT', '/v0/pipes/json_put2', { headers: JSON_HDR, body: '[1]' });
    expect(r.status).toBe(400);
    expect((await j(await s.req('GET', '/v0/pipes/json_put2'))).body.description).toBe('curl');
  });

  it("nodes take seed 003's JSON body {name, sql, description} as well as the raw SQL body", async () => {
    let r = await s.req('POST', '/v0/pipes/json_put2/nodes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'jnode', sql: 'select a + 1 as b from json_put_0', description: 'from JSON' }),
    });
    expect(await j(r)).toMatchObject({
      status: 200,
      body: { name: 'jnode', sql: 'select a + 1 as b from json_put_0', description: 'from JSON', dependencies: ['json_put_0'] },
    });
    // Other arguments in the JSON too (type=endpoint publishes it).
    r = await s.req('POST', '/v0/pipes/json_put2/nodes', { body: JSON.stringify({ name: 'jnode2', sql: 'select b from jnode', type: 'endpoint' }) });
    expect(await j(r)).toMatchObject({ status: 200, body: { name: 'jnode2', node_type: 'endpoint' } });
    r = await s.req('PUT', '/v0/pipes/json_put2/nodes/jnode', {
      headers: JSON_HDR,
      body: JSON.stringify({ sql: 'select a + 2 as b from json_put_0', description: 'changed' }),
    });
    expect(await j(r)).toMatchObject({ status: 200, body: { name: 'jnode', sql: 'select a + 2 as b from json_put_0', description: 'changed' } });
    r = await s.req('PUT', '/v0/pipes/json_put2/nodes/jnode', { headers: JSON_HDR, body: JSON.stringify({ description: 'only this' }) });
    expect(await j(r)).toMatchObject({ status: 200, body: { sql: 'select a + 2 as b from json_put_0', description: 'only this' } });
    expect((await (await s.req('GET', '/v0/pipes/json_put2.json')).json()).data).toEqual([{ b: 3 }]);
    // Refused: a JSON node without sql, non-string fields, a body that is not an object.
    for (const [m, p, b] of [
      ['POST', '/v0/pipes/json_put2/nodes', { name: 'x' }],
      ['POST', '/v0/pipes/json_put2/nodes', { name: 'x', sql: ['select 1'] }],
      ['POST', '/v0/pipes/json_put2/nodes', { name: 'x', sql: 'select 1', description: { a: 1 } }],
      ['PUT', '/v0/pipes/json_put2/nodes/jnode', { sql: 1 }],
      ['PUT', '/v0/pipes/json_put2/nodes/jnode', { name: true }],
    ] as const) {
      const res = await s.req(m, p, { headers: JSON_HDR, body: JSON.stringify(b) });
      expect(res.status, `${m} ${JSON.stringify(b)}`).toBe(400);
    }
    expect((await s.req('POST', '/v0/pipes/json_put2/nodes', { headers: JSON_HDR, body: '["select 1"]' })).status).toBe(400);
    const nodes = (await j(await s.req('GET', '/v0/pipes/json_put2'))).body.nodes;
    expect(nodes.map((n: { name: string }) => n.name)).toEqual(['json_put_0', 'jnode', 'jnode2']);
    expect(nodes[1]).toMatchObject({ sql: 'select a + 2 as b from json_put_0', description: 'only this' });
  });

  it('POST /v0/pipes: a name that is not a string or a body that is not an object is a 400, not a 500', async () => {
    for (const b of [
      { name: 123 },
      { name: ['p'] },
      [{ name: 'p' }],
      { name: 'p_desc', description: { a: 1 } },
      { name: 'p_desc', description: 5 },
      { name: 'p_nodes', nodes: [{ sql: 5 }] },
      { name: 'p_nodes', nodes: ['select 1'] },
      { name: 'p_nodes', nodes: [{ sql: 'select 1', name: 7 }] },
    ]) {
      const r = await s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(b) });
      expect(r.status, JSON.stringify(b)).toBe(400);
      expect((await r.json()).error).toMatch(/must be a string|JSON object|must be a list/);
    }
    const names = (await j(await s.req('GET', '/v0/pipes'))).body.pipes.map((p: { name: string }) => p.name);
    expect(names).not.toContain('p_desc');
    expect(names).not.toContain('p_nodes');
    // A description that is a string is stored as sent; null is none.
    const r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'p_null_desc', description: null, nodes: [{ sql: 'select 1', description: null }] }),
    });
    expect(await j(r)).toMatchObject({ status: 200, body: { description: null } });
  });

  it('creates a pipe from another with from=', async () => {
    const r = await s.req('POST', '/v0/pipes?name=copy_of_country&from=by_country');
    const { body } = await j(r);
    expect(body.nodes.map((n: { name: string }) => n.name)).toEqual(['filtered', 'agg']);
    expect(body.parent).toBeTruthy();
  });

  it('from= with force=true overwrites the pipe (same id; the endpoint stays when its node name does)', async () => {
    let r = await s.req('POST', '/v0/pipes?name=copy_of_country&from=events_per_day');
    expect(await j(r)).toEqual({ status: 409, body: { error: 'There\'s another resource with the same name "copy_of_country", names must be unique' } });
    const before = (await j(await s.req('GET', '/v0/pipes/copy_of_country'))).body;
    // The overwritten pipe's endpoint is `agg`: published again because the new nodes have one of that name.
    expect((await s.req('POST', '/v0/pipes/copy_of_country/nodes/agg/endpoint')).status).toBe(200);
    expect(
      (
        await s.req('POST', '/v0/pipes', {
          headers: JSON_HDR,
          body: JSON.stringify({ name: 'agg_src', nodes: [{ name: 'agg', sql: 'SELECT count() AS c FROM events' }] }),
        })
      ).status,
    ).toBe(200);
    r = await s.req('POST', '/v0/pipes?name=copy_of_country&from=agg_src&force=true');
    const { status, body } = await j(r);
    expect(status).toBe(200);
    expect(body.id).toBe(before.id);
    expect(body.nodes.map((n: { name: string }) => n.name)).toEqual(['agg']);
    expect(body.endpoint).toBe(body.nodes[0].id);
    expect((await (await s.req('GET', '/v0/pipes/copy_of_country.json')).json()).data).toEqual([{ c: 30 }]);
    // Without a node of the endpoint's name the endpoint goes; force does not take a data source's name.
    r = await s.req('POST', '/v0/pipes?name=copy_of_country&from=events_per_day&force=true');
    expect(await j(r)).toMatchObject({ status: 200, body: { id: before.id, endpoint: null } });
    r = await s.req('POST', '/v0/pipes?name=events&from=events_per_day&force=true');
    expect(r.status).toBe(409);
    // force in a form body, as the CLI sends it; a new name with force is just a new pipe.
    r = await s.req('POST', '/v0/pipes', form({ name: 'copy_of_country', from: 'agg_src', force: 'true' }));
    expect(await j(r)).toMatchObject({ status: 200, body: { id: before.id, nodes: [{ name: 'agg' }] } });
    r = await s.req('POST', '/v0/pipes?name=brand_new&from=agg_src&force=true');
    expect(r.status).toBe(200);
    expect((await s.req('POST', '/v0/pipes?name=brand_new&from=agg_src&force=maybe')).status).toBe(400);
  });
});

describe('endpoints', () => {
  it('publishes and unpublishes; published nodes cannot be removed', async () => {
    let r = await s.req('POST', '/v0/pipes/events_per_day/nodes/events_per_day_1/endpoint');
    let { body } = await j(r);
    expect(body.endpoint).toBe(body.nodes[1].id);
    expect(body.nodes[1].node_type).toBe('endpoint');
    r = await s.req('DELETE', '/v0/pipes/events_per_day/nodes/events_per_day_1');
    expect(await j(r)).toEqual({ status: 400, body: { error: "The node is published. Published nodes can't be removed" } });
    r = await s.req('DELETE', '/v0/pipes/events_per_day/nodes/events_per_day_0/endpoint');
    expect(await j(r)).toEqual({ status: 400, body: { error: "Pipe 'events_per_day' node 'events_per_day_0' is not an endpoint" } });
    r = await s.req('DELETE', '/v0/pipes/events_per_day/nodes/events_per_day_1/endpoint');
    ({ body } = await j(r));
    expect(body.endpoint).toBeNull();
    r = await s.req('GET', '/v0/pipes/events_per_day.json');
    expect(await j(r)).toEqual({ status: 404, body: { error: "The pipe 'events_per_day' does not have an endpoint yet" } });
    // Legacy publish: PUT /endpoint with the node id as the body.
    const id = body.nodes[1].id;
    r = await s.req('PUT', '/v0/pipes/events_per_day/endpoint', { body: id });
    expect((await j(r)).body.endpoint).toBe(id);
    r = await s.req('POST', '/v0/pipes/events_per_day/nodes/nope/endpoint');
    expect(await j(r)).toEqual({ status: 400, body: { error: "Pipe 'events_per_day' does not contain the 'nope' node" } });
    r = await s.req('PUT', '/v0/pipes/events_per_day/endpoint', { body: 't_0123456789abcdef0123456789abcdef' });
    expect(await j(r)).toEqual({ status: 400, body: { error: "Pipe 'events_per_day' does not contain the 't_0123456789abcdef0123456789abcdef' node" } });
  });

  it('serves JSON, CSV, NDJSON, Parquet', async () => {
    let r = await s.req('GET', '/v0/pipes/by_country.json');
    expect(r.status).toBe(200);
    const body = await r.json();
    expect(body.data).toEqual([
      { country: 'ES', c: 10, total: 135 },
      { country: 'FR', c: 10, total: 145 },
      { country: 'US', c: 10, total: 155 },
    ]);
    expect(body.meta.map((m: { name: string }) => m.name)).toEqual(['country', 'c', 'total']);
    r = await s.req('GET', '/v0/pipes/by_country.csv');
    expect(await r.text()).toBe('"country","c","total"\n"ES",10,135\n"FR",10,145\n"US",10,155\n');
    r = await s.req('GET', '/v0/pipes/by_country.ndjson?country=FR');
    expect(r.headers.get('content-type')).toContain('application/x-ndjson');
    expect(await r.text()).toBe('{"country":"FR","c":10,"total":145}\n');
    r = await s.req('GET', '/v0/pipes/by_country.parquet');
    expect(
      Buffer.from(await r.arrayBuffer())
        .subarray(0, 4)
        .toString(),
    ).toBe('PAR1');
  });

  it('takes parameters from the query string, a form and a JSON body', async () => {
    let r = await s.req('POST', '/v0/pipes/by_country.json', { body: JSON.stringify({ country: 'US' }), headers: { 'content-type': 'application/json' } });
    expect((await r.json()).data).toEqual([{ country: 'US', c: 10, total: 155 }]);
    r = await s.req('POST', '/v0/pipes/by_country.json', form({ country: 'ES' }));
    expect((await r.json()).data).toEqual([{ country: 'ES', c: 10, total: 135 }]);
  });

  it('q= queries the endpoint result with _ and by name', async () => {
    let r = await s.req('GET', `/v0/pipes/by_country.json?q=${encodeURIComponent('SELECT sum(c) AS c FROM _')}`);
    expect((await r.json()).data).toEqual([{ c: 30 }]);
    r = await s.req('GET', `/v0/pipes/by_country.csv?q=${encodeURIComponent('SELECT country FROM by_country WHERE c > 5 ORDER BY country DESC LIMIT 1')}`);
    expect(await r.text()).toBe('"country"\n"US"\n');
    r = await s.req('GET', `/v0/pipes/by_country.json?q=${encodeURIComponent('% SELECT 1')}`);
    expect(await j(r)).toEqual({ status: 400, body: { error: "'q' parameter doesn't support templates" } });
  });

  it('the same request follows a change of a pipe the endpoint reads at once (nothing prepared is kept past a change)', async () => {
    const inner = { name: 'prepared_inner', nodes: [{ name: 'p', type: 'endpoint', sql: '%\nSELECT {{ Int32(x, 1) }} * 2 AS v' }] };
    const outer = { name: 'prepared_outer', nodes: [{ name: 'o', type: 'endpoint', sql: 'SELECT v + 1 AS w FROM prepared_inner' }] };
    for (const p of [inner, outer]) expect((await s.req('POST', '/v0/pipes', { body: JSON.stringify(p), headers: JSON_HDR })).status).toBe(200);
    const w = async () => (await (await s.req('GET', '/v0/pipes/prepared_outer.json?x=3')).json()).data;
    expect(await w()).toEqual([{ w: 7 }]);
    expect(await w()).toEqual([{ w: 7 }]);
    expect((await s.req('PUT', '/v0/pipes/prepared_inner/nodes/p', { body: '%\nSELECT {{ Int32(x, 1) }} * 3 AS v' })).status).toBe(200);
    expect(await w()).toEqual([{ w: 10 }]);
  });

  it('POST takes a q longer than 8 KB (GET keeps the URL limit); the token in a form body', async () => {
    const long = `SELECT sum(c) AS c FROM _ WHERE 1 ${' AND 1 = 1'.repeat(1000)}`;
    expect(Buffer.byteLength(long)).toBeGreaterThan(8 * 1024);
    let r = await s.req('POST', '/v0/pipes/by_country.json', form({ q: long }));
    expect(await j(r)).toMatchObject({ status: 200, body: { data: [{ c: 30 }] } });
    r = await s.req('POST', '/v0/pipes/by_country.json', { headers: JSON_HDR, body: JSON.stringify({ q: long, country: 'ES' }) });
    expect(await j(r)).toMatchObject({ status: 200, body: { data: [{ c: 10 }] } });
    r = await s.req('GET', `/v0/pipes/by_country.json?q=${encodeURIComponent(`SELECT c FROM _ -- ${'x'.repeat(9000)}`)}`);
    expect(await j(r)).toEqual({ status: 400, body: { error: 'The maximum size for a SQL query is 8KB.' } });
    r = await s.req('POST', '/v0/pipes/by_country.json', form({ q: `SELECT 1 ${'-- x\n'.repeat(300_000)}` }));
    expect(await j(r)).toEqual({ status: 400, body: { error: 'The maximum size for a SQL query is 1MB.' } });
    // Tinybird reads `token` from a form body too.
    r = await s.req('POST', '/v0/pipes/by_country.json', { ...form({ token: s.token, country: 'FR' }), token: null });
    expect(await j(r)).toMatchObject({ status: 200, body: { data: [{ country: 'FR', c: 10 }] } });
    r = await s.req('POST', '/v0/pipes/by_country.json', { ...form({ token: 'p.bad.token', country: 'FR' }), token: null });
    expect(r.status).toBe(403);
  });

  it("publishing answers the pipe's token when exactly one token reads it", async () => {
    const ws = s.app.services.access.defaultWorkspace;
    expect(
      (
        await s.req('POST', '/v0/pipes', {
          headers: JSON_HDR,
          body: JSON.stringify({ name: 'shared', nodes: [{ name: 'n', sql: 'SELECT count() AS c FROM events' }] }),
        })
      ).status,
    ).toBe(200);
    let r = await s.req('POST', '/v0/pipes/shared/nodes/n/endpoint');
    expect((await j(r)).body).not.toHaveProperty('token');
    const pipe = await s.app.services.pipes.get(ws, 'shared');
    const reader = await s.app.services.access.createToken(ws.id, 'shared_reader', [{ type: 'PIPES:READ', resource: pipe.id }]);
    r = await s.req('POST', '/v0/pipes/shared/nodes/n/endpoint');
    expect(await j(r)).toMatchObject({ status: 200, body: { name: 'shared', token: reader.token } });
    r = await s.req('PUT', '/v0/pipes/shared/endpoint', { body: 'n' });
    expect((await j(r)).body.token).toBe(reader.token);
    expect((await s.req('GET', '/v0/pipes/shared.json', { token: reader.token })).status).toBe(200);
    // A caller that does not hold that token's scopes is not given its value.
    const creator = await s.app.services.access.createToken(ws.id, 'shared_creator', [{ type: 'PIPES:CREATE' }]);
    const wide = await s.app.services.access.createToken(ws.id, 'shared_wide', [{ type: 'PIPES:READ', resource: pipe.id }, { type: 'DATASOURCES:CREATE' }]);
    await s.app.services.access.deleteToken(reader);
    r = await s.req('POST', '/v0/pipes/shared/nodes/n/endpoint', { token: creator.token });
    expect(await j(r)).toMatchObject({ status: 200, body: { name: 'shared' } });
    expect((await j(await s.req('POST', '/v0/pipes/shared/nodes/n/endpoint', { token: creator.token }))).body).not.toHaveProperty('token');
    expect((await j(await s.req('POST', '/v0/pipes/shared/nodes/n/endpoint'))).body.token).toBe(wide.token);
    // Two read tokens: none is "the" token.
    await s.app.services.access.createToken(ws.id, 'shared_reader2', [{ type: 'PIPES:READ', resource: pipe.id }]);
    expect((await j(await s.req('POST', '/v0/pipes/shared/nodes/n/endpoint'))).body).not.toHaveProperty('token');
  });

  it('explain with PIPES:READ + DATASOURCES:READ (seed 001), not with PIPES:READ alone', async () => {
    const ws = s.app.services.access.defaultWorkspace;
    const pipe = await s.app.services.pipes.get(ws, 'by_country');
    const events = await s.app.services.datasources.get(ws, 'events');
    const both = (
      await s.app.services.access.createToken(ws.id, 'explainer', [
        { type: 'PIPES:READ', resource: pipe.id },
        { type: 'DATASOURCES:READ', resource: events.id },
      ])
    ).token;
    const readOnly = (await s.app.services.access.createToken(ws.id, 'explain_reader', [{ type: 'PIPES:READ', resource: pipe.id }])).token;
    let r = await s.req('GET', '/v0/pipes/by_country/explain?country=ES', { token: both });
    const { status, body } = await j(r);
    expect(status).toBe(200);
    expect(body.debug_query).toContain("country = 'ES'");
    r = await s.req('GET', '/v0/pipes/by_country/nodes/filtered/explain', { token: both });
    expect(r.status).toBe(200);
    const denied = {
      status: 403,
      body: {
        error: "Forbidden. Provided token doesn't have permissions to run the explain plan, it needs ADMIN or PIPE:READ and DATASOURCE:READ",
        documentation: 'https://docs.tinybird.co/api-reference/overview#authentication',
      },
    };
    expect(await j(await s.req('GET', '/v0/pipes/by_country/explain', { token: readOnly }))).toEqual(denied);
    expect((await s.req('GET', '/v0/pipes/events_per_day/explain', { token: both })).status).toBe(403);
  });

  it('endpoint errors', async () => {
    let r = await s.req('GET', '/v0/pipes/nope.json');
    expect(await j(r)).toEqual({ status: 404, body: { error: "The pipe 'nope' does not exist" } });
    r = await s.req('GET', '/v0/pipes/by_country.xml');
    expect(await j(r)).toEqual({ status: 400, body: { error: "Format 'xml' not supported, it must be one of csv, json, ndjson, parquet, prometheus" } });
    r = await s.req('GET', '/v0/pipes/by_country.json', { token: null });
    expect(r.status).toBe(403);
  });

  it('a PIPES:READ token reads the endpoint (not the data sources, not other pipes) and sees no SQL', async () => {
    const ws = s.app.services.access.defaultWorkspace;
    const pipe = await s.app.services.pipes.get(ws, 'by_country');
    const tok = (await s.app.services.access.createToken(ws.id, 'reader', [{ type: 'PIPES:READ', resource: pipe.id }])).token;
    let r = await s.req('GET', '/v0/pipes/by_country.json?country=ES', { token: tok });
    expect((await r.json()).data).toEqual([{ country: 'ES', c: 10, total: 135 }]);
    r = await s.req('GET', '/v0/pipes/events_per_day.json', { token: tok });
    expect(await j(r)).toEqual({
      status: 403,
      body: {
        error: "The token you have provided doesn't have access to this resource",
        documentation: 'https://docs.tinybird.co/api-reference/overview#authentication',
      },
    });
    r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() FROM events')}`, { token: tok });
    expect(r.status).toBe(403);
    r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT sum(c) FROM by_country FORMAT CSV')}`, { token: tok });
    expect(await r.text()).toBe('30\n');
    r = await s.req('GET', '/v0/pipes/by_country', { token: tok });
    const p = await r.json();
    expect(p.nodes[0].sql).toBeUndefined();
    expect((await s.req('GET', '/v0/pipes/by_country.pipe', { token: tok })).status).toBe(403);
    expect((await s.req('POST', '/v0/pipes/by_country/nodes', { body: 'select 1', token: tok })).status).toBe(403);
    const list = await (await s.req('GET', '/v0/pipes', { token: tok })).json();
    expect(list.pipes.map((x: { name: string }) => x.name)).toEqual(['by_country']);
  });

  it('pipes are tables in /v0/sql, and pipeline= exposes their nodes', async () => {
    let r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() FROM events_per_day FORMAT CSV')}`);
    expect(await r.text()).toBe('10\n');
    r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() FROM filtered FORMAT CSV')}&pipeline=by_country`);
    expect(await r.text()).toBe('30\n');
    r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() FROM filtered')}`);
    expect(r.status).toBe(404);
    r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT 1')}&pipeline=nope`);
    expect(await j(r)).toEqual({
      status: 403,
      body: { error: "Resource 'nope' not found", documentation: 'https://docs.tinybird.co/api-reference/overview#authentication' },
    });
  });

  it('explain a pipe and a node, with parameters', async () => {
    const r = await s.req('GET', '/v0/pipes/by_country/explain?country=ES');
    let { status, body } = await j(r);
    expect(status).toBe(200);
    expect(body.debug_query).toContain("country = 'ES'");
    expect(body.query_explain).toMatch(/Expression|Aggregating/);
    expect(body.debug_query).not.toMatch(/w_[0-9a-f]{32}|t_[0-9a-f]{32}/);
    ({ status, body } = await j(await s.req('GET', '/v0/pipes/by_country/nodes/filtered/explain')));
    expect(status).toBe(200);
    expect((await s.req('GET', '/v0/pipes/by_country/nodes/nope/explain')).status).toBe(404);
  });

  it('OpenAPI document of readable endpoints', async () => {
    const doc = await (await s.req('GET', '/v0/pipes/openapi.json')).json();
    expect(doc.openapi).toBe('3.0.0');
    const get = doc.paths['/pipes/by_country.json'].get;
    expect(get.parameters).toEqual([{ in: 'query', name: 'country', required: false, schema: { type: 'string' } }]);
  });

  it('cache_ttl() caches the result by its final SQL', async () => {
    const pipe = {
      name: 'cached',
      nodes: [{ name: 'n', type: 'endpoint', sql: "%\n{{ cache_ttl('5s') }}\nSELECT count() AS c FROM events WHERE country = {{ String(country, 'ES') }}" }],
    };
    let r = await s.req('POST', '/v0/pipes', { body: JSON.stringify(pipe), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    r = await s.req('GET', '/v0/pipes/cached.json');
    expect(r.headers.get('x-cache-hits')).toBeNull();
    expect((await r.json()).data).toEqual([{ c: 10 }]);
    const row = JSON.stringify({ ts: '2024-01-01 10:00:00', user: 'x', country: 'ES', n: 0 });
    expect((await s.req('POST', '/v0/events?name=events&wait=true', { body: row })).status).toBe(200);
    r = await s.req('GET', '/v0/pipes/cached.json');
    expect(r.headers.get('x-cache-hits')).toBe('1');
    expect((await r.json()).data).toEqual([{ c: 10 }]);
    // Other parameters are another query.
    r = await s.req('GET', '/v0/pipes/cached.json?country=FR');
    expect(r.headers.get('x-cache-hits')).toBeNull();
    expect((await r.json()).data).toEqual([{ c: 10 }]);
    r = await s.req('GET', `/v0/pipes/cached.json?q=${encodeURIComponent('SELECT c FROM _')}`);
    expect((await r.json()).data).toEqual([{ c: 11 }]);
    const bad = { name: 'cached_bad', nodes: [{ name: 'n', sql: "%\n{{ cache_ttl('7s') }} SELECT 1" }] };
    r = await s.req('POST', '/v0/pipes', { body: JSON.stringify(bad), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/Invalid TTL cache expression/);
  });

  it('table() names are dependencies', async () => {
    const pipe = { name: 'dyn', nodes: [{ name: 'n', sql: "%\nSELECT count() FROM {% if defined(x) %}{{ table('events') }}{% else %}events{% end %}" }] };
    const r = await s.req('POST', '/v0/pipes', { body: JSON.stringify(pipe), headers: { 'content-type': 'application/json' } });
    expect((await r.json()).nodes[0].dependencies).toEqual(['events']);
  });

  it('renaming a data source rewrites the nodes that read it; templates block it unless force', async () => {
    const form2 = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
    expect((await s.req('POST', '/v0/datasources?name=renamable&mode=create', form2({ schema: 'x Int32' }))).status).toBe(200);
    await s.req('POST', '/v0/datasources?name=renamable&mode=append', { body: '1\n2\n' });
    const plain = { name: 'reads_renamable', nodes: [{ name: 'n', sql: "SELECT renamable.x, 'renamable' AS label FROM renamable", type: 'endpoint' }] };
    expect((await s.req('POST', '/v0/pipes', { body: JSON.stringify(plain), headers: { 'content-type': 'application/json' } })).status).toBe(200);
    let r = await s.req('PUT', '/v0/datasources/renamable?name=renamed');
    expect(r.status).toBe(200);
    const p = await (await s.req('GET', '/v0/pipes/reads_renamable')).json();
    expect(p.nodes[0].sql).toBe("SELECT renamable.x, 'renamable' AS label FROM renamed AS renamable");
    expect(p.nodes[0].dependencies).toEqual(['renamed']);
    expect((await (await s.req('GET', '/v0/pipes/reads_renamable.json')).json()).data).toEqual([
      { x: 1, label: 'renamable' },
      { x: 2, label: 'renamable' },
    ]);
    const tpl = { name: 'tpl_renamed', nodes: [{ name: 'n', sql: '%\nSELECT x FROM renamed WHERE x > {{ Int32(m, 0) }}' }] };
    expect((await s.req('POST', '/v0/pipes', { body: JSON.stringify(tpl), headers: { 'content-type': 'application/json' } })).status).toBe(200);
    r = await s.req('PUT', '/v0/datasources/renamed?name=renamed2');
    expect(r.status).toBe(409);
    expect((await r.json()).error).toContain('Pipes="tpl_renamed", nodes="n"');
    r = await s.req('PUT', '/v0/datasources/renamed?name=renamed2&force=true');
    expect(r.status).toBe(200);
    expect((await (await s.req('GET', '/v0/pipes/reads_renamable')).json()).nodes[0].sql).toContain('FROM renamed2 AS renamable');
  });

  it('last_update and requests', async () => {
    const lu = await (await s.req('GET', '/v0/pipes/by_country/last_update')).json();
    expect(lu).toMatchObject({ name: 'by_country', edited_by: null });
    // From tinybird.pipe_stats_rt (issue 13): the endpoint calls of the tests above, once their
    // buffered records are in (they are inserted once a second).
    await s.app.services.observability.flush();
    const { requests } = await (await s.req('GET', '/v0/pipes/by_country/requests')).json();
    expect(requests.top.length).toBeGreaterThan(0);
    expect(requests.top[0]).toMatchObject({ method: expect.any(String), status_code: expect.any(Number), duration: expect.any(Number) });
  });
});
