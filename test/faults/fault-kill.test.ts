/**
 * Fault suite: `kill -9` in the middle of multi-step changes, then a restart on the same data
 * directory. A child server (test/helpers/fault-server.ts) is stopped at a journal checkpoint
 * (PIPIT_TEST_PAUSE_AT) or, where the middle is long enough, by real timing, and killed with
 * SIGKILL. After every restart the child reports a consistency check of the engine against the
 * catalog (no open intents, no orphan objects, no missing objects, the same schemas, every
 * materialized view present), and the test checks the data over HTTP: copies and populates have
 * 0 or all of their rows, acknowledged rows are present once, and the interrupted operation can
 * be retried to a correct result.
 *
 * Run with `npm run test:faults` (not part of `npm test`: about a dozen server starts). The
 * scenarios run in order on one data directory (each start is also the check of the previous
 * kill), so the first failure usually fails the ones after it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConsistencyReport } from '../helpers/consistency.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-faults-'));
let child: Child | undefined;

afterAll(async () => {
  if (child) await child.kill();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

interface Child {
  proc: ChildProcess;
  url: string;
  token: string;
  check: ConsistencyReport;
  /** Resolves when the child printed PIPIT_PAUSED <name>. */
  paused(name: string): Promise<void>;
  kill(): Promise<void>;
  req(method: string, p: string, body?: BodyInit, headers?: Record<string, string>): Promise<Response>;
}

async function start(pauseAt?: string): Promise<Child> {
  if (child) await child.kill(); // one process on the data directory at a time (a failed test may leave one)
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/fault-server.ts'], {
    env: { ...process.env, PIPIT_DATA_DIR: dataDir, PIPIT_LOG_LEVEL: 'silent', PIPIT_TEST_PAUSE_AT: pauseAt ?? '', PIPIT_ALLOW_PRIVATE_URLS: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const seen: string[] = [];
  const waiters: Array<{ name: string; resolve: () => void }> = [];
  let buf = '';
  let check: ConsistencyReport | undefined;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const ready = new Promise<{ port: number; token: string }>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('PIPIT_CHECK ')) check = JSON.parse(line.slice(12));
        if (line.startsWith('PIPIT_READY ')) {
          const [, port, token] = line.split(' ');
          resolve({ port: Number(port), token });
        }
        if (line.startsWith('PIPIT_PAUSED ')) {
          const name = line.slice(13);
          seen.push(name);
          for (const w of waiters.filter((x) => x.name === name)) w.resolve();
        }
      }
    });
    proc.once('exit', (code) => reject(new Error(`fault server exited with ${code}`)));
  });
  const { port, token } = await ready;
  const url = `http://127.0.0.1:${port}`;
  const c: Child = {
    proc,
    url,
    token,
    check: check!,
    paused: (name) =>
      new Promise<void>((resolve, reject) => {
        if (seen.includes(name)) return resolve();
        const t = setTimeout(() => reject(new Error(`never paused at ${name}`)), 60_000);
        waiters.push({ name, resolve: () => (clearTimeout(t), resolve()) });
      }),
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
      if (child === c) child = undefined;
    },
    req: (method, p, body, headers = {}) => fetch(url + p, { method, body, headers: { authorization: `Bearer ${token}`, ...headers } }),
  };
  child = c;
  return c;
}

const form = (o: Record<string, string>) => new URLSearchParams(o);
const JSON_HDR = { 'content-type': 'application/json' };

async function sql(c: Child, q: string): Promise<Array<Record<string, string | number>>> {
  const r = await c.req('GET', `/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`);
  const body = await r.json();
  expect(r.status, JSON.stringify(body)).toBe(200);
  // 64-bit integers may come quoted: compare numbers.
  return (body.data as Array<Record<string, string | number>>).map((row) =>
    Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v])),
  );
}

async function counts(c: Child, table: string): Promise<{ n: number; u: number }> {
  const [row] = await sql(c, `SELECT count() AS n, uniqExact(id) AS u FROM ${table}`);
  return { n: Number(row.n), u: Number(row.u) };
}

async function waitJob(c: Child, id: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 1200; i++) {
    const j = await (await c.req('GET', `/v0/jobs/${id}`)).json();
    if (['done', 'error', 'cancelled'].includes(j.status)) return j;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('job did not finish');
}

/** The consistency check the child printed on start: everything agrees. */
function expectConsistent(c: Child): void {
  expect(c.check).toEqual({ intents: 0, orphans: [], missing: [], mismatched: [], views: [] });
}

/** Sends a request the kill will cut: its answer (if any) is ignored. */
function fireAndForget(p: Promise<Response>): void {
  p.then((r) => r.body?.cancel()).catch(() => undefined);
}

const csvRows = (from: number, n: number, v: string) => Array.from({ length: n }, (_, i) => `${from + i},${v}`).join('\n') + '\n';

/**
 * Each scenario finds the child started (by the scenario before it) with its pause point, triggers
 * the change, kills the child there, and checks after a restart; that restart already carries the
 * next scenario's pause point, so no start is spent on checks alone.
 */
describe('kill -9 between the steps of a change', () => {
  it('copy (append) killed between published chunks: finished on start, once, with its cascade', async () => {
    let c = await start('copy:published');
    expectConsistent(c);
    for (const name of ['cp_t', 'cp2_t', 'rep', 'alt', 'gone', 'dr', 'src']) {
      const r = await c.req('POST', `/v0/datasources?name=${name}&mode=create`, form({ schema: 'id UInt64, v String', engine_sorting_key: 'id' }));
      expect(r.status, await r.text()).toBe(200);
    }
    for (const [name, body] of [
      ['rep', csvRows(0, 1000, 'old')],
      ['alt', csvRows(0, 10, 'a')],
      ['dr', csvRows(0, 100_000, 'd')],
      ['src', csvRows(0, 200_000, 's')],
    ]) {
      expect((await c.req('POST', `/v0/datasources?name=${name}&mode=append`, body)).status).toBe(200);
    }
    // The copy target feeds a materialized view: a copy must cascade, exactly once.
    let r = await c.req(
      'POST',
      '/v0/pipes',
      JSON.stringify({ name: 'mirror', nodes: [{ name: 'm', sql: 'SELECT id, v FROM cp_t', type: 'materialized', datasource: 'cp_mirror' }] }),
      JSON_HDR,
    );
    expect(r.status, await r.text()).toBe(200);
    for (const [pipe, n, target] of [
      ['cp', 1_500_000, 'cp_t'],
      ['cp2', 4_000_002, 'cp2_t'],
    ] as const) {
      r = await c.req(
        'POST',
        '/v0/pipes',
        JSON.stringify({ name: pipe, nodes: [{ name: 'n', sql: `%\nSELECT number AS id, toString(number) AS v FROM numbers({{ UInt64(rows, ${n}) }})` }] }),
        JSON_HDR,
      );
      expect(r.status, await r.text()).toBe(200);
      r = await c.req('POST', `/v0/pipes/${pipe}/nodes/n/copy`, form({ target_datasource: target }));
      expect(r.status, await r.text()).toBe(200);
    }
    const job = (await (await c.req('POST', '/v0/pipes/cp/copy')).json()).job;
    await c.paused('copy:published'); // 1 of 2 chunks is in the target
    await c.kill();

    c = await start('replace:loaded');
    expectConsistent(c);
    expect(await counts(c, 'cp_t')).toEqual({ n: 1_500_000, u: 1_500_000 });
    expect(await counts(c, 'cp_mirror')).toEqual({ n: 1_500_000, u: 1_500_000 });
    const j = await (await c.req('GET', `/v0/jobs/${job.id}`)).json();
    expect(j.status).toBe('done');
  }, 120_000);

  it('replace killed before the swap keeps the old rows; after it, the new rows and their quarantine', async () => {
    let c = child!;
    fireAndForget(c.req('POST', '/v0/datasources?name=rep&mode=replace', csvRows(5000, 300, 'lost')));
    await c.paused('replace:loaded');
    await c.kill();

    c = await start('replace:exchanged');
    expectConsistent(c);
    expect(await sql(c, 'SELECT v, count() AS n FROM rep GROUP BY v')).toEqual([{ v: 'old', n: 1000 }]);
    fireAndForget(c.req('POST', '/v0/datasources?name=rep&mode=replace', csvRows(10_000, 500, 'new') + 'bad,new\n'));
    await c.paused('replace:exchanged');
    await c.kill();

    c = await start('alter:engine');
    expectConsistent(c);
    expect(await sql(c, 'SELECT v, count() AS n, uniqExact(id) AS u, min(id) AS lo FROM rep GROUP BY v')).toEqual([{ v: 'new', n: 500, u: 500, lo: 10_000 }]);
    expect(await sql(c, 'SELECT count() AS n FROM rep_quarantine')).toEqual([{ n: 1 }]);
    // The same request again: a correct result, nothing doubled.
    const r = await c.req('POST', '/v0/datasources?name=rep&mode=replace', csvRows(10_000, 500, 'new'));
    expect(r.status).toBe(200);
    expect(await counts(c, 'rep')).toEqual({ n: 500, u: 500 });
  }, 120_000);

  it('alter (add column) killed after the engine step: catalog and engine agree on the new schema', async () => {
    let c = child!;
    fireAndForget(c.req('POST', '/v0/datasources/alt/alter', form({ schema: 'id UInt64, v String, w Int32' })));
    await c.paused('alter:engine');
    await c.kill();

    c = await start('datasource:drop');
    expectConsistent(c);
    const ds = await (await c.req('GET', '/v0/datasources/alt')).json();
    expect(ds.schema.columns.map((x: { name: string }) => x.name)).toEqual(['id', 'v', 'w']);
    // Retrying is answered as already applied (not "column already exists"), and the ingest follows.
    const again = await c.req('POST', '/v0/datasources/alt/alter', form({ schema: 'id UInt64, v String, w Int32' }));
    expect(again.status).toBe(400);
    expect((await again.json()).error).toMatch(/There were no operations to perform/);
    expect((await c.req('POST', '/v0/datasources?name=alt&mode=append', '100,x,7\n')).status).toBe(200);
    expect(await sql(c, 'SELECT w FROM alt WHERE id = 100')).toEqual([{ w: 7 }]);
    expect(await counts(c, 'alt')).toEqual({ n: 11, u: 11 });
  }, 120_000);

  it('data source delete killed between catalog and engine: the orphans are swept', async () => {
    let c = child!;
    fireAndForget(c.req('DELETE', '/v0/datasources/gone'));
    await c.paused('datasource:drop');
    await c.kill();

    c = await start('populate:staged');
    expectConsistent(c);
    expect((await c.req('GET', '/v0/datasources/gone')).status).toBe(404);
    expect((await c.req('POST', '/v0/datasources?name=gone&mode=create', form({ schema: 'id UInt64' }))).status).toBe(200);
  }, 120_000);

  it('populate killed after staging: finished on start; a materialization killed before its record is undone', async () => {
    let c = child!;
    const r = await c.req(
      'POST',
      '/v0/pipes',
      JSON.stringify({ name: 'pop', nodes: [{ name: 'm', sql: 'SELECT id, v FROM src', type: 'materialized', datasource: 'pop_t', populate: 'true' }] }),
      JSON_HDR,
    );
    expect(r.status, await r.text()).toBe(200);
    await c.paused('populate:staged');
    await c.kill();

    c = await start('materialize:view');
    expectConsistent(c);
    expect(await counts(c, 'pop_t')).toEqual({ n: 200_000, u: 200_000 });
    const jobs = (await (await c.req('GET', '/v0/jobs?kind=populateview')).json()).jobs;
    expect(jobs.find((j: { pipe_name: string }) => j.pipe_name === 'pop')?.status).toBe('done');
    // The view keeps the target up to date after the restart.
    expect((await c.req('POST', '/v0/datasources?name=src&mode=append', csvRows(200_000, 10, 's'))).status).toBe(200);
    expect(await counts(c, 'pop_t')).toEqual({ n: 200_010, u: 200_010 });

    // Killed after the view was created, before the node was recorded as materialized.
    fireAndForget(
      c.req(
        'POST',
        '/v0/pipes',
        JSON.stringify({ name: 'pop2', nodes: [{ name: 'm', sql: 'SELECT id, v FROM src', type: 'materialized', datasource: 'pop2_t' }] }),
        JSON_HDR,
      ),
    );
    await c.paused('materialize:view');
    await c.kill();

    c = await start();
    expectConsistent(c);
    expect((await c.req('GET', '/v0/datasources/pop2_t')).status).toBe(404);
    expect((await c.req('POST', '/v0/datasources?name=src&mode=append', csvRows(300_000, 10, 's'))).status).toBe(200);
    expect(await counts(c, 'src')).toEqual({ n: 200_020, u: 200_020 });
    expect(await counts(c, 'pop_t')).toEqual({ n: 200_020, u: 200_020 });
  }, 120_000);

  it('copy (append) killed while staging, by timing: 0 or all rows; a retry gives all, once', async () => {
    let c = child!;
    const job = (await (await c.req('POST', '/v0/pipes/cp2/copy')).json()).job;
    for (let i = 0; i < 400; i++) {
      const j = await (await c.req('GET', `/v0/jobs/${job.id}`)).json();
      if (j.status !== 'waiting') break;
      await new Promise((res) => setTimeout(res, 25));
    }
    await new Promise((res) => setTimeout(res, 400));
    await c.kill();

    c = await start('replace:exchanged');
    expectConsistent(c);
    const after = await counts(c, 'cp2_t');
    expect([0, 4_000_002]).toContain(after.n);
    expect(after.u).toBe(after.n);
    const j = await (await c.req('GET', `/v0/jobs/${job.id}`)).json();
    if (after.n === 0) {
      expect(j.status).toBe('error');
      expect(j.error).toMatch(/before it wrote anything; run it again/);
      const retry = (await (await c.req('POST', '/v0/pipes/cp2/copy')).json()).job;
      expect((await waitJob(c, retry.id)).status).toBe('done');
    } else {
      expect(j.status).toBe('done');
    }
    expect(await counts(c, 'cp2_t')).toEqual({ n: 4_000_002, u: 4_000_002 });
  }, 120_000);

  it('copy (replace) killed after the swap: rolled forward', async () => {
    let c = child!;
    const r = await c.req('POST', '/v0/pipes/cp2/copy?rows=1000&_mode=replace');
    expect(r.status).toBe(200);
    await c.paused('replace:exchanged');
    await c.kill();

    c = await start();
    expectConsistent(c);
    expect(await counts(c, 'cp2_t')).toEqual({ n: 1000, u: 1000 });
  }, 120_000);

  it('delete rows killed while its job runs: a retry leaves exactly the other rows', async () => {
    let c = child!;
    const r = await c.req('POST', '/v0/datasources/dr/delete', form({ delete_condition: 'id % 2 = 0' }));
    expect(r.status).toBe(201);
    await new Promise((res) => setTimeout(res, 100));
    await c.kill();

    c = await start();
    expectConsistent(c);
    const retry = await (await c.req('POST', '/v0/datasources/dr/delete', form({ delete_condition: 'id % 2 = 0' }))).json();
    expect((await waitJob(c, retry.job_id)).status).toBe('done');
    expect(await sql(c, 'SELECT count() AS n, countIf(id % 2 = 0) AS even FROM dr')).toEqual([{ n: 50_000, even: 0 }]);
    await c.kill();
  }, 120_000);
});
