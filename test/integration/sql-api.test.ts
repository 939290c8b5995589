/**
 * The Query API over real HTTP: request shapes (GET, raw/form/JSON POST), every output format
 * (byte-compared with the engine's own output of the same query), parameters, headers, limits,
 * cancellation, and the error bodies and status codes.
 */
import zlib from 'node:zlib';
import { parquetMetadata } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, tableOf, type TestServer } from '../helpers/server.js';

let s: TestServer;

const sql = (q: string, extra = '') => s.req('GET', `/v0/sql?q=${encodeURIComponent(q)}${extra}`);

beforeAll(async () => {
  s = await startServer();
  for (const srv of [s]) {
    const schema = 'ts DateTime `json:$.ts`, user String `json:$.user`, n Int64 `json:$.n`, big UInt64 `json:$.big`, f Float64 `json:$.f`';
    let r = await srv.req('POST', `/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent(schema)}`);
    expect(r.status).toBe(200);
    const rows = [
      { ts: '2024-01-01 00:00:00', user: 'a', n: 1, big: '18446744073709551615', f: 0.5 },
      { ts: '2024-01-02 00:00:00', user: 'b', n: 2, big: '1', f: 1.5 },
      { ts: '2024-01-03 00:00:00', user: 'a', n: 3, big: '2', f: 2.5 },
      { ts: 'not a date', user: 'c', n: 4, big: '3', f: 0 },
    ];
    r = await srv.req('POST', '/v0/events?name=ev&wait=true', { body: rows.map((x) => JSON.stringify(x)).join('\n') });
    expect(r.status).toBe(200);
    r = await srv.req('POST', `/v0/datasources?name=other&mode=create&schema=${encodeURIComponent('x Int32')}`);
    expect(r.status).toBe(200);
  }
}, 60_000);

afterAll(async () => {
  await s?.close();
});

describe('request shapes', () => {
  it('GET ?q= runs a query', async () => {
    const r = await sql('SELECT count() AS c FROM ev FORMAT JSON');
    expect(r.status).toBe(200);
    const j = await r.json();
    expect(j.data).toEqual([{ c: 3 }]);
    expect(j.meta).toEqual([{ name: 'c', type: 'UInt64' }]);
    expect(j.rows).toBe(1);
    expect(j.statistics).toHaveProperty('elapsed');
  });

  it('POST raw SQL, whatever the content type', async () => {
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream']) {
      const r = await s.req('POST', '/v0/sql', { body: 'SELECT sum(n) AS s FROM ev FORMAT JSONEachRow', headers: { 'content-type': ct } });
      expect(r.status, ct).toBe(200);
      expect(await r.text()).toBe('{"s":6}\n');
    }
  });

  it('POST form with q=', async () => {
    const r = await s.req('POST', '/v0/sql', { body: new URLSearchParams({ q: 'SELECT 1 AS one FORMAT JSONEachRow' }) });
    expect(await r.text()).toBe('{"one":1}\n');
  });

  it('POST JSON {"q": ...}', async () => {
    const r = await s.req('POST', '/v0/sql', {
      body: JSON.stringify({ q: 'SELECT max(n) AS m FROM ev FORMAT JSONEachRow', some_param: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('{"m":"3"}\n'.replace('"3"', '3'));
  });

  it('POST gzip-compressed body', async () => {
    const r = await s.req('POST', '/v0/sql', {
      body: zlib.gzipSync('SELECT 2 AS two FORMAT CSV'),
      headers: { 'content-encoding': 'gzip', 'content-type': 'text/plain' },
    });
    expect(await r.text()).toBe('2\n');
  });

  it('missing q, empty body, oversized q, malformed JSON', async () => {
    let r = await s.req('GET', '/v0/sql');
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: 'missing q parameter. example q=select%201' });
    r = await s.req('POST', '/v0/sql', { body: '' });
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: 'The request body should contain a query' });
    r = await sql(`SELECT '${'x'.repeat(9000)}'`);
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: 'The maximum size for a SQL query is 8KB.' });
    r = await s.req('POST', '/v0/sql', { body: `SELECT '${'x'.repeat(2 * 1024 * 1024)}'` });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe('The maximum size for a SQL query is 1MB.');
    r = await s.req('POST', '/v0/sql', { body: '{"q": ', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/JSON object/);
  });

  it('needs a valid token', async () => {
    const r = await s.req('GET', '/v0/sql?q=SELECT%201', { token: null });
    expect(r.status).toBe(403);
    expect((await r.json()).error).toBe('invalid authentication token');
  });
});

describe('formats', () => {
  const physical = async (q: string) => q.replace(/\bev\b/g, (await tableOf(s, 'ev')).table);
  const deterministic: Array<[string, string]> = [
    ['CSV', 'text/csv'],
    ['CSVWithNames', 'text/csv'],
    ['TSV', 'text/tab-separated-values'],
    ['TSVWithNames', 'text/tab-separated-values'],
    ['TabSeparated', 'text/tab-separated-values'],
    ['JSONEachRow', 'application/x-ndjson'],
    ['NDJSON', 'application/x-ndjson'],
    ['PrettyCompact', 'text/plain'],
    ['Prometheus', 'text/plain'],
  ];
  for (const [format, type] of deterministic) {
    it(`FORMAT ${format} is the engine's bytes with ${type}`, async () => {
      const q =
        format === 'Prometheus' ? "SELECT 'requests_total' AS name, toFloat64(sum(n)) AS value FROM ev" : 'SELECT user, n, ts, big, f FROM ev ORDER BY n';
      const r = await sql(`${q} FORMAT ${format}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toContain(type);
      const body = Buffer.from(await r.arrayBuffer());
      const engineFormat = format === 'NDJSON' ? 'JSONEachRow' : format;
      const raw = await s.app.services.engine.query(await physical(q), { format: engineFormat });
      expect(body.toString()).toBe(raw.bytes.toString());
    });
  }

  it('FORMAT JSON / JSONCompact / JSONStrings envelopes', async () => {
    let j = await (await sql('SELECT user, n FROM ev ORDER BY n LIMIT 2 FORMAT JSON')).json();
    expect(j.meta).toEqual([
      { name: 'user', type: 'String' },
      { name: 'n', type: 'Int64' },
    ]);
    expect(j.data).toEqual([
      { user: 'a', n: 1 },
      { user: 'b', n: 2 },
    ]);
    expect(j.rows).toBe(2);
    expect(j.rows_before_limit_at_least).toBe(3);
    j = await (await sql('SELECT user, n FROM ev ORDER BY n LIMIT 1 FORMAT JSONCompact')).json();
    expect(j.data).toEqual([['a', 1]]);
    j = await (await sql('SELECT user, n FROM ev ORDER BY n LIMIT 1 FORMAT JSONStrings')).json();
    expect(j.data).toEqual([{ user: 'a', n: '1' }]);
  });

  it('FORMAT Parquet returns a Parquet file', async () => {
    const r = await sql('SELECT user, n FROM ev FORMAT Parquet');
    expect(r.status).toBe(200);
    const b = Buffer.from(await r.arrayBuffer());
    expect(b.subarray(0, 4).toString()).toBe('PAR1');
    expect(b.subarray(-4).toString()).toBe('PAR1');
  });

  it('no FORMAT and no format parameter → the JSON QueryResponse of seed 003; a trailing ; is fine', async () => {
    const r = await sql('SELECT user, n FROM ev ORDER BY n LIMIT 2;');
    expect(r.headers.get('content-type')).toContain('application/json');
    const body = await r.json();
    expect(body.meta).toEqual([
      { name: 'user', type: 'String' },
      { name: 'n', type: 'Int64' },
    ]);
    expect(body.data).toEqual([
      { user: 'a', n: 1 },
      { user: 'b', n: 2 },
    ]);
    expect(body.rows).toBe(2);
    expect(Object.keys(body.statistics).sort()).toEqual(['bytes_read', 'elapsed', 'rows_read']);
  });

  it('the format parameter (GET and POST JSON) picks the output; a FORMAT clause wins; unknown → 400', async () => {
    const get = (q: string, format: string) => s.req('GET', `/v0/sql?q=${encodeURIComponent(q)}&format=${encodeURIComponent(format)}`);
    let r = await get('SELECT user, n FROM ev ORDER BY n LIMIT 2', 'CSV');
    expect(r.headers.get('content-type')).toContain('text/csv');
    expect(await r.text()).toBe('"a",1\n"b",2\n');
    r = await get('SELECT n FROM ev ORDER BY n LIMIT 2', 'ndjson');
    expect(await r.text()).toBe('{"n":1}\n{"n":2}\n');
    r = await get('SELECT n FROM ev ORDER BY n LIMIT 1', 'Parquet');
    expect(
      Buffer.from(await r.arrayBuffer())
        .subarray(0, 4)
        .toString(),
    ).toBe('PAR1');
    r = await get('SELECT n FROM ev ORDER BY n LIMIT 1 FORMAT TSV', 'JSON');
    expect(await r.text()).toBe('1\n');
    r = await s.req('POST', '/v0/sql', {
      body: JSON.stringify({ q: 'SELECT n FROM ev ORDER BY n LIMIT 1', format: 'CSV' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(await r.text()).toBe('1\n');
    r = await get('SELECT 1', 'Native');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/^Invalid format "Native", available ones: JSON, CSV/);
  });

  it('Unicode spaces pasted from documents separate tokens, as in ClickHouse', async () => {
    const r = await sql('SELECT\u00a01\u3000AS\u2003x FORMAT CSV');
    expect(await r.text()).toBe('1\n');
  });

  it('format names are case-insensitive', async () => {
    const r = await sql('SELECT 1 AS x format jsoneachrow');
    expect(await r.text()).toBe('{"x":1}\n');
  });

  it('unknown formats are refused with the list', async () => {
    const r = await sql('SELECT 1 FORMAT Native');
    expect(r.status).toBe(403);
    expect((await r.json()).error).toBe(
      'invalid format, available ones: JSON, CSV, CSVWithNames, TSV, TSVWithNames, PrettyCompact, JSONEachRow, Parquet, JSONStrings, Prometheus',
    );
  });

  it('gzip when the client accepts it', async () => {
    const r = await fetch(`${s.url}/v0/sql?q=${encodeURIComponent('SELECT number FROM numbers(1000) FORMAT CSV')}`, {
      headers: { authorization: `Bearer ${s.token}`, 'accept-encoding': 'gzip' },
    });
    expect(r.headers.get('content-encoding')).toBe('gzip');
    const text = await r.text(); // fetch decompresses
    expect(text.split('\n').length).toBe(1001);
  });

  it('one header per answer in the formats with names, streamed over several blocks, with and without gzip (issue 11 item 2)', async () => {
    // UNION ALL gives two blocks, 300k rows several more: the engine formats each block on its own.
    const queries = ['SELECT number FROM numbers(3) UNION ALL SELECT number FROM numbers(2)', 'SELECT number FROM numbers(300000)'];
    const header: Record<string, string> = { CSVWithNames: '"number"', TSVWithNames: 'number', TabSeparatedWithNames: 'number' };
    for (const q of queries) {
      const rows = q.includes('300000') ? 300000 : 5;
      for (const [format, head] of Object.entries(header)) {
        for (const gzip of [false, true]) {
          const r = await fetch(`${s.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT ${format}`)}`, {
            headers: { authorization: `Bearer ${s.token}`, 'accept-encoding': gzip ? 'gzip' : 'identity' },
          });
          expect(r.headers.get('content-encoding') ?? '').toBe(gzip ? 'gzip' : '');
          const lines = (await r.text()).trimEnd().split('\n');
          expect(lines[0], `${format} gzip=${gzip}`).toBe(head);
          expect(lines.filter((l) => l === head).length, `${format} gzip=${gzip}`).toBe(1);
          expect(lines.length).toBe(rows + 1);
        }
      }
    }
    // A header that contains a newline (CSV quotes it) and a data row equal to the header.
    const r = await sql(`SELECT 'a\nb' AS \`a\nb\` FROM numbers(2) UNION ALL SELECT 'a\nb' FROM numbers(1) FORMAT CSVWithNames`);
    expect(await r.text()).toBe('"a\nb"\n"a\nb"\n"a\nb"\n"a\nb"\n');
    // The endpoint's .csv is CSVWithNames too.
    expect((await s.req('POST', '/v0/pipes?name=two_blocks', { body: new URLSearchParams({ sql: queries[0] }) })).status).toBe(200);
    expect((await s.req('POST', '/v0/pipes/two_blocks/nodes/two_blocks_0/endpoint')).status).toBe(200);
    const csv = await (await s.req('GET', '/v0/pipes/two_blocks.csv')).text();
    expect(csv.split('\n').filter((l) => l === '"number"').length).toBe(1);
    expect(csv.trimEnd().split('\n').length).toBe(6);
  });

  it('a Parquet answer over several blocks is one file with every row', async () => {
    const r = await sql('SELECT number FROM numbers(3) UNION ALL SELECT number FROM numbers(2) FORMAT Parquet');
    const b = Buffer.from(await r.arrayBuffer());
    const meta = parquetMetadata(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    expect(Number(meta.num_rows)).toBe(5);
    expect(b.toString('latin1').split('PAR1').length - 1).toBe(2);
  });
});

describe('parameters', () => {
  it('output_format_json_quote_64bit_integers', async () => {
    let j = await (await sql('SELECT big FROM ev WHERE n = 1 FORMAT JSON')).json();
    // Unquoted by default, as Tinybird documents; JSON.parse loses precision, so check the text.
    let t = await (await sql('SELECT big FROM ev WHERE n = 1 FORMAT JSONEachRow')).text();
    expect(t).toBe('{"big":18446744073709551615}\n');
    t = await (await sql('SELECT big FROM ev WHERE n = 1 FORMAT JSONEachRow', '&output_format_json_quote_64bit_integers=1')).text();
    expect(t).toBe('{"big":"18446744073709551615"}\n');
    j = await (await sql('SELECT 1', '&output_format_json_quote_64bit_integers=2')).json();
    expect(j.error).toBe('output_format_json_quote_64bit_integers must be 0 or 1');
  });

  it('output_format_json_quote_denormals', async () => {
    let t = await (await sql('SELECT n / 0 AS x FROM ev WHERE n = 1 FORMAT JSONEachRow')).text();
    expect(t).toBe('{"x":null}\n');
    t = await (await sql('SELECT n / 0 AS x FROM ev WHERE n = 1 FORMAT JSONEachRow', '&output_format_json_quote_denormals=1')).text();
    expect(t).toBe('{"x":"inf"}\n');
    const r = await sql('SELECT 1', '&output_format_json_quote_denormals=yes');
    expect(r.status).toBe(400);
  });

  it('output_format_parquet_string_as_string: String columns are plain Binary unless it is 1 (seed 001; the engine defaults to 1)', async () => {
    // The Parquet schema element of the `user` column: BYTE_ARRAY, annotated UTF8/STRING only when asked.
    const userColumn = async (r: Response) => {
      expect(r.status).toBe(200);
      const b = await r.arrayBuffer();
      expect(Buffer.from(b).subarray(0, 4).toString()).toBe('PAR1');
      const el = parquetMetadata(b).schema.find((e) => e.name === 'user')!;
      return { type: el.type, utf8: el.converted_type === 'UTF8' || el.logical_type?.type === 'STRING' };
    };
    expect(await userColumn(await sql('SELECT user FROM ev FORMAT Parquet'))).toEqual({ type: 'BYTE_ARRAY', utf8: false });
    expect(await userColumn(await sql('SELECT user FROM ev FORMAT Parquet', '&output_format_parquet_string_as_string=0'))).toEqual({
      type: 'BYTE_ARRAY',
      utf8: false,
    });
    expect(await userColumn(await sql('SELECT user FROM ev FORMAT Parquet', '&output_format_parquet_string_as_string=1'))).toEqual({
      type: 'BYTE_ARRAY',
      utf8: true,
    });
    // Endpoints too.
    const p = await s.req('POST', '/v0/pipes', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'pq_strings', nodes: [{ name: 'e', sql: 'SELECT user FROM ev', type: 'endpoint' }] }),
    });
    expect(p.status, await p.clone().text()).toBe(200);
    expect(await userColumn(await s.req('GET', '/v0/pipes/pq_strings.parquet'))).toEqual({ type: 'BYTE_ARRAY', utf8: false });
    expect(await userColumn(await s.req('GET', '/v0/pipes/pq_strings.parquet?output_format_parquet_string_as_string=1'))).toEqual({
      type: 'BYTE_ARRAY',
      utf8: true,
    });
    expect((await sql('SELECT 1', '&output_format_parquet_string_as_string=x')).status).toBe(400);
  });

  it('max_threads', async () => {
    expect(await (await sql('SELECT count() FROM ev FORMAT CSV', '&max_threads=1')).text()).toBe('3\n');
    for (const bad of ['0', '-1', 'abc', '1.5']) {
      const r = await sql('SELECT 1', `&max_threads=${bad}`);
      expect(r.status).toBe(400);
      expect((await r.json()).error).toBe('max_threads must be an integer value');
    }
  });

  it('explain=true', async () => {
    const j = await (await sql('SELECT count() FROM ev', '&explain=true')).json();
    expect(Object.keys(j).sort()).toEqual(['debug_query', 'explain_error', 'query_explain']);
    expect(j.query_explain).toMatch(/Expression|ReadFrom/);
    expect(j.query_explain).not.toMatch(/w_[0-9a-f]{8}/);
  });

  it('template_parameters must be JSON; unknown pipeline is a 403', async () => {
    let r = await sql('SELECT 1', '&template_parameters=%7Bnope');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe('template_parameters must be a well-formed JSON');
    r = await sql('SELECT 1', '&pipeline=nope');
    expect(r.status).toBe(403);
    expect((await r.json()).error).toBe("Resource 'nope' not found");
  });

  it('templates render with request parameters, template_parameters, or in test mode without any', async () => {
    const q = "% SELECT {{ String(who, 'nobody') }} AS who, {{ Int32(n, 1) }} + 1 AS n, {{ x }} AS x FORMAT JSONEachRow";
    let r = await sql(q);
    // Test mode: defaults, and a placeholder for the bare variable.
    expect(await r.text()).toBe('{"who":"nobody","n":2,"x":"__no_value__"}\n');
    r = await sql(q, '&who=me&n=41&x=y');
    expect(await r.text()).toBe('{"who":"me","n":42,"x":"y"}\n');
    r = await sql(q, `&template_parameters=${encodeURIComponent(JSON.stringify({ who: "o'hara", n: 2, x: 'z' }))}`);
    expect(await r.text()).toBe('{"who":"o\'hara","n":3,"x":"z"}\n');
    r = await s.req('POST', '/v0/sql', { body: JSON.stringify({ q, who: 'json', n: 9, x: 'w' }), headers: { 'content-type': 'application/json' } });
    expect(await r.text()).toBe('{"who":"json","n":10,"x":"w"}\n');
    // With parameters, a missing bare variable is an error, as is a value that does not validate.
    r = await sql(q, '&who=me');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe('Template Syntax Error: expression "x" evaluated to null');
    r = await sql(q, '&n=abc');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe("Template Syntax Error: Error validating 'abc' to type Int32");
    r = await sql('% SELECT {% if %} 1');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/^Template Syntax Error/);
  });
});

describe('headers', () => {
  it('X-Request-ID, X-TB-Statistics, X-Tb-Warning, CORS', async () => {
    const r = await sql('SELECT 1 FORMAT JSON');
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9A-Z]{26}$/);
    expect(JSON.parse(r.headers.get('x-tb-statistics')!)).toHaveProperty('elapsed');
    expect(r.headers.get('x-tb-warning')).toBe('[]');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('names and errors', () => {
  it('data source names, quarantine, and qualified columns resolve', async () => {
    let t = await (await sql('SELECT ev.user FROM ev WHERE ev.n = 2 FORMAT CSV')).text();
    expect(t).toBe('"b"\n');
    t = await (await sql('SELECT count() FROM ev_quarantine FORMAT CSV')).text();
    expect(t).toBe('1\n');
    t = await (await sql('SELECT e.n FROM ev AS e JOIN ev AS e2 ON e.n = e2.n ORDER BY e.n FORMAT CSV')).text();
    expect(t).toBe('1\n2\n3\n');
  });

  it('unknown resource → 404 naming it', async () => {
    const r = await sql('SELECT * FROM nope');
    expect(r.status).toBe(404);
    expect((await r.json()).error).toBe("Resource 'nope' not found");
  });

  it('engine errors name the user resources, never internal tables, with X-DB-Exception-Code', async () => {
    const r = await sql('SELECT missing_column FROM ev');
    expect(r.status).toBe(400);
    expect(r.headers.get('x-db-exception-code')).toBe('47');
    const { error } = await r.json();
    expect(error).toMatch(/missing_column/);
    expect(error).toMatch(/\bev\b/);
    expect(error).not.toMatch(/w_[0-9a-f]{6}|t_[0-9a-f]{6}|pipit_sandbox|pipit:/);
  });

  it('engine syntax errors are 400', async () => {
    const r = await sql('SELECT 1 +');
    expect(r.status).toBe(400);
    expect(r.headers.get('x-db-exception-code')).toBe('62');
    // A misspelt statement is a syntax error too (400), on /v0/sql and when a node is saved.
    const typo = await sql('SELEC 1');
    expect(typo.status).toBe(400);
    expect((await typo.json()).error).toBe("Syntax error: expected SELECT or WITH, found 'SELEC' at position 1");
    const node = await s.req('POST', '/v0/pipes', {
      body: new URLSearchParams({ name: 'typo_pipe', sql: 'SELEC 1' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(node.status).toBe(400);
    expect((await node.json()).error).toMatch(/Syntax error: expected SELECT or WITH, found 'SELEC'/);
  });

  it('a limited token reads only what its scopes allow', async () => {
    const ws = s.app.services.access.defaultWorkspace;
    const ev = await s.app.services.datasources.get(ws, 'ev');
    const tok = await s.app.services.access.createToken(ws.id, 'reader', [{ type: 'DATASOURCES:READ', resource: ev.id }]);
    let r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() FROM ev FORMAT CSV')}`, { token: tok.token });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('3\n');
    r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() FROM other')}`, { token: tok.token });
    expect(r.status).toBe(403);
    expect((await r.json()).error).toBe("Resource 'other' not found");
    // A resource that does not exist looks the same to a limited token.
    r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() FROM nope')}`, { token: tok.token });
    expect(r.status).toBe(403);
    expect((await r.json()).error).toBe("Resource 'nope' not found");
  });
});

describe('cancellation', () => {
  it.each([
    ['streamed (TSV)', ''],
    ['answered whole (JSON)', ' FORMAT JSON'],
  ])('a client that disconnects cancels its query in the engine: %s', async (_, format) => {
    const ac = new AbortController();
    const p = fetch(`${s.url}/v0/sql?q=${encodeURIComponent(`SELECT count() FROM numbers(1000000000000)${format}`)}`, {
      headers: { authorization: `Bearer ${s.token}` },
      signal: ac.signal,
    }).catch((e) => e);
    const running = async () =>
      (
        await s.app.services.engine.rows<{ c: string }>(
          "SELECT count() AS c FROM system.processes WHERE query LIKE '%numbers(1000000000000)%' AND query NOT LIKE '%system.processes%'",
        )
      )[0].c;
    for (let i = 0; i < 50 && Number(await running()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(Number(await running())).toBe(1);
    ac.abort();
    await p;
    let left = 1;
    for (let i = 0; i < 60 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = Number(await running());
    }
    expect(left).toBe(0);
    expect(await (await sql('SELECT 1 AS ok FORMAT CSV')).text()).toBe('1\n');
  });
});
