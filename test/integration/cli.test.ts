/**
 * The `pipit` CLI as a child process against a real server: the sample project of
 * test/fixtures/project is pushed, fed its fixtures and tested; pushes are idempotent, dry runs
 * change nothing, an edited node updates only its pipe, a failing node leaves the old version
 * serving, pull → push round-trips. Then the request sequences of the classic `tb` CLI.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin/pipit.mjs');
let s: TestServer;
let dir: string;

interface Run {
  code: number;
  out: string;
  err: string;
}

function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: { ...process.env, TB_HOST: s.url, TB_TOKEN: s.token, ...env }, timeout: 60_000 }, (err, out, errOut) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: String(out), err: String(errOut) });
    });
  });
}
const pipit = (args: string[], cwd = dir, env?: Record<string, string>) => run(process.execPath, [BIN, ...args], cwd, env);
const lines = (r: Run) =>
  r.out
    .trim()
    .split('\n')
    .map((l) => l.replace(/\s+/g, ' ').trim());
const edit = (file: string, from: string | RegExp, to: string) => {
  const p = path.join(dir, file);
  const text = fs.readFileSync(p, 'utf8');
  const next = text.replace(from, to);
  expect(next).not.toBe(text);
  fs.writeFileSync(p, next);
};
const pipeJson = async (name: string) =>
  (await s.req('GET', `/v0/pipes/${name}`)).json() as Promise<{
    id: string;
    endpoint: string | null;
    updated_at: string;
    nodes: Array<{ name: string; sql: string; id: string }>;
  }>;

beforeAll(async () => {
  s = await startServer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-project-'));
  fs.cpSync(path.join(ROOT, 'test/fixtures/project'), dir, { recursive: true });
}, 60_000);

afterAll(async () => {
  await s?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('pipit CLI on the sample project', () => {
  it('plans with --dry-run without changing anything', async () => {
    const r = await pipit(['push', '--dry-run']);
    expect(r.code, r.err).toBe(0);
    expect(lines(r)).toContain('would create datasource events');
    expect(lines(r)).toContain('would create pipe top_countries');
    expect(lines(r)).toContain("would create token analyst (PIPES:READ:top_countries DATASOURCES:READ:events:country = 'ES')");
    expect(r.out).toContain('Dry run: 11 change(s)');
    expect(((await (await s.req('GET', '/v0/datasources')).json()) as { datasources: unknown[] }).datasources).toEqual([]);
    expect(((await (await s.req('GET', '/v0/pipes')).json()) as { pipes: unknown[] }).pipes).toEqual([]);
  });

  it('pushes with `npx pipit push` in dependency order, appends the fixtures, and `pipit test run` passes', async () => {
    const r = await run('npx', ['--no-install', 'pipit', 'push', dir], ROOT);
    expect(r.code, r.err + r.out).toBe(0);
    const l = lines(r);
    expect(l.indexOf('created datasource daily_counts')).toBeLessThan(l.indexOf('created pipe daily_counts_mv'));
    expect(l).toEqual(expect.arrayContaining(['created pipe snapshot_copy', 'created token events_ingest (DATASOURCES:APPEND:events)', '11 change(s)']));
    const ev = await pipit(['datasource', 'append', 'events', 'fixtures/events.ndjson']);
    expect(ev.out.trim(), ev.err).toBe('Appended events: 6 row(s)');
    const co = await pipit(['datasource', 'append', 'countries', 'fixtures/countries.csv', '--json']);
    expect(JSON.parse(co.out)).toMatchObject({ ok: true, datasource: 'countries', rows: 3 });
    const t = await pipit(['test', 'run']);
    expect(t.code, t.out + t.err).toBe(0);
    expect(t.out).toContain('6 passed, 0 failed');
    // What push made: the materialized view fills daily_counts, the copy pipe runs, the tokens work.
    const daily = await pipit(['pipe', 'data', 'daily', '--format', 'ndjson']);
    expect(
      daily.out
        .trim()
        .split('\n')
        .map((x) => JSON.parse(x)),
    ).toEqual([
      { country: 'DE', hits: 1 },
      { country: 'ES', hits: 3 },
      { country: 'FR', hits: 2 },
    ]);
    const tokens = (await (await s.req('GET', '/v0/tokens')).json()) as { tokens: Array<{ name: string; token: string; scopes: unknown[] }> };
    const analyst = tokens.tokens.find((x) => x.name === 'analyst')!;
    expect(analyst.scopes).toEqual([
      { type: 'PIPES:READ', resource: 'top_countries', filter: '' },
      { type: 'DATASOURCES:READ', resource: 'events', filter: "country = 'ES'" },
    ]);
    const viaToken = await pipit(['sql', 'SELECT count() AS c FROM events', '--format', 'csv', '--token', analyst.token]);
    expect(viaToken.out).toBe('"c"\n3\n');
    const ds = await pipit(['datasource', 'ls', '--json']);
    expect(
      JSON.parse(ds.out)
        .datasources.map((d: { name: string }) => d.name)
        .sort(),
    ).toEqual(['countries', 'country_snapshot', 'daily_counts', 'events']);
  });

  it('pushing twice changes nothing', async () => {
    const before = await pipeJson('top_countries');
    const r = await pipit(['push', '--force', '--json']);
    expect(r.code, r.err).toBe(0);
    const body = JSON.parse(r.out);
    expect(body).toMatchObject({ ok: true, changes: 0 });
    expect(body.plan.every((i: { action: string }) => i.action === 'unchanged')).toBe(true);
    expect((await pipeJson('top_countries')).updated_at).toBe(before.updated_at);
  });

  it('an edited node updates only its pipe; without --force the push is blocked', async () => {
    edit('pipes/daily.pipe', 'GROUP BY country ORDER BY country', "WHERE country != '' GROUP BY country ORDER BY country");
    const blocked = await pipit(['push']);
    expect(blocked.code).toBe(1);
    expect(lines(blocked)).toContain('blocked pipe daily (nodes changed: totals: use --force to update it)');
    const dry = await pipit(['push', '--force', '--dry-run', '--json']);
    expect(JSON.parse(dry.out).plan.filter((i: { action: string }) => i.action !== 'unchanged')).toEqual([
      { kind: 'pipe', name: 'daily', file: 'pipes/daily.pipe', action: 'alter', detail: 'nodes changed: totals' },
    ]);
    expect((await pipeJson('daily')).nodes[0].sql).not.toContain("country != ''");
    const other = await pipeJson('top_countries');
    const before = await pipeJson('daily');
    const r = await pipit(['push', '--force']);
    expect(r.code, r.err).toBe(0);
    expect(lines(r).filter((x) => !x.startsWith('unchanged'))).toEqual(['altered pipe daily (nodes changed: totals)', '1 change(s)']);
    const after = await pipeJson('daily');
    expect(after.nodes[0]).toMatchObject({ id: before.nodes[0].id, sql: expect.stringContaining("WHERE country != ''") });
    expect((await pipeJson('top_countries')).updated_at).toBe(other.updated_at);
  });

  it('a pipe whose new SQL fails keeps the previous version serving, and the error points at the file and line', async () => {
    const serving = (await pipit(['pipe', 'data', 'top_countries', '--format', 'csv'])).out;
    edit('pipes/top_countries.pipe', 'round(sum(e.amount), 2) AS total', 'round(sum(e.no_such_column), 2) AS total');
    const r = await pipit(['push', '--force']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^Error: pipes\/top_countries\.pipe:10: node "by_country": .*no_such_column/m);
    // A new node that fails: the replace never starts.
    edit('pipes/top_countries.pipe', 'no_such_column', 'amount');
    fs.appendFileSync(path.join(dir, 'pipes/top_countries.pipe'), '\nNODE extra\nSQL >\n    SELECT missing FROM by_country\n');
    const r2 = await pipit(['push', '--force']);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/^Error: pipes\/top_countries\.pipe:19: node "extra": /m);
    expect((await pipit(['pipe', 'data', 'top_countries', '--format', 'csv'])).out).toBe(serving);
    fs.cpSync(path.join(ROOT, 'test/fixtures/project/pipes/top_countries.pipe'), path.join(dir, 'pipes/top_countries.pipe'));
  });

  it('a renamed node replaces the pipe in one deploy: same pipe id, the new node published, the same data served', async () => {
    const before = await pipeJson('top_countries');
    const serving = (await pipit(['pipe', 'data', 'top_countries', '--format', 'csv'])).out;
    edit('pipes/top_countries.pipe', 'NODE by_country', 'NODE by_country_v2');
    const r = await pipit(['push', '--force']);
    expect(r.code, r.err).toBe(0);
    expect(lines(r)).toContain('replaced pipe top_countries (nodes added, removed, renamed or retyped)');
    const after = await pipeJson('top_countries');
    expect(after.id).toBe(before.id);
    expect(after.nodes.map((n: { name: string }) => n.name)).toEqual(['filtered', 'by_country_v2']);
    expect(after.endpoint).toBe(after.nodes[1].id);
    expect((await pipit(['pipe', 'data', 'top_countries', '--format', 'csv'])).out).toBe(serving);
    fs.cpSync(path.join(ROOT, 'test/fixtures/project/pipes/top_countries.pipe'), path.join(dir, 'pipes/top_countries.pipe'));
    expect((await pipit(['push', '--force'])).code).toBe(0);
  });

  it('reports datafile errors with file and line (exit 1) and usage errors with exit 2', async () => {
    fs.mkdirSync(path.join(dir, 'broken'));
    fs.writeFileSync(path.join(dir, 'broken/bad.pipe'), 'NODE a\nSQL >\n    SELECT 1\nTYPE endpoint\nENGINE_BOGUS 1\n');
    const r = await pipit(['push', 'broken/bad.pipe']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('Error: broken/bad.pipe:5: ENGINE_BOGUS is not a valid option\n');
    fs.rmSync(path.join(dir, 'broken'), { recursive: true });
    expect((await pipit(['frobnicate'])).code).toBe(2);
    expect((await pipit(['push'], dir, { TB_HOST: 'http://127.0.0.1:1', TB_TOKEN: 'x' })).err).toMatch(/Can not reach http:\/\/127\.0\.0\.1:1/);
  });

  it('pull writes datafiles that push back with no changes', async () => {
    const pulled = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-pulled-'));
    try {
      const p = await pipit(['pull'], pulled);
      expect(p.code, p.err).toBe(0);
      expect(fs.readFileSync(path.join(pulled, 'pipes/daily_counts_mv.pipe'), 'utf8')).toContain('TYPE materialized\nDATASOURCE daily_counts\n');
      expect(fs.readFileSync(path.join(pulled, 'pipes/snapshot_copy.pipe'), 'utf8')).toContain(
        'TYPE copy\nTARGET_DATASOURCE country_snapshot\nCOPY_MODE replace\n',
      );
      const r = await pipit(['push', '--dry-run'], pulled);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain('Dry run: no changes');
      // And the pushed project itself is in sync with the workspace.
      expect((await pipit(['push', '--dry-run'])).out).toContain('Dry run: no changes');
    } finally {
      fs.rmSync(pulled, { recursive: true, force: true });
    }
  });
});

describe('the classic tb CLI request sequences', () => {
  // tb sends the token as ?token= and adds cli_version to every request.
  const tb = (method: string, p: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}) =>
    fetch(`${s.url}${p}${p.includes('?') ? '&' : '?'}token=${encodeURIComponent(s.token)}&cli_version=6.5.5`, { method, ...init });
  const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });

  it('auth: regions, workspace, workspaces with environments', async () => {
    expect(await (await tb('GET', '/v0/regions')).json()).toEqual({
      regions: [{ name: 'pipit', provider: 'pipit', api_host: s.url, host: s.url, default_password: '' }],
    });
    expect(await (await tb('GET', '/v0/workspace')).json()).toMatchObject({ name: expect.any(String) });
    const ws = await tb('GET', '/v0/user/workspaces/?with_environments=false');
    expect(ws.status).toBe(200);
    expect(((await ws.json()) as { workspaces: unknown[] }).workspaces).toHaveLength(1);
    expect(await (await tb('GET', '/v0/environments')).json()).toEqual({ environments: [] });
    expect((await tb('GET', '/v0/environments/staging')).status).toBe(501);
    expect((await fetch(`${s.url}/v0/regions`)).status).toBe(403);
  });

  it('push: datasource, then a pipe (sql_tables, GET 404, POST JSON, publish the last node, query.http)', async () => {
    expect((await tb('GET', '/v0/datasources/tb_events')).status).toBe(404);
    const created = await tb(
      'POST',
      '/v0/datasources',
      form({
        name: 'tb_events',
        description: 'from tb',
        schema: '`ts` DateTime `json:$.ts`, `n` Int32 `json:$.n`',
        format: 'ndjson',
        engine: 'MergeTree',
        engine_sorting_key: 'ts',
        engine_partition_key: 'toYYYYMM(ts)',
      }),
    );
    expect(created.status, await created.clone().text()).toBe(200);
    const sql = 'SELECT n, count() c FROM tb_events JOIN other ON 1 WHERE n IN (SELECT n FROM third) GROUP BY n';
    expect(await (await tb('POST', '/v0/sql_tables', form({ q: sql, raising: 'false', table_functions: 'false', is_copy: 'false' }))).json()).toEqual({
      tables: [
        ['', 'tb_events'],
        ['', 'other'],
        ['', 'third'],
      ],
    });
    expect(
      await (
        await tb('POST', '/v0/sql_tables', form({ q: '%\nSELECT * FROM tb_events JOIN numbers(3) ON 1 WHERE n = {{ Int32(n, 1) }}', table_functions: 'true' }))
      ).json(),
    ).toEqual({
      tables: [
        ['', 'tb_events'],
        ['', 'numbers'],
      ],
    });
    expect(await (await tb('POST', '/v0/sql_tables', form({ q: 'SELEC nonsense(' }))).json()).toEqual({ tables: [] });
    expect((await tb('POST', '/v0/sql_tables', form({ q: 'SELEC nonsense(', raising: 'true' }))).status).toBe(400);
    expect(
      await (
        await tb(
          'POST',
          '/v0/sql_replace',
          form({
            q: 'SELECT * FROM a JOIN b ON 1',
            replacements: JSON.stringify([
              [
                ['', 'a'],
                ['', 'a__v1'],
              ],
            ]),
          }),
        )
      ).json(),
    ).toEqual({ query: 'SELECT * FROM a__v1 JOIN b ON 1' });
    expect(await (await tb('GET', `/v0/sql_format?q=${encodeURIComponent('select 1')}`)).json()).toEqual({ q: 'select 1' });

    const q = '?description=&ignore_sql_errors=false';
    expect((await tb('GET', `/v0/pipes/tb_pipe${q}`)).status).toBe(404);
    const body = {
      name: 'tb_pipe',
      description: 'pushed by tb',
      nodes: [
        { name: 'f', sql: 'SELECT * FROM tb_events', type: 'standard', description: null },
        { name: 'agg', sql: 'SELECT count() c FROM f', type: 'standard', description: null },
      ],
    };
    const pushed = await tb('POST', `/v0/pipes${q}&force=true&populate=false&unlink_on_populate_error=false&branch_mode=None`, {
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    expect(pushed.status, await pushed.clone().text()).toBe(200);
    const pipe = (await pushed.json()) as { type: string; nodes: Array<{ id: string }> };
    expect(pipe.type).toBe('default');
    const published = await tb('POST', `/v0/pipes/tb_pipe/nodes/${pipe.nodes[1].id}/endpoint`);
    expect(((await published.json()) as { type: string }).type).toBe('endpoint');
    const example = await tb('GET', '/examples/query.http?format=json&pipe=tb_pipe&q=');
    expect(example.status).toBe(200);
    expect(await example.text()).toMatch(new RegExp(`^GET ${s.url}/v0/pipes/tb_pipe\\.json\\?token=`));
    expect((await tb('GET', '/examples/query.http?format=json&pipe=nope')).status).toBe(404);
    const deps = await (await tb('GET', '/v0/dependencies?datasource=tb_events&recursive=false')).json();
    expect(deps).toEqual({ dependencies: { tb_events: ['tb_pipe'] }, incompatible_datasources: {} });
    const used = (await (await tb('GET', '/v0/datasources?attrs=used_by,name')).json()) as {
      datasources: Array<{ name: string; used_by: Array<{ name: string }> }>;
    };
    expect(used.datasources.find((d) => d.name === 'tb_events')).toEqual({ used_by: [expect.objectContaining({ name: 'tb_pipe' })], name: 'tb_events' });
  });

  it('datasource append (multipart, debug=blocks_block_log), pipe data, sql', async () => {
    const fd = new FormData();
    fd.append('ndjson', new Blob(['{"ts":"2024-01-01 00:00:00","n":1}\n{"ts":"2024-01-01 00:00:01","n":2}\n']), 'ndjson');
    const appended = await tb('POST', '/v0/datasources?name=tb_events&mode=append&format=ndjson&debug=blocks_block_log', { body: fd });
    expect(appended.status, await appended.clone().text()).toBe(200);
    const csv = await tb('GET', '/v0/pipes/tb_pipe.csv');
    expect(await csv.text()).toBe('"c"\n2\n');
    const sql = await tb('GET', `/v0/sql?q=${encodeURIComponent('SELECT sum(n) s FROM tb_events FORMAT JSON')}&release_replacements=true`);
    expect(((await sql.json()) as { data: unknown[] }).data).toEqual([{ s: 3 }]);
  });
});
