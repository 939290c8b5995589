/**
 * Events API rules from the reference (§3, §12) over real HTTP against the real engine and
 * catalog: `wait=true` → 200 with the request's own counts, default → 202, NDJSON whatever the
 * Content-Type, gzip by header, magic bytes or base64 (Firehose), the 10 MB request cap (413),
 * and every error the route answers, each as text/plain with its exact body.
 */
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EVENTS_DECODED, MAX_EVENTS_REQUEST } from '../../src/http/routes/events.js';
import { count, engineRows, startServer, tableOf, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
  const r = await s.req('POST', '/v0/datasources?name=ev&mode=create&format=ndjson', form({ schema: SCHEMA }));
  expect(r.status).toBe(200);
  const c = await s.req('POST', '/v0/datasources?name=csv_only&mode=create', form({ schema: 'a String' }));
  expect(c.status).toBe(200);
});
afterAll(async () => {
  await s?.close();
});

const SCHEMA = 'id UInt32 `json:$.id`, n Int32 `json:$.n`, s String `json:$.s`';
const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
const TEXT = 'text/plain; charset=utf-8';
const ANALYSIS =
  'Analysis error, invalid data. We could not infer the schema, please create the datasource manually and try again or contact us at support@tinybird.co.\n';
const TOO_LARGE = `Request Entity Too Large: the Events API accepts up to 10 MB per request (${MAX_EVENTS_REQUEST} bytes). Split the events into smaller requests.\n`;

let nextId = 1;
/** `good` valid rows, then `badType` rows with a non-Int32 `n`, then `broken` invalid JSON lines. */
function rows(good: number, badType = 0, broken = 0, pad = 0): string {
  const out: string[] = [];
  const p = 'x'.repeat(pad);
  for (let i = 0; i < good; i++) out.push(JSON.stringify({ id: nextId++, n: i, s: p }));
  for (let i = 0; i < badType; i++) out.push(JSON.stringify({ id: nextId++, n: 'not a number', s: p }));
  for (let i = 0; i < broken; i++) out.push(`{"id": ${nextId++}, "n": `);
  return out.join('\n') + '\n';
}

async function expectText(r: Response, status: number, body: string): Promise<void> {
  expect({ status: r.status, type: r.headers.get('content-type'), body: await r.text() }).toEqual({ status, type: TEXT, body });
  expect(r.headers.get('x-request-id')).toMatch(/^[0-9A-Z]{26}$/);
}

async function expectJson(r: Response, status: number, body: unknown): Promise<void> {
  expect({ status: r.status, type: r.headers.get('content-type'), body: await r.json() }).toEqual({ status, type: 'application/json; charset=utf-8', body });
}

async function eventually(fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function counts(name: string): Promise<{ table: number; quarantine: number }> {
  return { table: await count(s, name), quarantine: await count(s, name, true) };
}

describe('success', () => {
  it("wait=true answers 200 once the rows are in the engine, with this request's quarantined rows", async () => {
    const before = await counts('ev');
    const r = await s.req('POST', '/v0/events?name=ev&wait=true', { body: rows(5, 2, 1) });
    const requestId = r.headers.get('x-request-id')!;
    await expectJson(r, 200, { successful_rows: 5, quarantined_rows: 3 });
    // Already in the engine when the answer arrives.
    expect(await counts('ev')).toEqual({ table: before.table + 5, quarantine: before.quarantine + 3 });
    const t = await tableOf(s, 'ev');
    const q = await engineRows<{ c__import_id: string; c__error: string[] }>(
      s,
      `SELECT c__import_id, c__error FROM ${t.quarantine} WHERE c__import_id = '${requestId}' ORDER BY c__error`,
    );
    expect(q).toHaveLength(3);
    expect(q.map((x) => x.c__error[0])).toEqual([
      expect.stringMatching(/^invalid JSON line: \{"id": \d+, "n": $/),
      "value 'not a number' on column 'n' is not Int32",
      "value 'not a number' on column 'n' is not Int32",
    ]);
  });

  it('without wait (or wait=false) answers 202 at once, every line counted as successful; rows arrive shortly', async () => {
    const before = await counts('ev');
    const a = await s.req('POST', '/v0/events?name=ev', { body: rows(3, 1) });
    await expectJson(a, 202, { successful_rows: 4, quarantined_rows: 0 });
    const b = await s.req('POST', '/v0/events?name=ev&wait=false', { body: rows(2) });
    await expectJson(b, 202, { successful_rows: 2, quarantined_rows: 0 });
    // The table and the quarantine are written by one insert's two views, one after the other: wait for both.
    const want = { table: before.table + 5, quarantine: before.quarantine + 1 };
    await eventually(async () => {
      const c = await counts('ev');
      return c.table >= want.table && c.quarantine >= want.quarantine;
    });
    expect(await counts('ev')).toEqual(want);
  });

  it('reads NDJSON whatever the Content-Type; format=ndjson and format=json; token in the query string', async () => {
    for (const type of ['application/json', 'text/plain', 'application/x-ndjson', 'application/octet-stream', undefined]) {
      const r = await s.req('POST', '/v0/events?name=ev&wait=true', { body: rows(2), headers: type ? { 'content-type': type } : {} });
      await expectJson(r, 200, { successful_rows: 2, quarantined_rows: 0 });
    }
    for (const format of ['ndjson', 'json', 'NDJSON']) {
      const r = await s.req('POST', `/v0/events?name=ev&wait=true&format=${format}`, { body: rows(1) });
      await expectJson(r, 200, { successful_rows: 1, quarantined_rows: 0 });
    }
    const r = await fetch(`${s.url}/v0/events?name=ev&wait=true&token=${s.token}`, {
      method: 'POST',
      body: JSON.stringify({ id: nextId++, n: 1, s: 'single object, no newline' }),
    });
    await expectJson(r, 200, { successful_rows: 1, quarantined_rows: 0 });
  });

  it('gzip by Content-Encoding, by magic bytes alone, and base64-encoded gzip (AWS Firehose)', async () => {
    const h = await s.req('POST', '/v0/events?name=ev&wait=true', { body: zlib.gzipSync(rows(3, 1)), headers: { 'content-encoding': 'gzip' } });
    await expectJson(h, 200, { successful_rows: 3, quarantined_rows: 1 });
    const m = await s.req('POST', '/v0/events?name=ev&wait=true', { body: zlib.gzipSync(rows(4)) });
    await expectJson(m, 200, { successful_rows: 4, quarantined_rows: 0 });
    const b64 = await s.req('POST', '/v0/events?name=ev&wait=true', { body: zlib.gzipSync(rows(2, 0, 1)).toString('base64') });
    await expectJson(b64, 200, { successful_rows: 2, quarantined_rows: 1 });
  });

  it('large bodies (≥ 1 MB, their own write-ahead-log segment) report quarantine like small ones, plain or gzip', async () => {
    const body = rows(4000, 3, 2, 300);
    expect(body.length).toBeGreaterThan(1024 * 1024);
    const before = await counts('ev');
    const r = await s.req('POST', '/v0/events?name=ev&wait=true', { body });
    await expectJson(r, 200, { successful_rows: 4000, quarantined_rows: 5 });
    const g = await s.req('POST', '/v0/events?name=ev&wait=true', { body: zlib.gzipSync(rows(4000, 1, 0, 300)), headers: { 'content-encoding': 'gzip' } });
    await expectJson(g, 200, { successful_rows: 4000, quarantined_rows: 1 });
    const d = await s.req('POST', '/v0/events?name=ev', { body: rows(4000, 0, 0, 300) });
    await expectJson(d, 202, { successful_rows: 4000, quarantined_rows: 0 });
    await eventually(async () => (await counts('ev')).table === before.table + 12000);
    expect(await counts('ev')).toEqual({ table: before.table + 12000, quarantine: before.quarantine + 6 });
  });

  it('large bodies answered 202 before their insert keep their own bytes: read into reused buffers, each is given back only once inserted', async () => {
    const { table } = await tableOf(s, 'ev');
    // Five bodies at once and then five more (more than the buffers kept), each of its own `s`.
    for (const round of [0, 1]) {
      const bodies = [0, 1, 2, 3, 4].map((k) => {
        const mark = `reuse-${round}-${k}`;
        return rows(3000, 0, 0, 350).replaceAll('"s":"', `"s":"${mark}`);
      });
      expect(Math.min(...bodies.map((b) => b.length))).toBeGreaterThan(1024 * 1024);
      const answers = await Promise.all(bodies.map((body) => s.req('POST', '/v0/events?name=ev', { body })));
      for (const a of answers) await expectJson(a, 202, { successful_rows: 3000, quarantined_rows: 0 });
    }
    const perMark = async () =>
      engineRows<{ m: string; c: string; u: string }>(
        s,
        `SELECT substring(s, 1, 9) AS m, count() AS c, uniqExact(s) AS u FROM ${table} WHERE s LIKE 'reuse-%' GROUP BY m ORDER BY m`,
      );
    await eventually(async () => (await perMark()).length === 10 && (await perMark()).every((r) => Number(r.c) === 3000));
    expect((await perMark()).map((r) => [r.m, Number(r.c), Number(r.u)])).toEqual(
      [0, 1].flatMap((round) => [0, 1, 2, 3, 4].map((k) => [`reuse-${round}-${k}`, 3000, 1])),
    );
  });

  it('a large body goes in line by line as sent: a blank line ends nothing (what follows is rows, never SQL); spaces, tabs, CR and control bytes stay', async () => {
    const t = await tableOf(s, 'ev');
    const injected = 'CREATE TABLE default.injected_by_body (x Int8) ENGINE = Memory';
    const odd = ['  not json\t', injected, 'x\u0001y'];
    for (const eol of ['\n', '\r\n']) {
      const before = await counts('ev');
      const lines = [...rows(4000, 0, 0, 300).trimEnd().split('\n'), '', '', injected, '', '   ', '  not json\t', 'x\u0001y', ...rows(2).trimEnd().split('\n')];
      const r = await s.req('POST', '/v0/events?name=ev&wait=true', { body: lines.join(eol) + eol });
      const requestId = r.headers.get('x-request-id')!;
      await expectJson(r, 200, { successful_rows: 4002, quarantined_rows: 3 });
      expect(await counts('ev')).toEqual({ table: before.table + 4002, quarantine: before.quarantine + 3 });
      const q = await engineRows<{ e: string }>(s, `SELECT c__error[1] AS e FROM ${t.quarantine} WHERE c__import_id = '${requestId}' ORDER BY e`);
      expect(q.map((x) => x.e)).toEqual(odd.map((l) => `invalid JSON line: ${l}${eol === '\r\n' ? '\r' : ''}`).sort());
    }
    // Without a CR or a control byte (the body goes to the engine as it is).
    const r = await s.req('POST', '/v0/events?name=ev&wait=true', { body: `${rows(4000, 0, 0, 300)}\n\n${injected}\n\n${rows(1)}` });
    await expectJson(r, 200, { successful_rows: 4001, quarantined_rows: 1 });
    expect(await engineRows(s, "SELECT name FROM system.tables WHERE name = 'injected_by_body'")).toEqual([]);
  });

  it("a large body's line `\\N` (CSV's NULL) goes to quarantine like any line that is not JSON, never vanishes", async () => {
    const t = await tableOf(s, 'ev');
    const before = await counts('ev');
    const r = await s.req('POST', '/v0/events?name=ev&wait=true', { body: `${rows(4000, 0, 0, 300)}\\N\n${rows(1)}` });
    const requestId = r.headers.get('x-request-id')!;
    await expectJson(r, 200, { successful_rows: 4001, quarantined_rows: 1 });
    expect(await counts('ev')).toEqual({ table: before.table + 4001, quarantine: before.quarantine + 1 });
    const q = await engineRows<{ e: string }>(s, `SELECT c__error[1] AS e FROM ${t.quarantine} WHERE c__import_id = '${requestId}'`);
    expect(q).toEqual([{ e: 'invalid JSON line: \\N' }]);
  });

  it('small bodies go in line by line as sent, logged plain or TSV-escaped, also when both kinds share a segment', async () => {
    const t = await tableOf(s, 'ev');
    const odd = ['  not json\t', 'x\u0001y', '\\N', 'a\\tb\\\\c', '"quoted"', "'single'"];
    // Plain (no 0x01, CR or `\N`), and TSV for each of those; sent at once, so they share segments.
    // A line of spaces (and a CR) is blank: no row.
    const bodies = [
      `${rows(3)}  not json\t\n${rows(2)}`,
      `${rows(2)}"quoted"\n'single'\na\\tb\\\\c\n`,
      `${rows(2)}x\u0001y\n`,
      `${rows(1)}\\N\n${rows(1)}`,
      `${rows(2).replaceAll('\n', '\r\n')}   \r\n`,
    ];
    for (let round = 0; round < 3; round++) {
      const before = await counts('ev');
      const answers = await Promise.all(bodies.map((body) => s.req('POST', '/v0/events?name=ev&wait=true', { body })));
      const got = await Promise.all(answers.map(async (r) => ({ status: r.status, body: await r.json(), id: r.headers.get('x-request-id')! })));
      expect(got.map((g) => [g.status, g.body])).toEqual([
        [200, { successful_rows: 5, quarantined_rows: 1 }],
        [200, { successful_rows: 2, quarantined_rows: 3 }],
        [200, { successful_rows: 2, quarantined_rows: 1 }],
        [200, { successful_rows: 2, quarantined_rows: 1 }],
        [200, { successful_rows: 2, quarantined_rows: 0 }],
      ]);
      expect(await counts('ev')).toEqual({ table: before.table + 13, quarantine: before.quarantine + 6 });
      const ids = got.map((g) => `'${g.id}'`).join(', ');
      const q = await engineRows<{ e: string }>(s, `SELECT c__error[1] AS e FROM ${t.quarantine} WHERE c__import_id IN (${ids}) ORDER BY e`);
      expect(q.map((x) => x.e)).toEqual(odd.map((l) => `invalid JSON line: ${l}`).sort());
    }
  });

  it('a line that is not valid UTF-8 goes to quarantine with its bytes, in a small body as in a large one', async () => {
    const t = await tableOf(s, 'ev');
    const bad = Buffer.concat([Buffer.from(`{"id": ${nextId++}, "n": 1, "s": "a`), Buffer.from([0xff, 0xfe]), Buffer.from('b"}\n')]);
    for (const body of [Buffer.concat([bad, Buffer.from(rows(2))]), Buffer.concat([bad, Buffer.from(rows(4000, 0, 0, 300))])]) {
      const before = await counts('ev');
      const r = await s.req('POST', '/v0/events?name=ev&wait=true', { body });
      await expectJson(r, 200, { successful_rows: body.length > 1024 * 1024 ? 4000 : 2, quarantined_rows: 1 });
      expect((await counts('ev')).quarantine).toBe(before.quarantine + 1);
      const q = await engineRows<{ h: string }>(s, `SELECT hex(c__error[1]) AS h FROM ${t.quarantine} WHERE c__import_id = '${r.headers.get('x-request-id')}'`);
      expect(q.length).toBe(1);
      expect(q[0].h).toContain('FFFE');
    }
  });

  it('creates the data source from the rows when it does not exist and the token may create', async () => {
    const r = await s.req('POST', '/v0/events?name=auto_ev&wait=true', { body: '{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n' });
    await expectJson(r, 200, { successful_rows: 2, quarantined_rows: 0 });
    expect(await count(s, 'auto_ev')).toBe(2);
    const ds = await s.app.services.datasources.get(s.app.services.access.defaultWorkspace, 'auto_ev');
    expect(ds.columns.map((c) => [c.name, c.jsonpath])).toEqual([
      ['a', '$.a'],
      ['b', '$.b'],
    ]);
    // Its `create` operation carries the request's id (the route enters the request context for that step only).
    await s.app.services.observability.flush();
    expect(await engineRows(s, "SELECT request_id FROM pipit_service.datasources_ops_log WHERE event_type = 'create' AND datasource_name = 'auto_ev'")).toEqual(
      [{ request_id: r.headers.get('x-request-id') }],
    );
  });

  it('an empty body is a 400 (seed 003: the body is required)', async () => {
    for (const [q, body] of [
      ['', ''],
      ['&wait=true', '\n  \n'],
      ['', '   '],
    ]) {
      const r = await s.req('POST', `/v0/events?name=ev${q}`, { body });
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await r.text()).toBe('The request body is empty: send the events as NDJSON, one JSON object per line.\n');
    }
  });

  it('a line that is not a JSON object is counted as quarantined without wait, and by the engine with it', async () => {
    const before = await count(s, 'ev');
    await expectJson(await s.req('POST', '/v0/events?name=ev', { body: 'not json\n' }), 202, { successful_rows: 0, quarantined_rows: 1 });
    await expectJson(await s.req('POST', '/v0/events?name=ev&wait=true', { body: 'not json either\n' }), 200, { successful_rows: 0, quarantined_rows: 1 });
    expect(await count(s, 'ev')).toBe(before);
  });

  it('the 202 estimate counts what the engine counts for lines that start with whitespace', async () => {
    // JSON's whitespace is space, tab, CR and LF: a form feed or vertical tab before `{` makes the
    // line unreadable, so the engine quarantines it; the estimate must say so too.
    for (const lead of [' ', '\t', '\r', '\f', '\v', ' \f', '\f ']) {
      const body = `${lead}{"id":1,"n":1,"s":"a"}\n`;
      const exact = await s.req('POST', '/v0/events?name=ev&wait=true', { body });
      expect(exact.status, JSON.stringify(lead)).toBe(200);
      const counted = await exact.json();
      await expectJson(await s.req('POST', '/v0/events?name=ev', { body }), 202, counted);
    }
  });

  it('the 202 estimate counts what the engine counts for a line that starts with a byte order mark (review9)', async () => {
    // The engine's JSON parser (simdjson) skips a UTF-8 BOM before the document, so a line
    // `\uFEFF{...}` (or `\uFEFF {...}`) is read and goes to the table: the estimate must not call it quarantined.
    // Whole body first (the TSV path), then as a later line of a plain body, then other leading bytes.
    const line = '{"id":1,"n":1,"s":"a"}';
    const wrong: unknown[] = [];
    const bodies = [`\uFEFF${line}\n`, `\uFEFF ${line}\n`, `${line}\n\uFEFF${line}\n`, `${rows(3000, 0, 0, 400)}\uFEFF${line}\n`];
    // These already agree (kept as the fix's guard): a BOM alone or before a form feed, NUL, NBSP, CR then FF.
    bodies.push(`${line}\n\uFEFF\n`, `\uFEFF\f${line}\n`, `\0${line}\n`, `\u00a0${line}\n`, `\r\f${line}\n`);
    // Earlier tests' 202 rows land first (a wait=true request flushes its lane).
    expect((await s.req('POST', '/v0/events?name=ev&wait=true', { body: `${line}\n` })).status).toBe(200);
    for (const body of bodies) {
      const before = await counts('ev');
      const exact = await s.req('POST', '/v0/events?name=ev&wait=true', { body });
      expect(exact.status, JSON.stringify(body)).toBe(200);
      const after = await counts('ev');
      const truth = { successful_rows: after.table - before.table, quarantined_rows: after.quarantine - before.quarantine };
      expect(await exact.json(), JSON.stringify(body)).toEqual(truth);
      const estimate = await s.req('POST', '/v0/events?name=ev', { body });
      const answer = await estimate.json();
      if (JSON.stringify(answer) !== JSON.stringify(truth)) wrong.push({ body: JSON.stringify(body.slice(-40)), bytes: body.length, answer, truth });
      // The 202 request's rows land too before the next body is measured.
      await eventually(async () => {
        const c = await counts('ev');
        return c.table >= after.table + truth.successful_rows && c.quarantine >= after.quarantine + truth.quarantined_rows;
      });
    }
    expect(wrong).toEqual([]);
  });
});

describe('the 10 MB request cap', () => {
  it('accepts a body of exactly 10 MB, refuses one byte more with 413 (by Content-Length and when streamed)', async () => {
    const line = JSON.stringify({ id: 0, n: 0, s: 'y'.repeat(200) }) + '\n';
    const make = (size: number) => {
      const n = Math.floor(size / line.length);
      const body = Buffer.alloc(size, 0x20); // trailing spaces: whitespace after the last line
      body.write(line.repeat(n));
      return { body, n };
    };
    const exact = make(MAX_EVENTS_REQUEST);
    const ok = await s.req('POST', '/v0/events?name=cap&wait=true', { body: exact.body });
    await expectJson(ok, 200, { successful_rows: exact.n, quarantined_rows: 0 });

    const over = make(MAX_EVENTS_REQUEST + 1);
    await expectText(await s.req('POST', '/v0/events?name=cap', { body: over.body }), 413, TOO_LARGE);
    // No Content-Length: the cap applies while the body streams in.
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let off = 0; off < over.body.length; off += 1 << 20) c.enqueue(over.body.subarray(off, off + (1 << 20)));
        c.close();
      },
    });
    const streamed = await fetch(`${s.url}/v0/events?name=cap`, {
      method: 'POST',
      body: stream,
      headers: { authorization: `Bearer ${s.token}` },
      duplex: 'half',
    } as RequestInit);
    await expectText(streamed, 413, TOO_LARGE);
    expect(await count(s, 'cap')).toBe(exact.n);
  });

  it('the cap is on the bytes sent: a gzip body may decompress beyond 10 MB, up to 100 MB', async () => {
    const line = JSON.stringify({ id: 1, n: 1, s: 'z'.repeat(200) }) + '\n';
    const n = Math.ceil((12 * 1024 * 1024) / line.length);
    const gz = zlib.gzipSync(line.repeat(n), { level: 1 });
    expect(gz.length).toBeLessThan(MAX_EVENTS_REQUEST);
    const r = await s.req('POST', '/v0/events?name=cap_gz&wait=true', { body: gz, headers: { 'content-encoding': 'gzip' } });
    await expectJson(r, 200, { successful_rows: n, quarantined_rows: 0 });

    const bomb = zlib.gzipSync(Buffer.alloc(MAX_EVENTS_DECODED + 1, 0x20), { level: 1 });
    await expectText(
      await s.req('POST', '/v0/events?name=cap_gz', { body: bomb }),
      413,
      `Request Entity Too Large: the decompressed body exceeds ${MAX_EVENTS_DECODED} bytes. Split the events into smaller requests.\n`,
    );
  });
});

describe('errors are text/plain with the exact body', () => {
  it("400 Missing 'name' parameter", async () => {
    await expectText(await s.req('POST', '/v0/events', { body: rows(1) }), 400, "Missing 'name' parameter\n");
    await expectText(await s.req('POST', '/v0/events?name=', { body: rows(1) }), 400, "Missing 'name' parameter\n");
  });

  it('403 Invalid token: missing, unknown or forged, in the header or the query string', async () => {
    for (const token of [null, 'nope', s.token.slice(0, -2) + 'xx']) {
      await expectText(await s.req('POST', '/v0/events?name=ev', { body: rows(1), token }), 403, 'Invalid token\n');
    }
    await expectText(await fetch(`${s.url}/v0/events?name=ev&token=nope`, { method: 'POST', body: rows(1) }), 403, 'Invalid token\n');
    await expectText(
      await s.req('POST', '/v0/events?name=ev', { body: rows(1), token: null, headers: { authorization: `Token ${s.token}` } }),
      403,
      'Invalid token\n',
    );
  });

  it('403 for a token without the scope: Invalid token to append, Invalid token for DS autocreation to create', async () => {
    const access = s.app.services.access;
    const ws = access.defaultWorkspace;
    const ev = await s.app.services.datasources.get(ws, 'ev');
    const other = await s.app.services.datasources.get(ws, 'csv_only');
    const read = await access.createToken(ws.id, 'read ev', [{ type: 'DATASOURCES:READ', resource: ev.id }]);
    const appendOther = await access.createToken(ws.id, 'append other', [{ type: 'DATASOURCES:APPEND', resource: other.id }]);
    const appendEv = await access.createToken(ws.id, 'append ev', [{ type: 'DATASOURCES:APPEND', resource: ev.id }]);
    const create = await access.createToken(ws.id, 'create', [{ type: 'DATASOURCES:CREATE' }]);

    await expectText(await s.req('POST', '/v0/events?name=ev', { body: rows(1), token: read.token }), 403, 'Invalid token\n');
    await expectText(await s.req('POST', '/v0/events?name=ev', { body: rows(1), token: appendOther.token }), 403, 'Invalid token\n');
    await expectJson(await s.req('POST', '/v0/events?name=ev&wait=true', { body: rows(1), token: appendEv.token }), 200, {
      successful_rows: 1,
      quarantined_rows: 0,
    });
    await expectText(await s.req('POST', '/v0/events?name=not_there', { body: rows(1), token: appendEv.token }), 403, 'Invalid token for DS autocreation\n');
    await expectText(await s.req('POST', '/v0/events?name=not_there', { body: rows(1), token: read.token }), 403, 'Invalid token for DS autocreation\n');
    expect(await s.app.services.datasources.find(ws, 'not_there')).toBeNull();
    await expectJson(await s.req('POST', '/v0/events?name=made_by_create&wait=true', { body: rows(1), token: create.token }), 200, {
      successful_rows: 1,
      quarantined_rows: 0,
    });
  });

  it('400 for an invalid or reserved name when the data source would be created', async () => {
    await expectText(
      await s.req('POST', '/v0/events?name=1bad', { body: rows(1) }),
      400,
      'Invalid Data Source name "1bad". Name must start with a letter and contain only letters, numbers, and underscores. Hint: use t_1bad.\n',
    );
    await expectText(
      await s.req('POST', '/v0/events?name=my-ds', { body: rows(1) }),
      400,
      'Invalid Data Source name "my-ds". Name must start with a letter and contain only letters, numbers, and underscores. Hint: use my_ds.\n',
    );
    await expectText(
      await s.req('POST', '/v0/events?name=from', { body: rows(1) }),
      400,
      'Forbidden Data Source name "from". from is a reserved word. Name must start with a letter and contain only letters, numbers, and underscores. Hint: use from_.\n',
    );
  });

  it('501 for an unknown format', async () => {
    await expectText(await s.req('POST', '/v0/events?name=ev&format=csv', { body: rows(1) }), 501, 'Format "csv" is not implemented, use format=ndjson\n');
    await expectText(
      await s.req('POST', '/v0/events?name=ev&format=parquet', { body: rows(1) }),
      501,
      'Format "parquet" is not implemented, use format=ndjson\n',
    );
  });

  it('400 Analysis error when the data source does not exist and the body has no JSON object to infer from', async () => {
    for (const body of ['', ' \n\n', 'not json at all\n', '[1, 2, 3]\n']) {
      await expectText(await s.req('POST', '/v0/events?name=never_created', { body }), 400, ANALYSIS);
    }
    expect(await s.app.services.datasources.find(s.app.services.access.defaultWorkspace, 'never_created')).toBeNull();
  });

  it('400 for a body that is not valid gzip', async () => {
    await expectText(
      await s.req('POST', '/v0/events?name=ev', { body: rows(2), headers: { 'content-encoding': 'gzip' } }),
      400,
      'The body could not be decompressed: incorrect header check\n',
    );
    const truncated = zlib.gzipSync(rows(50)).subarray(0, 40);
    await expectText(await s.req('POST', '/v0/events?name=ev', { body: truncated }), 400, 'The body could not be decompressed: unexpected end of file\n');
    await expectText(
      await s.req('POST', '/v0/events?name=ev', { body: truncated.toString('base64') }),
      400,
      'The body could not be decompressed: unexpected end of file\n',
    );
  });

  it('400 Data Source must be of type JSON for a data source without JSONPaths', async () => {
    await expectText(await s.req('POST', '/v0/events?name=csv_only', { body: '{"a": "x"}\n' }), 400, 'Data Source must be of type JSON\n');
  });
});
