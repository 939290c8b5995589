/**
 * Internal names never reach users (issue 10, item 7). The engine's name-bearing virtual columns
 * (`_table`, `_database`) answered `t_<id>` and `w_<uuid>`; error messages showed Pipit's own
 * rewrites (a populate's `_part IN ('all_1_1_0', ...)`, the `LIMIT 0` probe, the `pipit:<id>`
 * marker of statements with bound parameters) and the values of bound secrets. Users see their own
 * names: data source and workspace names in results, their own SQL in messages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
const JSON_HDR = { 'content-type': 'application/json' };
const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });

/** What must never appear in a result or message a user gets. */
const LEAK = /w_[0-9a-f]{32}|t_[0-9a-f]{32}|pipit:|_part IN|pipit_sandbox|LIMIT 0|SECRET_VALUE_42/;

/** The MergeTree virtual columns of the engine (ClickHouse 26.7: `DESCRIBE ... describe_include_virtual_columns=1`). */
const MERGETREE_VIRTUALS = [
  '_part',
  '_part_index',
  '_part_starting_offset',
  '_part_uuid',
  '_partition_id',
  '_sample_factor',
  '_part_offset',
  '_part_granule_offset',
  '_part_data_version',
  '_disk_name',
  '_distance',
  '_table',
  '_database',
  '_row_exists',
  '_block_number',
  '_block_offset',
];

const sql = (q: string) => s.req('GET', `/v0/sql?q=${encodeURIComponent(q)}`);

async function text(r: Response): Promise<string> {
  const t = await r.text();
  expect(t).not.toMatch(LEAK);
  return t;
}

async function rows(q: string): Promise<Array<Record<string, unknown>>> {
  const r = await sql(`${q} FORMAT JSON`);
  const t = await text(r);
  expect(r.status, t).toBe(200);
  return JSON.parse(t).data;
}

async function error(r: Response, status = 400): Promise<string> {
  const t = await text(r);
  expect(r.status, t).toBe(status);
  return JSON.parse(t).error;
}

async function waitJob(id: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 400; i++) {
    const j = await (await s.req('GET', `/v0/jobs/${id}`)).json();
    if (['done', 'error', 'cancelled'].includes(j.status)) return j;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} did not finish`);
}

beforeAll(async () => {
  s = await startServer();
  expect((await s.req('POST', '/v0/datasources?name=ev&mode=create', form({ schema: 'n Int32 `json:$.n`, k String `json:$.k`' }))).status).toBe(200);
  expect((await s.req('POST', '/v0/events?name=ev&wait=true', { body: '{"n":1,"k":"a"}\n{"n":2,"k":"b"}\n{"n":"bad","k":"c"}' })).status).toBe(200);
  // A real column called `_table` shadows the virtual one, as in the engine.
  expect((await s.req('POST', '/v0/datasources?name=tagged&mode=create', form({ schema: 'n Int32, `_table` String' }))).status).toBe(200);
  expect((await s.req('POST', '/v0/datasources?name=tagged&mode=append', { body: '1,mine\n' })).status).toBe(200);
  expect((await s.req('POST', '/v0/variables', form({ name: 'api_key', value: 'SECRET_VALUE_42' }))).status).toBe(200);
});

afterAll(async () => {
  await s?.close();
});

describe('virtual columns answer user-facing names', () => {
  it('every MergeTree virtual column through /v0/sql: _table is the data source, _database the workspace', async () => {
    const [row] = await rows(`SELECT ${MERGETREE_VIRTUALS.join(', ')} FROM ev ORDER BY n LIMIT 1`);
    expect(row._table).toBe('ev');
    expect(row._database).toBe('default');
    expect(row._part).toMatch(/^all_\d+_\d+_\d+$/);
    const r = await sql(`SELECT ${MERGETREE_VIRTUALS.join(', ')} FROM ev FORMAT JSON`);
    expect(JSON.parse(await text(r)).meta.find((m: { name: string }) => m.name === '_table').type).toBe('LowCardinality(String)');
  });

  it('in filters, groupings, expressions, qualified, quarantine, unions and scalar subqueries', async () => {
    expect(await rows("SELECT count() AS c FROM ev WHERE _table = 'ev' AND _database = 'default'")).toEqual([{ c: 2 }]);
    expect(await rows('SELECT _table AS t, count() AS c FROM ev GROUP BY _table')).toEqual([{ t: 'ev', c: 2 }]);
    expect(await rows("SELECT concat(_database, '.', x._table) AS full FROM ev AS x LIMIT 1")).toEqual([{ full: 'default.ev' }]);
    expect(await rows('SELECT ev._table FROM ev LIMIT 1')).toEqual([{ 'ev._table': 'ev' }]);
    expect(await rows('SELECT _table, _database FROM ev_quarantine')).toEqual([{ _table: 'ev_quarantine', _database: 'default' }]);
    expect(await rows('SELECT _table FROM ev WHERE n = 1 UNION ALL SELECT _table FROM ev_quarantine')).toEqual(
      expect.arrayContaining([{ _table: 'ev' }, { _table: 'ev_quarantine' }]),
    );
    expect(await rows('SELECT (SELECT _table FROM ev LIMIT 1) AS t')).toEqual([{ t: 'ev' }]);
    expect(await rows('SELECT a._table AS ta, b._table AS tb FROM ev AS a JOIN ev_quarantine AS b ON 1 = 1 LIMIT 1')).toEqual([
      { ta: 'ev', tb: 'ev_quarantine' },
    ]);
  });

  it('what the engine resolves elsewhere is left alone: real columns, aliases, system tables', async () => {
    expect(await rows('SELECT _table FROM tagged')).toEqual([{ _table: 'mine' }]);
    expect(await rows("SELECT 'x' AS _table FROM ev WHERE _table = 'x'")).toEqual([{ _table: 'x' }, { _table: 'x' }]);
    expect(await rows('SELECT _table, _database FROM system.one')).toEqual([{ _table: 'one', _database: 'system' }]);
  });

  it('an unsound use is a clear 400: unqualified between several tables, a lambda parameter', async () => {
    expect(await error(await sql('SELECT _table FROM ev AS a JOIN ev AS b ON a.n = b.n'))).toMatch(/virtual column _table is ambiguous.*qualify it/);
    expect(await error(await sql('SELECT arrayMap(_table -> _table + 1, [1]) AS m, _table FROM ev'))).toMatch(/_table is the name of a virtual column/);
  });

  it('virtual columns of other engines and table functions fail without internal names', async () => {
    for (const c of ['_shard_num', '_file', '_path', '_size', '_time', '_partition_value']) {
      expect(await error(await sql(`SELECT ${c} FROM ev`))).toMatch(new RegExp(c));
    }
  });

  it('through an endpoint, in JSON and CSV', async () => {
    const r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({
        name: 'names_api',
        nodes: [
          { name: 'base', sql: 'SELECT n, _table AS src, _database AS db, _part AS part FROM ev' },
          { name: 'out', sql: 'SELECT n, src, db, ev._table AS direct FROM base JOIN ev USING n ORDER BY n', type: 'endpoint' },
        ],
      }),
    });
    expect(r.status, await r.clone().text()).toBe(200);
    const json = JSON.parse(await text(await s.req('GET', '/v0/pipes/names_api.json')));
    expect(json.data).toEqual([
      { n: 1, src: 'ev', db: 'default', direct: 'ev' },
      { n: 2, src: 'ev', db: 'default', direct: 'ev' },
    ]);
    const csv = await text(await s.req('GET', '/v0/pipes/names_api.csv'));
    expect(csv).toContain('1,"ev","default","ev"');
    // The endpoint's q= runs over the pipe too.
    const q = JSON.parse(await text(await s.req('GET', `/v0/pipes/names_api.json?q=${encodeURIComponent('SELECT DISTINCT src FROM _')}`)));
    expect(q.data).toEqual([{ src: 'ev' }]);
  });
});

describe('error messages show no rewrite artefacts', () => {
  it('a bound secret in a failing query shows redacted, never as its value', async () => {
    const msg = await error(await sql("% SELECT {{ tb_secret('api_key') }} AS k, nope FROM ev"));
    expect(msg).toMatch(/nope/);
    expect(msg).toContain("'[secret]'");
  });

  it('a node checked when saved (the LIMIT 0 probe)', async () => {
    let r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'bad_node', nodes: [{ name: 'a', sql: 'SELECT nope FROM ev' }] }),
    });
    expect(await error(r)).toMatch(/nope/);
    // A node reading another node: the probe wraps the expanded SQL.
    r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({
        name: 'bad_chain',
        nodes: [
          { name: 'a', sql: 'SELECT n FROM ev' },
          { name: 'b', sql: 'SELECT a.k FROM a' },
        ],
      }),
    });
    expect(await error(r)).toMatch(/k/);
  });

  it('a populate whose condition fails: no snapshot of parts in the answer or the job', async () => {
    let r = await s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify({ name: 'pop', nodes: [{ name: 'm', sql: 'SELECT n, k FROM ev' }] }) });
    expect(r.status).toBe(200);
    r = await s.req('POST', '/v0/pipes/pop/nodes/m/materialization?datasource=pop_ds');
    expect(r.status, await r.clone().text()).toBe(200);
    // Checked before the job starts: the engine's message quotes the snapshot query.
    expect(await error(await s.req('POST', `/v0/pipes/pop/nodes/m/population?populate_condition=${encodeURIComponent('nope = 1')}`))).toMatch(/nope/);
    // Failing while it runs: the job's error.
    r = await s.req('POST', `/v0/pipes/pop/nodes/m/population?populate_condition=${encodeURIComponent("throwIf(n = 2, 'cond_failed') = 0")}`);
    const started = await r.json();
    const job = await waitJob(started.job?.id ?? started.id);
    expect(job.status).toBe('error');
    expect(String(job.error)).toMatch(/cond_failed/);
    expect(String(job.error)).not.toMatch(LEAK);
    for (const j of (await (await s.req('GET', '/v0/jobs?kind=populateview')).json()).jobs) expect(String(j.error ?? '')).not.toMatch(LEAK);
  });

  it('copy jobs, delete conditions and other domain errors that quote the engine', async () => {
    expect((await s.req('POST', '/v0/datasources?name=copy_tgt&mode=create', form({ schema: 'n Int32' }))).status).toBe(200);
    let r = await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'cp', nodes: [{ name: 'c', sql: "SELECT n + throwIf(n = 2, 'copy_failed') AS n FROM ev" }] }),
    });
    expect(r.status).toBe(200);
    expect((await s.req('POST', '/v0/pipes/cp/nodes/c/copy', form({ target_datasource: 'copy_tgt' }))).status).toBe(200);
    for (const mode of ['append', 'replace']) {
      r = await s.req('POST', `/v0/pipes/cp/copy?_mode=${mode}`);
      const job = await waitJob((await r.json()).job.id);
      expect(job.status).toBe('error');
      expect(String(job.error)).toMatch(/copy_failed/);
      expect(String(job.error)).not.toMatch(LEAK);
    }
    expect(await error(await s.req('POST', '/v0/datasources/ev/delete', form({ delete_condition: 'nope = 1' })))).toMatch(/nope/);
    expect(
      await error(await s.req('POST', `/v0/datasources?name=ev&mode=replace&replace_condition=${encodeURIComponent('nope = 1')}`, { body: '{"n":1,"k":"a"}' })),
    ).toMatch(/nope/);
    expect(
      await error(
        await s.req('POST', '/v0/datasources?name=bad_key&mode=create', form({ schema: 'n Int32', engine: 'MergeTree', engine_sorting_key: 'nope' })),
      ),
    ).toMatch(/nope/);
  });
});
