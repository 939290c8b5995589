/**
 * Copy Pipes over real HTTP: setting a node as a copy, on-demand runs with template parameters
 * and `_mode`, replace, column checks, role restrictions, and cron schedules driven by a
 * controllable clock (no real waiting), including a restart between ticks.
 */
import type { Scope } from '../../src/catalog/catalog.js';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { holdJobs, startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
const JSON_HDR = { 'content-type': 'application/json' };
const rows = Array.from({ length: 100 }, (_, i) => ({ country: ['ES', 'FR', 'US'][i % 3], n: i * 10 }));
const expectCounts = (min: number) =>
  ['ES', 'FR', 'US'].map((c) => ({ country: c, c: rows.filter((r) => r.country === c && r.n >= min).length })).filter((x) => x.c > 0);

async function waitJob(id: string, srv: { req: TestServer['req'] } = s): Promise<Record<string, unknown>> {
  for (let i = 0; i < 400; i++) {
    const j = await (await srv.req('GET', `/v0/jobs/${id}`)).json();
    if (['done', 'error', 'cancelled'].includes(j.status)) return j;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('job did not finish');
}

const targetRows = async () =>
  (
    await (
      await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT country, sum(c) AS c FROM copy_target GROUP BY country ORDER BY country FORMAT JSON')}`)
    ).json()
  ).data;

beforeAll(async () => {
  s = await startServer();
  const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
  expect((await s.req('POST', '/v0/datasources?name=events&mode=create', form({ schema: 'country String `json:$.country`, n Int32 `json:$.n`' }))).status).toBe(
    200,
  );
  expect((await s.req('POST', '/v0/events?name=events&wait=true', { body: rows.map((r) => JSON.stringify(r)).join('\n') })).status).toBe(200);
  expect((await s.req('POST', '/v0/datasources?name=copy_target&mode=create', form({ schema: 'country String, c UInt64' }))).status).toBe(200);
  expect((await s.req('POST', '/v0/datasources?name=narrow&mode=create', form({ schema: 'country String' }))).status).toBe(200);
  const pipe = { name: 'counts', nodes: [{ name: 'n', sql: '%\nSELECT country, count() AS c FROM events WHERE n >= {{ Int32(min_n, 0) }} GROUP BY country' }] };
  expect((await s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
}, 60_000);

let restarted: App | undefined;

afterAll(async () => {
  if (!restarted) return s?.close();
  await restarted.close();
  fs.rmSync(s.dataDir, { recursive: true, force: true });
});

describe('copy pipes', () => {
  it('refuses a target whose columns do not match, and an unknown target', async () => {
    let r = await s.req('POST', '/v0/pipes/counts/nodes/n/copy', { body: new URLSearchParams({ target_datasource: 'narrow' }) });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/^The columns in the SQL query don't match the columns in the target Data Source/);
    r = await s.req('POST', '/v0/pipes/counts/nodes/n/copy', { body: new URLSearchParams({ target_datasource: 'nope' }) });
    expect(r.status).toBe(404);
    r = await s.req('POST', '/v0/pipes/counts/nodes/n/copy', {
      body: new URLSearchParams({ target_datasource: 'copy_target', schedule_cron: 'every minute' }),
    });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/^Invalid schedule_cron/);
  });

  it('sets the copy, runs it on demand with parameters, then with _mode=replace', async () => {
    let r = await s.req('POST', '/v0/pipes/counts/nodes/n/copy', { body: new URLSearchParams({ target_datasource: 'copy_target' }) });
    const p = await r.json();
    expect(r.status, JSON.stringify(p)).toBe(200);
    expect(p).toMatchObject({ type: 'copy', copy_node: p.nodes[0].id });
    expect(p.copy_target_datasource).toMatch(/^t_/);
    expect(p.nodes[0].node_type).toBe('copy');
    expect(p.schedule).toBeUndefined();
    r = await s.req('POST', '/v0/pipes/counts/copy?min_n=500');
    const body = await r.json();
    expect(r.status, JSON.stringify(body)).toBe(200);
    expect(body.job).toMatchObject({ kind: 'copy', status: 'waiting', pipe_name: 'counts', mode: 'append' });
    expect(body.job.query_sql).toContain('events');
    expect((await waitJob(body.job.id)).status).toBe('done');
    expect(await targetRows()).toEqual(expectCounts(500));
    r = await s.req('POST', '/v0/pipes/counts/copy?min_n=900');
    expect((await waitJob((await r.json()).job.id)).status).toBe('done');
    const appended = expectCounts(500).map((x) => ({ ...x, c: x.c + (expectCounts(900).find((y) => y.country === x.country)?.c ?? 0) }));
    expect(await targetRows()).toEqual(appended);
    r = await s.req('POST', '/v0/pipes/counts/copy?min_n=0&_mode=replace');
    expect((await waitJob((await r.json()).job.id)).status).toBe('done');
    expect(await targetRows()).toEqual(expectCounts(0));
    const jobs = (await (await s.req('GET', '/v0/jobs?kind=copy&pipe_name=counts')).json()).jobs;
    expect(jobs).toHaveLength(3);
    r = await s.req('POST', '/v0/pipes/counts/copy?min_n=x');
    expect(r.status).toBe(400);
  });

  it('copy job limits (seed 001): rows per job and active jobs per workspace → 403 Job limits exceeded', async () => {
    const copies = s.app.services.copies;
    const saved = { ...copies.limits };
    const before = await targetRows();
    try {
      // The result of `counts` has 3 rows (one per country).
      copies.limits.maxRows = 2;
      let r = await s.req('POST', '/v0/pipes/counts/copy');
      expect(r.status).toBe(403);
      expect((await r.json()).error).toMatch(/^Job limits exceeded\. Tried to copy more than 2 rows/);
      expect(await targetRows()).toEqual(before);
      copies.limits.maxRows = 3;
      r = await s.req('POST', '/v0/pipes/counts/copy?min_n=10000');
      expect(r.status).toBe(200);
      await waitJob((await r.json()).job.id);
      // One active copy job at most: a job held working fills the workspace's quota.
      copies.limits.maxActiveJobs = 1;
      const {
        jobs: [held],
        started,
        release,
      } = await holdJobs(s, 'copy', 1, { pipe_name: 'held', is_cancellable_while_working: true });
      await started;
      r = await s.req('POST', '/v0/pipes/counts/copy?min_n=10000');
      expect(r.status).toBe(403);
      expect((await r.json()).error).toMatch(/^Job limits exceeded\. There are too many active \(working and waiting\) Copy jobs/);
      release();
      await waitJob(held.id);
      r = await s.req('POST', '/v0/pipes/counts/copy?min_n=10000');
      expect(r.status).toBe(200);
      await waitJob((await r.json()).job.id);
      expect(await targetRows()).toEqual(before);
    } finally {
      Object.assign(copies.limits, saved);
    }
  });

  it('the documented token runs a copy: PIPES:READ on the pipe + DATASOURCES:APPEND on the target; setting one needs APPEND too', async () => {
    const ws = s.app.services.access.defaultWorkspace;
    const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
    expect((await s.req('POST', '/v0/datasources?name=tok_target&mode=create', form({ schema: 'country String, c UInt64' }))).status).toBe(200);
    const pipe = { name: 'tok_copy', nodes: [{ name: 'n', sql: 'SELECT country, count() AS c FROM events GROUP BY country' }] };
    expect((await s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
    const rec = await s.app.services.pipes.get(ws, 'tok_copy');
    const target = await s.app.services.datasources.get(ws, 'tok_target');
    const token = async (name: string, scopes: Scope[]) => (await s.app.services.access.createToken(ws.id, name, scopes)).token;
    // Setting the copy: PIPES:CREATE alone may not make the pipe write into the target.
    const creator = await token('tok_creator', [{ type: 'PIPES:CREATE' }]);
    let r = await s.req('POST', '/v0/pipes/tok_copy/nodes/n/copy', { ...form({ target_datasource: 'tok_target' }), token: creator });
    expect(r.status).toBe(403);
    expect((await r.json()).error).toContain('A copy writes into the Data Source "tok_target"');
    const setter = await token('tok_setter', [{ type: 'PIPES:CREATE' }, { type: 'DATASOURCES:APPEND', resource: target.id }]);
    r = await s.req('POST', '/v0/pipes/tok_copy/nodes/n/copy', { ...form({ target_datasource: 'tok_target' }), token: setter });
    expect(r.status, await r.clone().text()).toBe(200);
    // Running it: the seed's token reads the pipe (not its data source) and appends to the target.
    const runner = await token('tok_runner', [
      { type: 'PIPES:READ', resource: rec.id },
      { type: 'DATASOURCES:APPEND', resource: target.id },
    ]);
    r = await s.req('POST', '/v0/pipes/tok_copy/copy', { token: runner });
    const body = await r.json();
    expect(r.status, JSON.stringify(body)).toBe(200);
    expect((await waitJob(body.job.id)).status).toBe('done');
    expect((await (await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT sum(c) AS c FROM tok_target FORMAT JSON')}`)).json()).data).toEqual([
      { c: rows.length },
    ]);
    // The runner still does not read the data source itself; without APPEND it runs nothing.
    expect((await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() FROM events')}`, { token: runner })).status).toBe(403);
    const readOnly = await token('tok_read_only', [{ type: 'PIPES:READ', resource: rec.id }]);
    expect((await s.req('POST', '/v0/pipes/tok_copy/copy', { token: readOnly })).status).toBe(403);
  });

  it('explain without a node is about the copy or materialized node, not the last node', async () => {
    const pipe = {
      name: 'explain_copy',
      nodes: [
        { name: 'c', sql: 'SELECT country, count() AS c FROM events GROUP BY country' },
        { name: 'last', sql: 'SELECT 42 AS answer FROM c' },
      ],
    };
    expect((await s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
    let r = await s.req('GET', '/v0/pipes/explain_copy/explain');
    expect((await r.json()).debug_query).toContain('42');
    expect((await s.req('POST', '/v0/pipes/explain_copy/nodes/c/copy', { body: new URLSearchParams({ target_datasource: 'tok_target' }) })).status).toBe(200);
    r = await s.req('GET', '/v0/pipes/explain_copy/explain');
    let body = await r.json();
    expect(r.status).toBe(200);
    expect(body.debug_query).toContain('count()');
    expect(body.debug_query).not.toContain('42');
    const mv = {
      name: 'explain_mv',
      nodes: [
        { name: 'm', sql: 'SELECT country, count() AS c FROM events GROUP BY country', type: 'materialized', datasource: 'explain_mv_ds' },
        { name: 'last', sql: 'SELECT 42 AS answer' },
      ],
    };
    expect((await s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(mv) })).status).toBe(200);
    body = await (await s.req('GET', '/v0/pipes/explain_mv/explain')).json();
    expect(body.debug_query).toContain('count()');
    expect(body.debug_query).not.toContain('42');
  });

  it('copy/cancel answers the cancelled jobs with their job fields (kind, pipe, datasource, job_url, timestamps)', async () => {
    const ws = s.app.services.access.defaultWorkspace;
    // Both job slots held, so the copy job stays waiting until it is cancelled.
    const { release } = await holdJobs(s, 'delete_data', 2);
    let cancelled: Array<Record<string, unknown>>;
    let jobId: string;
    try {
      const run = await (await s.req('POST', '/v0/pipes/explain_copy/copy')).json();
      jobId = run.job.id;
      const r = await s.req('POST', '/v0/pipes/explain_copy/copy/cancel');
      expect(r.status).toBe(200);
      cancelled = (await r.json()).cancelled_jobs;
    } finally {
      release();
      await s.app.services.jobs.drain();
    }
    const pipe = await s.app.services.pipes.get(ws, 'explain_copy');
    const target = await s.app.services.datasources.get(ws, 'tok_target');
    expect(cancelled).toEqual([
      expect.objectContaining({
        id: jobId,
        job_id: jobId,
        kind: 'copy',
        status: 'cancelled',
        is_cancellable: false,
        job_url: `${s.url}/v0/jobs/${jobId}`,
        pipe_id: pipe.id,
        pipe_name: 'explain_copy',
        datasource: { id: target.id, name: 'tok_target' },
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\d /),
        updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\d /),
      }),
    ]);
    expect(JSON.stringify(cancelled)).not.toContain('is_cancellable_while_working');
    expect((await (await s.req('GET', `/v0/jobs/${jobId}`)).json()).status).toBe('cancelled');
  });

  it('a copy pipe has one role', async () => {
    let r = await s.req('POST', '/v0/pipes/counts/nodes/n/endpoint');
    expect(r.status).toBe(403);
    r = await s.req('POST', '/v0/pipes/counts/nodes/n/materialization?datasource=x');
    expect(r.status).toBe(403);
    await s.req('POST', '/v0/pipes', {
      headers: JSON_HDR,
      body: JSON.stringify({ name: 'ep', nodes: [{ name: 'e', sql: 'SELECT country, count() AS c FROM events GROUP BY country', type: 'endpoint' }] }),
    });
    r = await s.req('POST', '/v0/pipes/ep/nodes/e/copy', { body: new URLSearchParams({ target_datasource: 'copy_target' }) });
    expect(r.status).toBe(403);
    r = await s.req('POST', '/v0/pipes/ep/copy');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe("The pipe 'ep' is not a Copy pipe");
  });

  it('schedules run from the clock, once per tick; pause, resume and cancel', async () => {
    const clock = s.app.services.clock;
    const t0 = new Date('2030-01-01T00:00:30Z');
    clock.now = () => t0;
    let r = await s.req('PUT', '/v0/pipes/counts/nodes/n/copy', { body: new URLSearchParams({ schedule_cron: '*/5 * * * *', mode: 'replace' }) });
    const p = await r.json();
    expect(p.schedule).toEqual({ timezone: 'Etc/UTC', cron: '*/5 * * * *', status: 'running' });
    const at = (m: number) => new Date(t0.getTime() + m * 60_000);
    clock.now = () => at(3);
    expect(await s.app.services.scheduler.tick()).toHaveLength(0);
    clock.now = () => at(5);
    let jobs = await s.app.services.scheduler.tick();
    expect(jobs).toHaveLength(1);
    expect((await waitJob(jobs[0].id)).status).toBe('done');
    expect(await s.app.services.scheduler.tick()).toHaveLength(0);
    // Several missed ticks owe one run, not one per tick.
    clock.now = () => at(27);
    expect(await s.app.services.scheduler.tick()).toHaveLength(1);
    r = await s.req('POST', '/v0/pipes/counts/copy/pause');
    expect((await r.json()).schedule.status).toBe('paused');
    clock.now = () => at(40);
    expect(await s.app.services.scheduler.tick()).toHaveLength(0);
    r = await s.req('POST', '/v0/pipes/counts/copy/resume');
    expect((await r.json()).schedule.status).toBe('running');
    expect(await s.app.services.scheduler.tick()).toHaveLength(0);
    clock.now = () => at(45);
    jobs = await s.app.services.scheduler.tick();
    expect(jobs).toHaveLength(1);
    await s.app.services.jobs.drain();
    r = await s.req('POST', '/v0/pipes/counts/copy/cancel');
    expect((await r.json()).schedule.status).toBe('paused');
    await s.req('POST', '/v0/pipes/counts/copy/resume');
  }, 60_000);

  it('a scheduled copy starts within moments of its minute: the scheduler wakes at the minute of its clock', async () => {
    // The clock runs at real speed from 1.5 s before a minute, so only the wake-up time is tested:
    // the old scheduler woke every 20 s, whenever that fell (13–16 s late on average).
    const clock = s.app.services.clock;
    const r0 = Date.now();
    const base = Date.parse('2034-06-01T12:00:58.500Z');
    const minute = Date.parse('2034-06-01T12:01:00Z');
    clock.now = () => new Date(base + (Date.now() - r0));
    try {
      const pipe = { name: 'minutely', nodes: [{ name: 'm', sql: 'SELECT country, count() AS c FROM events WHERE n < 0 GROUP BY country' }] };
      expect((await s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(pipe) })).status).toBe(200);
      const r = await s.req('POST', '/v0/pipes/minutely/nodes/m/copy', {
        body: new URLSearchParams({ target_datasource: 'copy_target', schedule_cron: '* * * * *' }),
      });
      expect(r.status, await r.clone().text()).toBe(200);
      s.app.services.scheduler.start(); // re-armed from the replaced clock
      const ws = s.app.services.access.defaultWorkspace;
      let job: Awaited<ReturnType<typeof s.app.services.jobs.list>>[number] | undefined;
      for (let i = 0; i < 200 && !job; i++) {
        job = (await s.app.services.jobs.list(ws, { kind: 'copy', pipeName: 'minutely', limit: 10 }))[0];
        if (!job) await new Promise((res) => setTimeout(res, 50));
      }
      expect(job, 'no scheduled copy job within 10 s').toBeDefined();
      // When it was enqueued, on the test's clock: within a few seconds of 12:01:00 (generous under load).
      const lag = base + (Date.parse(job!.createdAt) - r0) - minute;
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(4000);
      expect((await waitJob(job!.id)).status).toBe('done');
    } finally {
      clock.now = () => new Date();
      s.app.services.scheduler.start();
      await s.req('DELETE', '/v0/pipes/minutely');
      await s.app.services.jobs.drain();
    }
  });

  it('a restart between ticks neither skips nor doubles a run', async () => {
    const base = new Date('2030-02-01T00:00:00Z');
    s.app.services.clock.now = () => base;
    const put = await s.req('PUT', '/v0/pipes/counts/nodes/n/copy', { body: new URLSearchParams({ schedule_cron: '0 * * * *' }) });
    expect(put.status, await put.clone().text()).toBe(200);
    s.app.services.clock.now = () => new Date(base.getTime() + 60 * 60_000);
    expect(await s.app.services.scheduler.tick()).toHaveLength(1);
    await s.app.services.jobs.drain();
    // Restart on the same data directory.
    await s.app.close();
    // The same configuration (catalog and engine of the suite's mode) on the same data directory.
    const app: App = await createApp({ ...s.app.services.config, engineSessions: 2 });
    s.app = app;
    restarted = app;
    try {
      app.services.clock.now = () => new Date(base.getTime() + 90 * 60_000);
      expect(await app.services.scheduler.tick()).toHaveLength(0);
      app.services.clock.now = () => new Date(base.getTime() + 150 * 60_000);
      const jobs = await app.services.scheduler.tick();
      expect(jobs).toHaveLength(1);
      await app.services.jobs.drain();
      expect(await app.services.scheduler.tick()).toHaveLength(0);
      const all = (await app.services.jobs.list(app.services.access.defaultWorkspace, { kind: 'copy', limit: 100 })).filter(
        (j) => j.data.pipe_name === 'counts',
      );
      expect(all.every((j) => j.status === 'done')).toBe(true);
    } finally {
      await app.services.scheduler.stop();
    }
  }, 60_000);

  it('DELETE copy unsets the role', async () => {
    // The server was recreated above: talk to the app's services directly through HTTP inject.
    const r = await s.app.http.inject({ method: 'DELETE', url: '/v0/pipes/counts/nodes/n/copy', headers: { authorization: `Bearer ${s.token}` } });
    expect(r.statusCode).toBe(204);
    const p = (await s.app.http.inject({ method: 'GET', url: '/v0/pipes/counts', headers: { authorization: `Bearer ${s.token}` } })).json();
    expect(p.type).toBe('default');
    expect(p.schedule).toBeUndefined();
  });
});
