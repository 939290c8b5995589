/**
 * Data Sources API routes and parameters over real HTTP against the real engine and catalog:
 * alter, rename, drop, the `.datasource` text, listing with attrs, analyze, the Jobs API (filters,
 * cancel), CSV type_guessing=false and dialects, Parquet create/append, url import errors, and
 * the progress/debug params. Error paths check the status and the reference's message.
 */
import http from 'node:http';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, engineRows, startServer, tableOf, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.close();
});

// biome-ignore lint/suspicious/noExplicitAny: response bodies of many shapes
type Json = Record<string, any>;

const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });

async function call(
  method: string,
  path: string,
  opts?: Parameters<TestServer['req']>[2],
): Promise<{ status: number; body: Json; text: string; headers: Headers }> {
  const r = await s.req(method, path, opts);
  const text = await r.text();
  let body: Json = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    /* not JSON */
  }
  return { status: r.status, body, text, headers: r.headers };
}

async function expectError(p: Promise<{ status: number; body: Json }>, status: number, msg: string | RegExp): Promise<void> {
  const r = await p;
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  if (typeof msg === 'string') expect(r.body.error).toBe(msg);
  else expect(r.body.error).toMatch(msg);
}

async function create(name: string, schema: string, extra = ''): Promise<Json> {
  const r = await call('POST', `/v0/datasources?name=${name}&mode=create${extra}`, form({ schema }));
  expect(r.status, r.text).toBe(200);
  return r.body.datasource;
}

async function waitForJob(
  id: string,
  until: (j: Json) => boolean = (j) => ['done', 'error', 'cancelled'].includes(j.status),
  timeoutMs = 20_000,
): Promise<Json> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await call('GET', `/v0/jobs/${id}`);
    expect(r.status).toBe(200);
    if (until(r.body)) return r.body;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${String(r.body.status)} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

/** Physical columns of a table as `name → type`. */
async function physicalColumns(table: string): Promise<Record<string, string>> {
  const [db, t] = table.split('.');
  const rows = await engineRows<{ name: string; type: string }>(
    s,
    `SELECT name, type FROM system.columns WHERE database = '${db}' AND table = '${t}' ORDER BY position`,
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.type]));
}

async function tableDdl(table: string): Promise<string> {
  const [db, t] = table.split('.');
  const rows = await engineRows<{ q: string }>(s, `SELECT create_table_query AS q FROM system.tables WHERE database = '${db}' AND name = '${t}'`);
  return rows[0]?.q ?? '';
}

/** Parquet bytes made by the engine itself. */
async function parquet(select: string): Promise<Uint8Array<ArrayBuffer>> {
  const r = await s.app.services.engine.query(`${select} FORMAT Parquet`, { format: 'Parquet' });
  expect(r.bytes.subarray(0, 4).toString('latin1')).toBe('PAR1');
  return new Uint8Array(r.bytes);
}

/** A loopback file server; `hold` paths answer only when released. */
async function fileServer(files: Record<string, string | Uint8Array>) {
  const held: Array<() => void> = [];
  let holding = false;
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const send = () => {
      const body = files[(req.url ?? '').split('?')[0]];
      if (body === undefined) res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      else res.writeHead(200).end(body);
    };
    if (holding && (req.url ?? '').startsWith('/slow/')) held.push(send);
    else send();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    requests,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const f of held.splice(0)) f();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const EV = 'ts DateTime `json:$.ts`, user String `json:$.user`, n Int32 `json:$.n`';
const EV_KEYS = '&format=ndjson&engine_sorting_key=ts&engine_partition_key=toYYYYMM(ts)';
const line = (o: Json) => JSON.stringify(o);

// ---------------------------------------------------------------------------------------------

describe('POST /v0/datasources/:name/alter', () => {
  it('adds a column at the end: table, quarantine and ingest follow; old rows get the default', async () => {
    await create('alt_add', EV, EV_KEYS);
    await call('POST', '/v0/datasources?name=alt_add&mode=append&format=ndjson', { body: line({ ts: '2024-01-01 00:00:00', user: 'a', n: 1 }) });
    const schema = `${EV}, city String \`json:$.geo.city\` DEFAULT 'none'`;
    const r = await call('POST', '/v0/datasources/alt_add/alter', form({ schema }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.operations).toEqual(["ADD COLUMN `city` String DEFAULT 'none'"]);
    const t = await tableOf(s, 'alt_add');
    expect(await physicalColumns(t.table)).toEqual({ ts: 'DateTime', user: 'String', n: 'Int32', city: 'String' });
    expect((await physicalColumns(t.quarantine)).city).toBe('Nullable(String)');
    const g = await call('GET', '/v0/datasources/alt_add');
    expect(g.body.schema.columns.map((c: Json) => [c.name, c.jsonpath, c.default_value])).toEqual([
      ['ts', '$.ts', null],
      ['user', '$.user', null],
      ['n', '$.n', null],
      ['city', '$.geo.city', "DEFAULT 'none'"],
    ]);
    expect(g.body.schema.sql_schema).toBe(
      "`ts` DateTime `json:$.ts`, `user` String `json:$.user`, `n` Int32 `json:$.n`, `city` String `json:$.geo.city` DEFAULT 'none'",
    );
    // The new JSONPath is ingested after the alter.
    const a = await call('POST', '/v0/datasources?name=alt_add&mode=append&format=ndjson', {
      body: line({ ts: '2024-01-02 00:00:00', user: 'b', n: 2, geo: { city: 'Oslo' } }),
    });
    expect(a.body.quarantine_rows, a.text).toBe(0);
    expect(await engineRows(s, `SELECT user, city FROM ${t.table} ORDER BY ts`)).toEqual([
      { user: 'a', city: 'none' },
      { user: 'b', city: 'Oslo' },
    ]);
  });

  it('makes a column Nullable, then changes its DEFAULT; rows missing it stop going to quarantine', async () => {
    await create('alt_null', EV, EV_KEYS);
    const t = await tableOf(s, 'alt_null');
    const missingN = line({ ts: '2024-01-01 00:00:00', user: 'a' });
    const before = await call('POST', '/v0/datasources?name=alt_null&mode=append&format=ndjson', { body: missingN });
    expect(before.body.quarantine_rows).toBe(1);

    const r = await call(
      'POST',
      '/v0/datasources/alt_null/alter',
      form({ schema: 'ts DateTime `json:$.ts`, user String `json:$.user`, n Nullable(Int32) `json:$.n`' }),
    );
    expect(r.status, r.text).toBe(200);
    expect(r.body.operations).toEqual(['MODIFY COLUMN `n` Nullable(Int32)']);
    expect((await physicalColumns(t.table)).n).toBe('Nullable(Int32)');
    const col = (await call('GET', '/v0/datasources/alt_null')).body.schema.columns.find((c: Json) => c.name === 'n');
    expect([col.type, col.nullable]).toEqual(['Int32', true]);
    const after = await call('POST', '/v0/datasources?name=alt_null&mode=append&format=ndjson', { body: missingN });
    expect(after.body.quarantine_rows, after.text).toBe(0);
    expect(await engineRows(s, `SELECT n FROM ${t.table}`)).toEqual([{ n: null }]);

    // Add a DEFAULT to another column, then change it.
    const d1 = await call(
      'POST',
      '/v0/datasources/alt_null/alter',
      form({ schema: "ts DateTime `json:$.ts`, user String `json:$.user` DEFAULT 'anon', n Nullable(Int32) `json:$.n`" }),
    );
    expect(d1.status, d1.text).toBe(200);
    expect(d1.body.operations).toEqual(["MODIFY COLUMN `user` String DEFAULT 'anon'"]);
    const d2 = await call(
      'POST',
      '/v0/datasources/alt_null/alter',
      form({ schema: "ts DateTime `json:$.ts`, user String `json:$.user` DEFAULT 'nobody', n Nullable(Int32) `json:$.n`" }),
    );
    expect(d2.body.operations).toEqual(["MODIFY COLUMN `user` String DEFAULT 'nobody'"]);
    expect(await tableDdl(t.table)).toContain("`user` String DEFAULT 'nobody'");
    const u = await call('POST', '/v0/datasources?name=alt_null&mode=append&format=ndjson', { body: line({ ts: '2024-01-03 00:00:00', n: 5 }) });
    expect(u.body.quarantine_rows, u.text).toBe(0);
    expect(await engineRows(s, `SELECT user FROM ${t.table} WHERE n = 5`)).toEqual([{ user: 'nobody' }]);
    expect((await call('GET', '/v0/datasources/alt_null')).body.schema.columns[1].default_value).toBe("DEFAULT 'nobody'");
  });

  it('drops a non-key column (the quarantine keeps its raw column)', async () => {
    await create('alt_drop', `${EV}, extra String \`json:$.extra\``, EV_KEYS);
    const r = await call('POST', '/v0/datasources/alt_drop/alter', form({ schema: EV }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.operations).toEqual(['DROP COLUMN `extra`']);
    const t = await tableOf(s, 'alt_drop');
    expect(Object.keys(await physicalColumns(t.table))).toEqual(['ts', 'user', 'n']);
    const a = await call('POST', '/v0/datasources?name=alt_drop&mode=append&format=ndjson', {
      body: line({ ts: '2024-01-01 00:00:00', user: 'a', n: 1, extra: 'x' }),
    });
    expect(a.body.quarantine_rows, a.text).toBe(0);
    expect(await count(s, 'alt_drop')).toBe(1);
  });

  it('sets and removes the TTL', async () => {
    await create('alt_ttl', EV, EV_KEYS);
    const t = await tableOf(s, 'alt_ttl');
    const set = await call('POST', '/v0/datasources/alt_ttl/alter', form({ ttl: 'ts + toIntervalDay(30)' }));
    expect(set.status, set.text).toBe(200);
    expect(set.body.operations).toEqual(['MODIFY TTL ts + toIntervalDay(30)']);
    expect(await tableDdl(t.table)).toMatch(/TTL ts \+ toIntervalDay\(30\)/);
    const g = await call('GET', '/v0/datasources/alt_ttl');
    expect(g.body.engine.ttl).toBe('ts + toIntervalDay(30)');
    expect(g.body.engine.engine_full).toContain('TTL ts + toIntervalDay(30)');
    // Same TTL again: nothing to do.
    await expectError(
      call('POST', '/v0/datasources/alt_ttl/alter', form({ ttl: 'ts + toIntervalDay(30)' })),
      400,
      'There were no operations to perform, new schema, ttl and indexes are the same as the existing ones',
    );
    const rm = await call('POST', '/v0/datasources/alt_ttl/alter', form({ ttl: 'false' }));
    expect(rm.status, rm.text).toBe(200);
    expect(rm.body.operations).toEqual(['REMOVE TTL']);
    expect(await tableDdl(t.table)).not.toContain('TTL');
    expect((await call('GET', '/v0/datasources/alt_ttl')).body.engine.ttl).toBeUndefined();
    // A TTL that is not an expression over the table is refused and changes nothing.
    const bad = await call('POST', '/v0/datasources/alt_ttl/alter', form({ ttl: 'nope_column + 1' }));
    expect(bad.status, bad.text).toBe(400);
    expect((await call('GET', '/v0/datasources/alt_ttl')).body.engine.ttl).toBeUndefined();
  });

  it('refuses a TTL that would delete rows as soon as they are written (DateTime wraps after 2106), on create and alter', async () => {
    const overflow = encodeURIComponent('ts + toIntervalYear(100)');
    let r = await call('POST', `/v0/datasources?name=ttl_wrap&mode=create&engine_ttl=${overflow}`, form({ schema: 'ts DateTime, n Int32' }));
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(/^The TTL "ts \+ toIntervalYear\(100\)" would delete every row as soon as it is written.*DateTime64/);
    expect((await call('GET', '/v0/datasources/ttl_wrap')).status).toBe(404);
    // DateTime64 reaches that far; the rows stay.
    await create('ttl_wide', 'ts DateTime64(3), n Int32', `&engine_ttl=${overflow}`);
    r = await call('POST', '/v0/datasources?name=ttl_wide&mode=append', { body: `${new Date().toISOString().slice(0, 19).replace('T', ' ')},1\n` });
    expect(r.body.quarantined_rows ?? 0).toBe(0);
    expect(await count(s, 'ttl_wide')).toBe(1);
    await create('ttl_alter', 'ts DateTime, n Int32');
    r = await call('POST', '/v0/datasources/ttl_alter/alter', form({ ttl: 'ts + toIntervalYear(100)' }));
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(/would delete every row as soon as it is written/);
    expect((await call('GET', '/v0/datasources/ttl_alter')).body.engine.ttl).toBeUndefined();
    // A TTL rule with a clause after its time expression is checked by its time expression.
    r = await call('POST', '/v0/datasources/ttl_alter/alter', form({ ttl: 'ts - toIntervalDay(1) DELETE WHERE n > 0' }));
    expect(r.status, r.text).toBe(400);
    r = await call('POST', '/v0/datasources/ttl_alter/alter', form({ ttl: 'ts + toIntervalDay(7) DELETE WHERE n > 0' }));
    expect(r.status, r.text).toBe(200);
  });

  it('changes the description (alone: no engine operation)', async () => {
    await create('alt_desc', EV, EV_KEYS);
    const r = await call('POST', '/v0/datasources/alt_desc/alter', form({ description: 'page hits' }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.operations).toEqual([]);
    expect((await call('GET', '/v0/datasources/alt_desc')).body.description).toBe('page hits');
    await expectError(
      call('POST', '/v0/datasources/alt_desc/alter', form({ description: 'page hits' })),
      400,
      'There were no operations to perform, new schema, ttl and indexes are the same as the existing ones',
    );
  });

  it('adds, changes and removes skipping indexes', async () => {
    await create('alt_idx', EV, EV_KEYS);
    const t = await tableOf(s, 'alt_idx');
    const [db, tbl] = t.table.split('.');
    const indices = () =>
      engineRows<{ name: string; type_full: string; expr: string; granularity: number }>(
        s,
        `SELECT name, type_full, expr, granularity FROM system.data_skipping_indices WHERE database = '${db}' AND table = '${tbl}' ORDER BY name`,
      );
    const add = await call(
      'POST',
      '/v0/datasources/alt_idx/alter',
      form({ indexes: 'idx_user user TYPE bloom_filter(0.01) GRANULARITY 4\nidx_n n TYPE minmax GRANULARITY 1' }),
    );
    expect(add.status, add.text).toBe(200);
    expect(add.body.operations).toEqual(['ADD INDEX idx_user user TYPE bloom_filter(0.01) GRANULARITY 4', 'ADD INDEX idx_n n TYPE minmax GRANULARITY 1']);
    expect((await indices()).map((i) => [i.name, i.type_full, i.granularity])).toEqual([
      ['idx_n', 'minmax', 1],
      ['idx_user', 'bloom_filter(0.01)', 4],
    ]);
    expect((await call('GET', '/v0/datasources/alt_idx')).body.indexes).toEqual([
      { name: 'idx_user', expr: 'user', type: 'bloom_filter(0.01)', granularity: '4' },
      { name: 'idx_n', expr: 'n', type: 'minmax', granularity: '1' },
    ]);
    const change = await call(
      'POST',
      '/v0/datasources/alt_idx/alter',
      form({ indexes: 'idx_user user TYPE set(100) GRANULARITY 2\nidx_n n TYPE minmax GRANULARITY 1' }),
    );
    expect(change.body.operations).toEqual(['DROP INDEX `idx_user`', 'ADD INDEX idx_user user TYPE set(100) GRANULARITY 2']);
    expect((await indices()).map((i) => i.type_full)).toEqual(['minmax', 'set(100)']);
    const rm = await call('POST', '/v0/datasources/alt_idx/alter', form({ indexes: '0' }));
    expect(rm.status, rm.text).toBe(200);
    expect(rm.body.operations).toEqual(['DROP INDEX `idx_user`', 'DROP INDEX `idx_n`']);
    expect(await indices()).toEqual([]);
    expect((await call('GET', '/v0/datasources/alt_idx')).body.indexes).toEqual([]);
    await expectError(call('POST', '/v0/datasources/alt_idx/alter', form({ indexes: 'idx x TYPE nope GRANULARITY 1' })), 400, "Not allowed index 'nope'");
  });

  it('dry=true lists the operations and changes nothing', async () => {
    await create('alt_dry', EV, EV_KEYS);
    const t = await tableOf(s, 'alt_dry');
    const ddl = await tableDdl(t.table);
    const r = await call(
      'POST',
      '/v0/datasources/alt_dry/alter?dry=true',
      form({
        schema: `${EV}, extra String \`json:$.extra\``,
        ttl: 'ts + toIntervalDay(1)',
        indexes: 'idx_user user TYPE bloom_filter GRANULARITY 4',
        description: 'new',
      }),
    );
    expect(r.status, r.text).toBe(200);
    expect(r.body.operations).toEqual([
      'ADD COLUMN `extra` String',
      'MODIFY TTL ts + toIntervalDay(1)',
      'ADD INDEX idx_user user TYPE bloom_filter GRANULARITY 4',
    ]);
    expect(await tableDdl(t.table)).toBe(ddl);
    expect(Object.keys(await physicalColumns(t.quarantine))).not.toContain('extra');
    const g = (await call('GET', '/v0/datasources/alt_dry')).body;
    expect(g.description).toBe('');
    expect(g.schema.columns).toHaveLength(3);
    expect(g.indexes).toEqual([]);
    expect(g.engine.ttl).toBeUndefined();
  });

  it('answers the documented errors and leaves the data source as it was', async () => {
    await create('alt_err', EV, EV_KEYS);
    const t = await tableOf(s, 'alt_err');
    const ddl = await tableDdl(t.table);
    const alter = (body: Record<string, string>, name = 'alt_err') => call('POST', `/v0/datasources/${name}/alter`, form(body));
    await expectError(call('POST', '/v0/datasources/alt_err/alter'), 400, /^Alter operation requires additional parameters/);
    await expectError(alter({ schema: EV }), 400, 'There were no operations to perform, new schema, ttl and indexes are the same as the existing ones');
    await expectError(alter({ description: 'x' }, 'nope'), 404, 'Data Source "nope" does not exist');
    // A sorting/partition key column can't be removed.
    await expectError(alter({ schema: 'user String `json:$.user`, n Int32 `json:$.n`' }), 400, "Column 'ts' is part of the engine keys and can't be dropped");
    // Bad type, and a type change other than making it Nullable.
    await expectError(alter({ schema: `${EV}, x Strin \`json:$.x\`` }), 400, /Strin/);
    await expectError(
      alter({ schema: 'ts DateTime `json:$.ts`, user String `json:$.user`, n String `json:$.n`' }),
      400,
      "Column 'n' can't change its type from Int32 to String: only making a column Nullable is supported",
    );
    // New columns go at the end.
    await expectError(
      alter({ schema: 'ts DateTime `json:$.ts`, x String `json:$.x`, user String `json:$.user`, n Int32 `json:$.n`' }),
      400,
      "New columns must be added at the end of the schema; 'user' comes after a new column",
    );
    // At most one MODIFY per request.
    await expectError(
      alter({ schema: 'ts DateTime `json:$.ts`, user Nullable(String) `json:$.user`, n Nullable(Int32) `json:$.n`' }),
      400,
      'Only one column modification (type, default or codec) is allowed per request',
    );
    // Column rules of the schema syntax apply.
    await expectError(alter({ schema: `${EV}, index String \`json:$.i\`` }), 400, "Invalid column name 'index' at position 4, 'index' is a reserved keyword");
    await expectError(
      alter({ schema: `${EV}, ${Array.from({ length: 500 }, (_, i) => `x${i} String \`json:$.x${i}\``).join(', ')}` }),
      400,
      'The maximum number of columns allowed is 500.',
    );
    // An NDJSON data source needs a JSONPath on every column.
    await expectError(alter({ schema: `${EV}, x String` }), 400, 'Every column of a Data Source with JSONPaths needs a JSONPath');
    // A default the engine refuses.
    const badDefault = await alter({ schema: `${EV}, x Int32 \`json:$.x\` DEFAULT 'abc'` });
    expect(badDefault.status, badDefault.text).toBe(400);
    expect(await tableDdl(t.table)).toBe(ddl);
    expect((await call('GET', '/v0/datasources/alt_err')).body.schema.columns).toHaveLength(3);
    // Engines outside the MergeTree family (and Null) can't change their schema.
    await create('alt_join', 'k Int32, v String', '&engine=Join&engine_join_strictness=ANY&engine_join_type=LEFT&engine_key_columns=k');
    await expectError(
      alter({ schema: 'k Int32, v String, w String' }, 'alt_join'),
      400,
      'The data source engine (Join) is not supported. Schema modifications are only supported for the Null engine and the engines from the MergeTree family.',
    );
  });

  it('adds a MATERIALIZED column and changes a CODEC', async () => {
    await create('alt_mat', "a Int32 `json:$.a`, c String `json:$.c` DEFAULT 'q' CODEC(ZSTD(1))", '&format=ndjson');
    await call('POST', '/v0/datasources?name=alt_mat&mode=append&format=ndjson', { body: '{"a":1}\n' });
    const add = await call(
      'POST',
      '/v0/datasources/alt_mat/alter',
      form({ schema: "a Int32 `json:$.a`, c String `json:$.c` DEFAULT 'q' CODEC(ZSTD(1)), d Int64 MATERIALIZED a * 3" }),
    );
    expect(add.status, add.text).toBe(200);
    expect(add.body.operations).toEqual(['ADD COLUMN `d` Int64 MATERIALIZED a * 3']);
    const codec = await call(
      'POST',
      '/v0/datasources/alt_mat/alter',
      form({ schema: "a Int32 `json:$.a`, c String `json:$.c` DEFAULT 'q' CODEC(LZ4), d Int64 MATERIALIZED a * 3" }),
    );
    expect(codec.status, codec.text).toBe(200);
    expect(codec.body.operations).toEqual(["MODIFY COLUMN `c` String DEFAULT 'q' CODEC(LZ4)"]);
    const a = await call('POST', '/v0/datasources?name=alt_mat&mode=append&format=ndjson', { body: '{"a":2,"c":"z"}\n' });
    expect(a.body.quarantine_rows, a.text).toBe(0);
    const t = await tableOf(s, 'alt_mat');
    expect(await engineRows(s, `SELECT a, c, d FROM ${t.table} ORDER BY a`)).toEqual([
      { a: 1, c: 'q', d: 3 },
      { a: 2, c: 'z', d: 6 },
    ]);
    expect(await tableDdl(t.table)).toContain('CODEC(LZ4)');
  });

  it('changes a JSONPath (the ingest follows) and accepts a JSON body', async () => {
    await create('alt_path', EV, EV_KEYS);
    const r = await call('POST', '/v0/datasources/alt_path/alter', {
      body: JSON.stringify({ schema: 'ts DateTime `json:$.ts`, user String `json:$.who.name`, n Int32 `json:$.n`' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status, r.text).toBe(200);
    const g = await call('GET', '/v0/datasources/alt_path');
    expect(g.body.schema.columns[1].jsonpath).toBe('$.who.name');
    const a = await call('POST', '/v0/datasources?name=alt_path&mode=append&format=ndjson', {
      body: line({ ts: '2024-01-01 00:00:00', who: { name: 'ann' }, n: 1 }),
    });
    expect(a.body.quarantine_rows, a.text).toBe(0);
    const t = await tableOf(s, 'alt_path');
    expect(await engineRows(s, `SELECT user FROM ${t.table}`)).toEqual([{ user: 'ann' }]);
  });

  it('adds a column to a CSV data source; CSV rows carry it from then on', async () => {
    await create('alt_csv', 'k Int32, v String');
    await call('POST', '/v0/datasources?name=alt_csv&mode=append', { body: '1,a\n' });
    const r = await call('POST', '/v0/datasources/alt_csv/alter', form({ schema: 'k Int32, v String, w Nullable(Int64)' }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.operations).toEqual(['ADD COLUMN `w` Nullable(Int64)']);
    const a = await call('POST', '/v0/datasources?name=alt_csv&mode=append', { body: '2,b,7\n' });
    expect(a.body.quarantine_rows, a.text).toBe(0);
    const t = await tableOf(s, 'alt_csv');
    expect(await engineRows(s, `SELECT k, v, w FROM ${t.table} ORDER BY k`)).toEqual([
      { k: 1, v: 'a', w: null },
      { k: 2, v: 'b', w: 7 },
    ]);
  });

  it('works on a Null-engine data source', async () => {
    await create('alt_nulleng', 'a String `json:$.a`', '&format=ndjson&engine=Null');
    const r = await call('POST', '/v0/datasources/alt_nulleng/alter', form({ schema: 'a String `json:$.a`, b Int32 `json:$.b`' }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.operations).toEqual(['ADD COLUMN `b` Int32']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('PUT /v0/datasources/:name (rename)', () => {
  it('renames keeping the id; the old name is gone; data and quarantine follow', async () => {
    const ds = await create('ren_a', 'k Int32, v String');
    await call('POST', '/v0/datasources?name=ren_a&mode=append', { body: '1,a\nx,b\n' });
    const r = await call('PUT', '/v0/datasources/ren_a?name=ren_b');
    expect(r.status, r.text).toBe(200);
    expect(r.body.id).toBe(ds.id);
    expect(r.body.name).toBe('ren_b');
    await expectError(call('GET', '/v0/datasources/ren_a'), 404, 'Data Source "ren_a" does not exist');
    const byId = await call('GET', `/v0/datasources/${ds.id}`);
    expect(byId.body.name).toBe('ren_b');
    expect(byId.body.statistics.row_count).toBe(1);
    const a = await call('POST', '/v0/datasources?name=ren_b&mode=append', { body: '2,c\n' });
    expect(a.status, a.text).toBe(200);
    expect(await count(s, 'ren_b')).toBe(2);
    expect((await call('POST', '/v0/datasources/ren_b_quarantine/truncate')).status).toBe(205);
    expect(await count(s, 'ren_b', true)).toBe(0);
    // Form body works as well as the query string; the same name returns it unchanged.
    const back = await call('PUT', '/v0/datasources/ren_b', form({ name: 'ren_c' }));
    expect(back.body.name).toBe('ren_c');
    const same = await call('PUT', '/v0/datasources/ren_c?name=ren_c');
    expect(same.status).toBe(200);
    expect([same.body.id, same.body.name]).toEqual([ds.id, 'ren_c']);
    // By id too.
    const viaId = await call('PUT', `/v0/datasources/${ds.id}?name=ren_d`);
    expect([viaId.status, viaId.body.name]).toEqual([200, 'ren_d']);
  });

  it('409 when the new name is taken, 400 on an invalid or reserved name, 404 on an unknown data source', async () => {
    await create('ren_x', 'a String');
    await create('ren_y', 'a String');
    const clash = await call('PUT', '/v0/datasources/ren_x?name=ren_y');
    expect(clash.status, clash.text).toBe(409);
    expect(clash.body.error).toContain('ren_y');
    await expectError(
      call('PUT', '/v0/datasources/ren_x?name=1bad'),
      400,
      'Invalid Data Source name "1bad". Name must start with a letter and contain only letters, numbers, and underscores. Hint: use t_1bad.',
    );
    await expectError(
      call('PUT', '/v0/datasources/ren_x?name=bad-name'),
      400,
      'Invalid Data Source name "bad-name". Name must start with a letter and contain only letters, numbers, and underscores. Hint: use bad_name.',
    );
    await expectError(call('PUT', '/v0/datasources/ren_x?name=from'), 400, /^Forbidden Data Source name "from"/);
    await expectError(call('PUT', '/v0/datasources/nope?name=other'), 404, 'Data Source "nope" does not exist');
    // Nothing changed.
    expect((await call('GET', '/v0/datasources/ren_x')).status).toBe(200);
    expect((await call('GET', '/v0/datasources/ren_y')).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------

describe('DELETE /v0/datasources/:name', () => {
  it('204 with no body, then 404; the table, quarantine and stages are gone', async () => {
    const ds = await create('del_a', 'ts DateTime `json:$.ts`, n Int32 `json:$.n`', '&format=ndjson');
    await call('POST', '/v0/datasources?name=del_a&mode=append&format=ndjson', { body: '{"ts":"2024-01-01 00:00:00","n":1}\n{"ts":"x","n":2}\n' });
    expect(await count(s, 'del_a', true)).toBe(1);
    const db = s.app.services.access.defaultWorkspace.database;
    const tables = () => engineRows<{ name: string }>(s, `SELECT name FROM system.tables WHERE database = '${db}' AND name LIKE '${ds.id}%'`);
    expect((await tables()).length).toBeGreaterThanOrEqual(2);
    // dry_run reports dependencies and keeps it.
    const dry = await call('DELETE', '/v0/datasources/del_a?dry_run=true');
    expect(dry.status).toBe(200);
    expect(dry.body).toEqual({ dependencies: {}, dependent_pipes: [], dependent_nodes: [] });
    expect((await call('GET', '/v0/datasources/del_a')).status).toBe(200);

    const r = await call('DELETE', '/v0/datasources/del_a');
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    await expectError(call('GET', '/v0/datasources/del_a'), 404, 'Data Source "del_a" does not exist');
    await expectError(call('GET', `/v0/datasources/${ds.id}`), 404, `Data Source "${ds.id}" does not exist`);
    await expectError(call('DELETE', '/v0/datasources/del_a'), 404, 'Data Source "del_a" does not exist');
    expect(await tables()).toEqual([]);
    // The name can be used again.
    await create('del_a', 'a String');
  });

  it('deletes by id', async () => {
    const ds = await create('del_b', 'a String');
    expect((await call('DELETE', `/v0/datasources/${ds.id}`)).status).toBe(204);
    expect((await call('GET', '/v0/datasources/del_b')).status).toBe(404);
  });
});

// ---------------------------------------------------------------------------------------------

describe('GET /v0/datasources and /v0/datasources/:name', () => {
  it('serves the .datasource datafile as text/plain', async () => {
    await create(
      'get_file',
      "ts DateTime `json:$.ts`, user String `json:$.user` DEFAULT 'anon', tags Array(String) `json:$.tags[:]`",
      '&format=ndjson&engine=ReplacingMergeTree&engine_sorting_key=user,ts&engine_partition_key=toYYYYMM(ts)&engine_ver=ts&engine_ttl=ts%20%2B%20toIntervalDay(60)',
    );
    await call(
      'POST',
      '/v0/datasources/get_file/alter',
      form({ description: 'Page hits\nper user', indexes: 'idx_user user TYPE bloom_filter(0.01) GRANULARITY 4' }),
    );
    const r = await s.req('GET', '/v0/datasources/get_file.datasource');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await r.text()).toBe(
      [
        'DESCRIPTION >',
        '    Page hits',
        '    per user',
        '',
        'SCHEMA >',
        '    `ts` DateTime `json:$.ts`,',
        "    `user` String `json:$.user` DEFAULT 'anon',",
        '    `tags` Array(String) `json:$.tags[:]`',
        '',
        'INDEXES >',
        '    idx_user user TYPE bloom_filter(0.01) GRANULARITY 4',
        '',
        'ENGINE "ReplacingMergeTree"',
        'ENGINE_PARTITION_KEY "toYYYYMM(ts)"',
        'ENGINE_SORTING_KEY "user,ts"',
        'ENGINE_TTL "ts + toIntervalDay(60)"',
        'ENGINE_VER "ts"',
        '',
      ].join('\n'),
    );
    const missing = await call('GET', '/v0/datasources/nope.datasource');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe('Data Source "nope" does not exist');
  });

  it('gets by name, by id and by decorated id; attrs filters keys', async () => {
    const ds = await create('get_one', 'a String, b Int32');
    await call('POST', '/v0/datasources?name=get_one&mode=append', { body: '"x",1\n"y",2\n' });
    const byName = await call('GET', '/v0/datasources/get_one');
    expect(byName.status).toBe(200);
    expect(byName.body.id).toBe(ds.id);
    expect(byName.body.type).toBe('csv');
    expect(byName.body.statistics.row_count).toBe(2);
    expect(byName.body.schema.sql_schema).toBe('`a` String, `b` Int32');
    expect(byName.body.engine).toMatchObject({ engine: 'MergeTree', engine_full: 'MergeTree ORDER BY tuple()' });
    expect(await (await s.req('GET', '/v0/datasources/get_one.datasource')).text()).toContain('ENGINE "MergeTree"\nENGINE_SORTING_KEY "tuple()"\n');
    const byId = await call('GET', `/v0/datasources/${ds.id}`);
    expect(byId.body.name).toBe('get_one');
    const decorated = await call('GET', `/v0/datasources/t_some_description.${ds.id.slice(2)}`);
    expect(decorated.status, decorated.text).toBe(200);
    expect(decorated.body.name).toBe('get_one');
    const attrs = await call('GET', '/v0/datasources/get_one?attrs=id,name,description');
    // Falsy values (the empty description) are dropped.
    expect(attrs.body).toEqual({ id: ds.id, name: 'get_one' });
    // An empty attrs is no filter.
    expect((await call('GET', '/v0/datasources/get_one?attrs=')).body).toEqual(byName.body);
    expect((await call('GET', '/v0/datasources?attrs=')).body.datasources.find((d: Json) => d.name === 'get_one').columns).toHaveLength(2);
  });

  it('lists data sources; attrs keeps only those keys and quarantine_rows counts for real', async () => {
    await create('list_a', 'k Int32');
    await call('POST', '/v0/datasources?name=list_a&mode=append', { body: '1\nx\ny\n' });
    const all = await call('GET', '/v0/datasources');
    expect(all.status).toBe(200);
    const item = all.body.datasources.find((d: Json) => d.name === 'list_a');
    expect(item.engine).toEqual({ engine: 'MergeTree', engine_sorting_key: '', engine_partition_key: '', engine_primary_key: '' });
    expect(item.columns.map((c: Json) => c.name)).toEqual(['k']);
    expect(item.statistics.row_count).toBe(1);
    expect(item.quarantine_rows).toBe(0);
    const some = await call('GET', '/v0/datasources?attrs=name,id');
    expect(some.body.datasources.length).toBe(all.body.datasources.length);
    for (const d of some.body.datasources) expect(Object.keys(d).sort()).toEqual(['id', 'name']);
    const q = await call('GET', '/v0/datasources?attrs=name,quarantine_rows');
    expect(q.body.datasources.find((d: Json) => d.name === 'list_a')).toEqual({ name: 'list_a', quarantine_rows: 2 });
  });

  it('used_by names the pipes that read the data source; row_count, disk_bytes and ttl_expression are also flat', async () => {
    await create('used_a', 'k Int32, d Date', '&engine_ttl=' + encodeURIComponent('d + toIntervalYear(100)'));
    await call('POST', '/v0/datasources?name=used_a&mode=append', { body: '1,2024-01-01\n2,2024-01-02\n' });
    let one = await call('GET', '/v0/datasources/used_a');
    expect(one.body.used_by).toEqual([]);
    expect(one.body.row_count).toBe(2);
    expect(one.body.disk_bytes).toBeGreaterThan(0);
    expect(one.body.ttl_expression).toBe(one.body.engine.ttl);
    expect(one.body.ttl_expression).toBe('d + toIntervalYear(100)');
    const p = await call('POST', '/v0/pipes', form({ name: 'reads_used_a', sql: 'SELECT k FROM used_a' }));
    expect(p.status).toBe(200);
    await call('POST', '/v0/pipes', form({ name: 'reads_other', sql: 'SELECT 1' }));
    one = await call('GET', '/v0/datasources/used_a');
    expect(one.body.used_by).toEqual([{ id: p.body.id, name: 'reads_used_a' }]);
    const list = await call('GET', '/v0/datasources?attrs=name,used_by');
    expect(list.body.datasources.find((d: Json) => d.name === 'used_a')).toEqual({ name: 'used_a', used_by: [{ id: p.body.id, name: 'reads_used_a' }] });
  });
});

// ---------------------------------------------------------------------------------------------

describe('POST /v0/analyze', () => {
  const NDJSON =
    [
      { id: 1, name: 'a', geo: { city: 'Paris' }, tags: ['x', 'y'], at: '2024-01-01 10:00:00', score: 1.5, maybe: null },
      { id: 2, name: 'b', geo: { city: 'Oslo' }, tags: [], at: '2024-01-02 11:00:00', score: 2, maybe: 'z' },
    ]
      .map((o) => JSON.stringify(o))
      .join('\n') + '\n';
  const CSV = 'date,user_id,amount,label\n2024-01-01,10,1.5,a\n2024-01-02,11,2.5,b\n2024-01-03,12,,c\n';
  let files: Awaited<ReturnType<typeof fileServer>>;
  let parquetBytes: Uint8Array<ArrayBuffer>;

  beforeAll(async () => {
    parquetBytes = await parquet("SELECT toUInt32(number) AS id, concat('n', toString(number)) AS name, toFloat64(number) / 2 AS v FROM numbers(3)");
    files = await fileServer({ '/rows.ndjson': NDJSON, '/rows.csv': CSV, '/rows.parquet': parquetBytes, '/empty.csv': '' });
  });
  afterAll(async () => {
    await files?.close();
  });

  function checkNdjson(j: Json) {
    const cols = j.analysis.columns.map((c: Json) => [c.name, c.path, c.recommended_type, c.present_pct]);
    expect(cols).toEqual([
      ['id', '$.id', 'Int16', 1],
      ['name', '$.name', 'String', 1],
      ['geo_city', '$.geo.city', 'String', 1],
      ['tags', '$.tags[:]', 'Array(String)', 1],
      ['at', '$.at', 'DateTime', 1],
      ['score', '$.score', 'Float32', 1],
      ['maybe', '$.maybe', 'Nullable(String)', 0.5],
    ]);
    expect(j.analysis.schema).toBe(
      '`id` Int16 `json:$.id`, `name` String `json:$.name`, `geo_city` String `json:$.geo.city`, `tags` Array(String) `json:$.tags[:]`, `at` DateTime `json:$.at`, `score` Float32 `json:$.score`, `maybe` Nullable(String) `json:$.maybe`',
    );
    expect(j.schema).toBe(j.analysis.schema);
    expect(j.preview.rows).toBe(2);
    expect(j.preview.data).toHaveLength(2);
    expect(j.preview.meta.map((m: Json) => m.name)).toEqual(['id', 'name', 'geo_city', 'tags', 'at', 'score', 'maybe']);
    // Preview rows are keyed by the analysed columns.
    expect(j.preview.data).toEqual([
      { id: 1, name: 'a', geo_city: 'Paris', tags: ['x', 'y'], at: '2024-01-01 10:00:00', score: 1.5, maybe: null },
      { id: 2, name: 'b', geo_city: 'Oslo', tags: [], at: '2024-01-02 11:00:00', score: 2, maybe: 'z' },
    ]);
  }

  function checkCsv(j: Json) {
    expect(j.analysis.columns.map((c: Json) => [c.name, c.recommended_type])).toEqual([
      ['date', 'Date'],
      ['user_id', 'Int16'],
      ['amount', 'Nullable(Float32)'],
      ['label', 'String'],
    ]);
    expect(j.analysis.schema).toBe('`date` Date, `user_id` Int16, `amount` Nullable(Float32), `label` String');
    expect(j.schema).toBe(j.analysis.schema); // seed 003: a top-level schema string too
    expect(j.preview.meta.map((m: Json) => m.name)).toEqual(['date', 'user_id', 'amount', 'label']);
    expect(j.preview.rows).toBe(3);
    expect(j.preview.data).toEqual([
      { date: '2024-01-01', user_id: 10, amount: 1.5, label: 'a' },
      { date: '2024-01-02', user_id: 11, amount: 2.5, label: 'b' },
      { date: '2024-01-03', user_id: 12, amount: null, label: 'c' },
    ]);
  }

  function checkParquet(j: Json) {
    expect(j.analysis.columns).toEqual([
      { path: '$.id', recommended_type: 'UInt32', present_pct: 1, name: 'id' },
      { path: '$.name', recommended_type: 'String', present_pct: 1, name: 'name' },
      { path: '$.v', recommended_type: 'Float64', present_pct: 1, name: 'v' },
    ]);
    expect(j.analysis.schema).toBe('`id` UInt32 `json:$.id`, `name` String `json:$.name`, `v` Float64 `json:$.v`');
    expect(j.preview.rows).toBe(3);
    expect(j.preview.data[1]).toEqual({ id: 1, name: 'n1', v: 0.5 });
  }

  it('NDJSON from a body, a multipart file and a url', async () => {
    const body = await call('POST', '/v0/analyze', { body: NDJSON });
    expect(body.status, body.text).toBe(200);
    checkNdjson(body.body);
    const fd = new FormData();
    fd.append('file', new Blob([NDJSON]), 'rows.ndjson');
    const mp = await call('POST', '/v0/analyze', { body: fd });
    expect(mp.status, mp.text).toBe(200);
    checkNdjson(mp.body);
    const url = await call('POST', `/v0/analyze?url=${encodeURIComponent(`${files.base}/rows.ndjson`)}`);
    expect(url.status, url.text).toBe(200);
    checkNdjson(url.body);
  });

  it('CSV from a body, a multipart file and a url', async () => {
    const body = await call('POST', '/v0/analyze?format=csv', { body: CSV });
    expect(body.status, body.text).toBe(200);
    checkCsv(body.body);
    const fd = new FormData();
    fd.append('csv', new Blob([CSV]), 'rows.csv');
    const mp = await call('POST', '/v0/analyze', { body: fd });
    expect(mp.status, mp.text).toBe(200);
    checkCsv(mp.body);
    const url = await call('POST', `/v0/analyze?url=${encodeURIComponent(`${files.base}/rows.csv`)}`);
    expect(url.status, url.text).toBe(200);
    checkCsv(url.body);
    // A dialect.
    const semi = await call('POST', '/v0/analyze?format=csv&dialect_delimiter=%3B', { body: CSV.replace(/,/g, ';') });
    expect(semi.status, semi.text).toBe(200);
    checkCsv(semi.body);
  });

  it('Parquet from a body, a multipart file and a url', async () => {
    const body = await call('POST', '/v0/analyze?format=parquet', { body: parquetBytes });
    expect(body.status, body.text).toBe(200);
    checkParquet(body.body);
    // format defaults to auto: Parquet is recognised by its magic bytes.
    for (const q of ['', '?format=auto']) {
      const auto = await call('POST', `/v0/analyze${q}`, { body: parquetBytes });
      expect(auto.status, auto.text).toBe(200);
      checkParquet(auto.body);
    }
    const fdAuto = new FormData();
    fdAuto.append('file', new Blob([parquetBytes]), 'upload.bin');
    const mpAuto = await call('POST', '/v0/analyze', { body: fdAuto });
    expect(mpAuto.status, mpAuto.text).toBe(200);
    checkParquet(mpAuto.body);
    const fd = new FormData();
    fd.append('parquet', new Blob([parquetBytes]), 'rows.parquet');
    const mp = await call('POST', '/v0/analyze', { body: fd });
    expect(mp.status, mp.text).toBe(200);
    checkParquet(mp.body);
    const url = await call('POST', `/v0/analyze?url=${encodeURIComponent(`${files.base}/rows.parquet`)}`);
    expect(url.status, url.text).toBe(200);
    checkParquet(url.body);
  });

  it('the analysis schema creates a working data source', async () => {
    const a = (await call('POST', '/v0/analyze', { body: NDJSON })).body;
    await create('from_analysis', a.analysis.schema, '&format=ndjson');
    const r = await call('POST', '/v0/datasources?name=from_analysis&mode=append&format=ndjson', { body: NDJSON });
    expect(r.body.quarantine_rows, r.text).toBe(0);
    const t = await tableOf(s, 'from_analysis');
    expect(await engineRows(s, `SELECT id, geo_city, tags, maybe FROM ${t.table} ORDER BY id`)).toEqual([
      { id: 1, geo_city: 'Paris', tags: ['x', 'y'], maybe: null },
      { id: 2, geo_city: 'Oslo', tags: [], maybe: 'z' },
    ]);
  });

  it('errors: no data, invalid Parquet, a url that fails, an unsupported scheme', async () => {
    await expectError(call('POST', '/v0/analyze'), 400, 'No data was provided');
    await expectError(call('POST', '/v0/analyze?format=parquet', { body: 'not parquet at all' }), 400, 'File is not a valid Parquet file');
    await expectError(
      call('POST', `/v0/analyze?url=${encodeURIComponent(`${files.base}/missing.csv`)}`),
      400,
      `Trying to fetch ${files.base}/missing.csv returns 404: Not Found`,
    );
    await expectError(
      call('POST', `/v0/analyze?url=${encodeURIComponent('ftp://example.com/x.csv')}`),
      400,
      'Url is not supported, only http, and https schemes are',
    );
    const unreachable = await call('POST', `/v0/analyze?url=${encodeURIComponent('http://127.0.0.1:1/x.csv')}`);
    expect(unreachable.status, unreachable.text).toBe(400);
    expect(unreachable.body.error).toMatch(/^Trying to fetch http:\/\/127\.0\.0\.1:1\/x\.csv failed with /);
    await expectError(call('POST', '/v0/analyze?format=ndjson', { body: 'not json\n' }), 400, /^Cannot analyze ndjson file/);
    await expectError(
      call('POST', '/v0/analyze?format=xml', { body: 'a,b\n1,2\n' }),
      400,
      'Invalid format "xml", valid formats are csv, ndjson, parquet, auto',
    );
    await expectError(
      call('POST', '/v0/analyze?format=csv&dialect_delimiter=ab', { body: 'a,b\n1,2\n' }),
      400,
      'The dialect delimiter must be a 1-character string',
    );
    await expectError(call('POST', '/v0/analyze?format=csv&dialect_new_line=%2C', { body: 'a,b\n1,2\n' }), 400, /new_line/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('Jobs API', () => {
  let files: Awaited<ReturnType<typeof fileServer>>;
  beforeAll(async () => {
    files = await fileServer({ '/slow/a.csv': '1,a\n2,b\n', '/a.csv': '1,a\n' });
  });
  afterAll(async () => {
    files?.release();
    await files?.close();
  });

  it('GET /v0/jobs filters by kind, status and creation dates; GET /v0/jobs/:id', async () => {
    await create('jobs_a', 'k Int32, v String');
    const started = new Date(Date.now() - 1000).toISOString();
    const imp = await call('POST', '/v0/datasources?name=jobs_a&mode=append', form({ url: `${files.base}/a.csv` }));
    expect(imp.status, imp.text).toBe(200);
    const importJob = await waitForJob(imp.body.id);
    expect(importJob.status, JSON.stringify(importJob)).toBe('done');
    const del = await call('POST', '/v0/datasources/jobs_a/delete', form({ delete_condition: 'k = 1' }));
    expect(del.status, del.text).toBe(201);
    const delJob = await waitForJob(del.body.id);
    expect(delJob.status).toBe('done');
    expect(delJob.rows_affected).toBe(1);

    const list = await call('GET', '/v0/jobs');
    expect(list.status).toBe(200);
    const ids = list.body.jobs.map((j: Json) => j.id);
    expect(ids.indexOf(del.body.id)).toBeLessThan(ids.indexOf(imp.body.id)); // newest first
    const item = list.body.jobs.find((j: Json) => j.id === imp.body.id);
    expect(item).toMatchObject({ id: imp.body.id, kind: 'import', status: 'done', job_url: `${s.url}/v0/jobs/${imp.body.id}`, datasource: { name: 'jobs_a' } });
    expect(item.created_at).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);

    const kinds = async (q: string) => (await call('GET', `/v0/jobs?${q}`)).body.jobs.map((j: Json) => j.id);
    expect(await kinds('kind=import')).toContain(imp.body.id);
    expect(await kinds('kind=import')).not.toContain(del.body.id);
    expect(await kinds('kind=delete_data')).toEqual(expect.arrayContaining([del.body.id]));
    expect(await kinds('kind=delete_data')).not.toContain(imp.body.id);
    expect(await kinds('status=done')).toEqual(expect.arrayContaining([imp.body.id, del.body.id]));
    expect(await kinds('status=error')).not.toContain(imp.body.id);
    expect(await kinds(`created_after=${encodeURIComponent(started)}`)).toEqual(expect.arrayContaining([imp.body.id, del.body.id]));
    expect(await kinds(`created_after=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual([]);
    expect(await kinds(`created_before=${encodeURIComponent(started)}`)).not.toContain(imp.body.id);
    expect(await kinds(`created_before=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual(expect.arrayContaining([imp.body.id]));
    const bad = await call('GET', '/v0/jobs?created_after=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/created_after/);
    // Seed 003: progress (a number) on every job, error in list items too, unknown status → 400.
    expect(item.progress).toBe(100);
    await expectError(call('GET', '/v0/jobs?status=finished'), 400, /Invalid status: "finished"/);
    const failed = await call('POST', '/v0/datasources?name=jobs_a&mode=append', form({ url: `${files.base}/missing.csv` }));
    const failedJob = await waitForJob(failed.body.id);
    expect(failedJob.status).toBe('error');
    const errored = (await call('GET', '/v0/jobs?status=error')).body.jobs.find((j: Json) => j.id === failed.body.id);
    expect(errored).toMatchObject({ status: 'error', progress: 0, error: failedJob.error });
    expect(errored.error).toBeTruthy();

    const one = await call('GET', `/v0/jobs/${imp.body.id}`);
    expect(one.body).toMatchObject({
      kind: 'import',
      id: imp.body.id,
      job_id: imp.body.id,
      status: 'done',
      is_cancellable: false,
      mode: 'append',
      url: `${files.base}/a.csv`,
    });
    expect(one.body.started_at).not.toBeNull();
    await expectError(call('GET', '/v0/jobs/nope'), 404, 'Job with id "nope" not found');
  });

  it('a queued url import follows a rename of its data source (ids are stable)', async () => {
    const ds = await create('jobs_r', 'k Int32, v String');
    files.hold();
    const slow = form({ url: `${files.base}/slow/a.csv` });
    const busy = [await call('POST', '/v0/datasources?name=jobs_r&mode=append', slow), await call('POST', '/v0/datasources?name=jobs_r&mode=append', slow)];
    const queued = await call('POST', '/v0/datasources?name=jobs_r&mode=append', form({ url: `${files.base}/a.csv` }));
    expect((await call('GET', `/v0/jobs/${queued.body.id}`)).body.status).toBe('waiting');
    expect((await call('PUT', '/v0/datasources/jobs_r?name=jobs_r2')).status).toBe(200);
    files.release();
    for (const j of [...busy, queued]) expect((await waitForJob(j.body.id)).status).toBe('done');
    expect((await call('GET', '/v0/datasources/jobs_r')).status).toBe(404);
    expect((await call('GET', '/v0/datasources/jobs_r2')).body.id).toBe(ds.id);
    expect(await count(s, 'jobs_r2')).toBe(5);
  });

  it('cancels a waiting job; a working or finished job is not cancellable', async () => {
    await create('jobs_c', 'k Int32, v String');
    files.hold();
    const url = form({ url: `${files.base}/slow/a.csv` });
    // The runner works on two jobs at a time: the third waits.
    const j1 = await call('POST', '/v0/datasources?name=jobs_c&mode=append', url);
    const j2 = await call('POST', '/v0/datasources?name=jobs_c&mode=append', url);
    const j3 = await call('POST', '/v0/datasources?name=jobs_c&mode=append', url);
    for (const j of [j1, j2, j3]) expect(j.status, j.text).toBe(200);
    await waitForJob(j1.body.id, (j) => j.status === 'working');
    await waitForJob(j2.body.id, (j) => j.status === 'working');
    const waiting = await call('GET', `/v0/jobs/${j3.body.id}`);
    expect(waiting.body.status).toBe('waiting');
    expect(waiting.body.is_cancellable).toBe(true);
    expect(waiting.body.started_at).toBeNull();
    const listed = await call('GET', '/v0/jobs?status=waiting');
    expect(listed.body.jobs.map((j: Json) => j.id)).toContain(j3.body.id);

    // A delete job queued behind them waits too, and can be cancelled: it deletes nothing.
    await create('jobs_d', 'k Int32');
    await call('POST', '/v0/datasources?name=jobs_d&mode=append', { body: '1\n2\n' });
    const dj = await call('POST', '/v0/datasources/jobs_d/delete', form({ delete_condition: 'k = 1' }));
    expect(dj.status, dj.text).toBe(201);
    expect(dj.body.job.status).toBe('waiting');
    const dc = await call('POST', `/v0/jobs/${dj.body.id}/cancel`);
    expect(dc.status, dc.text).toBe(200);
    expect(dc.body).toMatchObject({ kind: 'delete_data', status: 'cancelled', is_cancellable: false, delete_condition: 'k = 1' });

    const c = await call('POST', `/v0/jobs/${j3.body.id}/cancel`);
    expect(c.status, c.text).toBe(200);
    expect(c.body.id).toBe(j3.body.id);
    expect(['cancelling', 'cancelled']).toContain(c.body.status);
    const working = await call('GET', `/v0/jobs/${j1.body.id}`);
    expect(working.body.is_cancellable).toBe(false);
    await expectError(call('POST', `/v0/jobs/${j1.body.id}/cancel`), 400, 'Job is not in cancellable status');

    files.release();
    expect((await waitForJob(j1.body.id)).status).toBe('done');
    expect((await waitForJob(j2.body.id)).status).toBe('done');
    expect((await waitForJob(j3.body.id)).status).toBe('cancelled');
    await s.app.services.jobs.drain();
    expect(await count(s, 'jobs_c')).toBe(4); // two jobs of two rows; the cancelled one added nothing
    await expectError(call('POST', `/v0/jobs/${j1.body.id}/cancel`), 400, 'Job is not in cancellable status');
    await expectError(call('POST', `/v0/jobs/${j3.body.id}/cancel`), 400, 'Job is not in cancellable status');
    expect((await call('GET', `/v0/jobs/${dj.body.id}`)).body.status).toBe('cancelled');
    expect(await count(s, 'jobs_d')).toBe(2);
    await expectError(call('POST', '/v0/jobs/nope/cancel'), 404, 'Job with id "nope" not found');
  });
});

// ---------------------------------------------------------------------------------------------

describe('creating and appending from data', () => {
  it('CSV with type_guessing=false creates every column as String', async () => {
    const r = await call('POST', '/v0/datasources?name=no_guess&type_guessing=false', { body: 'date,user_id,amount\n2024-01-01,10,1.5\n2024-01-02,11,2.5\n' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.datasource.schema.columns.map((c: Json) => [c.name, c.type, c.nullable])).toEqual([
      ['date', 'String', false],
      ['user_id', 'String', false],
      ['amount', 'String', false],
    ]);
    const t = await tableOf(s, 'no_guess');
    expect(await engineRows(s, `SELECT * FROM ${t.table} ORDER BY date`)).toEqual([
      { date: '2024-01-01', user_id: '10', amount: '1.5' },
      { date: '2024-01-02', user_id: '11', amount: '2.5' },
    ]);
    // Without it the same data is typed.
    const g = await call('POST', '/v0/datasources?name=with_guess', { body: 'date,user_id,amount\n2024-01-01,10,1.5\n' });
    expect(g.body.datasource.schema.columns.map((c: Json) => c.type)).toEqual(['Date', 'Int16', 'Float32']);
  });

  it('Parquet: create from a multipart upload and from a body, then append', async () => {
    const bytes = await parquet(
      "SELECT toUInt32(number) AS id, concat('n', toString(number)) AS name, toDateTime('2024-01-01 00:00:00') + number AS at FROM numbers(5)",
    );
    const fd = new FormData();
    fd.append('parquet', new Blob([bytes]), 'people.parquet');
    const r = await call('POST', '/v0/datasources?name=pq&mode=create', { body: fd });
    expect(r.status, r.text).toBe(200);
    expect(r.body.datasource.schema.columns.map((c: Json) => [c.name, c.type, c.jsonpath])).toEqual([
      // chDB writes DateTime to Parquet as a millisecond timestamp, so it reads back as DateTime64(3, 'UTC').
      ['id', 'UInt32', '$.id'],
      ['name', 'String', '$.name'],
      ['at', "DateTime64(3, 'UTC')", '$.at'],
    ]);
    expect(r.body.quarantine_rows).toBe(0);
    expect(r.body.error).toBe(false);
    expect(await count(s, 'pq')).toBe(5);
    const more = await parquet("SELECT toUInt32(number + 5) AS id, 'm' AS name, toDateTime('2024-02-01 00:00:00') AS at FROM numbers(2)");
    const a = await call('POST', '/v0/datasources?name=pq&mode=append&format=parquet', { body: more });
    expect(a.status, a.text).toBe(200);
    expect(a.body.quarantine_rows).toBe(0);
    expect(await count(s, 'pq')).toBe(7);
    const t = await tableOf(s, 'pq');
    expect(await engineRows(s, `SELECT id, name, toString(toDateTime(at)) AS at FROM ${t.table} WHERE id >= 4 ORDER BY id`)).toEqual([
      { id: 4, name: 'n4', at: '2024-01-01 00:00:04' },
      { id: 5, name: 'm', at: '2024-02-01 00:00:00' },
      { id: 6, name: 'm', at: '2024-02-01 00:00:00' },
    ]);
    const body = await call('POST', '/v0/datasources?name=pq_body&format=parquet', { body: bytes });
    expect(body.status, body.text).toBe(200);
    expect(await count(s, 'pq_body')).toBe(5);
  });

  it('Parquet appended to a schema data source: values that do not fit go to quarantine', async () => {
    await create('pq_schema', 'id Int32 `json:$.id`, name String `json:$.name`, small UInt8 `json:$.big`', '&format=parquet');
    const bytes = await parquet('SELECT toInt32(number) AS id, toString(number) AS name, toUInt32(number * 300) AS big FROM numbers(3)');
    const fd = new FormData();
    fd.append('parquet', new Blob([bytes]), 'x.parquet');
    const r = await call('POST', '/v0/datasources?name=pq_schema&mode=append', { body: fd });
    expect(r.status, r.text).toBe(200);
    expect(r.body.quarantine_rows).toBe(2); // 300 and 600 don't fit UInt8
    expect(r.body.error).toBe('There was an error with file contents: 2 rows in quarantine.');
    expect(await count(s, 'pq_schema')).toBe(1);
    await expectError(call('POST', '/v0/datasources?name=pq_schema&mode=append&format=parquet', { body: 'nope' }), 400, 'File is not a valid Parquet file');
    // A data source without JSONPaths takes neither NDJSON nor Parquet (and the error names no internal table).
    await create('pq_csv', 'id Int32, name String');
    await expectError(
      call('POST', '/v0/datasources?name=pq_csv&mode=append&format=parquet', { body: bytes }),
      400,
      'Data Source "pq_csv" has no JSONPaths in its schema: Parquet data can\'t be appended to it',
    );
    await expectError(
      call('POST', '/v0/datasources?name=pq_csv&mode=append&format=ndjson', { body: '{"id":1,"name":"a"}\n' }),
      400,
      'Data Source "pq_csv" has no JSONPaths in its schema: NDJSON data can\'t be appended to it',
    );
    expect(await count(s, 'pq_csv')).toBe(0);
  });

  it('CSV dialects: delimiter (incl. tab), new line and escapechar', async () => {
    await create('dialects', 'k Int32, v String');
    const t = await tableOf(s, 'dialects');
    const rows = async () => engineRows<{ k: number; v: string }>(s, `SELECT k, v FROM ${t.table} ORDER BY k`);
    const tab = await call('POST', '/v0/datasources?name=dialects&mode=append&dialect_delimiter=%5Ct', { body: '1\ta,b\n' });
    expect(tab.status, tab.text).toBe(200);
    expect(tab.body.quarantine_rows).toBe(0);
    const tab2 = await call('POST', '/v0/datasources?name=dialects&mode=append&dialect_delimiter=%09', { body: '2\tc;d\n' });
    expect(tab2.body.quarantine_rows, tab2.text).toBe(0);
    const nl = await call('POST', '/v0/datasources?name=dialects&mode=append&dialect_new_line=%7C', { body: '3,x|4,y|' });
    expect(nl.status, nl.text).toBe(200);
    expect([nl.body.quarantine_rows, nl.body.invalid_lines]).toEqual([0, 0]);
    const crlf = await call('POST', '/v0/datasources?name=dialects&mode=append&dialect_new_line=%5Cr%5Cn', { body: '5,p\r\n6,q\r\n' });
    expect(crlf.body.quarantine_rows, crlf.text).toBe(0);
    const esc = await call('POST', '/v0/datasources?name=dialects&mode=append&dialect_escapechar=%5C', { body: '7,a\\,b\n8,say \\"hi\\"\n' });
    expect(esc.status, esc.text).toBe(200);
    expect(esc.body.quarantine_rows).toBe(0);
    expect(await rows()).toEqual([
      { k: 1, v: 'a,b' },
      { k: 2, v: 'c;d' },
      { k: 3, v: 'x' },
      { k: 4, v: 'y' },
      { k: 5, v: 'p' },
      { k: 6, v: 'q' },
      { k: 7, v: 'a,b' },
      { k: 8, v: 'say "hi"' },
    ]);
    // Invalid dialects are 400s with a message, never 500s.
    await expectError(
      call('POST', '/v0/datasources?name=dialects&mode=append&dialect_new_line=abc', { body: '1,a\n' }),
      400,
      'The dialect new line must be a 1 or 2-character string',
    );
    await expectError(
      call('POST', '/v0/datasources?name=dialects&mode=append&dialect_escapechar=ab', { body: '1,a\n' }),
      400,
      'The dialect escapechar must be a 1-character string',
    );
    await expectError(
      call('POST', '/v0/datasources?name=dialects&mode=append&dialect_new_line=%2C', { body: '1,a\n' }),
      400,
      'The dialect new_line must not contain the delimiter, quote or escape character',
    );
    await expectError(
      call('POST', '/v0/datasources?name=dialects&mode=append&dialect_delimiter=%22', { body: '1,a\n' }),
      400,
      'The dialect delimiter must differ from the quote and escape characters',
    );
    expect((await rows()).length).toBe(8);
  });

  it('progress=true and debug= on append are accepted and harmless', async () => {
    await create('prog', 'k Int32, v String');
    const p = await call('POST', '/v0/datasources?name=prog&mode=append&progress=true', { body: '1,a\n2,b\n' });
    expect(p.status, p.text).toBe(200);
    expect(await count(s, 'prog')).toBe(2);
    const d = await call('POST', '/v0/datasources?name=prog&mode=append&debug=blocks,block_log,hook_log', { body: '3,c\n' });
    expect(d.status, d.text).toBe(200);
    expect(d.body.quarantine_rows).toBe(0);
    expect(d.body.error).toBe(false);
    const f = await call('POST', '/v0/datasources?name=prog&mode=append', form({ progress: 'true', debug: 'blocks' }));
    expect(f.status).toBe(400);
    expect(f.body.error).toBe('Url or body payload should be sent. Are you doing a POST without data?');
    expect(await count(s, 'prog')).toBe(3);
    await create('prog_nd', 'a String `json:$.a`', '&format=ndjson');
    const n = await call('POST', '/v0/datasources?name=prog_nd&mode=append&format=ndjson&progress=true&debug=blocks', { body: '{"a":"x"}\n' });
    expect(n.status, n.text).toBe(200);
    expect(await count(s, 'prog_nd')).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('url imports', () => {
  let files: Awaited<ReturnType<typeof fileServer>>;
  beforeAll(async () => {
    files = await fileServer({
      '/ok.csv': '1,a\n',
      '/empty.csv': '',
      '/Sales-2024.csv.gz': new Uint8Array(zlib.gzipSync('day,amount\n2024-01-01,3\n2024-01-02,4\n')),
      '/rows.parquet': await parquet('SELECT toUInt8(number) AS n FROM numbers(4)'),
    });
  });

  it('without a name, the data source is named after the file; gzip and Parquet by extension', async () => {
    const r = await call('POST', '/v0/datasources', form({ url: `${files.base}/Sales-2024.csv.gz` }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.job.datasource).toEqual({ name: 'Sales_2024' });
    const job = await waitForJob(r.body.id);
    expect(job.status, JSON.stringify(job)).toBe('done');
    expect(job.datasource.name).toBe('Sales_2024');
    expect(job.datasource.schema.sql_schema).toBe('`day` Date, `amount` Int16');
    expect(job.statistics.row_count).toBe(2);
    expect(await count(s, 'Sales_2024')).toBe(2);
    const pq = await call('POST', '/v0/datasources?name=url_pq', form({ url: `${files.base}/rows.parquet` }));
    const pj = await waitForJob(pq.body.id);
    expect(pj.status, JSON.stringify(pj)).toBe('done');
    expect(pj.datasource.type).toBe('ndjson');
    expect(await count(s, 'url_pq')).toBe(4);
  });
  afterAll(async () => {
    await files?.close();
  });

  it('an unreachable url ends the job in error with the fetch message', async () => {
    await create('url_err', 'k Int32, v String');
    const r = await call('POST', '/v0/datasources?name=url_err&mode=append', form({ url: 'http://127.0.0.1:1/x.csv' }));
    expect(r.status, r.text).toBe(200);
    const job = await waitForJob(r.body.id);
    expect(job.status).toBe('error');
    expect(job.error).toMatch(/^Trying to fetch http:\/\/127\.0\.0\.1:1\/x\.csv failed with /);
    expect(await count(s, 'url_err')).toBe(0);
  });

  it('refuses other schemes and a url with a body', async () => {
    await expectError(
      call('POST', '/v0/datasources?name=url_err2&mode=append', form({ url: 'ftp://example.com/a.csv' })),
      400,
      'Url is not supported, only http, and https schemes are',
    );
    await expectError(
      call('POST', '/v0/datasources?name=url_err2&mode=append', form({ url: 'file:///etc/passwd' })),
      400,
      'Url is not supported, only http, and https schemes are',
    );
    expect((await call('GET', '/v0/datasources/url_err2')).status).toBe(404);
  });

  it('an empty file creates nothing and the job says why', async () => {
    const r = await call('POST', '/v0/datasources?name=url_empty&mode=create', form({ url: `${files.base}/empty.csv` }));
    expect(r.status, r.text).toBe(200);
    const job = await waitForJob(r.body.id);
    expect(job.status).toBe('error');
    expect(job.error).toBe(`No data was provided. Make sure the file (${files.base}/empty.csv) is not empty`);
    expect((await call('GET', '/v0/datasources/url_empty')).status).toBe(404);
  });
});

// ---------------------------------------------------------------------------------------------

describe('scopes on these routes', () => {
  let readA: string;
  let dropA: string;
  let appendA: string;
  let idA: string;
  beforeAll(async () => {
    idA = (await create('scope_a', 'k Int32')).id;
    await create('scope_b', 'k Int32');
    const access = s.app.services.access;
    const ws = access.defaultWorkspace;
    readA = (await access.createToken(ws.id, 'read a', [{ type: 'DATASOURCES:READ', resource: idA }])).token;
    dropA = (await access.createToken(ws.id, 'drop a', [{ type: 'DATASOURCES:DROP', resource: idA }])).token;
    appendA = (await access.createToken(ws.id, 'append a', [{ type: 'DATASOURCES:APPEND', resource: idA }])).token;
  });

  it('a READ token sees only its data source and can change nothing', async () => {
    const as = (token: string) => ({ token });
    expect((await call('GET', '/v0/datasources/scope_a', as(readA))).status).toBe(200);
    expect((await call('GET', '/v0/datasources/scope_a.datasource', as(readA))).status).toBe(200);
    await expectError(call('GET', '/v0/datasources/scope_b', as(readA)), 403, "The token you have provided doesn't have access to this resource");
    await expectError(call('GET', '/v0/datasources/scope_b.datasource', as(readA)), 403, "The token you have provided doesn't have access to this resource");
    const list = await call('GET', '/v0/datasources', as(readA));
    expect(list.body.datasources.map((d: Json) => d.name)).toEqual(['scope_a']);
    await expectError(
      call('POST', '/v0/datasources/scope_a/alter', { ...form({ description: 'x' }), token: readA }),
      403,
      'token needs scope DATASOURCES:CREATE',
    );
    await expectError(call('PUT', '/v0/datasources/scope_a?name=scope_z', as(readA)), 403, 'token needs scope DATASOURCES:CREATE');
    await expectError(
      call('DELETE', '/v0/datasources/scope_a', as(readA)),
      403,
      'User does not have permissions to drop Data Source "scope_a", set DROP scope',
    );
    await expectError(call('GET', '/v0/jobs', as(readA)), 403, 'token needs scope DATASOURCES:CREATE');
    await expectError(call('GET', '/v0/jobs/whatever', as(readA)), 403, 'token needs scope DATASOURCES:CREATE');
    await expectError(call('POST', '/v0/jobs/whatever/cancel', as(readA)), 403, 'token needs scope DATASOURCES:CREATE');
    await expectError(call('POST', '/v0/analyze', { body: 'a,b\n1,2\n', token: readA }), 403, 'token needs scope DATASOURCES:CREATE');
    const r = await call('GET', '/v0/datasources/scope_a', as(readA));
    expect([r.body.name, r.body.description]).toEqual(['scope_a', '']);
  });

  it('an APPEND token appends (also from a url) but can not create or replace', async () => {
    expect((await call('POST', '/v0/datasources?name=scope_a&mode=append', { body: '1\n', token: appendA })).status).toBe(200);
    await expectError(
      call('POST', '/v0/datasources?name=scope_b&mode=append', { body: '1\n', token: appendA }),
      403,
      'Token does not have DATASOURCES:APPEND scope for Data Source "scope_b"',
    );
    await expectError(
      call('POST', '/v0/datasources?name=scope_a&mode=replace', { body: '1\n', token: appendA }),
      403,
      'Token does not have DATASOURCES:CREATE scope, replace mode requires the DATASOURCES:CREATE scope because is a destructive action',
    );
    await expectError(
      call('POST', '/v0/datasources?name=scope_b&mode=append', { ...form({ url: 'http://127.0.0.1:1/a.csv' }), token: appendA }),
      403,
      'Token does not have DATASOURCES:APPEND scope for Data Source "scope_b"',
    );
    expect(await count(s, 'scope_a')).toBe(1);
  });

  it('a DROP token drops its data source', async () => {
    const r = await call('DELETE', `/v0/datasources/${idA}`, { token: dropA });
    expect(r.status, r.text).toBe(204);
    expect((await call('GET', '/v0/datasources/scope_a')).status).toBe(404);
  });
});

describe('url imports: synchronous refusals', () => {
  it('replace of a missing data source, create over an existing one', async () => {
    await expectError(
      call('POST', '/v0/datasources?name=url_nope&mode=replace', form({ url: 'http://127.0.0.1:1/a.csv' })),
      400,
      'Data Source "url_nope" does not exist, can not replace a non existing Data Source',
    );
    await create('url_exists', 'a String');
    await expectError(
      call('POST', '/v0/datasources?name=url_exists&mode=create', form({ url: 'http://127.0.0.1:1/a.csv' })),
      400,
      'Data Source "url_exists" already exists, use mode=append',
    );
    await expectError(
      call('POST', '/v0/datasources?name=url_exists&mode=append', form({ url: 'not a url' })),
      400,
      'Url is not supported, only http, and https schemes are',
    );
  });
});
