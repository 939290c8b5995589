/**
 * `npm run bench -- query`: the latency `/v0/sql` adds over raw chDB, in the same process and run.
 *
 * Cases: (a) `SELECT 1`; (b) `SELECT country, count(), avg(value) FROM events WHERE value > 0.5
 * GROUP BY country` over a 10M-row data source. Each at concurrency 1 and 4, through
 * - the API: GET /v0/sql?q=... (default TSV output) from a keep-alive node:http client, and
 * - raw chDB: a pool of chDB Sessions of the server's pool size on the server's own data directory
 *   (chDB holds one directory per process, so the server runs in this process), set up like the
 *   server's read-only Sessions (sandbox database, the same limits, readonly=1), running the
 *   physical SQL the layer produces with queryAsync (TabSeparated).
 * Every run measures both, alternating which goes first; the figures are medians over runs.
 * Then where the time goes at concurrency 1: each part alone (raw queryAsync/queryStream,
 * engine.select streamed and buffered, auth, prepare = cached catalog lists + analysis, a bare
 * Fastify round trip, FORMAT JSON), and a timeline inside /v0/sql requests (route → engine →
 * first chunk → last chunk → client).
 *
 * Environment: BENCH_RUNS (5), BENCH_QUERY_ROWS (10,000,000), BENCH_QUERY_TRIVIAL (2,000 requests
 * per measurement of (a) at concurrency 1, twice that at 4), BENCH_QUERY_AGG (40, likewise for (b)).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import Fastify from 'fastify';
import { createApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { SANDBOX_DATABASE } from '../src/engine/engine.js';
import { analyzeQuery, type SqlScope } from '../src/sql/analyzer.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ROWS = Number(process.env.BENCH_QUERY_ROWS ?? 10_000_000);
const TRIVIAL_N = Number(process.env.BENCH_QUERY_TRIVIAL ?? 2000);
const AGG_N = Number(process.env.BENCH_QUERY_AGG ?? 40);
/** Sessions of the server's engine pool and of the raw pool: the higher concurrency measured. */
const POOL = 4;

const TRIVIAL = 'SELECT 1';
const AGG = 'SELECT country, count(), avg(value) FROM events WHERE value > 0.5 GROUP BY country';

interface Stats {
  p50: number;
  p99: number;
  /** Requests per second over the measurement. */
  rps: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

/** Runs `n` calls of `fn` from `concurrency` workers (worker k always passes k); latencies in ms. */
async function measure(n: number, concurrency: number, fn: (worker: number) => Promise<void>): Promise<Stats> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (next < n) {
        next++;
        const t = performance.now();
        await fn(w);
        lat.push(performance.now() - t);
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p99: pct(lat, 99), rps: n / wall };
}

/** Median of `n` timings of `fn` in ms (sequential). */
async function _timeEach(n: number, fn: () => Promise<unknown>): Promise<number> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    lat.push(performance.now() - t);
  }
  return median(lat);
}

function httpGet(agent: http.Agent, port: number, p: string, headers: Record<string, string>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${body.toString().slice(0, 300)}`));
        else resolve(body);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-bench-query-'));
  const config = loadConfig({}, { dataDir: tmp, port: 0, host: '127.0.0.1', logLevel: 'silent', engineSessions: POOL });
  const app: App = await createApp(config);
  await app.http.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.http.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const token = app.services.localTokens.workspace_admin_token;
  const headers = { authorization: `Bearer ${token}` };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const raw: Session[] = [];
  try {
    // The data source, over HTTP; its 10M rows straight into the physical table.
    const schema =
      'timestamp DateTime `json:$.timestamp`, user_id UInt32 `json:$.user_id`, country LowCardinality(String) `json:$.country`, value Float64 `json:$.value`';
    const created = await fetch(`http://127.0.0.1:${port}/v0/datasources?name=events&mode=create&format=ndjson&engine_sorting_key=timestamp`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ schema }).toString(),
    });
    if (created.status !== 200) throw new Error(`create: ${created.status} ${await created.text()}`);
    const ws = app.services.access.defaultWorkspace;
    const ds = await app.services.datasources.get(ws, 'events');
    const table = `${ws.database}.${ds.id}`;
    let t = performance.now();
    await app.services.engine.exec(
      `INSERT INTO ${table} SELECT toDateTime('2024-01-01 00:00:00') + intDiv(number, 10), number % 100000, ` +
        `['ES', 'US', 'FR', 'DE', 'GB', 'IT', 'JP', 'BR'][number % 8 + 1], ((number * 7919) % 1000000) / 1e6 FROM numbers(${ROWS})`,
    );
    await app.services.engine.exec(`OPTIMIZE TABLE ${table} FINAL`);
    console.log(`loaded ${ROWS.toLocaleString('en-US')} rows in ${((performance.now() - t) / 1000).toFixed(1)} s (one part after OPTIMIZE FINAL)`);

    // The physical SQL the layer runs, for raw chDB.
    const auth = await app.services.access.authenticate(token);
    const physical = { [TRIVIAL]: (await app.services.queries.prepare(auth, TRIVIAL)).sql, [AGG]: (await app.services.queries.prepare(auth, AGG)).sql };
    console.log(`physical SQL of (b): ${physical[AGG]}`);

    // The first API query creates the server's sandbox database, which the raw Sessions use too.
    const CHECK = 'SELECT country, count(), round(avg(value), 6) FROM events WHERE value > 0.5 GROUP BY country ORDER BY country';
    const apiAgg = (await httpGet(agent, port, `/v0/sql?q=${encodeURIComponent(CHECK)}`, headers)).toString();

    // Raw pool: same directory, set up as the server's read-only Sessions.
    const limits = app.services.queries.limits();
    const setup = [
      `USE ${SANDBOX_DATABASE}`,
      `SET max_execution_time = ${limits.maxExecutionTime}`,
      `SET max_result_bytes = ${limits.maxResultBytes}`,
      `SET max_memory_usage = ${limits.maxMemoryUsage}`,
      'SET readonly = 1',
    ];
    for (let i = 0; i < POOL; i++) {
      const s = new Session(path.join(tmp, 'engine'));
      for (const stmt of setup) await s.queryAsync(stmt);
      raw.push(s);
    }
    const rawRun = async (sql: string, w: number) => {
      const r = await raw[w].queryAsync(sql, { format: 'TabSeparated' });
      r.bytes();
    };
    const apiRun = async (q: string) => {
      await httpGet(agent, port, `/v0/sql?q=${encodeURIComponent(q)}`, headers);
    };

    // Same answers both ways.
    const rawAgg = (await raw[0].queryAsync((await app.services.queries.prepare(auth, CHECK)).sql, { format: 'TabSeparated' })).text();
    if (apiAgg !== rawAgg) throw new Error(`different answers:\n${apiAgg}\n${rawAgg}`);

    // Warm-up: every Session of both pools created and used.
    t = performance.now();
    for (const c of [1, POOL]) {
      await measure(200, c, () => apiRun(TRIVIAL));
      await measure(200, c, (w) => rawRun(physical[TRIVIAL], w));
      await measure(2 * c, c, () => apiRun(AGG));
      await measure(2 * c, c, (w) => rawRun(physical[AGG], w));
    }
    console.log(`warm-up ${((performance.now() - t) / 1000).toFixed(1)} s`);

    type Key = `${'a' | 'b'} c${number} ${'api' | 'raw'}`;
    const results = new Map<Key, Stats[]>();
    const add = (k: Key, s: Stats) => results.set(k, [...(results.get(k) ?? []), s]);
    for (let run = 0; run < RUNS; run++) {
      const line: string[] = [];
      for (const [name, q, n] of [
        ['a', TRIVIAL, TRIVIAL_N],
        ['b', AGG, AGG_N],
      ] as const) {
        for (const c of [1, POOL]) {
          const modes = run % 2 === 0 ? (['api', 'raw'] as const) : (['raw', 'api'] as const);
          for (const mode of modes) {
            const s =
              mode === 'api'
                ? await measure(n * (c === 1 ? 1 : 2), c, () => apiRun(q))
                : await measure(n * (c === 1 ? 1 : 2), c, (w) => rawRun(physical[q], w));
            add(`${name} c${c} ${mode}`, s);
          }
          const api = results.get(`${name} c${c} api`)!.at(-1)!;
          const rw = results.get(`${name} c${c} raw`)!.at(-1)!;
          line.push(`(${name}) c${c}: p50 ${api.p50.toFixed(2)}/${rw.p50.toFixed(2)} ms, ${api.rps.toFixed(0)}/${rw.rps.toFixed(0)} req/s`);
        }
      }
      console.log(`run ${run + 1} (api/raw): ${line.join('; ')}`);
    }

    console.log(`\nmedians over ${RUNS} runs (latency in ms; API = /v0/sql over HTTP, raw = chDB Session pool of ${POOL}):`);
    console.log('| case | conc. | API p50 | raw p50 | p50 overhead | API p99 | raw p99 | API req/s | raw req/s | throughput ratio |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const name of ['a', 'b'] as const) {
      for (const c of [1, POOL]) {
        const api = results.get(`${name} c${c} api`)!;
        const rw = results.get(`${name} c${c} raw`)!;
        const m = (xs: Stats[], k: keyof Stats) => median(xs.map((x) => x[k]));
        const overhead = median(api.map((x, i) => x.p50 - rw[i].p50));
        const ratio = median(api.map((x, i) => x.rps / rw[i].rps));
        const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
        console.log(
          `| (${name}) | ${c} | ${f(m(api, 'p50'))} | ${f(m(rw, 'p50'))} | ${overhead.toFixed(2)} | ${f(m(api, 'p99'))} | ${f(m(rw, 'p99'))} | ${m(api, 'rps').toFixed(0)} | ${m(rw, 'rps').toFixed(0)} | ${ratio.toFixed(2)} |`,
        );
      }
    }

    // Where the time goes, at concurrency 1: each part alone, then a timeline inside the request.
    const bare = Fastify({ logger: false });
    bare.get('/one', async (_req, reply) => reply.type('text/tab-separated-values; charset=UTF-8').send('1\n'));
    await bare.listen({ port: 0, host: '127.0.0.1' });
    const bareAddr = bare.server.address();
    const barePort = typeof bareAddr === 'object' && bareAddr ? bareAddr.port : 0;
    const scope: SqlScope = { resolve: () => undefined, databases: new Set() };
    const drain = async (it: AsyncIterable<unknown>) => {
      for await (const c of it) void c;
    };
    const select = (sql: string, format: string, buffered?: boolean) => async () =>
      drain(await app.services.engine.select(sql, { format, queryId: 'bench', limits, buffered }));
    const partsOf = (sql: string, q: string): Array<[string, () => Promise<unknown>]> => [
      ['raw queryAsync (TSV)', () => rawRun(sql, 0)],
      [
        'raw queryStream (TSV)',
        async () => {
          for await (const c of raw[0].queryStream(sql, { format: 'TabSeparated' })) c.raw();
        },
      ],
      [
        'raw queryStream (TSV) with an AbortSignal',
        async () => {
          for await (const c of raw[0].queryStream(sql, { format: 'TabSeparated', signal: new AbortController().signal })) c.raw();
        },
      ],
      ['engine.select streamed (TSV)', select(sql, 'TabSeparated')],
      ['engine.select buffered (TSV, queryAsync)', select(sql, 'TabSeparated', true)],
      ['full /v0/sql (TSV, streamed)', () => apiRun(q)],
      ['raw queryAsync (JSON)', async () => (await raw[0].queryAsync(sql, { format: 'JSON' })).bytes()],
      ['full /v0/sql FORMAT JSON (buffered)', () => apiRun(`${q} FORMAT JSON`)],
    ];
    const common: Array<[string, () => Promise<unknown>]> = [
      ['auth (token lookup)', () => app.services.access.authenticate(token)],
      ['prepare (catalog lists + analysis)', () => app.services.queries.prepare(auth, TRIVIAL)],
      ['analyzeQuery alone', async () => analyzeQuery(TRIVIAL, scope)],
      ['bare Fastify + client round trip', () => httpGet(agent, barePort, '/one', {})],
    ];
    const report = async (title: string, n: number, parts: Array<[string, () => Promise<unknown>]>) => {
      const acc = parts.map(() => ({ p50: [] as number[], p99: [] as number[] }));
      for (let r = 0; r < 3; r++) {
        for (const [k, [, fn]] of parts.entries()) {
          const lat: number[] = [];
          for (let i = 0; i < n; i++) {
            const t0 = performance.now();
            await fn();
            lat.push(performance.now() - t0);
          }
          lat.sort((a, b) => a - b);
          acc[k].p50.push(pct(lat, 50));
          acc[k].p99.push(pct(lat, 99));
        }
      }
      console.log(`\n${title} (ms per call, p50 / p99, medians of 3 passes of ${n}):`);
      for (const [k, [name]] of parts.entries()) console.log(`  ${name.padEnd(44)} ${median(acc[k].p50).toFixed(3)} / ${median(acc[k].p99).toFixed(3)}`);
    };
    await report('breakdown of (a) SELECT 1', TRIVIAL_N, [...partsOf(physical[TRIVIAL], TRIVIAL), ...common]);
    await report('breakdown of (b) the aggregate', AGG_N, partsOf(physical[AGG], AGG));
    await bare.close();

    // Timeline of one /v0/sql request: when the route hands the prepared query to the engine, when
    // the engine answers (first chunk), when the last chunk is out, when the client has the body.
    const queries = app.services.queries;
    const run = queries.run.bind(queries);
    let marks = { run: 0, first: 0, last: 0 };
    queries.run = async (prep, opts) => {
      marks.run = performance.now();
      const r = await run(prep, opts);
      marks.first = performance.now();
      return Object.assign(Object.create(Object.getPrototypeOf(r)) as object, r, {
        async *[Symbol.asyncIterator]() {
          for await (const c of r) yield c;
          marks.last = performance.now();
        },
      }) as typeof r;
    };
    for (const [name, q, n] of [
      ['(a)', TRIVIAL, TRIVIAL_N],
      ['(b)', AGG, AGG_N],
    ] as const) {
      const seg: number[][] = [[], [], [], []];
      for (let i = 0; i < n; i++) {
        marks = { run: 0, first: 0, last: 0 };
        const t0 = performance.now();
        await apiRun(q);
        const t1 = performance.now();
        seg[0].push(marks.run - t0);
        seg[1].push(marks.first - marks.run);
        seg[2].push(marks.last - marks.first);
        seg[3].push(t1 - marks.last);
      }
      const f = (xs: number[]) =>
        `${median(xs).toFixed(3)} / ${pct(
          [...xs].sort((a, b) => a - b),
          99,
        ).toFixed(3)}`;
      console.log(
        `\ntimeline of ${name} through /v0/sql (ms, p50 / p99): request sent → engine called ${f(seg[0])}; ` +
          `engine called → first chunk ${f(seg[1])}; first → last chunk ${f(seg[2])}; last chunk → client has the body ${f(seg[3])}`,
      );
    }
    queries.run = run;
  } finally {
    for (const s of raw) s.close();
    agent.destroy();
    await app.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
