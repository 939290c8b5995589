/**
 * Several Pipit copies behind one load balancer, over real HTTP on loopback: two copies in this
 * process and a third as a child process (so it can be killed with SIGKILL), each on its own data
 * directory, all on ONE throw-away PostgreSQL catalog and ONE engine (the ClickHouse-compatible test
 * server, test/engine-server). What one copy changes the others see; rows posted to any copy are
 * stored once; a populate on one copy is exact while another ingests (the write gate spans copies:
 * PostgreSQL advisory locks);
 * a schedule ticks once across copies; a copy killed in the middle of a job leaves no stuck job, no
 * open intent and no partial or duplicate rows: the live copies settle both once the leases lapse.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error s3rver ships no types
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consistency } from '../helpers/consistency.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { type EngineTestServerProcess, startEngineTestServerProcess, startServer, TEST_SECRET_KEY, type TestServer } from '../helpers/server.js';

const JSON_HDR = { 'content-type': 'application/json' };
/** Seconds a job's or an intent's claim holds without renewal (short, so a dead copy's work is settled quickly). */
const LEASE_S = 2;

let pg: TestPostgres;
let engineServer: EngineTestServerProcess;
let catalogUrl: string;
let a: TestServer;
let b: TestServer;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-multi-'));

const copy = () => startServer({ config: { catalogUrl, secretKey: TEST_SECRET_KEY, engineUrl: engineServer.url, jobLeaseSeconds: LEASE_S } });

beforeAll(async () => {
  [pg, engineServer] = await Promise.all([startPostgres(), startEngineTestServerProcess(path.join(tmp, 'engine'))]);
  catalogUrl = await pg.createDatabase('multi');
  // Two copies starting at once on an empty catalog: one creates the default workspace, both serve it.
  [a, b] = await Promise.all([copy(), copy()]);
  expect(b.token).toBe(a.token);
  const schema = 'id Int64 `json:$.id`, country LowCardinality(String) `json:$.country`, n Int64 `json:$.n`';
  expect((await a.req('POST', '/v0/datasources?name=events&mode=create', { body: new URLSearchParams({ schema }) })).status).toBe(200);
}, 90_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await engineServer?.stop();
  await pg?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

let nextId = 0;
const batch = (n: number) =>
  Array.from({ length: n }, () => {
    const id = nextId++;
    return JSON.stringify({ id, country: ['ES', 'FR', 'US'][id % 3], n: id % 100 });
  }).join('\n');

async function sql<T = Record<string, unknown>>(s: TestServer, q: string): Promise<T[]> {
  const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`);
  const body = await r.json();
  expect(r.status, JSON.stringify(body)).toBe(200);
  return body.data;
}

async function waitJob(s: { req: TestServer['req'] }, id: string, ms = 60_000): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  for (;;) {
    const j = await (await s.req('GET', `/v0/jobs/${id}`)).json();
    if (['done', 'error', 'cancelled'].includes(j.status)) return j;
    if (Date.now() > end) throw new Error(`job ${id} still ${j.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Whether the engine merges a data source's table now: `OPTIMIZE ... FINAL` is refused while a
 * populate holds its merges stopped.
 */
async function mergesRun(ds: string): Promise<boolean> {
  const ws = a.app.services.access.defaultWorkspace;
  const table = `${ws.database}.${(await a.app.services.datasources.get(ws, ds)).id}`;
  try {
    await a.app.services.engine.exec(`OPTIMIZE TABLE ${table} FINAL SETTINGS optimize_throw_if_noop = 1`);
    return true;
  } catch (err) {
    if (/cancel|abort/i.test((err as Error).message)) return false;
    throw err;
  }
}

/** How many ms until `f` holds (polling every 20 ms), or null after `ms`. */
async function within(ms: number, f: () => Promise<boolean>): Promise<number | null> {
  const t0 = Date.now();
  for (;;) {
    if (await f()) return Date.now() - t0;
    if (Date.now() - t0 > ms) return null;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('N copies on one catalog and one engine', () => {
  it('a token revoked on A is refused by B within 1 s; a refreshed one too', async () => {
    let r = await a.req('POST', '/v0/tokens?name=reader&scope=DATASOURCES:READ:events');
    expect(r.status).toBe(200);
    const reader = (await r.json()).token as string;
    const readOn = async (s: TestServer, token: string) => (await s.req('GET', '/v0/datasources/events', { token })).status;
    expect(await readOn(b, reader)).toBe(200);
    r = await a.req('POST', '/v0/tokens/reader/refresh');
    expect(r.status).toBe(200);
    const refreshed = (await r.json()).token as string;
    expect(await within(1000, async () => (await readOn(b, reader)) === 403)).not.toBeNull();
    expect(await readOn(b, refreshed)).toBe(200);
    expect((await a.req('DELETE', '/v0/tokens/reader')).status).toBe(200);
    expect(await within(1000, async () => (await readOn(b, refreshed)) === 403)).not.toBeNull();
  });

  it('a pipe created on A is served by B', async () => {
    expect((await a.req('POST', '/v0/events?name=events&wait=true', { body: batch(30) })).status).toBe(200);
    const pipe = {
      name: 'per_country',
      nodes: [{ name: 'e', sql: 'SELECT country, count() AS c FROM events GROUP BY country ORDER BY country', type: 'endpoint' }],
    };
    expect((await a.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
    const r = await b.req('GET', '/v0/pipes/per_country.json');
    const body = await r.json();
    expect(r.status, JSON.stringify(body)).toBe(200);
    expect(body.data).toEqual([
      { country: 'ES', c: 10 },
      { country: 'FR', c: 10 },
      { country: 'US', c: 10 },
    ]);
  });

  it('events posted alternately to A and B (wait=true) are all present exactly once', async () => {
    const first = nextId;
    const sends = Array.from({ length: 20 }, (_, i) => ({ s: i % 2 ? b : a, body: batch(100) }));
    const statuses = await Promise.all(sends.map(({ s, body }) => s.req('POST', '/v0/events?name=events&wait=true', { body }).then((r) => r.status)));
    expect(statuses.every((x) => x === 200)).toBe(true);
    const [r] = await sql<{ c: number; u: number }>(b, `SELECT count() AS c, uniqExact(id) AS u FROM events WHERE id >= ${first}`);
    expect(r).toEqual({ c: 2000, u: 2000 });
  });

  it('a populate on A while B ingests is exact', async () => {
    // A history large enough that the populate is still reading while B's inserts land.
    const t = `${a.app.services.access.defaultWorkspace.database}.${(await a.app.services.datasources.get(a.app.services.access.defaultWorkspace, 'events')).id}`;
    await a.app.services.engine.exec(
      `INSERT INTO ${t} (id, country, n) SELECT number + 1000000000, ['ES','FR','US'][number % 3 + 1], number % 100 FROM numbers(300000)`,
    );
    const pipe = { name: 'agg', nodes: [{ name: 'm', sql: 'SELECT country, countState() AS c, sumState(n) AS s FROM events GROUP BY country' }] };
    expect((await a.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
    let stop = false;
    let sent = 0;
    const writer = (async () => {
      while (!stop) {
        const r = await b.req('POST', '/v0/events?name=events&wait=true', { body: batch(50) });
        expect(r.status).toBe(200);
        sent++;
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    const r = await a.req('POST', '/v0/pipes/agg/nodes/m/materialization?datasource=agg_ds&populate=true');
    const body = await r.json();
    expect(r.status, JSON.stringify(body)).toBe(200);
    const done = await waitJob(a, body.job.id);
    await new Promise((res) => setTimeout(res, 200));
    stop = true;
    await writer;
    expect(done.status, JSON.stringify(done)).toBe('done');
    expect(sent).toBeGreaterThan(2);
    const direct = await sql(a, 'SELECT country, count() AS c, sum(n) AS s FROM events GROUP BY country ORDER BY country');
    expect(await sql(b, 'SELECT country, countMerge(c) AS c, sumMerge(s) AS s FROM agg_ds GROUP BY country ORDER BY country')).toEqual(direct);
  }, 120_000);

  it("the write gate spans copies: while A holds it exclusively (a populate's snapshot), B's inserts wait", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const section = a.app.services.engine.exclusiveWrites(async () => {
      entered();
      await held;
    });
    await inside;
    let answered = false;
    const post = b.req('POST', '/v0/events?name=events&wait=true', { body: batch(5) }).then((r) => {
      answered = true;
      return r.status;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(answered).toBe(false);
    release();
    await section;
    expect(await post).toBe(200);
  });

  it('a scheduled copy runs once per tick across copies (a controllable clock on each)', async () => {
    const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
    expect((await a.req('POST', '/v0/datasources?name=snap&mode=create', form({ schema: 'country String, c UInt64' }))).status).toBe(200);
    const pipe = { name: 'snapper', nodes: [{ name: 'n', sql: 'SELECT country, count() AS c FROM events WHERE id < 30 GROUP BY country' }] };
    expect((await a.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
    const t0 = new Date('2030-01-01T00:00:30Z');
    const at = (m: number) => new Date(t0.getTime() + m * 60_000);
    const setClock = (d: Date) => {
      a.app.services.clock.now = () => d;
      b.app.services.clock.now = () => d;
    };
    setClock(t0);
    const r = await a.req('POST', '/v0/pipes/snapper/nodes/n/copy', form({ target_datasource: 'snap', schedule_cron: '*/5 * * * *' }));
    expect(r.status, await r.clone().text()).toBe(200);
    let runs = 0;
    for (const m of [5, 10, 11, 15]) {
      setClock(at(m));
      // Both copies wake at the same minute; exactly one runs each tick.
      const [ja, jb] = await Promise.all([a.app.services.scheduler.tick(), b.app.services.scheduler.tick()]);
      const jobs = [...ja, ...jb];
      expect(jobs.length, `minute ${m}`).toBe(m === 11 ? 0 : 1);
      for (const j of jobs) expect((await waitJob(a, j.id)).status).toBe('done');
      runs += jobs.length;
    }
    expect(runs).toBe(3);
    expect(await sql(b, 'SELECT country, sum(c) AS c, count() AS n FROM snap GROUP BY country ORDER BY country')).toEqual([
      { country: 'ES', c: 30, n: 3 },
      { country: 'FR', c: 30, n: 3 },
      { country: 'US', c: 30, n: 3 },
    ]);
    expect((await a.req('POST', '/v0/pipes/snapper/copy/pause')).status).toBe(200);
  }, 60_000);

  it('kill -9 of a copy in the middle of a job: the live copies settle the job and its intent; no stuck job, no partial or duplicate rows', async () => {
    const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
    expect((await a.req('POST', '/v0/datasources?name=copied&mode=create', form({ schema: 'id Int64, country String' }))).status).toBe(200);
    const pipe = { name: 'copier', nodes: [{ name: 'n', sql: 'SELECT id, toString(country) AS country FROM events WHERE id < 1000' }] };
    expect((await a.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
    expect((await a.req('POST', '/v0/pipes/copier/nodes/n/copy', form({ target_datasource: 'copied' }))).status).toBe(200);

    // Copy C stops its copy once the rows are staged (before any is published), then dies.
    const c = await startChild('copy:staged');
    try {
      const r = await c.req('POST', '/v0/pipes/copier/copy');
      const body = await r.json();
      expect(r.status, JSON.stringify(body)).toBe(200);
      const jobId = body.job.id as string;
      await c.paused;
      c.proc.kill('SIGKILL');
      await c.exited;
      // The job is not left `working` and the intent not open: a live copy settles both once the
      // leases lapse. The rows were staged and the intent past its point of no return, so the copy
      // is finished (rolled forward) and the job says so; it never reads "run it again" meanwhile.
      const settled = await waitJob(a, jobId, 10 * LEASE_S * 1000);
      expect(settled.status, JSON.stringify(settled)).toBe('done');
      expect(await a.app.services.catalog.listIntents()).toEqual([]);
      expect(await sql(a, 'SELECT count() AS c, uniqExact(id) AS u FROM copied')).toEqual([{ c: 1000, u: 1000 }]);
      // Nothing of the dead copy's staging is left in the engine; engine and catalog agree.
      expect(await consistency(a.app.services)).toEqual({ intents: 0, orphans: [], missing: [], mismatched: [], views: [] });
      // Run again on a live copy: every row once more, exactly.
      const again = await (await b.req('POST', '/v0/pipes/copier/copy')).json();
      expect((await waitJob(b, again.job.id)).status).toBe('done');
      expect(await sql(a, 'SELECT count() AS c, uniqExact(id) AS u FROM copied')).toEqual([{ c: 2000, u: 1000 }]);
    } finally {
      if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    }
  }, 90_000);

  it('a populate, a sink and a URL import accepted by a copy that runs no jobs are run by another from their payloads; the merges run again', async () => {
    // Rows of their own when run alone (ids below 1000 exist either way).
    expect((await a.req('POST', '/v0/events?name=events&wait=true', { body: batch(1000) })).status).toBe(200);
    const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
    // A file to import and an S3-compatible bucket to sink into, on loopback.
    const csv = `n,label\n${Array.from({ length: 50 }, (_, i) => `${i},"c${i % 5}"`).join('\n')}`;
    const files = http.createServer((req, res) => (req.url === '/rows.csv' ? res.writeHead(200).end(csv) : res.writeHead(404).end()));
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    const s3dir = fs.mkdtempSync(path.join(tmp, 's3-'));
    const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: s3dir });
    const endpoint = `http://127.0.0.1:${((await s3.run()) as { port: number }).port}`;
    const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await client.send(new CreateBucketCommand({ Bucket: 'handed' }));
    // D accepts requests but runs no job (its job runner is closed, as in a copy being drained).
    const d = await copy();
    try {
      await d.app.services.jobs.close();
      const c = await d.req(
        'POST',
        '/v0/connectors',
        form({
          service: 's3',
          name: 'handed_s3',
          s3_endpoint: endpoint,
          s3_region: 'us-east-1',
          s3_access_key_id: 'S3RVER',
          s3_secret_access_key: 'S3RVER',
          bucket: 'handed',
        }),
      );
      expect(c.status, await c.clone().text()).toBe(200);
      const pipes = [
        { name: 'handed_sink', nodes: [{ name: 'n', sql: 'SELECT id, toString(country) AS country FROM events WHERE id < 100 ORDER BY id' }] },
        { name: 'handed_mv', nodes: [{ name: 'm', sql: 'SELECT country, countState() AS c FROM events GROUP BY country' }] },
      ];
      for (const p of pipes) expect((await d.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(p) })).status).toBe(200);
      const sink = await d.req(
        'POST',
        '/v0/pipes/handed_sink/nodes/n/sink',
        form({ connection: 'handed_s3', path: 's3://handed/out', file_template: 'rows', format: 'csv' }),
      );
      expect(sink.status, await sink.clone().text()).toBe(200);

      const ids: Record<string, string> = {};
      let r = await d.req('POST', '/v0/pipes/handed_sink/sink');
      ids.sink = (await r.json()).job.id;
      r = await d.req(
        'POST',
        `/v0/datasources?name=imported&mode=create&url=${encodeURIComponent(`http://127.0.0.1:${(files.address() as AddressInfo).port}/rows.csv`)}`,
      );
      const imp = await r.json();
      expect(r.status, JSON.stringify(imp)).toBe(200);
      ids.import = imp.id;
      r = await d.req('POST', '/v0/pipes/handed_mv/nodes/m/materialization?datasource=handed_mv_t&populate=true');
      const mv = await r.json();
      expect(r.status, JSON.stringify(mv)).toBe(200);
      ids.populate = mv.job.id;

      for (const [what, id] of Object.entries(ids)) {
        const done = await waitJob(b, id, 30_000);
        expect(done.status, `${what}: ${JSON.stringify(done)}`).toBe('done');
      }
      expect(await sql(b, 'SELECT count() AS c, uniqExact(n) AS u FROM imported')).toEqual([{ c: 50, u: 50 }]);
      const written = await client.send(new ListObjectsV2Command({ Bucket: 'handed', Prefix: 'out/' }));
      const keys = (written.Contents ?? []).map((o) => o.Key!).filter((k) => !k.endsWith('_pipit_write_check'));
      expect(keys).toEqual(['out/rows.csv']);
      const body = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: 'handed', Key: 'out/rows.csv' }))).Body!.transformToByteArray());
      expect(body.toString().trim().split('\n')).toHaveLength(101); // with its header
      const direct = await sql(a, 'SELECT country, count() AS c FROM events GROUP BY country ORDER BY country');
      expect(await sql(b, 'SELECT country, countMerge(c) AS c FROM handed_mv_t GROUP BY country ORDER BY country')).toEqual(direct);
      // The copy that ended the populate restarted the merges D stopped for its snapshot.
      expect(await mergesRun('events')).toBe(true);
    } finally {
      await d.close();
      client.destroy();
      await s3.close();
      files.close();
    }
  }, 120_000);

  it('kill -9 of a copy in the middle of a populate: the merges run again and the job is failed (nothing written), not stuck', async () => {
    // Rows of their own when run alone (ids below 1000 exist either way).
    expect((await a.req('POST', '/v0/events?name=events&wait=true', { body: batch(1000) })).status).toBe(200);
    const pipe = { name: 'killed_mv', nodes: [{ name: 'm', sql: 'SELECT country, countState() AS c FROM events GROUP BY country' }] };
    expect((await a.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
    // Copy C stops its populate once the rows are staged, before its point of no return, then dies.
    const c = await startChild('populate:loaded');
    try {
      const r = await c.req('POST', '/v0/pipes/killed_mv/nodes/m/materialization?datasource=killed_mv_t&populate=true');
      const body = await r.json();
      expect(r.status, JSON.stringify(body)).toBe(200);
      await c.paused;
      expect(await mergesRun('events')).toBe(false);
      c.proc.kill('SIGKILL');
      await c.exited;
      const settled = await waitJob(a, body.job.id as string, 10 * LEASE_S * 1000);
      expect(settled.status, JSON.stringify(settled)).toBe('error');
      expect(settled.error).toMatch(/before it wrote anything; run it again/);
      expect(await a.app.services.catalog.listIntents()).toEqual([]);
      expect(await mergesRun('events')).toBe(true);
      expect(await sql(a, 'SELECT count() AS c FROM killed_mv_t')).toEqual([{ c: 0 }]);
      // Run again on a live copy: exact.
      const again = await (await b.req('POST', '/v0/pipes/killed_mv/nodes/m/population')).json();
      expect((await waitJob(b, again.job.id)).status).toBe('done');
      const direct = await sql(a, 'SELECT country, count() AS c FROM events GROUP BY country ORDER BY country');
      expect(await sql(b, 'SELECT country, countMerge(c) AS c FROM killed_mv_t GROUP BY country ORDER BY country')).toEqual(direct);
      expect(await mergesRun('events')).toBe(true);
      expect(await consistency(a.app.services)).toEqual({ intents: 0, orphans: [], missing: [], mismatched: [], views: [] });
    } finally {
      if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    }
  }, 90_000);

  it('a copy that stalls (SIGSTOP) past its lease does not write once another copy settled its job, nor overwrite that outcome', async () => {
    // Rows of their own when run alone (ids below 1000 exist either way).
    expect((await a.req('POST', '/v0/events?name=events&wait=true', { body: batch(1000) })).status).toBe(200);
    const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
    expect((await a.req('POST', '/v0/datasources?name=stalled_t&mode=create', form({ schema: 'id Int64, country String' }))).status).toBe(200);
    const pipe = { name: 'staller', nodes: [{ name: 'n', sql: 'SELECT id, toString(country) AS country FROM events WHERE id < 1000' }] };
    expect((await a.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
    expect((await a.req('POST', '/v0/pipes/staller/nodes/n/copy', form({ target_datasource: 'stalled_t' }))).status).toBe(200);
    const rows = () => sql(a, 'SELECT count() AS c, uniqExact(id) AS u FROM stalled_t');

    // Stalled where the job began (no intent yet: the live copies fail the job, "run it again"), with
    // the rows staged before the point of no return (undone and failed), and past it (finished: done).
    // Each time C carries on afterwards: it must not write, nor record its outcome over the settled one.
    const cases = [
      { at: 'copy:begin', status: 'error', error: /interrupted.*run it again/ },
      { at: 'copy:loaded', status: 'error', error: /before it wrote anything; run it again/ },
      { at: 'copy:staged', status: 'done', error: null },
    ];
    let expected = 0;
    for (const k of cases) {
      const c = await startChild(`${k.at}+sigstop`);
      try {
        const body = await (await c.req('POST', '/v0/pipes/staller/copy')).json();
        await c.paused;
        const settled = await waitJob(a, body.job.id as string, 10 * LEASE_S * 1000);
        expect(settled.status, `${k.at}: ${JSON.stringify(settled)}`).toBe(k.status);
        if (k.error) {
          expect(settled.error).toMatch(k.error);
          const again = await (await b.req('POST', '/v0/pipes/staller/copy')).json();
          expect((await waitJob(b, again.job.id)).status).toBe('done');
        }
        expected += 1000;
        expect(await rows(), k.at).toEqual([{ c: expected, u: 1000 }]);
        c.proc.kill('SIGCONT');
        await new Promise((r) => setTimeout(r, 3 * LEASE_S * 1000));
        expect(await rows(), k.at).toEqual([{ c: expected, u: 1000 }]);
        expect(await waitJob(a, body.job.id as string), k.at).toEqual(settled);
        expect(await consistency(a.app.services), k.at).toEqual({ intents: 0, orphans: [], missing: [], mismatched: [], views: [] });
      } finally {
        c.proc.kill('SIGKILL');
        await c.exited;
      }
    }
  }, 180_000);

  it('a copy job accepted by A, whose job runner has stopped, is run by B from the payload in its row', async () => {
    const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
    expect((await a.req('POST', '/v0/datasources?name=handed&mode=create', form({ schema: 'id Int64, country String' }))).status).toBe(200);
    const sqlText = '%\nSELECT id, toString(country) AS country FROM events WHERE id < {{Int32(lim, 10)}}';
    const pipe = { name: 'hander', nodes: [{ name: 'n', sql: sqlText }] };
    expect((await a.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
    expect((await a.req('POST', '/v0/pipes/hander/nodes/n/copy', form({ target_datasource: 'handed', mode: 'replace' }))).status).toBe(200);
    // A no longer claims jobs (its runner is closed, as in a copy being drained): only B can run it.
    await a.app.services.jobs.close();
    const r = await a.req('POST', '/v0/pipes/hander/copy?lim=25');
    const body = await r.json();
    expect(r.status, JSON.stringify(body)).toBe(200);
    const done = await waitJob(b, body.job.id as string, 20_000);
    expect(done.status, JSON.stringify(done)).toBe('done');
    expect(await sql(b, 'SELECT count() AS c, max(id) AS m FROM handed')).toEqual([{ c: 25, m: 24 }]);
  }, 60_000);
});

interface Child {
  proc: ChildProcess;
  paused: Promise<void>;
  exited: Promise<void>;
  req(method: string, p: string, opts?: { body?: BodyInit }): Promise<Response>;
}

/** A third copy as a child process (test/helpers/fault-server.ts) on the same catalog and engine, stopped at `pauseAt`. */
async function startChild(pauseAt: string): Promise<Child> {
  const root = path.resolve(import.meta.dirname, '../..');
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/helpers/fault-server.ts')], {
    cwd: root,
    env: {
      ...process.env,
      PIPIT_DATA_DIR: fs.mkdtempSync(path.join(tmp, 'c-')),
      PIPIT_CATALOG_URL: catalogUrl,
      PIPIT_ENGINE_URL: engineServer.url,
      PIPIT_SECRET_KEY: TEST_SECRET_KEY.toString('utf8'),
      PIPIT_JOB_LEASE: String(LEASE_S),
      PIPIT_TEST_PAUSE_AT: pauseAt,
      PIPIT_LOG_LEVEL: 'silent',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let buf = '';
  let onPaused!: () => void;
  const paused = new Promise<void>((r) => (onPaused = r));
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('PIPIT_READY ')) resolve(Number(line.split(' ')[1]));
        if (line.startsWith(`PIPIT_PAUSED ${pauseAt.replace(/\+sigstop$/, '')}`)) onPaused();
      }
    });
    proc.once('exit', (code) => reject(new Error(`copy C exited with ${code}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    paused,
    exited,
    req: (method, p, opts = {}) => fetch(url + p, { method, body: opts.body, headers: { authorization: `Bearer ${a.token}` } }),
  };
}
