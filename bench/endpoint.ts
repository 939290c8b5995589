/**
 * `npm run bench -- endpoint`: the latency and throughput an API Endpoint adds over raw chDB.
 *
 * Cases, each a pipe created with `POST /v0/pipes` (JSON body, one node of type endpoint) and
 * called as `GET /v0/pipes/<name>.json?<parameters>` with parameter values that change from one
 * request to the next (the same sequence on every side):
 * (a) trivial: `%\nSELECT {{ Int32(x, 1) }} AS x` (the endpoint path's own overhead);
 * (b) parameterized aggregate over a BENCH_ENDPOINT_ROWS-row data source:
 *     `%\nSELECT country, count() c, avg(value) v FROM events WHERE value > {{ Float64(min_value, 0.5) }}
 *      {% if defined(country) %} AND country = {{ String(country) }} {% end %} GROUP BY country`
 *     with min_value in 5 values and country absent or one of 4 values (20 combinations).
 * Each at concurrency 1 and 4, through
 * - the API as users run it ("api", the figures the issue-15 targets are judged on): the server in
 *   its own process, started as `npm start` starts it (`node --enable-source-maps scripts/start.mjs`:
 *   the esbuild bundle dist/server/main.mjs, its thread pool size, the default log level, logs to
 *   /dev/null), its rows loaded through a copy pipe (the same SELECT); a keep-alive node:http client
 *   in this process reading the whole JSON body;
 * - with BENCH_ENDPOINT_NOCACHE=1, the same without the engine's uncompressed cache ("api, no
 *   uncompressed cache", extra): a second server process with PIPIT_ENGINE_UNCOMPRESSED_CACHE=0, so
 *   the figures show what the cache (on by default; raw chDB at its defaults has none) adds to (b)'s.
 *   Off by default: a second server process and its background work (service records, merges)
 *   share the cores with every side, so it would move the headline figures;
 * - the API in-process ("api in-process", the former figures, kept as extra lines): a server
 *   created in this process from the tsx sources (log level silent), the same client on the same
 *   main thread; at concurrency 4 also with its per-token admission limit raised to all slots;
 * - raw chDB, natural ("raw natural", the reference): a pool of 4 chDB Sessions in this process
 *   with default settings, on the in-process server's data directory (the same rows), running the
 *   SQL a user would write for the same parameters with queryAsync, FORMAT JSON;
 * - raw chDB, rewritten ("raw rewritten", extra): Sessions set up like the server's read-only ones
 *   running Pipit's physical SQL for the same parameters (QueryService.prepare).
 * At concurrency 1 the sides are interleaved request by request (the order rotating), so all see
 * the same machine load; the p50 overhead is also given as the median of the paired differences.
 * At concurrency 4 the sides run as blocks, the order rotating. Figures are medians over runs.
 * BENCH_ENDPOINT_FLOOR=1 adds a side at concurrency 1, "floor (own process)": the least an endpoint
 * server in its own process adds here (bench/floor.ts --serve chdb: node:http and one chDB Session
 * with default settings running the natural SQL, its own copy of the rows for (b); the same client).
 * Off by default: a fifth side makes every side's requests further apart (figures of earlier
 * sessions were measured with four).
 * BENCH_ENDPOINT_BREAKDOWN=1 adds where the time goes in the in-process server at concurrency 1:
 * each part alone, the engine paths of (b) interleaved with raw queryAsync, (a) right after an
 * untimed prelude, and a timeline inside endpoint requests.
 *
 * BENCH_ENDPOINT_PROFILE=1: then a CPU profile of the server process (bench/profile-hook.mjs,
 * preloaded only then: the inspector's profiler as `--cpu-prof`, 100 µs sampling, over the
 * measurement only) while the API alone serves (a) and (b) at concurrency 1 and 4 for
 * BENCH_ENDPOINT_PROFILE_SECS (10) each under the default admission: the main thread's time per
 * request by part (bundle frames mapped to their sources through the bundle's source maps) and
 * the .cpuprofile files (for a flame graph) in the temporary directory. BENCH_RUNS=0 profiles only.
 * The sampler counts wall time: a main thread preempted inside a call (by the libuv worker that
 * chDB's queryAsync just woke, by the client after a socket write) shows that time in the call.
 * For CPU alone, `perf` and bench/perf-owners.mjs.
 *
 * Environment: BENCH_RUNS (5), BENCH_ENDPOINT_ROWS (1,000,000), BENCH_ENDPOINT_TRIVIAL (2,000
 * requests per side per measurement of (a) at concurrency 1, twice that at 4), BENCH_ENDPOINT_AGG
 * (60, likewise for (b)).
 */
import { adminTokenWhenReady } from './server-ready.js';
import { cpuBetween, type ThreadCpu, threadTimes, totalOf } from './thread-cpu.js';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { SourceMap } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Session } from 'chdb';
import Fastify from 'fastify';
import { createApp, type App } from '../src/app.js';
import { DEFAULT_ENGINE_SESSIONS, loadConfig } from '../src/config/config.js';
import { threadpoolFor } from '../src/engine/lanes.js';
import type { PreparedQuery } from '../src/domain/query-service.js';
import { SANDBOX_DATABASE } from '../src/engine/engine.js';
import { render, type ParamValue } from '../src/template/index.js';
import { AGG_SQL, aggCombos, EVENTS_SCHEMA, naturalAgg, naturalTrivial, rowsSql as eventRows, TRIVIAL_SQL, trivialCombos } from './endpoint-cases.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ROWS = Number(process.env.BENCH_ENDPOINT_ROWS ?? 1_000_000);
/** BENCH_ENDPOINT_BREAKDOWN=1: also the where-the-time-goes parts after the main table (slow). */
const BREAKDOWN = process.env.BENCH_ENDPOINT_BREAKDOWN === '1';
const FLOOR = process.env.BENCH_ENDPOINT_FLOOR === '1';
const NOCACHE = process.env.BENCH_ENDPOINT_NOCACHE === '1';
const PROFILE = process.env.BENCH_ENDPOINT_PROFILE === '1';
const PROFILE_SECS = Number(process.env.BENCH_ENDPOINT_PROFILE_SECS ?? 10);
const TRIVIAL_N = Number(process.env.BENCH_ENDPOINT_TRIVIAL ?? 2000);
const AGG_N = Number(process.env.BENCH_ENDPOINT_AGG ?? 60);
/** Sessions of the raw pool, and the higher concurrency measured (the servers run npm start's default sessions). */
const POOL = 4;

interface Stats {
  p50: number;
  p99: number;
  /** Requests per second over the measurement. */
  rps: number;
}

/** One parameter combination: the request path and the physical SQL the endpoint runs for it. */
interface Call {
  params: Record<string, string>;
  path: string;
  /** The physical SQL Pipit runs (its rewrite of the node, under its session settings). */
  sql: string;
  /** The SQL a user would write against the table for the same parameters (raw chDB, default settings). */
  natural: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const statsOf = (lat: number[], wallMs: number): Stats => {
  const s = [...lat].sort((a, b) => a - b);
  return { p50: pct(s, 50), p99: pct(s, 99), rps: lat.length / (wallMs / 1000) };
};

/** Runs `n` calls of `fn` from `concurrency` workers (worker k passes k; call i passes i); latencies in ms. */
async function measure(n: number, concurrency: number, fn: (worker: number, i: number) => Promise<void>): Promise<Stats> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        await fn(w, i);
        lat.push(performance.now() - t);
      }
    }),
  );
  return statsOf(lat, performance.now() - t0);
}

/**
 * Concurrency 1, both sides interleaved: call i of each side back to back (which goes first
 * alternates). Returns each side's stats (rps from the sum of its own latencies) and the median
 * of the paired differences.
 */
async function paired(n: number, api: (i: number) => Promise<void>, raw: (i: number) => Promise<void>): Promise<{ api: Stats; raw: Stats; diff: number }> {
  const a: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < n; i++) {
    for (const side of i % 2 === 0 ? ['api', 'raw'] : ['raw', 'api']) {
      const t = performance.now();
      if (side === 'api') await api(i);
      else await raw(i);
      (side === 'api' ? a : r).push(performance.now() - t);
    }
  }
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  return { api: statsOf(a, sum(a)), raw: statsOf(r, sum(r)), diff: median(a.map((x, i) => x - r[i])) };
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

/** Same meta and rows (floats to 1e-9 relative: avg over threads may sum in another order). */
function sameResult(a: Buffer, b: Buffer): boolean {
  const x = JSON.parse(a.toString()) as { meta: unknown; data: Array<Record<string, unknown>> };
  const y = JSON.parse(b.toString()) as { meta: unknown; data: Array<Record<string, unknown>> };
  if (JSON.stringify(x.meta) !== JSON.stringify(y.meta) || x.data.length !== y.data.length) return false;
  const key = (r: Record<string, unknown>) => JSON.stringify(Object.values(r).filter((v) => typeof v !== 'number'));
  const xs = [...x.data].sort((p, q) => key(p).localeCompare(key(q)));
  const ys = [...y.data].sort((p, q) => key(p).localeCompare(key(q)));
  return xs.every((r, i) =>
    Object.entries(r).every(([k, v]) => {
      const w = ys[i][k];
      if (typeof v === 'number' && typeof w === 'number') return Math.abs(v - w) <= 1e-9 * Math.max(1, Math.abs(v));
      return JSON.stringify(v) === JSON.stringify(w);
    }),
  );
}

/** What the main thread did per request, from a CPU profile: µs per request and share, by part. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}
/** The source file a frame of the server bundle (dist/server/*.mjs) comes from, through its source map. */
const bundleMaps = new Map<string, SourceMap | null>();
function originalUrl(frame: CpuProfile['nodes'][number]['callFrame']): string {
  const { url } = frame;
  if (!url.includes('/dist/server/') || !url.endsWith('.mjs')) return url;
  if (!bundleMaps.has(url)) {
    const file = `${fileURLToPath(url)}.map`;
    bundleMaps.set(url, fs.existsSync(file) ? new SourceMap(JSON.parse(fs.readFileSync(file, 'utf8'))) : null);
  }
  const entry = bundleMaps.get(url)?.findEntry(frame.lineNumber, frame.columnNumber);
  return entry && 'originalSource' in entry ? entry.originalSource : url;
}
function profileParts(p: CpuProfile): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const partOf = (id: number): string => {
    const f = byId.get(id)!.callFrame.functionName;
    const u = originalUrl(byId.get(id)!.callFrame);
    if (f === '(idle)') return 'idle (waiting for the engine)';
    if (f === '(garbage collector)') return 'GC';
    if (f === '(program)') return 'V8 and native code outside JS';
    const up = parent.get(id);
    if (u === '' && f === '' && up !== undefined && byId.get(up)!.callFrame.url.includes('chdb')) return "chDB's synchronous native call";
    if (u.includes('chdb')) return "chDB's JS wrapper";
    if (u.includes('async_hooks')) return 'async hooks (AsyncLocalStorage promise hooks)';
    const src = /\/src\/(.*)$/.exec(u)?.[1];
    if (src && !u.includes('node_modules')) {
      if (src.startsWith('engine/') || src.startsWith('sql/admission')) return 'Pipit: admission, lanes, engine.select';
      if (src.startsWith('http/observability') || src.startsWith('observability/')) return 'Pipit: observability hooks and records';
      if (/^(sql|template)\/|^domain\/(query-service|prepared-cache|pipe-service|datasource-service)/.test(src))
        return 'Pipit: prepare (catalog, template, analyzer; prepared cache)';
      return 'Pipit: route, auth, output';
    }
    if (/fastify|find-my-way|toad-cache|fast-querystring/.test(u)) return 'Fastify';
    if (u.includes('/bench/')) return 'bench client loop';
    if (/pino|sonic-boom/.test(u)) return 'request log (pino)';
    return 'Node: HTTP server, sockets, streams, events, timers';
  };
  const total = p.timeDeltas.reduce((a, b) => a + b, 0);
  const perSample = total / p.samples.length;
  const out = new Map<string, number>();
  for (const id of p.samples) {
    const k = partOf(id);
    out.set(k, (out.get(k) ?? 0) + perSample);
  }
  return out;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A Pipit server in its own process, started as `npm start` starts it. */
interface ServerProcess {
  child: ChildProcess;
  port: number;
  token: string;
  /** Profiles the server's main thread while `fn` runs (only when started with a profile directory). */
  profile(fn: () => Promise<void>): Promise<CpuProfile>;
  stop(): Promise<void>;
}

/**
 * Starts `node --enable-source-maps scripts/start.mjs` (what `npm start` runs, with its thread
 * pool size and the default log level; the built bundle dist/server/main.mjs) on `dir`, and waits
 * until it answers; the workspace admin token from `GET /tokens`. With `profileDir` the process
 * preloads bench/profile-hook.mjs (SIGUSR2 starts and stops its CPU profiler).
 */
async function startServer(dir: string, profileDir?: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const port = 30000 + Math.floor(Math.random() * 20000);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PIPIT_DATA_DIR: dir,
    PIPIT_PORT: String(port),
    PIPIT_HOST: '127.0.0.1',
    UV_THREADPOOL_SIZE: String(threadpoolFor(DEFAULT_ENGINE_SESSIONS)),
    BENCH_PROFILE_DIR: profileDir ?? '',
    ...extraEnv,
  };
  delete env.PIPIT_LOG_LEVEL;
  const args = [
    '--enable-source-maps',
    ...(profileDir ? ['--import', path.join(ROOT, 'bench', 'profile-hook.mjs')] : []),
    path.join(ROOT, 'scripts', 'start.mjs'),
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  // Never left running: also when this process ends on an error (its output piped into `head`...).
  process.once('exit', () => child.kill('SIGKILL'));
  const token = await adminTokenWhenReady(child, port);
  let profiles = 0;
  const waitFor = async (file: string) => {
    while (!fs.existsSync(file)) await new Promise((r) => setTimeout(r, 20));
  };
  return {
    child,
    port,
    token,
    async profile(fn) {
      if (!profileDir) throw new Error('the server was started without a profile directory');
      const n = profiles++;
      child.kill('SIGUSR2');
      await waitFor(path.join(profileDir, `${n}.started`));
      await fn();
      child.kill('SIGUSR2');
      await waitFor(path.join(profileDir, `${n}.done`));
      return JSON.parse(fs.readFileSync(path.join(profileDir, `${n}.cpuprofile`), 'utf8')) as CpuProfile;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** bench/floor.ts's endpoint floor for one case (its own process, its own data directory). */
async function startFloor(dir: string, which: 'a' | 'b'): Promise<{ child: ChildProcess; port: number }> {
  const port = 30000 + Math.floor(Math.random() * 20000);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'floor.ts'), '--serve', 'chdb', String(port), dir, which, String(ROWS)], {
    cwd: ROOT,
    env: { ...process.env, UV_THREADPOOL_SIZE: String(2 * POOL + 8) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.once('exit', () => child.kill('SIGKILL'));
  await new Promise((r) => child.stdout!.once('data', r));
  return { child, port };
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-bench-endpoint-'));
  const config = loadConfig({}, { dataDir: tmp, port: 0, host: '127.0.0.1', logLevel: 'silent' });
  const app: App = await createApp(config);
  await app.http.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.http.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const token = app.services.localTokens.workspace_admin_token;
  const headers = { authorization: `Bearer ${token}` };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const serverAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const raw: Session[] = [];
  const base = `http://127.0.0.1:${port}`;
  let server: ServerProcess | undefined;
  let noCache: ServerProcess | undefined;
  const floors: Partial<Record<'a' | 'b', { child: ChildProcess; port: number }>> = {};
  try {
    // The data source and the two endpoints, over HTTP, as `tb push` creates them.
    const schema = EVENTS_SCHEMA;
    const rowsSql = eventRows(ROWS);
    const post = async (base: string, headers: Record<string, string>, p: string, body: string, type: string) => {
      const r = await fetch(`${base}${p}`, { method: 'POST', headers: { ...headers, 'content-type': type }, body });
      if (r.status !== 200) throw new Error(`POST ${p}: ${r.status} ${await r.text()}`);
      return r.json() as Promise<Record<string, unknown>>;
    };
    const setUp = async (base: string, headers: Record<string, string>) => {
      const form = 'application/x-www-form-urlencoded';
      await post(
        base,
        headers,
        '/v0/datasources?name=events&mode=create&format=ndjson&engine_sorting_key=timestamp',
        new URLSearchParams({ schema }).toString(),
        form,
      );
      for (const [name, sql] of [
        ['trivial_ep', TRIVIAL_SQL],
        ['agg_ep', AGG_SQL],
      ]) {
        await post(base, headers, '/v0/pipes', JSON.stringify({ name, nodes: [{ name: `${name}_node`, sql, type: 'endpoint' }] }), 'application/json');
      }
    };
    await setUp(base, headers);
    const ws = app.services.access.defaultWorkspace;
    const ds = await app.services.datasources.get(ws, 'events');
    const table = `${ws.database}.${ds.id}`;
    let t = performance.now();
    await app.services.engine.exec(`INSERT INTO ${table} ${rowsSql}`);
    await app.services.engine.exec(`OPTIMIZE TABLE ${table} FINAL`);
    console.log(
      `in-process server: loaded ${ROWS.toLocaleString('en-US')} rows in ${((performance.now() - t) / 1000).toFixed(1)} s (one part after OPTIMIZE FINAL)`,
    );

    // The server as users run it: its own process, started like `npm start`; its rows through a
    // copy pipe (the same SELECT), one part after the copy's single insert.
    const loadServer = async (sp: ServerProcess): Promise<{ authorization: string }> => {
      const sbase = `http://127.0.0.1:${sp.port}`;
      const sheaders = { authorization: `Bearer ${sp.token}` };
      await setUp(sbase, sheaders);
      await post(
        sbase,
        sheaders,
        '/v0/pipes',
        JSON.stringify({ name: 'load_events', nodes: [{ name: 'load', sql: rowsSql, type: 'copy', target_datasource: 'events' }] }),
        'application/json',
      );
      const copy = (await post(sbase, sheaders, '/v0/pipes/load_events/copy', '', 'application/x-www-form-urlencoded')).job as { id: string };
      for (;;) {
        const j = (await (await fetch(`${sbase}/v0/jobs/${copy.id}`, { headers: sheaders })).json()) as { status: string; error?: string };
        if (j.status === 'done') break;
        if (j.status === 'error' || j.status === 'cancelled') throw new Error(`loading the server process's rows: ${JSON.stringify(j)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return sheaders;
    };
    t = performance.now();
    server = await startServer(path.join(tmp, 'server'), PROFILE ? fs.mkdtempSync(path.join(tmp, 'profiles-')) : undefined);
    const sheaders = await loadServer(server);
    console.log(`server process (node scripts/start.mjs, pid ${server.child.pid}): started and loaded in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    // The same without the engine's uncompressed cache (on by default): what the cache adds to the
    // figures, since raw chDB at its defaults has none.
    if (NOCACHE) noCache = await startServer(path.join(tmp, 'server-nocache'), undefined, { PIPIT_ENGINE_UNCOMPRESSED_CACHE: '0' });
    const nheaders = noCache ? await loadServer(noCache) : {};

    if (FLOOR) {
      for (const which of ['a', 'b'] as const) floors[which] = await startFloor(fs.mkdtempSync(path.join(tmp, `floor-${which}-`)), which);
      console.log(`floor servers (bench/floor.ts --serve chdb, own processes) started`);
    }

    // Parameter combinations and the physical SQL the endpoint runs for each.
    const auth = await app.services.access.authenticate(token);
    const callsOf = async (name: string, combos: Array<Record<string, string>>, natural: (p: Record<string, string>) => string): Promise<Call[]> => {
      const pipe = (await app.services.pipes.find(ws, name))!;
      return Promise.all(
        combos.map(async (params) => {
          const prepared = await app.services.queries.prepare(auth, `SELECT * FROM \`${name}\``, { params, testMode: false, underscore: pipe });
          if (Object.keys(prepared.queryParams).length) throw new Error('bound parameters are not expected here');
          return { params, path: `/v0/pipes/${name}.json?${new URLSearchParams(params).toString()}`, sql: prepared.sql, natural: natural(params) };
        }),
      );
    };
    const cases = {
      a: await callsOf('trivial_ep', trivialCombos, naturalTrivial),
      b: await callsOf('agg_ep', aggCombos, (p) => naturalAgg(table, p)),
    };
    console.log(`physical SQL of (b) for ${JSON.stringify(cases.b[1].params)}: ${cases.b[1].sql}`);
    console.log(`natural SQL of (b) for the same: ${cases.b[1].natural}`);

    // The first API query creates the server's sandbox database, which the raw Sessions use too.
    const apiFirst = await httpGet(agent, port, cases.b[0].path, headers);

    // Raw pool: same directory, set up as the server's read-only Sessions of whole answers (JSON).
    const limits = app.services.queries.limits(undefined, undefined, true);
    const setup = [
      `USE ${SANDBOX_DATABASE}`,
      `SET max_execution_time = ${limits.maxExecutionTime}`,
      `SET max_result_bytes = ${limits.maxResultBytes}`,
      `SET max_memory_usage = ${limits.maxMemoryUsage}`,
      ...Object.entries(limits.formatSettings ?? {}).map(([k, v]) => `SET ${k} = ${v}`),
      'SET readonly = 1',
    ];
    for (let i = 0; i < POOL; i++) {
      const s = new Session(path.join(tmp, 'engine'));
      for (const stmt of setup) await s.queryAsync(stmt);
      raw.push(s);
    }
    // What a user would otherwise run: chDB Sessions with default settings, the natural SQL.
    const plain: Session[] = [];
    for (let i = 0; i < POOL; i++) plain.push(new Session(path.join(tmp, 'engine')));
    raw.push(...plain);
    const rawRun = async (sql: string, w: number) => {
      const r = await raw[w].queryAsync(sql, { format: 'JSON' });
      r.bytes();
    };
    const naturalRun = async (sql: string, w: number) => {
      const r = await plain[w].queryAsync(sql, { format: 'JSON' });
      r.bytes();
    };
    // The API as users run it (the server process) and the in-process server (the former figures).
    const apiRun = async (p: string) => {
      await httpGet(serverAgent, server!.port, p, sheaders);
    };
    const noCacheAgent = new http.Agent({ keepAlive: true, maxSockets: POOL });
    const noCacheRun = async (p: string) => {
      await httpGet(noCacheAgent, noCache!.port, p, nheaders);
    };
    const inProcessRun = async (p: string) => {
      await httpGet(agent, port, p, headers);
    };
    const floorAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const floorRun = async (name: 'a' | 'b', c: Call) => {
      await httpGet(floorAgent, floors[name]!.port, `/q?${new URLSearchParams(c.params).toString()}`, {});
    };

    // Same answers every way, for every combination.
    if (!sameResult(apiFirst, Buffer.from((await raw[0].queryAsync(cases.b[0].sql, { format: 'JSON' })).bytes()))) throw new Error('different answers');
    for (const c of [...cases.a, ...cases.b]) {
      const a = await httpGet(serverAgent, server.port, c.path, sheaders);
      const nc = noCache ? await httpGet(noCacheAgent, noCache.port, c.path, nheaders) : a;
      const i = await httpGet(agent, port, c.path, headers);
      const r = Buffer.from((await raw[0].queryAsync(c.sql, { format: 'JSON' })).bytes());
      const n = Buffer.from((await plain[0].queryAsync(c.natural, { format: 'JSON' })).bytes());
      if (!sameResult(a, r) || !sameResult(a, n) || !sameResult(a, i) || !sameResult(a, nc))
        throw new Error(`different answers for ${c.path}:\n${a}\n${i}\n${r}\n${n}`);
    }
    console.log(
      `API (server process and in-process), raw (natural SQL) and raw (Pipit's SQL) answers agree for all ${cases.a.length + cases.b.length} parameter combinations`,
    );

    // Admission control: by default one token runs at most `perToken` queries at once (the rest
    // wait); a single client app typically uses one token. Measured both ways at concurrency 4.
    const admission = app.services.queries.admission.limits as { perToken: number; perWorkspace: number; slots: number };
    const defaults = { perToken: admission.perToken, perWorkspace: admission.perWorkspace };
    const raised = async <T>(fn: () => Promise<T>): Promise<T> => {
      admission.perToken = admission.slots;
      admission.perWorkspace = admission.slots;
      try {
        return await fn();
      } finally {
        Object.assign(admission, defaults);
      }
    };
    console.log(
      `admission: ${admission.slots} slots, per token ${defaults.perToken}, per workspace ${defaults.perWorkspace} (raised: ${admission.slots} each)`,
    );

    // Warm-up: every Session of every pool created and used.
    t = performance.now();
    for (const c of [1, POOL]) {
      for (const [name, n] of [
        ['a', 200],
        ['b', 2 * c],
      ] as const) {
        const calls = cases[name];
        await measure(n, c, (_w, i) => apiRun(calls[i % calls.length].path));
        if (NOCACHE) await measure(n, c, (_w, i) => noCacheRun(calls[i % calls.length].path));
        await measure(n, c, (_w, i) => inProcessRun(calls[i % calls.length].path));
        await measure(n, c, (w, i) => rawRun(calls[i % calls.length].sql, w));
        await measure(n, c, (w, i) => naturalRun(calls[i % calls.length].natural, w));
        if (FLOOR) await measure(n, 1, (_w, i) => floorRun(name, calls[i % calls.length]));
      }
    }
    console.log(`warm-up ${((performance.now() - t) / 1000).toFixed(1)} s`);

    type Side =
      | 'api'
      | 'api, no uncompressed cache'
      | 'api in-process'
      | 'api in-process, per-token limit raised'
      | 'raw natural'
      | 'raw rewritten'
      | 'floor (own process)';
    type Key = `${'a' | 'b'} c${number} ${Side}`;
    const results = new Map<Key, Stats[]>();
    const diffs: Record<'a' | 'b', number[]> = { a: [], b: [] };
    const diffsInProcess: Record<'a' | 'b', number[]> = { a: [], b: [] };
    const diffsFloor: Record<'a' | 'b', number[]> = { a: [], b: [] };
    const diffsNoCache: Record<'a' | 'b', number[]> = { a: [], b: [] };
    const add = (k: Key, s: Stats) => results.set(k, [...(results.get(k) ?? []), s]);
    /** CPU ms per request at concurrency 4 by thread group: the server process's (api only) and this process's (client, raw chDB, in-process server). */
    const cpu = new Map<Key, Array<{ server: ThreadCpu; bench: ThreadCpu }>>();
    for (let run = 0; run < RUNS; run++) {
      const line: string[] = [];
      for (const [name, n] of [
        ['a', TRIVIAL_N],
        ['b', AGG_N],
      ] as const) {
        const calls = cases[name];
        const c1: Partial<Record<Side, (i: number) => Promise<void>>> = {
          api: (i) => apiRun(calls[i % calls.length].path),
          ...(NOCACHE ? { 'api, no uncompressed cache': (i: number) => noCacheRun(calls[i % calls.length].path) } : {}),
          'api in-process': (i) => inProcessRun(calls[i % calls.length].path),
          'raw natural': (i) => naturalRun(calls[i % calls.length].natural, 0),
          'raw rewritten': (i) => rawRun(calls[i % calls.length].sql, 0),
          ...(FLOOR ? { 'floor (own process)': (i: number) => floorRun(name, calls[i % calls.length]) } : {}),
        };
        // c1: the three interleaved request by request, the order rotating.
        const sides = Object.keys(c1) as Side[];
        const lat = Object.fromEntries(sides.map((k) => [k, [] as number[]])) as Record<Side, number[]>;
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < sides.length; j++) {
            const side = sides[(i + j) % sides.length];
            const t0 = performance.now();
            await c1[side]!(i);
            lat[side].push(performance.now() - t0);
          }
        }
        const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
        for (const side of sides) add(`${name} c1 ${side}`, statsOf(lat[side], sum(lat[side])));
        const diff = median(lat.api.map((x, i) => x - lat['raw natural'][i]));
        diffs[name].push(diff);
        diffsInProcess[name].push(median(lat['api in-process'].map((x, i) => x - lat['raw natural'][i])));
        if (NOCACHE) diffsNoCache[name].push(median(lat['api, no uncompressed cache'].map((x, i) => x - lat['raw natural'][i])));
        if (FLOOR) diffsFloor[name].push(median(lat['floor (own process)'].map((x, i) => x - lat['raw natural'][i])));
        const g = (side: Side) => results.get(`${name} c1 ${side}`)!.at(-1)!;
        line.push(
          `(${name}) c1 p50: api ${g('api').p50.toFixed(2)}, natural ${g('raw natural').p50.toFixed(2)}, rewritten ${g('raw rewritten').p50.toFixed(2)} ms (paired api−natural ${diff.toFixed(2)})`,
        );
        // c4: blocks, the order rotating.
        const c4: Partial<Record<Side, () => Promise<Stats>>> = {
          api: () => measure(2 * n, POOL, (_w, i) => apiRun(calls[i % calls.length].path)),
          ...(NOCACHE ? { 'api, no uncompressed cache': () => measure(2 * n, POOL, (_w, i) => noCacheRun(calls[i % calls.length].path)) } : {}),
          'api in-process': () => measure(2 * n, POOL, (_w, i) => inProcessRun(calls[i % calls.length].path)),
          'api in-process, per-token limit raised': () => raised(() => measure(2 * n, POOL, (_w, i) => inProcessRun(calls[i % calls.length].path))),
          'raw natural': () => measure(2 * n, POOL, (w, i) => naturalRun(calls[i % calls.length].natural, w)),
          'raw rewritten': () => measure(2 * n, POOL, (w, i) => rawRun(calls[i % calls.length].sql, w)),
        };
        const blocks = Object.keys(c4) as Side[];
        for (let j = 0; j < blocks.length; j++) {
          const side = blocks[(run + j) % blocks.length];
          const s0 = threadTimes(server.child.pid!);
          const b0 = threadTimes(process.pid);
          add(`${name} c${POOL} ${side}`, await c4[side]!());
          const k: Key = `${name} c${POOL} ${side}`;
          const perReq = (c: ThreadCpu): ThreadCpu => ({ main: c.main / (2 * n), engine: c.engine / (2 * n), node: c.node / (2 * n) });
          const ofServer = perReq(side === 'api' ? cpuBetween(s0, threadTimes(server.child.pid!)) : { main: 0, engine: 0, node: 0 });
          cpu.set(k, [...(cpu.get(k) ?? []), { server: ofServer, bench: perReq(cpuBetween(b0, threadTimes(process.pid))) }]);
        }
        const h = (side: Side) => results.get(`${name} c${POOL} ${side}`)!.at(-1)!.rps.toFixed(0);
        line.push(
          `(${name}) c${POOL} req/s: api ${h('api')}, in-process ${h('api in-process')} (raised ${h('api in-process, per-token limit raised')}), natural ${h('raw natural')}, rewritten ${h('raw rewritten')}`,
        );
      }
      console.log(`run ${run + 1} (load ${os.loadavg()[0].toFixed(1)}): ${line.join('; ')}`);
    }

    console.log(
      `\nmedians over ${RUNS} runs (latency in ms; API = GET /v0/pipes/<name>.json over HTTP; raw natural = chDB Sessions with default settings ` +
        `running the SQL a user would write; raw rewritten = chDB Sessions set up like the server's running Pipit's physical SQL; pools of ${POOL}, FORMAT JSON):`,
    );
    console.log('| case | conc. | side | p50 | p99 | req/s | p50 − natural p50 | req/s ÷ natural req/s |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
    const verdicts: string[] = [];
    for (const name of ['a', 'b'] as const) {
      for (const c of [1, POOL]) {
        const nat = results.get(`${name} c${c} raw natural`)!;
        for (const side of [
          'api',
          'api, no uncompressed cache',
          'api in-process',
          'api in-process, per-token limit raised',
          'raw natural',
          'raw rewritten',
          'floor (own process)',
        ] as Side[]) {
          const xs = results.get(`${name} c${c} ${side}`);
          if (!xs) continue;
          const m = (k: keyof Stats) => median(xs.map((x) => x[k]));
          const overhead = median(xs.map((x, i) => x.p50 - nat[i].p50));
          const ratio = median(xs.map((x, i) => x.rps / nat[i].rps));
          console.log(
            `| (${name}) | ${c} | ${side} | ${f(m('p50'))} | ${f(m('p99'))} | ${m('rps').toFixed(0)} | ${overhead.toFixed(2)} | ${ratio.toFixed(2)} |`,
          );
          if ((side === 'api' || side === 'api in-process' || side === 'api, no uncompressed cache') && c === 1) {
            const paired = median((side === 'api' ? diffs : side === 'api in-process' ? diffsInProcess : diffsNoCache)[name]);
            verdicts.push(
              `(${name}) p50 overhead at c1 ≤ 0.5 ms over raw natural (${side}): ${overhead.toFixed(2)} ms (paired ${paired.toFixed(2)}) — ${overhead <= 0.5 ? 'holds' : 'does not hold'}`,
            );
          }
          if (side === 'floor (own process)')
            verdicts.push(
              `(${name}) for reading the above: the floor (node:http + chDB, own process) at c1 adds ${overhead.toFixed(2)} ms (paired ${median(diffsFloor[name]).toFixed(2)}) over raw natural`,
            );
          if (side.startsWith('api') && c === POOL) {
            verdicts.push(`(${name}) throughput at c${POOL} ≥ 0.9 of raw natural (${side}): ${ratio.toFixed(2)} — ${ratio >= 0.9 ? 'holds' : 'does not hold'}`);
          }
        }
      }
    }
    if (RUNS > 0) {
      console.log(
        `\nCPU per request at c${POOL} (ms, all threads; medians over runs; the load-independent view of throughput on a shared machine: ` +
          "api = the server process + this process (the client); in-process and raw = this process; by thread: main, libuv and V8 (Node's `node` threads: " +
          "chDB runs each query's own part on libuv's), ClickHouse's own threads):",
      );
      for (const name of ['a', 'b'] as const) {
        const of = (side: Side) => {
          const xs = cpu.get(`${name} c${POOL} ${side}`) ?? [];
          const m = (f: (x: { server: ThreadCpu; bench: ThreadCpu }) => number) => median(xs.map(f));
          return {
            total: m((x) => totalOf(x.server) + totalOf(x.bench)),
            server: m((x) => totalOf(x.server)),
            client: m((x) => totalOf(x.bench)),
            split: (t: 'server' | 'bench') =>
              `main ${m((x) => x[t].main).toFixed(2)}, libuv and V8 ${m((x) => x[t].node).toFixed(2)}, ClickHouse ${m((x) => x[t].engine).toFixed(2)}`,
          };
        };
        const api = of('api');
        const nat = of('raw natural');
        const rw = of('raw rewritten');
        console.log(
          `  (${name}) api ${api.total.toFixed(2)} (server ${api.server.toFixed(2)}: ${api.split('server')}; + client ${api.client.toFixed(2)}), in-process ${of('api in-process').total.toFixed(2)}, ` +
            `raw natural ${nat.total.toFixed(2)} (${nat.split('bench')}), raw rewritten ${rw.total.toFixed(2)} (${rw.split('bench')}); raw natural ÷ api ${(nat.total / api.total).toFixed(2)}`,
        );
      }
    }
    console.log('\ntargets (issue 15):');
    for (const v of verdicts) console.log(`  ${v}`);
    if (PROFILE) {
      for (const [name, c] of [
        ['a', 1],
        ['a', POOL],
        ['b', 1],
        ['b', POOL],
      ] as const) {
        const calls = cases[name];
        let n = 0;
        const profile = await server.profile(async () => {
          const t0 = performance.now();
          await Promise.all(
            Array.from({ length: c }, async () => {
              while (performance.now() - t0 < PROFILE_SECS * 1000) await apiRun(calls[n++ % calls.length].path);
            }),
          );
        });
        const file = path.join(os.tmpdir(), `pipit-endpoint-${name}-c${c}.cpuprofile`);
        fs.writeFileSync(file, JSON.stringify(profile));
        const parts = [...profileParts(profile)].sort((x, y) => y[1] - x[1]);
        const total = parts.reduce((a, [, us]) => a + us, 0);
        console.log(
          `\nprofile of the server process under (${name}) at c${c}: ${n} requests in ${PROFILE_SECS} s (load ${os.loadavg()[0].toFixed(1)}), main thread per request (${file}):`,
        );
        console.log('| part | µs per request | share |');
        console.log('| --- | --- | --- |');
        for (const [k, us] of parts) console.log(`| ${k} | ${(us / n).toFixed(0)} | ${((100 * us) / total).toFixed(1)}% |`);
      }
    }
    if (!BREAKDOWN) return;

    // Where the time goes, at concurrency 1: each part alone.
    const bare = Fastify({ logger: false });
    bare.get('/one', async (_req, reply) => reply.type('application/json; charset=UTF-8').send('{"x":1}'));
    // A 1 KB JSON answer sent whole, and through a PassThrough fed from an async function (the
    // way sendQuery hands on even a buffered result).
    const kb = Buffer.from(JSON.stringify({ data: Array.from({ length: 20 }, (_, i) => ({ country: 'ES', c: i, v: i / 3 })) }).slice(0, 1024));
    bare.get('/buffer', async (_req, reply) => reply.type('application/json; charset=UTF-8').send(kb));
    bare.get('/stream', async (_req, reply) => {
      const out = new PassThrough();
      (async () => {
        for await (const c of [kb]) if (!out.write(c)) await new Promise<void>((r) => out.once('drain', r));
        out.end();
      })();
      return reply.type('application/json; charset=UTF-8').send(out);
    });
    await bare.listen({ port: 0, host: '127.0.0.1' });
    const bareAddr = bare.server.address();
    const barePort = typeof bareAddr === 'object' && bareAddr ? bareAddr.port : 0;
    const drain = async (it: AsyncIterable<unknown>) => {
      for await (const c of it) void c;
    };
    const pipes = { a: (await app.services.pipes.find(ws, 'trivial_ep'))!, b: (await app.services.pipes.find(ws, 'agg_ep'))! };
    const nodeSql = { a: TRIVIAL_SQL, b: AGG_SQL };
    let k = 0;
    const partsOf = (name: 'a' | 'b'): Array<[string, () => Promise<unknown>]> => {
      const calls = cases[name];
      const pick = () => calls[k++ % calls.length];
      return [
        ['raw queryAsync (JSON)', () => rawRun(pick().sql, 0)],
        [
          'engine.select buffered (JSON, queryAsync)',
          async () => drain(await app.services.engine.select(pick().sql, { format: 'JSON', queryId: 'bench', limits, buffered: true })),
        ],
        [
          'queries.run + drain (JSON, buffered)',
          async () => {
            const c = pick();
            await drain(
              await app.services.queries.run(
                { sql: c.sql, queryParams: {}, caller: { token: 'bench', workspace: 'bench' }, userNames: (m: string) => m } as unknown as PreparedQuery,
                {
                  format: 'JSON',
                  queryId: 'bench',
                  buffered: true,
                },
              ),
            );
          },
        ],
        ['full endpoint request', () => apiRun(pick().path)],
        ['auth (token lookup)', () => app.services.access.authenticate(token)],
        ['pipes.find', () => app.services.pipes.find(ws, pipes[name].name)],
        ['render the node template alone', async () => render(nodeSql[name], pick().params as Record<string, ParamValue>, {})],
        [
          'prepare (catalog lists, render, expand, analysis)',
          () => {
            const c = pick();
            return app.services.queries.prepare(auth, `SELECT * FROM \`${pipes[name].name}\``, { params: c.params, testMode: false, underscore: pipes[name] });
          },
        ],
        ['bare Fastify + client round trip', () => httpGet(agent, barePort, '/one', {})],
        ['bare Fastify, 1 KB answer as a Buffer', () => httpGet(agent, barePort, '/buffer', {})],
        ['bare Fastify, 1 KB answer through a PassThrough', () => httpGet(agent, barePort, '/stream', {})],
      ];
    };
    const report = async (title: string, n: number, parts: Array<[string, () => Promise<unknown>]>) => {
      const acc = parts.map(() => ({ p50: [] as number[], p99: [] as number[] }));
      for (let r = 0; r < 3; r++) {
        for (const [i, [, fn]] of parts.entries()) {
          const lat: number[] = [];
          for (let j = 0; j < n; j++) {
            const t0 = performance.now();
            await fn();
            lat.push(performance.now() - t0);
          }
          lat.sort((x, y) => x - y);
          acc[i].p50.push(pct(lat, 50));
          acc[i].p99.push(pct(lat, 99));
        }
      }
      console.log(`\n${title} (ms per call, p50 / p99, medians of 3 passes of ${n}):`);
      for (const [i, [name]] of parts.entries()) console.log(`  ${name.padEnd(50)} ${median(acc[i].p50).toFixed(3)} / ${median(acc[i].p99).toFixed(3)}`);
    };
    await report('breakdown of (a) the trivial endpoint', TRIVIAL_N, partsOf('a'));
    await report('breakdown of (b) the parameterized aggregate', AGG_N, partsOf('b'));

    // The engine paths of (b) against raw queryAsync, interleaved call by call (the load changes
    // too fast on this machine for sequential blocks of 30-60 ms queries to compare).
    const pairedReport = async (title: string, n: number, parts: Array<[string, (i: number) => Promise<unknown>, (i: number) => Promise<unknown>]>) => {
      console.log(`\n${title} (ms; p50 of each side and median of the paired differences, over ${n} interleaved pairs, 3 passes):`);
      for (const [name, a, r] of parts) {
        const ps = [];
        for (let pass = 0; pass < 3; pass++)
          ps.push(
            await paired(
              n,
              async (i) => void (await a(i)),
              async (i) => void (await r(i)),
            ),
          );
        console.log(
          `  ${name.padEnd(64)} ${median(ps.map((p) => p.api.p50)).toFixed(3)} vs ${median(ps.map((p) => p.raw.p50)).toFixed(3)}: ${median(ps.map((p) => p.diff)).toFixed(3)}`,
        );
      }
    };
    const callB = (i: number) => cases.b[i % cases.b.length];
    const callA = (i: number) => cases.a[i % cases.a.length];
    await pairedReport('(b) paired against raw queryAsync (JSON)', AGG_N, [
      [
        'engine.select buffered vs raw queryAsync',
        async (i) => drain(await app.services.engine.select(callB(i).sql, { format: 'JSON', queryId: 'bench', limits, buffered: true })),
        (i) => rawRun(callB(i).sql, 0),
      ],
      ['full endpoint request vs raw queryAsync', (i) => apiRun(callB(i).path), (i) => rawRun(callB(i).sql, 0)],
      [
        'full endpoint request vs engine.select buffered',
        (i) => apiRun(callB(i).path),
        async (i) => drain(await app.services.engine.select(callB(i).sql, { format: 'JSON', queryId: 'bench', limits, buffered: true })),
      ],
    ]);
    // Is the extra of (b) the endpoint path, or the state a 30-60 ms scan leaves the machine in?
    // The trivial endpoint and the raw trivial query, each timed right after an untimed prelude:
    // nothing; a 30 ms idle pause; a raw aggregate of (b); a raw aggregate then a 5 ms pause
    // (chDB threads finishing would be done); a pass over 128 MB in JS (cache pollution alone).
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const big = Buffer.alloc(128 * 1024 * 1024, 1);
    let sink = 0;
    const preludes: Array<[string, (i: number) => Promise<unknown>]> = [
      ['nothing', async () => undefined],
      ['a 30 ms idle pause', () => sleep(30)],
      ['a raw aggregate of (b)', (i) => rawRun(callB(i).sql, 1)],
      [
        'a raw aggregate of (b), then a 5 ms pause',
        async (i) => {
          await rawRun(callB(i).sql, 1);
          await sleep(5);
        },
      ],
      [
        'reading 128 MB in JS',
        async () => {
          for (let j = 0; j < big.length; j += 64) sink += big[j];
        },
      ],
    ];
    console.log(
      `\n(a) timed right after an untimed prelude (ms; p50 of the trivial endpoint, of raw queryAsync, median paired difference, ` +
        `p50 of a bare Fastify round trip after the same prelude; ${AGG_N * 3} triples):`,
    );
    for (const [title, prelude] of preludes) {
      const timed = async (i: number, fn: () => Promise<unknown>) => {
        await prelude(i);
        const t0 = performance.now();
        await fn();
        return performance.now() - t0;
      };
      const xs: number[] = [];
      const ys: number[] = [];
      const zs: number[] = [];
      for (let i = 0; i < AGG_N * 3; i++) {
        const api = () => timed(i, () => apiRun(callA(i).path));
        const rw = () => timed(i, () => rawRun(callA(i).sql, 0));
        if (i % 2 === 0) {
          xs.push(await api());
          ys.push(await rw());
        } else {
          ys.push(await rw());
          xs.push(await api());
        }
        zs.push(await timed(i, () => httpGet(agent, barePort, '/one', {})));
      }
      console.log(
        `  after ${title.padEnd(44)} ${median(xs).toFixed(3)}  ${median(ys).toFixed(3)}  ${median(xs.map((x, i) => x - ys[i])).toFixed(3)}  ${median(zs).toFixed(3)}`,
      );
    }
    if (sink < 0) console.log(sink);
    await bare.close();

    // Timeline of one endpoint request: when the route hands the prepared query to the engine,
    // when the engine answers, when the body is handed on, when the client has it.
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
    for (const [name, n] of [
      ['a', TRIVIAL_N],
      ['b', AGG_N],
    ] as const) {
      const seg: number[][] = [[], [], [], []];
      for (let i = 0; i < n; i++) {
        marks = { run: 0, first: 0, last: 0 };
        const t0 = performance.now();
        await apiRun(cases[name][i % cases[name].length].path);
        const t1 = performance.now();
        seg[0].push(marks.run - t0);
        seg[1].push(marks.first - marks.run);
        seg[2].push(marks.last - marks.first);
        seg[3].push(t1 - marks.last);
      }
      const f = (xs: number[]) =>
        `${median(xs).toFixed(3)} / ${pct(
          [...xs].sort((x, y) => x - y),
          99,
        ).toFixed(3)}`;
      console.log(
        `\ntimeline of (${name}) through the endpoint (ms, p50 / p99): request sent → engine called ${f(seg[0])}; ` +
          `engine called → answer ${f(seg[1])}; answer → body handed on ${f(seg[2])}; body handed on → client has it ${f(seg[3])}`,
      );
    }
    queries.run = run;
  } finally {
    for (const s of raw) s.close();
    agent.destroy();
    serverAgent.destroy();
    for (const f of Object.values(floors)) f.child.kill();
    await server?.stop();
    await noCache?.stop();
    await app.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
