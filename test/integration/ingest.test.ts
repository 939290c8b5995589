/**
 * Data Sources and Events API over real HTTP against the real engine and catalog: create from a
 * schema, append NDJSON/CSV/gzip/multipart, quarantine counts and reasons, and the error paths.
 */
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, engineRows, startServer, tableOf, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.close();
});

const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
const EV_SCHEMA =
  "ts DateTime `json:$.ts`, user String `json:$.user`, kind LowCardinality(String) `json:$.kind`, n Int32 `json:$.n`, v Nullable(Float64) `json:$.v`, tags Array(String) `json:$.tags[:]`, city String `json:$.geo.city` DEFAULT 'none'";

async function createEvents(name: string) {
  const r = await s.req('POST', `/v0/datasources?name=${name}&mode=create&format=ndjson`, form({ schema: EV_SCHEMA }));
  expect(r.status).toBe(200);
  return r.json();
}

describe('auth and conventions', () => {
  it('refuses a missing, unknown or forged token with 403 and the Tinybird body', async () => {
    for (const token of [null, 'nope', s.token.slice(0, -2) + 'xx']) {
      const r = await s.req('GET', '/v0/datasources', { token });
      expect(r.status).toBe(403);
      expect((await r.json()).error).toBe('invalid authentication token');
    }
  });
  it('accepts ?token= and sets X-Request-ID and CORS headers; OPTIONS is 204', async () => {
    const r = await fetch(`${s.url}/v0/datasources?token=${s.token}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9A-Z]{26}$/);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    const o = await fetch(`${s.url}/v0/events?name=x`, {
      method: 'OPTIONS',
      headers: { origin: 'http://site.example', 'access-control-request-method': 'POST' },
    });
    expect(o.status).toBe(204);
    expect(o.headers.get('access-control-allow-methods')).toContain('POST');
  });
  it('GET /tokens answers on loopback with the three tokens', async () => {
    const j = await (await fetch(`${s.url}/tokens`)).json();
    expect(Object.keys(j).sort()).toEqual(['admin_token', 'user_token', 'workspace_admin_token']);
    expect(j.workspace_admin_token).toBe(s.token);
  });
});

describe('POST /v0/datasources mode=create', () => {
  it('creates from a schema with every column feature and reports it back', async () => {
    const schema = [
      '`id` UInt64 `json:$.id`',
      'name LowCardinality(Nullable(String)) `json:$.name`',
      'tags Array(String) `json:$.tags[:]`',
      'attrs Map(String, String) `json:$.attrs`',
      'pt Tuple(Float64, Float64) `json:$.pt`',
      "at DateTime64(3, 'UTC') `json:$.at`",
      'price Decimal(18, 4) `json:$.price`',
      'total SimpleAggregateFunction(sum, UInt64) `json:$.total`',
      "status String `json:$.status` DEFAULT 'new'",
      'code String CODEC(ZSTD(1)) `json:$.code`',
      'twice UInt64 MATERIALIZED id * 2',
    ].join(',\n');
    const r = await s.req(
      'POST',
      '/v0/datasources?name=fulltypes&mode=create&format=ndjson&engine=ReplacingMergeTree&engine_sorting_key=id&engine_ver=id&engine_partition_key=toYYYYMM(at)&engine_settings=index_granularity%3D2048',
      form({ schema, description: 'all types', indexes: 'idx_name name TYPE bloom_filter GRANULARITY 4' }),
    );
    const j = await r.json();
    expect(r.status, JSON.stringify(j)).toBe(200);
    expect(j.datasource.name).toBe('fulltypes');
    expect(j.datasource.id).toMatch(/^t_[0-9a-f]{32}$/);
    expect(j.datasource.type).toBe('ndjson');
    const cols = j.datasource.schema.columns;
    expect(cols.find((c: { name: string }) => c.name === 'status').default_value).toBe("DEFAULT 'new'");
    expect(cols.find((c: { name: string }) => c.name === 'tags').jsonpath).toBe('$.tags[:]');
    expect(j.datasource.engine.engine).toBe('ReplacingMergeTree');
    expect(j.datasource.indexes[0].name).toBe('idx_name');
    const line = JSON.stringify({
      id: 7,
      name: 'x',
      tags: ['a', 'b'],
      attrs: { k: 'v' },
      pt: [1.5, 2],
      at: '2024-01-02T03:04:05.678Z',
      price: '12.3456',
      total: 3,
      code: 'c',
    });
    const a = await s.req('POST', '/v0/datasources?name=fulltypes&mode=append&format=ndjson', { body: line });
    const aj = await a.json();
    expect(aj.quarantine_rows, JSON.stringify(aj)).toBe(0);
    const t = await tableOf(s, 'fulltypes');
    const rows = await engineRows(s, `SELECT id, tags, attrs, status, twice, toString(at) AS at FROM ${t.table}`);
    expect(rows).toEqual([{ id: 7, tags: ['a', 'b'], attrs: { k: 'v' }, status: 'new', twice: 14, at: '2024-01-02 03:04:05.678' }]);
  });

  it('answers the documented errors', async () => {
    const cases: Array<[string, Record<string, string>, number, string | RegExp]> = [
      ['/v0/datasources?mode=bogus&name=x', { schema: 'a String' }, 400, /^Invalid mode "bogus"/],
      ['/v0/datasources?mode=create', { schema: 'a String' }, 400, 'Data Source name must be set when creating with schema'],
      ['/v0/datasources?mode=create&name=1abc', { schema: 'a String' }, 400, /^Invalid Data Source name "1abc"/],
      ['/v0/datasources?mode=create&name=from', { schema: 'a String' }, 400, /^Forbidden Data Source name "from"/],
      [
        '/v0/datasources?mode=create&name=x1&format=ndjson',
        { schema: 'a String' },
        400,
        'mode=create with format=ndjson or format=parquet requires to set jsonpaths on the schema',
      ],
      ['/v0/datasources?mode=create&name=x2&engine=Foo', { schema: 'a String' }, 400, /^Engine Foo is not supported/],
      ['/v0/datasources?mode=append&name=x3', { schema: 'a String' }, 400, 'Schema creation is only compatible with mode=create'],
      ['/v0/datasources?mode=create&name=x4', { schema: 'a Strin' }, 400, /Strin/],
      ['/v0/datasources?mode=create&name=x5', { schema: 'a String, a Int32' }, 400, /duplicated/],
      ['/v0/datasources?mode=create&name=x6', {}, 400, 'Url or body payload should be sent. Are you doing a POST without data?'],
      ['/v0/datasources?mode=replace&name=nope', { schema: 'a String' }, 400, 'Schema creation is only compatible with mode=create'],
      ['/v0/datasources?mode=create&name=x7&engine_settings=index_granularity%3D1%3B%20DROP%20TABLE%20x', { schema: 'a String' }, 400, /./],
    ];
    for (const [url, body, status, msg] of cases) {
      const r = await s.req('POST', url, form(body));
      const j = await r.json();
      expect(r.status, `${url} ${JSON.stringify(j)}`).toBe(status);
      if (typeof msg === 'string') expect(j.error).toBe(msg);
      else expect(j.error).toMatch(msg);
    }
    await createEvents('dupe');
    const r = await s.req('POST', '/v0/datasources?mode=create&name=dupe', form({ schema: 'a String' }));
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe('Data Source "dupe" already exists, use mode=append');
  });
});

describe('appends and quarantine', () => {
  it('a DEFAULT that refers to other columns is computed from their typed values (CSV and NDJSON)', async () => {
    const schema =
      "ts DateTime `json:$.ts`, a Int32 `json:$.a`, b Int32 `json:$.b` DEFAULT a * 2, day Date `json:$.day` DEFAULT toDate(ts), s String `json:$.s` DEFAULT concat(toString(a), 'x')";
    let r = await s.req('POST', '/v0/datasources?name=dflt&mode=create', form({ schema }));
    expect(r.status).toBe(200);
    r = await s.req('POST', '/v0/datasources?name=dflt&mode=append', { body: '2024-01-02 03:04:05,1,,,\n2024-01-02 03:04:05,2,5,2020-01-01,q\n' });
    expect(r.status).toBe(200);
    r = await s.req('POST', '/v0/events?name=dflt&wait=true', { body: '{"ts":"2024-01-03 00:00:00","a":3}' });
    expect(r.status).toBe(200);
    const t = await tableOf(s, 'dflt');
    expect(await engineRows(s, `SELECT a, b, toString(day) AS day, s FROM ${t.table} ORDER BY a`)).toEqual([
      { a: 1, b: 2, day: '2024-01-02', s: '1x' },
      { a: 2, b: 5, day: '2020-01-01', s: 'q' },
      { a: 3, b: 6, day: '2024-01-03', s: '3x' },
    ]);
  });

  it('NDJSON: N rows with k bad ones → N−k in the table, k in quarantine with reasons', async () => {
    await createEvents('q_nd');
    const good = (i: number) => JSON.stringify({ ts: '2024-01-01 00:00:00', user: `u${i}`, kind: 'a', n: i, v: i / 2, tags: ['x'], geo: { city: 'Paris' } });
    const lines = [];
    for (let i = 0; i < 97; i++) lines.push(good(i));
    lines.splice(10, 0, JSON.stringify({ ts: '2024-01-01 00:00:00', user: 'bad', kind: 'a', n: 'not a number' }));
    lines.splice(20, 0, JSON.stringify({ ts: '2024-01-01 00:00:00', kind: 'a' }));
    lines.splice(30, 0, '{"ts": "2024-01-01", "user": broken');
    const r = await s.req('POST', '/v0/datasources?name=q_nd&mode=append&format=ndjson', { body: lines.join('\n') });
    const j = await r.json();
    expect(r.status).toBe(200);
    expect(j.quarantine_rows).toBe(3);
    expect(j.error).toBe('There was an error with file contents: 3 rows in quarantine.');
    expect(await count(s, 'q_nd')).toBe(97);
    expect(await count(s, 'q_nd', true)).toBe(3);
    const t = await tableOf(s, 'q_nd');
    const q = await engineRows<{ c__error: string[]; c__error_column: string[]; c__import_id: string }>(
      s,
      `SELECT c__error, c__error_column, c__import_id FROM ${t.quarantine} ORDER BY length(c__error) DESC`,
    );
    const errs = q.flatMap((x) => x.c__error).join('\n');
    expect(errs).toContain("value 'not a number' on column 'n' is not Int32");
    expect(errs).toContain("value is missing on column 'user'");
    expect(errs).toContain('invalid JSON line');
    expect(q.every((x) => x.c__import_id === j.import_id)).toBe(true);
    const city = await engineRows<{ city: string }>(s, `SELECT DISTINCT city FROM ${t.table}`);
    expect(city).toEqual([{ city: 'Paris' }]);
  });

  it("NDJSON: a line `\\N` (CSV's NULL) goes to quarantine like any line that is not JSON, with tabs and backslashes kept", async () => {
    await createEvents('q_nd_null');
    const good = JSON.stringify({ ts: '2024-01-01 00:00:00', user: 'a\\b', kind: 'a', n: 1 });
    const r = await s.req('POST', '/v0/datasources?name=q_nd_null&mode=append&format=ndjson', { body: `${good}\n\\N\n\\N\tx\\y\n${good}\n` });
    const j = await r.json();
    expect(r.status).toBe(200);
    expect([j.successful_rows, j.quarantine_rows]).toEqual([2, 2]);
    expect(await count(s, 'q_nd_null')).toBe(2);
    const t = await tableOf(s, 'q_nd_null');
    const q = await engineRows<{ e: string }>(s, `SELECT c__error[1] AS e FROM ${t.quarantine} ORDER BY e`);
    expect(q.map((x) => x.e)).toEqual(['invalid JSON line: \\N', 'invalid JSON line: \\N\tx\\y']);
    expect(await engineRows(s, `SELECT user FROM ${t.table}`)).toEqual([{ user: 'a\\b' }, { user: 'a\\b' }]);
  });

  it('CSV: bad values go to quarantine, the header is skipped, dialects work', async () => {
    const c = await s.req('POST', '/v0/datasources?name=q_csv&mode=create', form({ schema: 'id Int32, name String, at DateTime, score Nullable(Float32)' }));
    expect(c.status).toBe(200);
    const csv = 'id,name,at,score\n1,a,2024-01-01 00:00:00,1.5\nx,b,2024-01-01 00:00:00,2\n3,"c, with comma",2024-01-01T10:00:00Z,\n4,d,not a date,3\n5,e\n';
    const r = await s.req('POST', '/v0/datasources?name=q_csv&mode=append', { body: csv, headers: { 'content-type': 'text/csv' } });
    const j = await r.json();
    expect(r.status).toBe(200);
    // `5,e` has too few columns: an invalid line (kept in quarantine), not a quarantined row.
    expect([j.quarantine_rows, j.invalid_lines]).toEqual([2, 1]);
    expect(await count(s, 'q_csv')).toBe(2);
    expect(await count(s, 'q_csv', true)).toBe(3);
    const semi = await s.req('POST', '/v0/datasources?name=q_csv&mode=append&dialect_delimiter=%3B', { body: '6;f;2024-01-01 00:00:00;1\n' });
    expect((await semi.json()).quarantine_rows).toBe(0);
    expect(await count(s, 'q_csv')).toBe(3);
    const bad = await s.req('POST', '/v0/datasources?name=q_csv&mode=append&dialect_delimiter=ab', { body: '1' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toBe('The dialect delimiter must be a 1-character string');
  });

  it('CSV: one bad-type row and one line with the wrong number of columns → 1 row in quarantine and 1 invalid line', async () => {
    const c = await s.req('POST', '/v0/datasources?name=q_inv&mode=create', form({ schema: 'id Int32, name String' }));
    expect(c.status).toBe(200);
    const r = await s.req('POST', '/v0/datasources?name=q_inv&mode=append', { body: '1,a\nx,b\n3,c,extra\n4,d\n', headers: { 'content-type': 'text/csv' } });
    const j = await r.json();
    expect(r.status).toBe(200);
    expect(j.error).toBe('There was an error with file contents: 1 row in quarantine and 1 invalid line.');
    expect([j.quarantine_rows, j.invalid_lines, j.successful_rows]).toEqual([1, 1, 2]);
    expect(await count(s, 'q_inv')).toBe(2);
    // Nothing is lost: the invalid line is kept in quarantine with its reason.
    const t = await tableOf(s, 'q_inv');
    const q = await engineRows<{ e: string[] }>(s, `SELECT c__error AS e FROM ${t.quarantine} ORDER BY e`);
    expect(q.map((x) => x.e.join(' '))).toEqual([
      'invalid CSV line 3: it has 3 columns, the Data Source has 2: 3,c,extra',
      "value 'x' on column 'id' is not Int32",
    ]);
  });

  it('gzip by header and by magic bytes, and multipart uploads', async () => {
    await createEvents('gz');
    const body = zlib.gzipSync(JSON.stringify({ ts: '2024-01-01 00:00:00', user: 'u', kind: 'k', n: 1 }) + '\n');
    await s.req('POST', '/v0/datasources?name=gz&mode=append&format=ndjson', { body });
    await s.req('POST', '/v0/datasources?name=gz&mode=append&format=ndjson', { body, headers: { 'content-encoding': 'gzip' } });
    const fd = new FormData();
    fd.append('ndjson', new Blob([body]), 'rows.ndjson.gz');
    const r = await s.req('POST', '/v0/datasources?name=gz&mode=append&format=ndjson', { body: fd });
    expect(r.status).toBe(200);
    expect(await count(s, 'gz')).toBe(3);
    const fd2 = new FormData();
    fd2.append('wrong', new Blob(['a']), 'x.csv');
    const w = await s.req('POST', '/v0/datasources?name=gz&mode=append', { body: fd2 });
    expect(w.status).toBe(400);
    expect((await w.json()).error).toMatch(/^Multipart requests require name field/);
  });

  it('creates a data source from CSV data with type guessing and from NDJSON with inference', async () => {
    const r = await s.req('POST', '/v0/datasources?name=guessed', { body: 'date,user_id,amount\n2024-01-01,10,1.5\n2024-01-02,11,2.5\n' });
    const j = await r.json();
    expect(r.status, JSON.stringify(j)).toBe(200);
    const types = Object.fromEntries(j.datasource.schema.columns.map((c: { name: string; type: string }) => [c.name, c.type]));
    expect(types).toEqual({ date: 'Date', user_id: 'Int16', amount: 'Float32' });
    expect(await count(s, 'guessed')).toBe(2);
    const n = await s.req('POST', '/v0/datasources?name=inferred&mode=append&format=ndjson', {
      body: '{"a":1,"b":{"c":"x"},"t":["p"]}\n{"a":2,"b":{"c":"y"},"t":[]}\n',
    });
    const nj = await n.json();
    expect(n.status, JSON.stringify(nj)).toBe(200);
    expect(nj.datasource.schema.columns.map((c: { jsonpath: string }) => c.jsonpath)).toEqual(['$.a', '$.b.c', '$.t[:]']);
    expect(await count(s, 'inferred')).toBe(2);
  });

  it('replace swaps all the data, replace_condition only the matching rows', async () => {
    await s.req('POST', '/v0/datasources?name=rep&mode=create', form({ schema: 'k Int32, v String' }));
    await s.req('POST', '/v0/datasources?name=rep&mode=append', { body: '1,a\n2,b\n3,c\n' });
    const r = await s.req('POST', '/v0/datasources?name=rep&mode=replace', { body: '9,z\n' });
    expect(r.status).toBe(200);
    expect(await count(s, 'rep')).toBe(1);
    await s.req('POST', '/v0/datasources?name=rep&mode=append', { body: '1,a\n2,b\n' });
    const rc = await s.req('POST', '/v0/datasources?name=rep&mode=replace&replace_condition=k%20%3C%205', { body: '4,new\n' });
    expect(rc.status).toBe(200);
    const t = await tableOf(s, 'rep');
    expect(await engineRows(s, `SELECT k, v FROM ${t.table} ORDER BY k`)).toEqual([
      { k: 4, v: 'new' },
      { k: 9, v: 'z' },
    ]);
    // The condition reaches engine statements: a second statement or a host file read is refused.
    for (const bad of [`k < 5; DROP TABLE ${t.table}`, "k < length(file('/etc/passwd'))", 'k IN (SELECT 1)']) {
      const r2 = await s.req('POST', `/v0/datasources?name=rep&mode=replace&replace_condition=${encodeURIComponent(bad)}`, { body: '5,x\n' });
      expect(r2.status, bad).toBe(400);
      expect((await r2.json()).error, bad).toMatch(/^Invalid replace_condition/);
    }
    expect(await count(s, 'rep')).toBe(2);
    const missing = await s.req('POST', '/v0/datasources?name=nothere&mode=replace', { body: '1,a\n' });
    expect((await missing.json()).error).toBe('Data Source "nothere" does not exist, can not replace a non existing Data Source');
  });
});

describe('Events API', () => {
  it('wait=true → 200 after the write with counts; default → 202', async () => {
    await createEvents('ev');
    const rows = [0, 1, 2].map((i) => JSON.stringify({ ts: '2024-01-01T10:00:00.000Z', user: 'u', kind: 'k', n: i })).join('\n');
    const r = await s.req('POST', '/v0/events?name=ev&wait=true', {
      body: rows + '\n{"ts":"x","user":"u","kind":"k","n":1}',
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ successful_rows: 3, quarantined_rows: 1 });
    expect(await count(s, 'ev')).toBe(3);
    const a = await s.req('POST', '/v0/events?name=ev', { body: rows, headers: { 'content-type': 'text/plain' } });
    expect(a.status).toBe(202);
    expect(await a.json()).toEqual({ successful_rows: 3, quarantined_rows: 0 });
    const g = await s.req('POST', '/v0/events?name=ev&wait=true', { body: zlib.gzipSync(rows) });
    expect(g.status).toBe(200);
    await s.app.services.events.close().catch(() => undefined);
  });

  it('errors are text/plain with the reference messages', async () => {
    const noName = await s.req('POST', '/v0/events', { body: '{}' });
    expect(noName.status).toBe(400);
    expect(noName.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await noName.text()).toBe("Missing 'name' parameter\n");
    const bad = await s.req('POST', '/v0/events?name=ev', { body: '{}', token: 'nope' });
    expect(bad.status).toBe(403);
    expect(await bad.text()).toBe('Invalid token\n');
    await s.req('POST', '/v0/datasources?name=csvonly&mode=create', form({ schema: 'a String' }));
    const csv = await s.req('POST', '/v0/events?name=csvonly', { body: '{"a":"x"}' });
    expect(csv.status).toBe(400);
    expect(await csv.text()).toBe('Data Source must be of type JSON\n');
  });
});
