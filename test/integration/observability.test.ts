/**
 * Service data sources (`tinybird.*`), request logs and /metrics over real HTTP. A scripted sequence
 * (create, append with bad rows, Events API batches, replace, truncate, alter, rename, delete, a
 * materialized view with its populate, a copy, a sink, endpoint calls that succeed and fail, Query API
 * calls) leaves exactly the expected rows in each service data source; seed 001's two example queries
 * return the populate's rows; another workspace and limited tokens see nothing of it; materialized
 * views may not read them; /metrics is protected and complete; one JSON log line per request.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
const logLines: string[] = [];
const JSON_HDR = { 'content-type': 'application/json' };
const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
let dsId = '';
let populateJob = '';
let tokenB = '';
let metricsPort = 0;
/** x-request-id of the request that created `other`, and of the one that ran the copy. */
let createRequest = '';
let copyRequest = '';
let copyJob = '';

/** Rows in a canonical order: timestamps have a resolution of one second, so operations of the same second come in any order. */
const sorted = <T>(rows: T[]): T[] => [...rows].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

// biome-ignore lint/suspicious/noExplicitAny: query results of many shapes
type Row = Record<string, any>;

async function waitJob(id: string): Promise<Row> {
  for (let i = 0; i < 600; i++) {
    const j = await (await s.req('GET', `/v0/jobs/${id}`)).json();
    if (['done', 'error', 'cancelled'].includes(j.status)) return j;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} did not finish`);
}

async function sql(q: string, token?: string): Promise<Row[]> {
  const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, { token });
  const text = await r.text();
  expect(r.status, text).toBe(200);
  return JSON.parse(text).data;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  metricsPort = await freePort();
  // A long flush interval: the test flushes explicitly, so every record of the sequence is grouped deterministically.
  s = await startServer({
    config: { logLevel: 'info', logDestination: { write: (l: string) => logLines.push(l) }, serviceFlushMs: 60_000, metricsPort },
  });
  const ok = async (p: Promise<Response>) => {
    const r = await p;
    const text = await r.text();
    expect(r.status, text).toBeLessThan(300);
    return JSON.parse(text || '{}');
  };
  const schema = 'k String `json:$.k`, v Int32 `json:$.v`';
  dsId = (await ok(s.req('POST', '/v0/datasources?name=events&mode=create', form({ schema })))).datasource.id;
  // 3 good rows and 1 bad one (v is not an Int32).
  const body = ['{"k":"a","v":1}', '{"k":"b","v":2}', '{"k":"c","v":"x"}', '{"k":"d","v":4}'].join('\n');
  await ok(s.req('POST', '/v0/datasources?name=events&mode=append&format=ndjson', { body }));
  // Two Events API batches: 4 rows, 1 bad.
  await ok(s.req('POST', '/v0/events?name=events&wait=true', { body: '{"k":"e","v":5}\n{"k":"f","v":6}' }));
  await ok(s.req('POST', '/v0/events?name=events&wait=true', { body: '{"k":"g","v":7}\n{"k":"h","v":"bad"}' }));
  // A second data source: replaced, truncated, altered, renamed, rows deleted.
  const created = await s.req('POST', '/v0/datasources?name=other&mode=create', form({ schema }));
  createRequest = created.headers.get('x-request-id') ?? '';
  await ok(Promise.resolve(created));
  await ok(s.req('POST', '/v0/datasources?name=other&mode=replace&format=ndjson', { body: '{"k":"x","v":1}\n{"k":"y","v":2}' }));
  const del = await ok(s.req('POST', '/v0/datasources/other/delete', form({ delete_condition: 'v = 1' })));
  expect((await waitJob(del.job_id ?? del.job.id)).status).toBe('done');
  await ok(s.req('POST', '/v0/datasources/other/truncate'));
  await ok(s.req('POST', '/v0/datasources/other/alter', form({ description: 'changed' })));
  await ok(s.req('PUT', '/v0/datasources/other?name=other2'));
  // A materialized view with its populate.
  await ok(
    s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'mv', nodes: [{ name: 'm', sql: 'SELECT k, count() AS c FROM events GROUP BY k' }] }),
    }),
  );
  const mat = await ok(s.req('POST', '/v0/pipes/mv/nodes/m/materialization?datasource=mv_target&populate=true'));
  populateJob = mat.job?.id ?? mat.job_id;
  expect(populateJob, JSON.stringify(mat)).toBeTruthy();
  expect((await waitJob(populateJob)).status).toBe('done');
  // A copy.
  await ok(s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify({ name: 'cp', nodes: [{ name: 'n', sql: 'SELECT k, v FROM events' }] }) }));
  await ok(s.req('POST', '/v0/datasources?name=copy_target&mode=create', form({ schema })));
  await ok(s.req('POST', '/v0/pipes/cp/nodes/n/copy', form({ target_datasource: 'copy_target' })));
  const copyRun = await s.req('POST', '/v0/pipes/cp/copy');
  copyRequest = copyRun.headers.get('x-request-id') ?? '';
  const copy = await ok(Promise.resolve(copyRun));
  copyJob = copy.job.id;
  expect((await waitJob(copy.job.id)).status).toBe('done');
  // A sink into a local directory.
  await ok(s.req('POST', '/v0/connectors', form({ service: 'local', name: 'localconn', directory: 'out' })));
  await ok(s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify({ name: 'sk', nodes: [{ name: 'n', sql: 'SELECT k, v FROM events' }] }) }));
  await ok(s.req('POST', '/v0/pipes/sk/nodes/n/sink', form({ connection: 'localconn', path: 'daily', file_template: 'rows' })));
  const sink = await ok(s.req('POST', '/v0/pipes/sk/sink'));
  expect((await waitJob(sink.job.id)).status).toBe('done');
  // An endpoint: two good calls, one with a bad parameter (400).
  await ok(
    s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'ep', nodes: [{ name: 'n', sql: '%\nSELECT k, v FROM events WHERE v >= {{Int32(min_v, 0)}}', type: 'endpoint' }] }),
    }),
  );
  expect((await s.req('GET', '/v0/pipes/ep.json?min_v=2')).status).toBe(200);
  expect((await s.req('POST', '/v0/pipes/ep.json', { headers: JSON_HDR, body: JSON.stringify({ min_v: 5 }) })).status).toBe(200);
  expect((await s.req('GET', '/v0/pipes/ep.json?min_v=notanumber')).status).toBe(400);
  // The Query API: one good call, one failing; a query of a service data source is not recorded.
  expect((await s.req('GET', '/v0/sql?q=SELECT+count()+FROM+events')).status).toBe(200);
  expect((await s.req('GET', '/v0/sql?q=SELECT+nope+FROM+events')).status).toBe(400);
  expect((await s.req('GET', '/v0/sql?q=SELECT+count()+FROM+tinybird.pipe_stats_rt')).status).toBe(200);

  // Workspace B with its own request.
  const r = await s.req('POST', '/v0/workspaces', { body: new URLSearchParams({ name: 'second' }), token: s.app.services.localTokens.user_token });
  tokenB = (await r.json()).token;
  expect((await s.req('GET', '/v0/sql?q=SELECT+1', { token: tokenB })).status).toBe(200);
  await s.app.services.observability.snapshotStorage();
  await s.app.services.observability.flush();
}, 120_000);

afterAll(async () => {
  await s?.close();
});

describe('tinybird.datasources_ops_log', () => {
  it('holds exactly one row per operation, with counts and results', async () => {
    const rows = await sql(
      'SELECT event_type, datasource_name, result, rows, rows_quarantine, pipe_name FROM tinybird.datasources_ops_log ORDER BY timestamp, event_type',
    );
    const seen = rows.map((r) => [r.event_type, r.datasource_name, r.result, r.rows, r.rows_quarantine, r.pipe_name]);
    expect(sorted(seen.filter((r) => r[1] === 'events'))).toEqual(
      sorted([
        ['create', 'events', 'ok', 0, null, ''],
        ['append', 'events', 'ok', 3, 1, ''],
        ['append-hfi', 'events', 'ok', 3, 1, ''],
      ]),
    );
    const other = seen.filter((r) => r[1] === 'other' || r[1] === 'other2').map((r) => r.slice(0, 4));
    expect(sorted(other)).toEqual(
      sorted([
        ['create', 'other', 'ok', 0],
        ['replace', 'other', 'ok', 2],
        ['delete_data', 'other', 'ok', 1],
        ['truncate', 'other', 'ok', null],
        ['alter', 'other', 'ok', null],
        ['rename', 'other2', 'ok', null],
      ]),
    );
    expect(sorted(seen.filter((r) => r[1] === 'mv_target').map((r) => [r[0], r[2], r[3], r[5]]))).toEqual(
      sorted([
        ['create', 'ok', 0, ''],
        ['populateview-queued', 'ok', null, 'mv'],
        ['populateview', 'ok', 6, 'mv'],
      ]),
    );
    expect(sorted(seen.filter((r) => r[1] === 'copy_target').map((r) => [r[0], r[2], r[3], r[5]]))).toEqual(
      sorted([
        ['create', 'ok', 0, ''],
        ['copy', 'ok', 6, 'cp'],
      ]),
    );
    expect(seen.filter((r) => r[0] === 'sink').map((r) => [r[2], r[5]])).toEqual([['ok', 'sk']]);
    expect(rows).toHaveLength(15);
    expect(await sql("SELECT DISTINCT datasource_id FROM tinybird.datasources_ops_log WHERE datasource_name = 'events'")).toEqual([{ datasource_id: dsId }]);
  });

  it('says what appends, Events API flushes and replaces wrote: rows, and the bytes the engine reported', async () => {
    const rows = await sql(
      "SELECT event_type, datasource_name, written_rows, written_bytes, written_rows_quarantine, cpu_time FROM tinybird.datasources_ops_log WHERE event_type IN ('append', 'append-hfi', 'replace') ORDER BY event_type",
    );
    expect(rows.map((r) => [r.event_type, r.datasource_name, r.written_rows, r.written_rows_quarantine])).toEqual([
      ['append', 'events', 3, 1],
      ['append-hfi', 'events', 3, 1],
      ['replace', 'other', 2, 0],
    ]);
    // The engine's count: the stage's rows with their parsed columns, and the rows into the table
    // and quarantine (docs/architecture.md, Observability); at least the raw lines' bytes.
    for (const r of rows) expect(Number(r.written_bytes), r.event_type).toBeGreaterThan(30);
    // The engine reports no CPU time of an insert.
    for (const r of rows) expect(r.cpu_time).toBe(0);
  });

  it("answers seed 001's two example queries with the populate's rows", async () => {
    const check = await sql(`SELECT event_type, job_id FROM tinybird.datasources_ops_log
WHERE timestamp > now() - INTERVAL 1 DAY
AND operation_id IN (
    SELECT operation_id FROM tinybird.datasources_ops_log
    WHERE timestamp > now() - INTERVAL 1 DAY
        and datasource_id = '${(await (await s.req('GET', '/v0/datasources/mv_target')).json()).id}'
        and job_id = '${populateJob}'
    )
ORDER BY timestamp ASC`);
    expect(check.map((r) => r.event_type).sort()).toEqual(['populateview', 'populateview-queued']);
    expect(check.every((r) => r.job_id === populateJob)).toBe(true);
    const target = (await (await s.req('GET', '/v0/datasources/mv_target')).json()).id;
    const failed = await sql(`SELECT * FROM tinybird.datasources_ops_log
WHERE datasource_id = '${target}' AND pipe_name = 'mv' AND event_type LIKE 'populateview%' AND result = 'error' ORDER BY timestamp ASC`);
    expect(failed).toEqual([]);
    const all = await sql(
      `SELECT count() AS c FROM tinybird.datasources_ops_log WHERE datasource_id = '${target}' AND pipe_name = 'mv' AND event_type LIKE 'populateview%'`,
    );
    expect(Number(all[0].c)).toBe(2);
  });
});

describe('tinybird.pipe_stats_rt, pipe_stats, endpoint_errors', () => {
  it('records every endpoint and Query API call, not queries of service data sources', async () => {
    const rows = await sql(
      'SELECT pipe_name, status_code, error, method, parameters, token_name, url FROM tinybird.pipe_stats_rt ORDER BY pipe_name, status_code, method',
    );
    expect(rows.map((r) => [r.pipe_name, r.status_code, r.error, r.method])).toEqual([
      ['ep', 200, 0, 'GET'],
      ['ep', 200, 0, 'POST'],
      ['ep', 400, 1, 'GET'],
      ['query_api', 200, 0, 'GET'],
      ['query_api', 400, 1, 'GET'],
    ]);
    expect(rows[0].parameters).toEqual({ min_v: '2' });
    // POST calls do not record their parameters (seed 001).
    expect(rows[1].parameters).toEqual({});
    expect(rows[0].token_name).toBe('workspace admin token');
    for (const r of rows) expect(r.url).not.toContain(s.token);
    const stats = await sql(
      "SELECT pipe_name, sum(view_count) AS views, sum(error_count) AS errors, round(avgMerge(avg_duration_state), 6) > 0 AS timed FROM tinybird.pipe_stats WHERE pipe_name = 'ep' GROUP BY pipe_name",
    );
    expect(stats).toEqual([{ pipe_name: 'ep', views: 3, errors: 1, timed: 1 }]);
    const errors = await sql('SELECT pipe_name, status_code, error, params FROM tinybird.endpoint_errors');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ pipe_name: 'ep', status_code: 400, params: '{"min_v":"notanumber"}' });
    expect(errors[0].error).toContain("'notanumber' to type Int32");
  });

  it('GET /v0/pipes/:p/requests answers from pipe_stats_rt', async () => {
    const r = await (await s.req('GET', '/v0/pipes/ep/requests')).json();
    expect(r.requests, JSON.stringify(r)).toBeDefined();
    expect(r.requests.top).toHaveLength(3);
    expect(r.requests.top[0]).toHaveProperty('duration');
  });
});

describe('request ids', () => {
  it("an operation carries its request's id; a job's rows and operation the id of the request that created it, after that request ended", async () => {
    expect(createRequest).toBeTruthy();
    expect(await sql("SELECT request_id FROM tinybird.datasources_ops_log WHERE event_type = 'create' AND datasource_name = 'other'")).toEqual([
      { request_id: createRequest },
    ]);
    expect(copyRequest).toBeTruthy();
    // The job's last status row (done), written after the request that ran it answered.
    expect(await sql(`SELECT status, request_id FROM tinybird.jobs_log WHERE job_id = '${copyJob}'`)).toEqual([{ status: 'done', request_id: copyRequest }]);
    expect(await sql(`SELECT request_id FROM tinybird.datasources_ops_log WHERE event_type = 'copy' AND job_id = '${copyJob}'`)).toEqual([
      { request_id: copyRequest },
    ]);
  });
});

describe('tinybird.jobs_log, sinks_ops_log, block_log, datasources_storage', () => {
  it('hold the jobs, the sink, the import blocks and the storage of each data source', async () => {
    const jobs = await sql('SELECT job_type, status FROM tinybird.jobs_log ORDER BY created_at');
    // One row per job (ReplacingMergeTree read with FINAL), its last status.
    expect(jobs.map((j) => [j.job_type, j.status])).toEqual([
      ['delete_data', 'done'],
      ['populateview', 'done'],
      ['copy', 'done'],
      ['sink', 'done'],
    ]);
    const sinks = await sql('SELECT pipe_name, result, written_rows, length(output) AS files FROM tinybird.sinks_ops_log');
    expect(sinks).toEqual([{ pipe_name: 'sk', result: 'ok', written_rows: 6, files: 1 }]);
    const blocks = await sql('SELECT datasource_name, rows, quarantine_lines FROM tinybird.block_log ORDER BY timestamp');
    expect(blocks).toEqual([
      { datasource_name: 'events', rows: 3, quarantine_lines: 1 },
      { datasource_name: 'other', rows: 2, quarantine_lines: 0 },
    ]);
    const storage = await sql("SELECT datasource_name, rows, rows_quarantine FROM tinybird.datasources_storage WHERE datasource_name = 'events'");
    expect(storage).toEqual([{ datasource_name: 'events', rows: 6, rows_quarantine: 2 }]);
  });
});

describe('who reads them', () => {
  it("a workspace sees only its own rows; the engine's service database can not be named", async () => {
    const b = await sql('SELECT pipe_name FROM tinybird.pipe_stats_rt', tokenB);
    expect(b).toEqual([{ pipe_name: 'query_api' }]);
    expect(await sql('SELECT count() AS c FROM tinybird.datasources_ops_log', tokenB)).toEqual([{ c: 0 }]);
    const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT * FROM pipit_service.pipe_stats_rt')}`);
    expect(r.status).toBe(403);
    expect((await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT * FROM tinybird.nope')}`)).status).toBe(404);
  });

  it('a PIPES:READ token reads them only through a pipe it may read', async () => {
    await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({
        name: 'stats',
        nodes: [{ name: 'n', sql: 'SELECT pipe_name, count() AS c FROM tinybird.pipe_stats_rt GROUP BY pipe_name', type: 'endpoint' }],
      }),
    });
    const t = await (await s.req('POST', '/v0/tokens?name=reader&scope=PIPES:READ:stats')).json();
    const direct = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT * FROM tinybird.pipe_stats_rt')}`, { token: t.token });
    expect(direct.status).toBe(403);
    const viaPipe = await s.req('GET', '/v0/pipes/stats.json', { token: t.token });
    expect(viaPipe.status).toBe(200);
    expect((await viaPipe.json()).data.map((r: Row) => r.pipe_name).sort()).toEqual(['ep', 'query_api']);
    const other = await (await s.req('POST', '/v0/tokens?name=reader2&scope=PIPES:READ:ep')).json();
    expect((await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT * FROM tinybird.datasources_ops_log')}`, { token: other.token })).status).toBe(403);
  });

  it('a materialized view can not read them, directly or through another pipe', async () => {
    await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'mv_bad', nodes: [{ name: 'm', sql: 'SELECT pipe_name, count() AS c FROM tinybird.pipe_stats_rt GROUP BY pipe_name' }] }),
    });
    let r = await s.req('POST', '/v0/pipes/mv_bad/nodes/m/materialization?datasource=mv_bad_target');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toContain('Materialized View');
    await s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify({ name: 'mv_bad2', nodes: [{ name: 'm', sql: 'SELECT * FROM stats' }] }) });
    r = await s.req('POST', '/v0/pipes/mv_bad2/nodes/m/materialization?datasource=mv_bad_target2');
    expect(r.status).toBe(400);
  });
});

describe('/metrics and the request log', () => {
  it('serves Prometheus metrics to ADMIN tokens only, and on the loopback metrics port', async () => {
    expect((await s.req('GET', '/metrics', { token: null })).status).toBe(403);
    const reader = await (await s.req('POST', '/v0/tokens?name=m_reader&scope=PIPES:READ:ep')).json();
    expect((await s.req('GET', '/metrics', { token: reader.token })).status).toBe(403);
    const r = await s.req('GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await r.text();
    for (const m of [
      'pipit_http_requests_total{family="sql",method="GET",status="200"}',
      'pipit_http_request_duration_seconds_bucket{family="endpoint",le="+Inf"}',
      'pipit_endpoint_requests_total{workspace_id=',
      'pipit_ingested_rows_total{workspace_id=',
      'pipit_quarantined_rows_total{workspace_id=',
      'pipit_events_wal_backlog_bytes ',
      'pipit_jobs_total{kind="populateview",status="done"} 1',
      'pipit_engine_slots_busy{lane="user"}',
      'pipit_engine_slots_queued{lane="internal"}',
      'pipit_query_admission_waiting ',
      'pipit_process_memory_bytes{kind="rss"}',
      'pipit_event_loop_lag_seconds{quantile="0.99"}',
    ]) {
      expect(text, m).toContain(m);
    }
    expect(text).toMatch(/pipit_endpoint_requests_total\{workspace_id="[^"]+",pipe="ep",status="400"\} 1/);
    expect(text).toMatch(/pipit_quarantined_rows_total\{workspace_id="[^"]+",datasource="events",event_type="append-hfi"\} 1/);
    const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${metricsPort}/metrics`, (res) => {
          let t = '';
          res.on('data', (c) => (t += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
        })
        .on('error', reject);
    });
    expect(body.status).toBe(200);
    expect(body.text).toContain('pipit_http_requests_total');
  });

  it('pipit_event_loop_lag_seconds is how late the loop ran, not the sampling interval: a 150 ms stall shows, a quiet loop does not', async () => {
    const lag = (text: string, q: string) => Number(new RegExp(`pipit_event_loop_lag_seconds\\{quantile="${q}"\\} (\\S+)`).exec(text)?.[1]);
    await s.req('GET', '/metrics'); // a scrape starts a new window
    await new Promise((res) => setTimeout(res, 300));
    const quiet = await (await s.req('GET', '/metrics')).text();
    expect(lag(quiet, '0.5')).toBeLessThan(0.04);
    // The histogram's first interval after a scrape is not recorded (Node's reset): stall after it.
    await new Promise((res) => setTimeout(res, 120));
    const until = performance.now() + 150;
    while (performance.now() < until); // the server runs in this process: its loop stalls too
    await new Promise((res) => setTimeout(res, 120));
    const stalled = await (await s.req('GET', '/metrics')).text();
    expect(lag(stalled, '1')).toBeGreaterThanOrEqual(0.1);
  });

  it('writes one JSON line per request with its id, route, status, duration and token name, never the token', async () => {
    const r = await s.req('GET', '/v0/pipes/ep.json?min_v=notanumber');
    const id = r.headers.get('x-request-id');
    await new Promise((res) => setTimeout(res, 50));
    const lines = logLines.map((l) => JSON.parse(l)).filter((l) => l.reqId === id);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      route: '/v0/pipes/:pipe',
      family: 'endpoint',
      method: 'GET',
      status: 400,
      token_name: 'workspace admin token',
      pipe: 'ep',
    });
    expect(lines[0].duration_ms).toBeGreaterThan(0);
    expect(lines[0].error).toContain("'notanumber' to type Int32");
    expect(logLines.join('\n')).not.toContain(s.token);
  });
});
