/**
 * Real npm clients against a real Pipit server: `@tinybirdco/sdk` (the low-level `TinybirdApi`
 * from `@tinybirdco/sdk/api`) and `@chronark/zod-bird`. Each test uses its own data sources.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTinybirdApi, TinybirdApiError, type TinybirdApi } from '@tinybirdco/sdk/api';
import { Tinybird } from '@chronark/zod-bird';
import { z } from 'zod';
import { count, startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let api: TinybirdApi;
let tmpDir: string;

const NDJSON_SCHEMA = 'id Int32 `json:$.id`, name String `json:$.name`';
const CSV_SCHEMA = 'id Int32, name String';

async function createDatasource(name: string, schema: string, format: 'csv' | 'ndjson'): Promise<void> {
  const res = await s.req('POST', `/v0/datasources?name=${name}&mode=create&format=${format}`, {
    body: new URLSearchParams({ schema }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

async function waitForJob(id: string, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await s.req('GET', `/v0/jobs/${id}`);
    expect(res.status).toBe(200);
    const job = (await res.json()) as Record<string, unknown>;
    if (job.status === 'done' || job.status === 'error' || job.status === 'cancelled') return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${String(job.status)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function tmpFile(name: string, content: string): string {
  const p = path.join(tmpDir, name);
  fs.writeFileSync(p, content);
  return p;
}

beforeAll(async () => {
  s = await startServer();
  api = createTinybirdApi({ baseUrl: s.url, token: s.token });
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-clients-'));
});

afterAll(async () => {
  await s?.close();
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
});

describe('@tinybirdco/sdk (TinybirdApi)', () => {
  it('ingest and ingestBatch (wait by default) land rows in an NDJSON data source', async () => {
    await createDatasource('sdk_ingest', NDJSON_SCHEMA, 'ndjson');

    const one = await api.ingest('sdk_ingest', { id: 1, name: 'one' });
    expect(one).toEqual({ successful_rows: 1, quarantined_rows: 0 });
    expect(await count(s, 'sdk_ingest')).toBe(1);

    const batch = await api.ingestBatch('sdk_ingest', [
      { id: 2, name: 'two' },
      { id: 3, name: 'three' },
      { id: 4, name: 'four' },
    ]);
    expect(batch).toEqual({ successful_rows: 3, quarantined_rows: 0 });
    expect(await count(s, 'sdk_ingest')).toBe(4);

    // BigInt is serialized by the SDK as a string, which an Int32 column accepts.
    const big = await api.ingest('sdk_ingest', { id: 5n, name: 'five' });
    expect(big).toEqual({ successful_rows: 1, quarantined_rows: 0 });
    expect(await count(s, 'sdk_ingest')).toBe(5);
  });

  it('ingest reports quarantined rows for values the schema refuses', async () => {
    await createDatasource('sdk_ingest_bad', NDJSON_SCHEMA, 'ndjson');
    const r = await api.ingestBatch('sdk_ingest_bad', [
      { id: 1, name: 'ok' },
      { id: 'not a number', name: 'bad' },
    ]);
    expect(r).toEqual({ successful_rows: 1, quarantined_rows: 1 });
    expect(await count(s, 'sdk_ingest_bad')).toBe(1);
    expect(await count(s, 'sdk_ingest_bad', true)).toBe(1);
  });

  it('ingest with wait: false is accepted (202) and the rows arrive', async () => {
    await createDatasource('sdk_ingest_nowait', NDJSON_SCHEMA, 'ndjson');
    const r = await api.ingestBatch(
      'sdk_ingest_nowait',
      [
        { id: 1, name: 'a' },
        { id: 2, name: 'b' },
      ],
      { wait: false },
    );
    expect(r.successful_rows).toBe(2);
    const deadline = Date.now() + 15_000;
    while ((await count(s, 'sdk_ingest_nowait')) < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    expect(await count(s, 'sdk_ingest_nowait')).toBe(2);
  });

  it('appendDatasource({file}) with a CSV file into a CSV data source', async () => {
    await createDatasource('sdk_append_csv', CSV_SCHEMA, 'csv');
    const file = tmpFile('rows.csv', '1,alpha\n2,beta\n3,gamma\n');
    const r = await api.appendDatasource('sdk_append_csv', { file });
    expect(r.successful_rows).toBe(3);
    expect(r.quarantined_rows).toBe(0);
    expect(typeof r.import_id).toBe('string');
    expect(await count(s, 'sdk_append_csv')).toBe(3);

    // A bad value goes to quarantine and the response says so.
    const bad = tmpFile('bad.csv', '4,delta\nnope,epsilon\n');
    const r2 = await api.appendDatasource('sdk_append_csv', { file: bad });
    expect(r2.successful_rows).toBe(1);
    expect(r2.quarantined_rows).toBe(1);
    expect(await count(s, 'sdk_append_csv')).toBe(4);
    expect(await count(s, 'sdk_append_csv', true)).toBe(1);
  });

  it('appendDatasource({file}) with a CSV file and a custom dialect', async () => {
    await createDatasource('sdk_append_csv_dialect', CSV_SCHEMA, 'csv');
    const file = tmpFile('semi.csv', '1;alpha\n2;beta\n');
    const r = await api.appendDatasource('sdk_append_csv_dialect', { file, csvDialect: { delimiter: ';' } });
    expect(r.successful_rows).toBe(2);
    expect(await count(s, 'sdk_append_csv_dialect')).toBe(2);
  });

  it('appendDatasource({file}) with an NDJSON file (multipart part named "csv") into an NDJSON data source', async () => {
    await createDatasource('sdk_append_ndjson', NDJSON_SCHEMA, 'ndjson');
    const file = tmpFile('rows.ndjson', '{"id":1,"name":"a"}\n{"id":2,"name":"b"}\n');
    const r = await api.appendDatasource('sdk_append_ndjson', { file });
    expect(r.successful_rows).toBe(2);
    expect(r.quarantined_rows).toBe(0);
    expect(await count(s, 'sdk_append_ndjson')).toBe(2);

    // .jsonl is detected as ndjson too.
    const jsonl = tmpFile('rows.jsonl', '{"id":3,"name":"c"}\n');
    const r2 = await api.appendDatasource('sdk_append_ndjson', { file: jsonl });
    expect(r2.successful_rows).toBe(1);
    expect(await count(s, 'sdk_append_ndjson')).toBe(3);
  });

  it('appendDatasource({file}) with mode replace swaps the rows', async () => {
    await createDatasource('sdk_replace_csv', CSV_SCHEMA, 'csv');
    await api.appendDatasource('sdk_replace_csv', { file: tmpFile('r1.csv', '1,a\n2,b\n3,c\n') });
    expect(await count(s, 'sdk_replace_csv')).toBe(3);
    const r = await api.appendDatasource('sdk_replace_csv', { file: tmpFile('r2.csv', '9,z\n') }, { mode: 'replace' });
    expect(r.successful_rows).toBe(1);
    expect(await count(s, 'sdk_replace_csv')).toBe(1);
  });

  describe('appendDatasource({url})', () => {
    const files: Record<string, string> = {
      '/data.csv': '1,one\n2,two\n3,three\n4,four\n',
      '/data.ndjson': '{"id":1,"name":"a"}\n{"id":2,"name":"b"}\n',
    };
    let fileServer: http.Server;
    let base: string;
    // The SDK returns the job envelope as is (typed as AppendResult, which does not describe it).
    const appendUrl = async (ds: string, url: string) => (await api.appendDatasource(ds, { url })) as unknown as Record<string, unknown>;

    beforeAll(async () => {
      fileServer = http.createServer((req, res) => {
        const body = files[req.url ?? ''];
        if (body === undefined) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
          return;
        }
        res.writeHead(200, { 'content-type': req.url!.endsWith('.csv') ? 'text/csv' : 'application/x-ndjson' }).end(body);
      });
      await new Promise<void>((r) => fileServer.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(fileServer.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((r) => fileServer.close(() => r()));
    });

    it('a CSV url starts an import job whose rows land', async () => {
      await createDatasource('sdk_append_url', CSV_SCHEMA, 'csv');
      const r = await appendUrl('sdk_append_url', `${base}/data.csv`);
      // Tinybird answers a url import with a job envelope, not with row counts.
      expect(typeof r.id).toBe('string');
      expect(r.job_id).toBe(r.id);
      expect(r.import_id).toBe(r.id);
      expect(r.job_url).toBe(`${s.url}/v0/jobs/${String(r.id)}`);
      expect(r.status).toBe('waiting');
      expect((r.job as Record<string, unknown>).kind).toBe('import');
      expect(r.successful_rows).toBeUndefined();

      const job = await waitForJob(String(r.id));
      expect(job.status, JSON.stringify(job)).toBe('done');
      expect(job.kind).toBe('import');
      expect((job.datasource as { name: string }).name).toBe('sdk_append_url');
      expect((job.statistics as { row_count: number }).row_count).toBe(4);
      expect(job.quarantine_rows).toBe(0);
      expect(await count(s, 'sdk_append_url')).toBe(4);
    });

    it('an NDJSON url (format from the extension) into an NDJSON data source', async () => {
      await createDatasource('sdk_append_url_ndjson', NDJSON_SCHEMA, 'ndjson');
      const r = await appendUrl('sdk_append_url_ndjson', `${base}/data.ndjson`);
      const job = await waitForJob(String(r.id));
      expect(job.status, JSON.stringify(job)).toBe('done');
      expect(await count(s, 'sdk_append_url_ndjson')).toBe(2);
    });

    it('a url answering 404 ends the job in error and adds no rows', async () => {
      await createDatasource('sdk_append_url_404', CSV_SCHEMA, 'csv');
      const r = await appendUrl('sdk_append_url_404', `${base}/missing.csv`);
      const job = await waitForJob(String(r.id));
      expect(job.status, JSON.stringify(job)).toBe('error');
      expect(String(job.error)).toContain('404');
      expect(await count(s, 'sdk_append_url_404')).toBe(0);
    });
  });

  it('truncateDatasource empties the data source', async () => {
    await createDatasource('sdk_truncate', NDJSON_SCHEMA, 'ndjson');
    await api.ingestBatch('sdk_truncate', [
      { id: 1, name: 'a' },
      { id: 2, name: 'b' },
    ]);
    expect(await count(s, 'sdk_truncate')).toBe(2);
    const r = await api.truncateDatasource('sdk_truncate');
    expect(r).toBeTypeOf('object');
    expect(await count(s, 'sdk_truncate')).toBe(0);
  });

  it('deleteDatasource with dryRun counts, without dryRun runs a delete job', async () => {
    await createDatasource('sdk_delete', NDJSON_SCHEMA, 'ndjson');
    await api.ingestBatch(
      'sdk_delete',
      [1, 2, 3, 4, 5].map((id) => ({ id, name: `n${id}` })),
    );
    expect(await count(s, 'sdk_delete')).toBe(5);

    const dry = await api.deleteDatasource('sdk_delete', { deleteCondition: 'id > 3', dryRun: true });
    expect(dry.rows_to_be_deleted).toBe(2);
    expect(await count(s, 'sdk_delete')).toBe(5);

    const r = await api.deleteDatasource('sdk_delete', { deleteCondition: 'id > 3' });
    expect(typeof r.id).toBe('string');
    expect(r.job_id).toBe(r.id);
    expect(r.delete_id).toBe(r.id);
    expect(r.job_url).toBe(`${s.url}/v0/jobs/${String(r.id)}`);
    expect(['waiting', 'working', 'done']).toContain(r.status);

    const job = await waitForJob(String(r.id));
    expect(job.status, JSON.stringify(job)).toBe('done');
    expect(job.kind).toBe('delete_data');
    expect(job.rows_affected).toBe(2);
    expect(await count(s, 'sdk_delete')).toBe(3);
  });

  describe('errors a client sees', () => {
    it('a wrong token makes every call throw TinybirdApiError with status 403', async () => {
      await createDatasource('sdk_wrong_token', NDJSON_SCHEMA, 'ndjson');
      const bad = createTinybirdApi({ baseUrl: s.url, token: 'not-a-valid-token' });
      const file = tmpFile('wt.ndjson', '{"id":1,"name":"a"}\n');
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['ingest', () => bad.ingest('sdk_wrong_token', { id: 1, name: 'a' })],
        ['appendDatasource', () => bad.appendDatasource('sdk_wrong_token', { file })],
        ['truncateDatasource', () => bad.truncateDatasource('sdk_wrong_token')],
        ['deleteDatasource', () => bad.deleteDatasource('sdk_wrong_token', { deleteCondition: '1 = 1' })],
      ];
      for (const [name, call] of calls) {
        const err = await call().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err, name).toBeInstanceOf(TinybirdApiError);
        expect((err as TinybirdApiError).statusCode, name).toBe(403);
        expect((err as TinybirdApiError).message, name).toMatch(/token/i);
      }
      expect(await count(s, 'sdk_wrong_token')).toBe(0);
    });

    it('ingest into a CSV data source is refused with 400', async () => {
      await createDatasource('sdk_ingest_into_csv', CSV_SCHEMA, 'csv');
      const err = await api.ingest('sdk_ingest_into_csv', { id: 1, name: 'a' }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TinybirdApiError);
      expect((err as TinybirdApiError).statusCode).toBe(400);
      expect((err as TinybirdApiError).message).toContain('Data Source must be of type JSON');
    });

    it('deleteDatasource on a missing data source is a 400 with a message', async () => {
      const err = await api.deleteDatasource('sdk_nope', { deleteCondition: '1 = 1' }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TinybirdApiError);
      expect((err as TinybirdApiError).statusCode).toBe(400);
      expect((err as TinybirdApiError).message).toBe('Data Source "sdk_nope" does not exist, can not delete a non existing Data Source');
    });

    it('deleteDatasource without a usable condition is refused client-side', async () => {
      await expect(api.deleteDatasource('sdk_nope', { deleteCondition: '  ' })).rejects.toThrow(/deleteCondition/);
    });

    it('deleteDatasource with a bad condition is a 400 and deletes nothing', async () => {
      await createDatasource('sdk_delete_bad', NDJSON_SCHEMA, 'ndjson');
      await api.ingest('sdk_delete_bad', { id: 1, name: 'a' });
      const err = await api.deleteDatasource('sdk_delete_bad', { deleteCondition: 'no_such_column = 1' }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TinybirdApiError);
      expect((err as TinybirdApiError).statusCode).toBe(400);
      expect((err as TinybirdApiError).message).toMatch(/^Failed to apply delete_condition='no_such_column = 1'/);
      expect(await count(s, 'sdk_delete_bad')).toBe(1);
    });

    it('truncateDatasource on a missing data source is a 404', async () => {
      const err = await api.truncateDatasource('sdk_nope').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TinybirdApiError);
      expect((err as TinybirdApiError).statusCode).toBe(404);
    });
  });
});

describe('@chronark/zod-bird', () => {
  it('buildIngestEndpoint with wait: true ingests and parses the response', async () => {
    await createDatasource('zb_ingest', NDJSON_SCHEMA, 'ndjson');
    const tb = new Tinybird({ token: s.token, baseUrl: s.url });
    const ingest = tb.buildIngestEndpoint({
      datasource: 'zb_ingest',
      event: z.object({ id: z.number().int(), name: z.string() }),
      wait: true,
    });
    const r = await ingest([
      { id: 1, name: 'a' },
      { id: 2, name: 'b' },
      { id: 3, name: 'c' },
    ]);
    expect(r).toEqual({ successful_rows: 3, quarantined_rows: 0 });
    expect(await count(s, 'zb_ingest')).toBe(3);

    // A single event (not an array) works too.
    const one = await ingest({ id: 4, name: 'd' });
    expect(one).toEqual({ successful_rows: 1, quarantined_rows: 0 });
    expect(await count(s, 'zb_ingest')).toBe(4);
  });

  it('buildIngestEndpoint reports a quarantined row for a value the schema refuses', async () => {
    await createDatasource('zb_ingest_bad', NDJSON_SCHEMA, 'ndjson');
    const tb = new Tinybird({ token: s.token, baseUrl: s.url });
    const ingest = tb.buildIngestEndpoint({
      datasource: 'zb_ingest_bad',
      event: z.object({ id: z.any(), name: z.any() }),
      wait: true,
    });
    const r = await ingest([
      { id: 1, name: 'a' },
      { id: 'definitely not an int', name: 'b' },
      { id: 3, name: 'c' },
    ]);
    expect(r).toEqual({ successful_rows: 2, quarantined_rows: 1 });
    expect(await count(s, 'zb_ingest_bad')).toBe(2);
    expect(await count(s, 'zb_ingest_bad', true)).toBe(1);
  });

  it('a wrong token throws Unauthorized (403)', async () => {
    await createDatasource('zb_wrong_token', NDJSON_SCHEMA, 'ndjson');
    const tb = new Tinybird({ token: 'not-a-valid-token', baseUrl: s.url });
    const ingest = tb.buildIngestEndpoint({
      datasource: 'zb_wrong_token',
      event: z.object({ id: z.number(), name: z.string() }),
      wait: true,
    });
    await expect(ingest({ id: 1, name: 'a' })).rejects.toThrow(/Unauthorized/);
    expect(await count(s, 'zb_wrong_token')).toBe(0);
  });
});

describe('endpoints through real clients', () => {
  const PIPE = {
    name: 'client_pipe',
    nodes: [
      {
        name: 'endpoint',
        type: 'endpoint',
        sql: `%
SELECT id, name FROM clients_src
WHERE 1
{% if defined(ids) %} AND id IN {{ Array(ids, 'Int32') }} {% end %}
{% if defined(name) %} AND name = {{ String(name) }} {% end %}
{% if defined(opts) %}
  {% set f = JSON(opts) %}
  {% if f.get('min_id') %} AND id >= {{ Int32(f.get('min_id')) }} {% end %}
{% end %}
ORDER BY id`,
      },
    ],
  };

  beforeAll(async () => {
    await createDatasource('clients_src', NDJSON_SCHEMA, 'ndjson');
    const rows = [1, 2, 3, 4, 5].map((id) => JSON.stringify({ id, name: `n${id}` })).join('\n');
    expect((await s.req('POST', '/v0/events?name=clients_src&wait=true', { body: rows })).status).toBe(200);
    const r = await s.req('POST', '/v0/pipes', { body: JSON.stringify(PIPE), headers: { 'content-type': 'application/json' } });
    expect(r.status, await r.clone().text()).toBe(200);
  });

  it('@tinybirdco/sdk query(): arrays as repeated keys, objects as JSON', async () => {
    let r = await api.query<{ id: number; name: string }>('client_pipe', { ids: [2, 4, 5] });
    expect(r.data).toEqual([
      { id: 2, name: 'n2' },
      { id: 4, name: 'n4' },
      { id: 5, name: 'n5' },
    ]);
    expect(r.meta).toEqual([
      { name: 'id', type: 'Int32' },
      { name: 'name', type: 'String' },
    ]);
    r = await api.query('client_pipe', { name: 'n3' });
    expect(r.data).toEqual([{ id: 3, name: 'n3' }]);
    // `filter` would be Python's builtin inside a template (never a parameter), so: `opts`.
    r = await api.query('client_pipe', { opts: { min_id: 4 } });
    expect(r.data).toEqual([
      { id: 4, name: 'n4' },
      { id: 5, name: 'n5' },
    ]);
    await expect(api.query('client_pipe', { ids: ['x'] })).rejects.toBeInstanceOf(TinybirdApiError);
    await expect(api.query('no_such_pipe', {})).rejects.toMatchObject({ statusCode: 404 });
  });

  it('@chronark/zod-bird buildPipe(): arrays comma-joined, response validated by zod', async () => {
    const tb = new Tinybird({ token: s.token, baseUrl: s.url });
    const pipe = tb.buildPipe({
      pipe: 'client_pipe',
      parameters: z.object({ ids: z.array(z.number()).optional(), name: z.string().optional() }),
      data: z.object({ id: z.number(), name: z.string() }),
    });
    let r = await pipe({ ids: [1, 3] });
    expect(r.data).toEqual([
      { id: 1, name: 'n1' },
      { id: 3, name: 'n3' },
    ]);
    r = await pipe({ name: 'n5' });
    expect(r.data).toEqual([{ id: 5, name: 'n5' }]);
    r = await pipe({});
    expect(r.data.map((x) => x.id)).toEqual([1, 2, 3, 4, 5]);
    expect(r.rows).toBe(5);
  });
});

describe('@tinybirdco/sdk: Tinybird Local workspace flow (issue 11 item 7)', () => {
  // The SDK's local helpers call the hard-coded http://localhost:7181; send those to this server.
  async function withLocalServer<T>(fn: () => Promise<T>): Promise<T> {
    const real = globalThis.fetch;
    globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url;
      return real(url.startsWith('http://localhost:7181') ? s.url + url.slice('http://localhost:7181'.length) : input, init);
    }) as typeof fetch;
    try {
      return await fn();
    } finally {
      globalThis.fetch = real;
    }
  }
  // Not in the package's exports map: loaded from its files.
  const local = () => import('../../node_modules/@tinybirdco/sdk/dist/api/local.js');
  const build = () => import('../../node_modules/@tinybirdco/sdk/dist/api/build.js');

  it('getOrCreateLocalWorkspace: the admin token lists every workspace with its token', async () => {
    const { getLocalTokens, getOrCreateLocalWorkspace, listLocalWorkspaces } = await local();
    const tokens = await withLocalServer(() => getLocalTokens());
    const first = await withLocalServer(() => getOrCreateLocalWorkspace(tokens, 'sdk_feature_branch'));
    expect(first.wasCreated).toBe(true);
    expect(first.workspace).toEqual({ id: expect.any(String), name: 'sdk_feature_branch', token: expect.stringMatching(/^p\./) });
    const again = await withLocalServer(() => getOrCreateLocalWorkspace(tokens, 'sdk_feature_branch'));
    expect(again).toEqual({ workspace: first.workspace, wasCreated: false });
    const listed = await withLocalServer(() => listLocalWorkspaces(tokens.admin_token));
    expect(listed.workspaces.map((w) => w.name)).toEqual(['default', 'sdk_feature_branch']);
    expect(listed.workspaces.every((w) => typeof w.token === 'string' && w.token.startsWith('p.'))).toBe(true);
    expect(listed.organizationId).toEqual(expect.any(String));
    // The listed token works in its own workspace, and only there.
    const r = await s.req('POST', '/v0/datasources?name=only_here&mode=create', {
      body: new URLSearchParams({ schema: 'a String' }),
      token: first.workspace.token,
    });
    expect(r.status).toBe(200);
    const q = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM only_here FORMAT JSON')}`, { token: first.workspace.token });
    expect((await q.json()).data).toEqual([{ c: 0 }]);
    expect((await s.req('GET', '/v0/datasources/only_here')).status).toBe(404);
    const own = await (await s.req('GET', '/v1/user/workspaces?with_organization=true', { token: first.workspace.token })).json();
    expect(own.workspaces.map((w: { name: string }) => w.name)).toEqual(['sdk_feature_branch']);
    expect(own.workspaces[0]).not.toHaveProperty('token');
  });

  it('a workspace admin token neither lists other workspaces nor reads or manages the user admin token', async () => {
    const { admin_token } = s.app.services.localTokens;
    const mine = await (await s.req('GET', '/v1/user/workspaces?with_organization=true')).json();
    expect(mine.workspaces.map((w: { name: string }) => w.name)).toEqual(['default']);
    expect(mine.workspaces[0]).not.toHaveProperty('token');
    const list = (await (await s.req('GET', '/v0/tokens')).json()).tokens as Array<{ name: string; token?: string }>;
    expect(list.find((t) => t.name === 'admin token')).not.toHaveProperty('token');
    expect(list.some((t) => t.token === admin_token)).toBe(false);
    expect((await s.req('POST', '/v0/tokens/admin%20token/refresh')).status).toBe(403);
    expect((await s.req('DELETE', '/v0/tokens/admin%20token')).status).toBe(403);
    // The user admin token itself still works as the default workspace's admin.
    expect((await s.req('GET', '/v0/datasources', { token: admin_token })).status).toBe(200);
  });

  it('getWorkspace (/v1/workspace) has the owner, the scope and main', async () => {
    const { getWorkspace } = await import('@tinybirdco/sdk/api/workspaces');
    const w = await getWorkspace({ baseUrl: s.url, token: s.token });
    expect(w).toMatchObject({
      id: expect.any(String),
      name: 'default',
      user_id: expect.any(String),
      user_email: expect.stringContaining('@'),
      scope: 'ADMIN',
      main: null,
    });
    const members = await (
      await s.req('GET', `/v0/organizations/${s.app.services.access.organization.id}/members`, { token: s.app.services.localTokens.user_token })
    ).json();
    expect(members.members[0].id).toBe(w.user_id);
  });

  it('Forward-only routes (build, deploy, deployments, environments) say they are not supported', async () => {
    const { buildToTinybird } = await build();
    const r = await buildToTinybird(
      { baseUrl: s.url, token: s.token },
      { datasources: [{ name: 'x', content: 'SCHEMA >\n    a String\n' }], pipes: [], connections: [] },
    );
    expect(r.success).toBe(false);
    expect(r.error).toMatch(/^POST \/v1\/build is not supported by this server/);
    for (const [method, p] of [
      ['POST', '/v1/deploy?check=true'],
      ['GET', '/v1/deployments'],
      ['GET', '/v1/deployments/12'],
      ['POST', '/v1/environments'],
      ['GET', '/v0/environments/feat?with_token=true'],
    ]) {
      const res = await s.req(method, p);
      expect(res.status, p).toBe(501);
      expect((await res.json()).error).toContain('is not supported by this server');
    }
  });
});
