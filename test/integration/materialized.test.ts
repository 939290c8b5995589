/**
 * Materialized Views over real HTTP: creating the target from the node, exact aggregates while
 * events arrive during a populate, views reading through another pipe, chains, type mismatches,
 * unlinking, dependent data sources, and cancelling a populate inside the engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineRows, holdJobs, startServer, tableOf, type TestServer } from '../helpers/server.js';

let s: TestServer;
const JSON_HDR = { 'content-type': 'application/json' };
const COUNTRIES = ['ES', 'FR', 'US', 'DE', 'IT'];
let nextId = 0;

function batch(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = nextId++;
    lines.push(JSON.stringify({ id, country: COUNTRIES[id % COUNTRIES.length], n: (id * 7919) % 1000 }));
  }
  return lines.join('\n');
}

/** [sent, acknowledged] times of every batch. */
const sends: Array<[number, number]> = [];

async function send(n: number): Promise<void> {
  const t = Date.now();
  const r = await s.req('POST', '/v0/events?name=events&wait=true', { body: batch(n) });
  expect(r.status).toBe(200);
  sends.push([t, Date.now()]);
}

const jobTime = (t: unknown) => Date.parse(String(t).replace(' ', 'T') + 'Z');

async function waitJob(id: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const j = await (await s.req('GET', `/v0/jobs/${id}`)).json();
    if (['done', 'error', 'cancelled'].includes(j.status)) return j;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} did not finish`);
}

const sql = async (q: string) => (await (await s.req('GET', `/v0/sql?q=${encodeURIComponent(q + ' FORMAT JSON')}`)).json()).data;

beforeAll(async () => {
  s = await startServer();
  const schema = 'id Int64 `json:$.id`, country LowCardinality(String) `json:$.country`, n Int64 `json:$.n`';
  expect((await s.req('POST', '/v0/datasources?name=events&mode=create', { body: new URLSearchParams({ schema }) })).status).toBe(200);
  await send(20_000);
  // A larger history, written straight into the table, so the populate runs long enough for the
  // concurrent inserts of the first test to land while it reads.
  const t = await tableOf(s, 'events');
  await s.app.services.engine.exec(
    `INSERT INTO ${t.table} (id, country, n) SELECT number, ['ES','FR','US','DE','IT'][number % 5 + 1], (number * 7919) % 1000 FROM numbers(${nextId}, 1500000)`,
  );
  nextId += 1_500_000;
}, 60_000);

afterAll(async () => {
  await s?.close();
});

const direct = 'SELECT country, count() AS c, sum(n) AS s FROM events GROUP BY country ORDER BY country';

describe('materialized views', () => {
  it('creates the target from the node and populates exactly while events keep arriving', async () => {
    let r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'agg', nodes: [{ name: 'm', sql: 'SELECT country, countState() AS c, sumState(n) AS s FROM events GROUP BY country' }] }),
    });
    expect(r.status).toBe(200);
    // Inserts running before, during and after the materialization and its populate.
    let stop = false;
    const writers = Promise.all(
      [0, 1].map(async (w) => {
        let k = 0;
        while (!stop) await send(w === 0 ? 50 : ++k % 5 === 0 ? 5000 : 200);
      }),
    );
    await new Promise((res) => setTimeout(res, 100));
    r = await s.req('POST', '/v0/pipes/agg/nodes/m/materialization?datasource=agg_ds&populate=true');
    const body = await r.json();
    expect(r.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ name: 'm', node_type: 'materialized', created_datasource: true, datasource: { name: 'agg_ds' } });
    expect(body.job).toMatchObject({ kind: 'populateview' });
    // Keep writing until the populate job has finished.
    const done = await waitJob(body.job.id);
    await new Promise((res) => setTimeout(res, 100));
    stop = true;
    await writers;
    expect(done.status).toBe('done');
    // Batches were in flight while the populate was reading.
    expect(sends.some(([a, b]) => a <= jobTime(done.updated_at) && b >= jobTime(done.started_at))).toBe(true);
    const ds = await (await s.req('GET', '/v0/datasources/agg_ds')).json();
    expect(ds.engine.engine).toBe('AggregatingMergeTree');
    const viaView = await sql('SELECT country, countMerge(c) AS c, sumMerge(s) AS s FROM agg_ds GROUP BY country ORDER BY country');
    expect(viaView).toEqual(await sql(direct));
    const pipe = await (await s.req('GET', '/v0/pipes/agg')).json();
    expect(pipe.type).toBe('materialized');
    expect(pipe.nodes[0].materialized).toBe(ds.id);
  }, 120_000);

  it('an existing target with SimpleAggregateFunction columns, through another pipe', async () => {
    const schema = 'country LowCardinality(String), c SimpleAggregateFunction(sum, UInt64), s SimpleAggregateFunction(sum, Int64)';
    let r = await s.req('POST', '/v0/datasources?name=simple_ds&mode=create&engine=AggregatingMergeTree&engine_sorting_key=country', {
      body: new URLSearchParams({ schema }),
    });
    expect(r.status).toBe(200);
    r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'positive', nodes: [{ name: 'p', sql: 'SELECT * FROM events WHERE n >= 0', type: 'endpoint' }] }),
    });
    expect(r.status).toBe(200);
    r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({
        name: 'simple',
        nodes: [
          {
            name: 'm',
            sql: 'SELECT country, count() AS c, sum(n) AS s FROM positive GROUP BY country',
            type: 'materialized',
            datasource: 'simple_ds',
            populate: 'true',
          },
        ],
      }),
    });
    const p = await r.json();
    expect(r.status, JSON.stringify(p)).toBe(200);
    expect(p.type).toBe('materialized');
    // Wait for the populate job of this pipe, then keep inserting: the view follows.
    const jobs = (await (await s.req('GET', `/v0/jobs?kind=populateview&pipe_name=simple`)).json()).jobs;
    expect(jobs).toHaveLength(1);
    expect((await waitJob(jobs[0].id)).status).toBe('done');
    await send(3000);
    expect(await sql('SELECT country, sum(c) AS c, sum(s) AS s FROM simple_ds GROUP BY country ORDER BY country')).toEqual(await sql(direct));
  }, 60_000);

  it('chains of views stay current; deleting the middle data source needs force', async () => {
    let r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({
        name: 'step_a',
        nodes: [{ name: 'a', sql: 'SELECT country, n FROM events WHERE n % 2 = 0', type: 'materialized', datasource: 'even_ds' }],
      }),
    });
    expect(r.status, await r.clone().text()).toBe(200);
    r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({
        name: 'step_b',
        nodes: [{ name: 'b', sql: 'SELECT country, countState() AS c FROM even_ds GROUP BY country', type: 'materialized', datasource: 'even_counts' }],
      }),
    });
    expect(r.status, await r.clone().text()).toBe(200);
    const before = nextId;
    await send(1000);
    const evens = Array.from({ length: 1000 }, (_, i) => before + i).filter((id) => ((id * 7919) % 1000) % 2 === 0);
    const want = COUNTRIES.map((c) => ({ country: c, c: evens.filter((id) => COUNTRIES[id % 5] === c).length }))
      .filter((x) => x.c > 0)
      .sort((a, b) => (a.country < b.country ? -1 : 1));
    expect(await sql('SELECT country, countMerge(c) AS c FROM even_counts GROUP BY country ORDER BY country')).toEqual(want);
    r = await s.req('DELETE', '/v0/datasources/even_ds');
    expect(r.status).toBe(409);
    const msg = (await r.json()).error;
    expect(msg).toContain('Pipes="step_a,step_b"');
    expect(msg).toContain('nodes="a,b"');
    const dry = await (await s.req('DELETE', '/v0/datasources/even_ds?dry_run=true')).json();
    expect(dry.dependent_pipes).toEqual(['step_a', 'step_b']);
    r = await s.req('DELETE', '/v0/datasources/even_ds?force=true');
    expect(r.status).toBe(204);
    const a = await (await s.req('GET', '/v0/pipes/step_a')).json();
    expect(a.nodes[0].node_type).toBe('standard');
    await send(10);
  }, 60_000);

  it('refuses aggregate type mismatches up front, and a second materialization', async () => {
    const schema = 'country String, s AggregateFunction(sum, Int32)';
    expect(
      (
        await s.req('POST', '/v0/datasources?name=bad_target&mode=create&engine=AggregatingMergeTree&engine_sorting_key=country', {
          body: new URLSearchParams({ schema }),
        })
      ).status,
    ).toBe(200);
    await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'mism', nodes: [{ name: 'm', sql: 'SELECT country, sumState(n) AS s FROM events GROUP BY country' }] }),
    });
    let r = await s.req('POST', '/v0/pipes/mism/nodes/m/materialization?datasource=bad_target');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe("Incompatible data types between aggregate function 'sum' which returns Int64 and column storage type Int32");
    r = await s.req('POST', '/v0/pipes/mism/nodes/m/materialization?datasource=mism_ok');
    expect(r.status).toBe(200);
    r = await s.req('POST', '/v0/pipes/mism/nodes/m/materialization?datasource=mism_ok');
    expect(await r.json()).toEqual({ error: 'Node m is already being materialized' });
    r = await s.req('POST', '/v0/pipes/mism/nodes/m/endpoint');
    expect(r.status).toBe(403);
    r = await s.req('POST', '/v0/pipes/mism/nodes/m/materialization');
    expect(r.status).toBe(400);
  });

  it('lets the engine decide what a target column can store (logs-explorer: countState() into AggregateFunction(count, UInt64))', async () => {
    // Issue 11 item 1: Tinybird's public logs-explorer template declares the column with the
    // argument type; the engine stores countState() there and countMerge reads it back.
    let r = await s.req('POST', '/v0/datasources?name=logs_src&mode=create', {
      body: new URLSearchParams({ schema: 'host String `json:$.host`, level String `json:$.level`' }),
    });
    expect(r.status).toBe(200);
    const schema = 'host String, count AggregateFunction(count, UInt64), levels AggregateFunction(uniq, String)';
    r = await s.req('POST', '/v0/datasources?name=logs_mv&mode=create&engine=AggregatingMergeTree&engine_sorting_key=host', {
      body: new URLSearchParams({ schema }),
    });
    expect(r.status).toBe(200);
    const nodeSql = 'SELECT host, countState() AS count, uniqState(level) AS levels FROM logs_src GROUP BY host';
    r = await s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify({ name: 'logs_pipe', nodes: [{ name: 'agg', sql: nodeSql }] }) });
    expect(r.status).toBe(200);
    r = await s.req('POST', '/v0/pipes/logs_pipe/nodes/agg/materialization?datasource=logs_mv');
    expect(r.status, await r.clone().text()).toBe(200);
    r = await s.req('POST', '/v0/events?name=logs_src&wait=true', {
      body: '{"host":"a","level":"info"}\n{"host":"a","level":"warn"}\n{"host":"b","level":"info"}',
    });
    expect(r.status).toBe(200);
    expect(await sql('SELECT host, countMerge(count) AS c, uniqMerge(levels) AS l FROM logs_mv GROUP BY host ORDER BY host')).toEqual([
      { host: 'a', c: 2, l: 2 },
      { host: 'b', c: 1, l: 1 },
    ]);
    // What the engine refuses still gets Tinybird's messages, naming the types as they are.
    await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({
        name: 'logs_bad',
        nodes: [
          { name: 'f', sql: 'SELECT host, sumState(1) AS count, uniqState(level) AS levels FROM logs_src GROUP BY host' },
          { name: 'g', sql: 'SELECT host, countState() AS count, uniqState(toUInt32(1)) AS levels FROM logs_src GROUP BY host' },
          { name: 'h', sql: 'SELECT host, countState() AS count, 1 AS levels FROM logs_src GROUP BY host' },
        ],
      }),
    });
    r = await s.req('POST', '/v0/pipes/logs_bad/nodes/f/materialization?datasource=logs_mv');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe("Incompatible aggregate functions for column 'count': the node computes 'sum' and the Data Source stores 'count'");
    r = await s.req('POST', '/v0/pipes/logs_bad/nodes/g/materialization?datasource=logs_mv');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe("Incompatible data types between aggregate function 'uniq' which returns UInt32 and column storage type String");
    r = await s.req('POST', '/v0/pipes/logs_bad/nodes/h/materialization?datasource=logs_mv');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(
      /^Incompatible data types for column 'levels': the node returns UInt8 and the Data Source stores AggregateFunction\(uniq, String\) \(.+\)$/,
    );
    const bad = await (await s.req('GET', '/v0/pipes/logs_bad')).json();
    expect(bad.nodes.map((n: { node_type: string }) => n.node_type)).toEqual(['standard', 'standard', 'standard']);
  });

  it('unlinking keeps the target and stops it receiving; population with truncate', async () => {
    const target = await tableOf(s, 'mism_ok');
    let r = await s.req('DELETE', '/v0/pipes/mism/nodes/m/materialization');
    expect(r.status).toBe(204);
    const count = async () => (await engineRows<{ c: string }>(s, `SELECT count() AS c FROM ${target.table}`))[0].c;
    const before = await count();
    await send(100);
    expect(await count()).toBe(before);
    r = await s.req('DELETE', '/v0/pipes/mism/nodes/m/materialization');
    expect(await r.json()).toEqual({ error: "Node 'm' is not materialized" });
    r = await s.req('POST', '/v0/pipes/mism/nodes/m/population');
    expect(r.status).toBe(400);
    // Re-materialize into the same target, then repopulate it from scratch.
    r = await s.req('POST', '/v0/pipes/mism/nodes/m/materialization?datasource=mism_ok');
    expect(r.status).toBe(200);
    r = await s.req('POST', '/v0/pipes/mism/nodes/m/population?truncate=true');
    const job = await r.json();
    expect((await waitJob(job.id)).status).toBe('done');
    expect(await sql('SELECT country, sumMerge(s) AS s FROM mism_ok GROUP BY country ORDER BY country')).toEqual(
      (await sql(direct)).map((x: { country: string; s: number }) => ({ country: x.country, s: x.s })),
    );
    r = await s.req('POST', `/v0/pipes/mism/nodes/m/population?populate_condition=${encodeURIComponent('nope(')}`);
    expect(r.status).toBe(400);
    // A bad option changes nothing: no truncate, and the source's merges were not left stopped.
    const populated = await count();
    r = await s.req('POST', '/v0/pipes/mism/nodes/m/population?truncate=true&populate_subset=0.5');
    expect(r.status).toBe(400);
    expect(await count()).toBe(populated);
    const events = await tableOf(s, 'events');
    await expect(s.app.services.engine.exec(`OPTIMIZE TABLE ${events.table} FINAL`)).resolves.toBeUndefined();
  }, 60_000);

  it('deleting a pipe detaches its view: the target keeps its rows and stops receiving', async () => {
    let r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({
        name: 'doomed',
        nodes: [{ name: 'd', sql: 'SELECT country, n FROM events WHERE n = 7', type: 'materialized', datasource: 'doomed_ds' }],
      }),
    });
    expect(r.status).toBe(200);
    await send(2000);
    const t = await tableOf(s, 'doomed_ds');
    const count = async () => Number((await engineRows<{ c: string }>(s, `SELECT count() AS c FROM ${t.table}`))[0].c);
    const before = await count();
    expect(before).toBeGreaterThan(0);
    r = await s.req('DELETE', '/v0/pipes/doomed');
    expect(r.status).toBe(204);
    await send(2000);
    expect(await count()).toBe(before);
    const views = await engineRows<{ c: string }>(
      s,
      `SELECT count() AS c FROM system.tables WHERE engine = 'MaterializedView' AND name LIKE '%_mv' AND create_table_query LIKE '%${t.table.split('.')[1]}%'`,
    );
    expect(Number(views[0].c)).toBe(0);
  });

  it('a rejected materialization (400) leaves no new data source, no view and no half-set node', async () => {
    const ws = s.app.services.access.defaultWorkspace;
    const dsNames = async () => (await s.app.services.datasources.list(ws)).map((d) => d.name);
    const views = async () =>
      Number(
        (
          await engineRows<{ c: string }>(
            s,
            `SELECT count() AS c FROM system.tables WHERE database = '${ws.database}' AND engine = 'MaterializedView' AND endsWith(name, '_mv')`,
          )
        )[0].c,
      );
    const viewsBefore = await views();
    const node = async (pipe: string) => (await (await s.req('GET', `/v0/pipes/${pipe}`)).json()).nodes;
    expect(
      (
        await s.req('POST', '/v0/pipes', {
          headers: JSON_HDR,
          body: JSON.stringify({ name: 'rej', nodes: [{ name: 'm', sql: 'SELECT country, count() AS c FROM events GROUP BY country' }] }),
        })
      ).status,
    ).toBe(200);
    // Populate arguments are checked before the target and the view exist.
    for (const q of ['populate=true&populate_subset=5', `populate=true&populate_condition=${encodeURIComponent('nope(')}`]) {
      const r = await s.req('POST', `/v0/pipes/rej/nodes/m/materialization?datasource=rej_target&${q}`);
      expect(r.status, q).toBe(400);
      expect(await dsNames()).not.toContain('rej_target');
      expect((await node('rej'))[0]).toMatchObject({ node_type: 'standard', materialized: null });
    }
    // Appending a materialized node: the node is not appended either.
    let r = await s.req('POST', '/v0/pipes/rej/nodes?name=m2&type=materialized&datasource=rej_target2&populate=true&populate_subset=1', {
      body: 'SELECT country FROM events',
    });
    expect(r.status).toBe(400);
    expect((await node('rej')).map((n: { name: string }) => n.name)).toEqual(['m']);
    expect(await dsNames()).not.toContain('rej_target2');
    // tb push: a node refused after a materialized one undoes the data source that one created
    // (here a second role for the pipe, refused with a 403).
    r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({
        name: 'rej_push',
        nodes: [
          { name: 'a', sql: 'SELECT country, count() AS c FROM events GROUP BY country', type: 'materialized', datasource: 'rej_push_a' },
          { name: 'b', sql: 'SELECT country FROM events', type: 'copy', target_datasource: 'rej_keep_none' },
        ],
      }),
    });
    expect(r.status).toBe(403);
    expect(await dsNames()).not.toContain('rej_push_a');
    expect((await s.req('GET', '/v0/pipes/rej_push')).status).toBe(404);
    // override_datasource with a definition the engine refuses keeps the existing target.
    expect(
      (await s.req('POST', '/v0/datasources?name=rej_keep&mode=create', { body: new URLSearchParams({ schema: 'country String, c UInt64' }) })).status,
    ).toBe(200);
    expect((await s.req('POST', '/v0/datasources?name=rej_keep&mode=append', { body: 'XX,1\n' })).status).toBe(200);
    for (const q of ['populate=true&populate_subset=2', 'engine_sorting_key=nope', 'engine=MergeTree&engine_sorting_key=c&engine_ttl=nope']) {
      r = await s.req('POST', `/v0/pipes/rej/nodes/m/materialization?datasource=rej_keep&override_datasource=true&${q}`);
      expect(r.status, `${q}: ${await r.clone().text()}`).toBe(400);
      expect(await sql('SELECT country, c FROM rej_keep')).toEqual([{ country: 'XX', c: 1 }]);
    }
    // A valid override replaces it (same name, the node's columns), leaving no passing name behind.
    const oldId = (await s.app.services.datasources.get(ws, 'rej_keep')).id;
    r = await s.req('POST', '/v0/pipes/rej/nodes/m/materialization?datasource=rej_keep&override_datasource=true');
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await r.json()).toMatchObject({ datasource: { name: 'rej_keep' }, created_datasource: true });
    const replaced = await s.app.services.datasources.get(ws, 'rej_keep');
    expect(replaced.id).not.toBe(oldId);
    expect((await dsNames()).filter((n) => n.startsWith('tmp_override_'))).toEqual([]);
    expect(await sql('SELECT count() AS n FROM rej_keep')).toEqual([{ n: 0 }]);
    await send(10);
    expect((await sql('SELECT sum(c) AS n FROM rej_keep'))[0].n).toBe(10);
    // A population refused for its arguments does not truncate first.
    expect((await s.req('DELETE', '/v0/pipes/rej/nodes/m/materialization')).status).toBe(204);
    expect((await s.req('POST', '/v0/datasources/rej_keep/truncate')).status).toBe(205);
    expect((await s.req('POST', '/v0/datasources?name=rej_keep&mode=append', { body: 'XX,1\n' })).status).toBe(200);
    expect((await s.req('POST', '/v0/pipes/rej/nodes/m/materialization?datasource=rej_keep')).status).toBe(200);
    r = await s.req('POST', '/v0/pipes/rej/nodes/m/population?truncate=true&populate_subset=9');
    expect(r.status).toBe(400);
    expect(await sql('SELECT country, c FROM rej_keep')).toEqual([{ country: 'XX', c: 1 }]);
    expect((await s.req('DELETE', '/v0/pipes/rej/nodes/m/materialization')).status).toBe(204);
    expect(await views()).toBe(viewsBefore);
  }, 60_000);

  it('cancelling a populate stops the engine work', async () => {
    // Many moderate blocks (the engine checks for cancellation between blocks), not a few huge ones.
    let r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({
        name: 'heavy',
        nodes: [{ name: 'h', sql: 'SELECT country, sumState(n + x) AS s FROM events ARRAY JOIN range(3000) AS x GROUP BY country' }],
      }),
    });
    expect(r.status).toBe(200);
    r = await s.req('POST', '/v0/pipes/heavy/nodes/h/materialization?datasource=heavy_ds&populate=true');
    const { job } = await r.json();
    const running = async () =>
      Number(
        (
          await engineRows<{ c: string }>(
            s,
            `SELECT count() AS c FROM system.processes WHERE query LIKE '%pipit:${job.id.replace(/[^0-9A-Za-z]/g, '')}%' AND query NOT LIKE '%system.processes%'`,
          )
        )[0].c,
      );
    for (let i = 0; i < 100 && (await running()) === 0; i++) await new Promise((res) => setTimeout(res, 50));
    expect(await running()).toBe(1);
    r = await s.req('POST', `/v0/jobs/${job.id}/cancel`);
    expect(r.status).toBe(200);
    expect((await waitJob(job.id)).status).toBe('cancelled');
    let left = 1;
    for (let i = 0; i < 100 && left > 0; i++) {
      await new Promise((res) => setTimeout(res, 50));
      left = await running();
    }
    expect(left).toBe(0);
  }, 60_000);

  it("a populate's stopped merges restart once no populate reads the frozen parts any more (each cancelled while waiting)", async () => {
    expect((await s.req('POST', '/v0/datasources?name=merged&mode=create', { body: new URLSearchParams({ schema: 'k Int64, v Int64' }) })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await s.req('POST', '/v0/datasources?name=merged&mode=append', { body: '1,1\n2,2\n' })).status).toBe(200);
    const t = await tableOf(s, 'merged');
    /** OPTIMIZE ... FINAL is refused while the table's merges are stopped. */
    const mergesRun = () =>
      s.app.services.engine.exec(`OPTIMIZE TABLE ${t.table} FINAL SETTINGS optimize_throw_if_noop = 1`).then(
        () => true,
        (err: Error) => {
          if (/cancel|abort/i.test(err.message)) return false;
          throw err;
        },
      );
    // Both job slots held: the populates wait.
    const { release } = await holdJobs(s, 'delete_data', 2);
    try {
      const jobs: string[] = [];
      for (const name of ['pop_a', 'pop_b']) {
        const pipe = { name, nodes: [{ name: 'm', sql: 'SELECT k, sum(v) AS v FROM merged GROUP BY k' }] };
        expect((await s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
        const r = await s.req('POST', `/v0/pipes/${name}/nodes/m/materialization?datasource=${name}_t&populate=true`);
        const body = await r.json();
        expect(r.status, JSON.stringify(body)).toBe(200);
        jobs.push(body.job.id);
      }
      expect(await mergesRun()).toBe(false);
      expect((await s.req('POST', `/v0/jobs/${jobs[0]}/cancel`)).status).toBe(200);
      // The other populate still reads the frozen parts.
      expect(await mergesRun()).toBe(false);
      expect((await s.req('POST', `/v0/jobs/${jobs[1]}/cancel`)).status).toBe(200);
      expect(await mergesRun()).toBe(true);
    } finally {
      release();
      await s.app.services.jobs.drain();
    }
  });
});
