/**
 * `npx tsx bench/endpoint-ab.ts`: an A/B of server variants, each in its own process, on the
 * trivial endpoint (a) (`SELECT {{Int32(x, 1)}} AS x`) or, with AB_CASE=b, the parameterized
 * aggregate (b) over AB_ROWS (1,000,000) rows (bench/endpoint-cases.ts; each Pipit variant loads
 * them through a copy pipe, as bench/endpoint.ts does), or with AB_CASE=s (a) plus a `sleep` of
 * AB_SLEEP_MS (6) inside the engine (a long engine wait without a scan), at concurrency 1. Not
 * part of `npm run bench`: a tool for finding what a start option or a code change costs per
 * request.
 *
 * Each variant is a Pipit server started as `npm start` starts it unless its spec says otherwise,
 * on its own temporary data directory, its stdout going to /dev/null. They are driven in turn, in
 * blocks of AB_N (1,500) requests with one keep-alive node:http client, AB_ROUNDS (6) rounds, the
 * order rotating; per block: the server main thread's CPU per request
 * (`/proc/<pid>/task/<pid>/schedstat`, exact), the whole process's, the client's, and the p50
 * round trip. Medians over the rounds (the per-round figures are printed too: on a loaded
 * machine, compare variants round by round).
 *
 * AB_VARIANTS: `;`-separated `name=spec`, spec a space-separated list of `KEY=value` environment
 * settings and node options (`--import=<file>` preloads, e.g. bench/endpoint-timeline.mjs), and
 * optionally `src` (run src/main.ts through tsx instead of scripts/start.mjs), `pipe` (stdout into
 * a `cat` process through a FIFO, as a log reader such as journald or a container runtime reads
 * it; its CPU per request is the "reader" column) or the absolute path of another checkout (its
 * scripts/start.mjs; build its bundle first). Two specs are not server processes: `inproc` (a
 * server created in this process from the sources, PIPIT_LOG_LEVEL from the spec or silent, as
 * bench/endpoint.ts's in-process server) and `raw` (one chDB Session in this process with default
 * settings running the natural SQL, `SELECT toInt32(<x>) AS x`, FORMAT JSON; on the inproc
 * server's data directory when one is listed before it; for (b) on its own table `bench_raw.events`
 * there, one part). A raw spec may add `set:<name>=<value>` words (session settings, e.g. Pipit's
 * limit profile one by one) and `pipit` (the SQL in Pipit's form: marker comment, typed literals
 * from strings, the table aliased; or one of those alone: `marker`, `typed`, `alias`); the variant
 * named `raw` is the reference of the differences. Run this tool with UV_THREADPOOL_SIZE=24 for
 * those two. The "client" column is this process's main thread per request (for inproc and raw
 * the whole request: client, server and engine calls share it).
 * `floor` is the least an endpoint server in its own process can be: bench/floor.ts's chDB server
 * (node:http, one chDB Session with default settings running the natural SQL; for (b) on its own
 * copy of the rows); its spec's KEY=value words go to its environment (FLOOR_CONNECTION_ARGS,
 * FLOOR_SETTINGS: an engine option tried on the floor alone).
 * AB_CONCURRENCY (1): blocks are driven by that many workers sharing the agent (raw variants get a
 * Session each), and requests per second are printed; the server's CPU is also split by thread group
 * (main; libuv and V8, where chDB runs each query's own part; ClickHouse's own threads), as
 * bench/endpoint.ts splits it at c4.
 * AB_PAIRED=1: instead of blocks, the variants are interleaved request by request (the order
 * rotating), AB_N requests each per round, as bench/endpoint.ts measures c1; each round then also
 * gives the median of the paired differences against `raw` (when listed), and the server main
 * thread's context switches per request.
 * Besides the wall time, each request's time inside the engine is read where the serving side
 * measures it: "engine" is ClickHouse's own `statistics.elapsed` of the JSON answer (every side),
 * "server" the serving process's wall time around its engine call (Pipit's x-tb-statistics
 * elapsed: admission and engine.select; the floor's queryAsync; raw's whole call).
 * Default: the differences between the in-process bench server and `npm start`'s, with both
 * references.
 */
import { adminTokenWhenReady } from './server-ready.js';
import { cpuBetween, processCpuMs, threadTimes } from './thread-cpu.js';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AGG_SQL,
  aggCombos,
  EVENTS_COLUMNS,
  EVENTS_SCHEMA,
  naturalAgg,
  naturalSleep,
  naturalTrivial,
  rowsSql,
  sleepSql,
  TRIVIAL_SQL,
  trivialCombos,
} from './endpoint-cases.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.AB_N ?? 1500);
const ROUNDS = Number(process.env.AB_ROUNDS ?? 6);
const CASE = process.env.AB_CASE === 'b' || process.env.AB_CASE === 's' ? process.env.AB_CASE : 'a';
const ROWS = Number(process.env.AB_ROWS ?? 1_000_000);
const PAIRED = process.env.AB_PAIRED === '1';
const CONCURRENCY = Number(process.env.AB_CONCURRENCY ?? 1);
const SLEEP_MS = Number(process.env.AB_SLEEP_MS ?? 6);
const COMBOS = CASE === 'b' ? aggCombos : trivialCombos;
const PIPE = CASE === 'b' ? 'agg_ep' : CASE === 's' ? 'sleep_ep' : 'trivial_ep';
const query = (i: number) => new URLSearchParams(COMBOS[i % COMBOS.length]).toString();
const VARIANTS =
  process.env.AB_VARIANTS ??
  'start=--enable-source-maps;no-source-maps=;silent=--enable-source-maps PIPIT_LOG_LEVEL=silent;tsx-src=src PIPIT_LOG_LEVEL=silent;inproc=inproc;raw=raw';

interface Variant {
  name: string;
  /** The server process; undefined for inproc and raw (this process). */
  child?: ChildProcess;
  /** The process reading its stdout (`pipe`). */
  reader?: ChildProcess;
  /** Request i (parameter combination i mod 20) from worker w (AB_CONCURRENCY); what the serving side measured of it. */
  call: (i: number, w: number) => Promise<Inside>;
  stop: () => Promise<void>;
  main: number[];
  proc: number[];
  /** Per round: the server process's libuv and V8 threads, and ClickHouse's (µs per request). */
  uv: number[];
  ch: number[];
  /** Per round: requests per second (blocks); this process's threads, all (µs per request: for raw, its queries). */
  rps: number[];
  self: number[];
  client: number[];
  readerCpu: number[];
  p50: number[];
  /** Per round: the server main thread's context switches per request, voluntary and involuntary. */
  vol: number[];
  invol: number[];
  /** Per round: medians of the engine's own elapsed and of the server's engine call (ms). */
  engine: number[];
  server: number[];
  /** Per round (AB_PAIRED): the median of the paired differences against raw (ms). */
  diff: number[];
  /** Per round, per step of Inside.steps: the median (ms). */
  steps: number[][];
  /** The current round's latencies (AB_PAIRED). */
  lat: number[];
}

/** A request's time inside the serving process (ms): ClickHouse's own elapsed; the server's engine call. */
interface Inside {
  engine: number;
  server: number;
  /**
   * With an `x-timeline` header (the floor; a Pipit server with bench/endpoint-timeline.mjs
   * preloaded), the round trip split on the shared monotonic clock (ms): sent → the server's
   * `request` event; → its queryAsync call; → resolved; → head written; → the client's `response`
   * event; → the body read. raw: the whole call is "engine" (queryAsync call → resolved).
   */
  steps?: number[];
}
const STEPS = [
  'client sent → server request event',
  'request → queryAsync call',
  'queryAsync → resolved',
  'resolved → head written',
  'head written → client response',
  'response → body read',
];
const mono = () => Number(process.hrtime.bigint()) / 1e6;
/** ClickHouse's `statistics.elapsed` (ms) of a JSON answer. */
const engineMs = (body: Buffer) => 1000 * (JSON.parse(body.toString()) as { statistics: { elapsed: number } }).statistics.elapsed;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function mainCpuMs(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}
/** The main thread's context switches so far (voluntary: it slept and was woken; involuntary: preempted). */
function mainSwitches(pid: number): { vol: number; invol: number } {
  const st = fs.readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return { vol: Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)![1]), invol: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)![1]) };
}
/** GET, the whole body read; what the server measured of it (Pipit's x-tb-statistics, the floor's header). */
function get(agent: http.Agent, port: number, p: string, token: string): Promise<Inside> {
  return new Promise((resolve, reject) => {
    const sent = mono();
    const req = http.get({ host: '127.0.0.1', port, path: p, agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const response = mono();
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const read = mono();
        const body = Buffer.concat(parts);
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${body.toString().slice(0, 300)}`));
        const floor = res.headers['x-floor-engine-ms'];
        const stats = res.headers['x-tb-statistics'];
        const server = floor ? Number(floor) : stats ? 1000 * (JSON.parse(String(stats)) as { elapsed: number }).elapsed : Number.NaN;
        const tl = res.headers['x-timeline'];
        const marks = tl ? [sent, ...String(tl).split(',').map(Number), response, read] : undefined;
        resolve({ engine: engineMs(body), server, steps: marks?.slice(1).map((m, i) => m - marks[i]) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** The events data source, its rows through a copy pipe (as bench/endpoint.ts loads its server process), and (b)'s pipe. */
async function setUpAgg(base: string, token: string): Promise<void> {
  const post = async (p: string, body: string, type: string) => {
    const r = await fetch(`${base}${p}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': type }, body });
    if (!r.ok) throw new Error(`POST ${p}: ${r.status} ${await r.text()}`);
    return r.json() as Promise<Record<string, unknown>>;
  };
  const form = 'application/x-www-form-urlencoded';
  await post(
    '/v0/datasources?name=events&mode=create&format=ndjson&engine_sorting_key=timestamp',
    new URLSearchParams({ schema: EVENTS_SCHEMA }).toString(),
    form,
  );
  await post(
    '/v0/pipes',
    JSON.stringify({ name: 'load_events', nodes: [{ name: 'load', sql: rowsSql(ROWS), type: 'copy', target_datasource: 'events' }] }),
    'application/json',
  );
  const job = (await post('/v0/pipes/load_events/copy', '', form)).job as { id: string };
  for (;;) {
    const j = (await (await fetch(`${base}/v0/jobs/${job.id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { status: string };
    if (j.status === 'done') break;
    if (j.status === 'error' || j.status === 'cancelled') throw new Error(`loading the rows: ${JSON.stringify(j)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let inprocEngineDir: string | undefined;
let rawDir: string | undefined;

async function start(name: string, spec: string): Promise<Variant> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pipit-ab-${name}-`));
  const words = spec.split(' ').filter(Boolean);
  const stats = {
    main: [],
    proc: [],
    uv: [],
    ch: [],
    rps: [],
    self: [],
    client: [],
    readerCpu: [],
    p50: [],
    engine: [],
    server: [],
    diff: [],
    lat: [],
    steps: [],
    vol: [],
    invol: [],
  };
  if (words[0] === 'raw') {
    const { Session } = await import('chdb');
    // chDB holds one data directory per process: the in-process server's, when there is one, else
    // the first raw variant's (later raw variants share it and its table).
    rawDir ??= inprocEngineDir ?? dir;
    const sessions = Array.from({ length: CONCURRENCY }, () => new Session(rawDir!));
    const session = sessions[0];
    if (CASE === 'b') {
      await session.queryAsync('CREATE DATABASE IF NOT EXISTS bench_raw');
      await session.queryAsync(`CREATE TABLE IF NOT EXISTS bench_raw.events (${EVENTS_COLUMNS}) ENGINE = MergeTree ORDER BY timestamp`);
      if ((await session.queryAsync('SELECT count() FROM bench_raw.events', { format: 'TSV' })).text().trim() === '0') {
        await session.queryAsync(`INSERT INTO bench_raw.events ${rowsSql(ROWS)}`);
        await session.queryAsync('OPTIMIZE TABLE bench_raw.events FINAL');
      }
    }
    // `set:<name>=<value>`: a session setting; `pipit`: the SQL in Pipit's form (a marker comment,
    // parameters as typed literals from strings, the table aliased), for the same parameters.
    for (const w of words.slice(1)) if (w.startsWith('set:')) for (const s of sessions) await s.queryAsync(`SET ${w.slice(4)}`);
    // Its parts alone: `marker`, `typed`, `alias`.
    const form = (part: string) => words.includes('pipit') || words.includes(part);
    const sql = (i: number) => {
      const p = COMBOS[i % COMBOS.length];
      if (!['marker', 'typed', 'alias'].some(form))
        return CASE === 'b' ? naturalAgg('bench_raw.events', p) : CASE === 's' ? naturalSleep(p, SLEEP_MS) : naturalTrivial(p);
      const marker = form('marker') ? `/* pipit:${crypto.randomUUID()} */ ` : '';
      const lit = (v: string, type: string) => (form('typed') ? `to${type}('${v}')` : type === 'Int32' ? `toInt32(${Number(v)})` : String(Number(v)));
      if (CASE === 'a') return `${marker}SELECT ${lit(p.x, 'Int32')} AS x`;
      if (CASE === 's') return `${marker}SELECT ${lit(p.x, 'Int32')} AS x, sleep(${SLEEP_MS / 1000}) AS s`;
      return (
        `${marker}SELECT country, count() c, avg(value) v FROM bench_raw.events${form('alias') ? ' AS `events`' : ''} WHERE value > ${lit(p.min_value, 'Float64')}` +
        `${p.country ? ` AND country = '${p.country}'` : ''} GROUP BY country`
      );
    };
    return {
      name,
      ...stats,
      call: async (i, w) => {
        const q = sql(i);
        const t = performance.now();
        const r = await sessions[w].queryAsync(q, { format: 'JSON' });
        const b = r.bytes();
        const server = performance.now() - t;
        return { engine: engineMs(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), server, steps: [0, 0, server, 0, 0, 0] };
      },
      stop: async () => {
        for (const s of sessions) s.close();
      },
    };
  }
  if (words[0] === 'floor') {
    const port = 30000 + Math.floor(Math.random() * 20000);
    const c = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'bench', 'floor.ts'), '--serve', 'chdb', String(port), dir, CASE, String(CASE === 's' ? SLEEP_MS : ROWS)],
      {
        cwd: ROOT,
        // KEY=value words of the spec go to its environment (FLOOR_CONNECTION_ARGS, FLOOR_SETTINGS).
        env: {
          ...process.env,
          UV_THREADPOOL_SIZE: '16',
          ...Object.fromEntries(words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)])),
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    process.once('exit', () => c.kill('SIGKILL'));
    await new Promise((r) => c.stdout!.once('data', r));
    const agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(4, CONCURRENCY) });
    return {
      name,
      child: c,
      ...stats,
      call: (i) => get(agent, port, `/q?${query(i)}`, ''),
      stop: async () => {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await exited;
      },
    };
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PIPIT_DATA_DIR: dir,
    PIPIT_PORT: '0',
    PIPIT_HOST: '127.0.0.1',
    // npm start's pool for its default sessions (a spec's PIPIT_ENGINE_SESSIONS=... and UV_THREADPOOL_SIZE=... override).
    UV_THREADPOOL_SIZE: '24',
  };
  delete env.PIPIT_LOG_LEVEL;
  const nodeArgs: string[] = [];
  let root = ROOT;
  let src = false;
  let pipe = false;
  for (const w of words) {
    if (w === 'src' || w === 'inproc') src = true;
    else if (w === 'pipe') pipe = true;
    else if (w.startsWith('/')) root = w;
    else if (/^[A-Z_]+=/.test(w)) env[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
    else nodeArgs.push(w);
  }
  let port: number;
  let token: string;
  let child: ChildProcess | undefined;
  let reader: ChildProcess | undefined;
  let stop: () => Promise<void>;
  if (words[0] === 'inproc') {
    const { createApp } = await import('../src/app.js');
    const { loadConfig } = await import('../src/config/config.js');
    const app = await createApp(loadConfig({}, { dataDir: dir, port: 0, host: '127.0.0.1', logLevel: env.PIPIT_LOG_LEVEL ?? 'silent' }));
    await app.http.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.http.server.address();
    port = typeof addr === 'object' && addr ? addr.port : 0;
    token = app.services.localTokens.workspace_admin_token;
    inprocEngineDir = path.join(dir, 'engine');
    stop = () => app.close();
  } else {
    port = 30000 + Math.floor(Math.random() * 20000);
    env.PIPIT_PORT = String(port);
    const args = src ? [...nodeArgs, '--import', 'tsx', path.join(root, 'src', 'main.ts')] : [...nodeArgs, path.join(root, 'scripts', 'start.mjs')];
    const out = fs.openSync('/dev/null', 'w');
    let stdout = out;
    if (pipe) {
      // A FIFO between the server and `cat`: only those two hold its ends.
      const fifo = path.join(dir, 'stdout.fifo');
      execFileSync('mkfifo', [fifo]);
      const rd = spawn('cat', [fifo], { stdio: ['ignore', out, 'inherit'] });
      reader = rd;
      process.once('exit', () => rd.kill('SIGKILL'));
      stdout = fs.openSync(fifo, 'w');
    }
    const c = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', stdout, 'pipe'] });
    if (stdout !== out) fs.closeSync(stdout);
    child = c;
    process.once('exit', () => c.kill('SIGKILL'));
    token = await adminTokenWhenReady(c, port, name);
    stop = async () => {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    };
  }
  if (CASE === 'b') await setUpAgg(`http://127.0.0.1:${port}`, token);
  const r = await fetch(`http://127.0.0.1:${port}/v0/pipes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: PIPE,
      nodes: [{ name: 'n', sql: CASE === 'b' ? AGG_SQL : CASE === 's' ? sleepSql(SLEEP_MS) : TRIVIAL_SQL, type: 'endpoint' }],
    }),
  });
  if (!r.ok) throw new Error(`${name}: creating the pipe: ${r.status} ${await r.text()}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(4, CONCURRENCY) });
  return { name, child, reader, ...stats, call: (i) => get(agent, port, `/v0/pipes/${PIPE}.json?${query(i)}`, token), stop };
}

/** CPU snapshots of a variant's processes (ms). */
function cpuOf(v: Variant) {
  const pid = v.child?.pid;
  return {
    main: pid ? mainCpuMs(pid) : 0,
    proc: pid ? processCpuMs(pid) : 0,
    threads: pid ? threadTimes(pid) : undefined,
    client: mainCpuMs(process.pid),
    self: processCpuMs(process.pid),
    reader: v.reader ? processCpuMs(v.reader.pid!) : 0,
    switches: pid ? mainSwitches(pid) : { vol: 0, invol: 0 },
  };
}
/** Records a measurement of n requests: CPU per request since `c0`, latencies, what the server measured. */
function record(v: Variant, n: number, c0: ReturnType<typeof cpuOf>, lat: number[], inside: Inside[]): void {
  const c1 = cpuOf(v);
  v.client.push(((c1.client - c0.client) * 1000) / n);
  v.self.push(((c1.self - c0.self) * 1000) / n);
  v.readerCpu.push(((c1.reader - c0.reader) * 1000) / n);
  v.main.push(((c1.main - c0.main) * 1000) / n);
  v.proc.push(((c1.proc - c0.proc) * 1000) / n);
  const g = c0.threads && c1.threads ? cpuBetween(c0.threads, c1.threads) : undefined;
  v.uv.push(g ? (g.node * 1000) / n : 0);
  v.ch.push(g ? (g.engine * 1000) / n : 0);
  v.vol.push((c1.switches.vol - c0.switches.vol) / n);
  v.invol.push((c1.switches.invol - c0.switches.invol) / n);
  v.p50.push(median(lat));
  v.engine.push(median(inside.map((x) => x.engine)));
  v.server.push(median(inside.map((x) => x.server)));
  if (inside.every((x) => x.steps)) v.steps.push(STEPS.map((_, k) => median(inside.map((x) => x.steps![k]))));
}

async function block(v: Variant, n: number): Promise<void> {
  const lat: number[] = [];
  const inside: Inside[] = [];
  const c0 = cpuOf(v);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        const x = await v.call(i, w);
        lat.push(performance.now() - t);
        inside.push(x);
      }
    }),
  );
  v.rps.push(n / ((performance.now() - t0) / 1000));
  record(v, n, c0, lat, inside);
}

/**
 * One round of AB_PAIRED: request i of every variant back to back, the order rotating with i and
 * the round. The CPU columns stay per variant (each process serves only its own requests; the
 * client column then is the whole round's client work divided by all requests).
 */
async function pairedRound(vs: Variant[], n: number, round: number): Promise<void> {
  const c0 = vs.map(cpuOf);
  const inside = vs.map(() => [] as Inside[]);
  for (const v of vs) v.lat = [];
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < vs.length; k++) {
      const j = (i + round + k) % vs.length;
      const t = performance.now();
      const x = await vs[j].call(i, 0);
      vs[j].lat.push(performance.now() - t);
      inside[j].push(x);
    }
  }
  const ref = vs.find((v) => v.name === 'raw');
  for (const [j, v] of vs.entries()) {
    record(v, n * vs.length, { ...c0[j], main: c0[j].main, proc: c0[j].proc }, v.lat, inside[j]);
    // The server processes' CPU is per own request, not per request of the round.
    v.main[v.main.length - 1] *= vs.length;
    v.proc[v.proc.length - 1] *= vs.length;
    v.uv[v.uv.length - 1] *= vs.length;
    v.ch[v.ch.length - 1] *= vs.length;
    v.readerCpu[v.readerCpu.length - 1] *= vs.length;
    v.vol[v.vol.length - 1] *= vs.length;
    v.invol[v.invol.length - 1] *= vs.length;
    if (ref) v.diff.push(median(v.lat.map((x, i) => x - ref.lat[i])));
  }
}

async function main() {
  const specs = VARIANTS.split(';').map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)] as const);
  const vs: Variant[] = [];
  for (const [name, spec] of specs) vs.push(await start(name, spec));
  console.log(
    `load ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}; ${vs.length} variants started; warming up`,
  );
  for (const v of vs) await block(v, CASE === 'a' ? 2000 : 100);
  for (const v of vs)
    for (const xs of [v.main, v.proc, v.uv, v.ch, v.rps, v.self, v.client, v.readerCpu, v.p50, v.engine, v.server, v.diff, v.steps, v.vol, v.invol])
      xs.length = 0;
  for (let r = 0; r < ROUNDS; r++) {
    if (PAIRED) await pairedRound(vs, N, r);
    else for (let k = 0; k < vs.length; k++) await block(vs[(r + k) % vs.length], N);
    console.log(
      `round ${r + 1}: ${vs.map((v) => `${v.name} ${v.main.at(-1)!.toFixed(0)}µs/${v.p50.at(-1)!.toFixed(3)}ms${PAIRED && v.diff.length ? `/${v.diff.at(-1)!.toFixed(3)}` : ''}`).join('  ')}  load ${os.loadavg()[0].toFixed(1)}`,
    );
  }
  const ref = vs.find((v) => v.name === 'raw');
  console.log(
    `\ncase (${CASE}), ${PAIRED ? 'paired' : `blocks at concurrency ${CONCURRENCY}`}, ${ROUNDS} rounds of ${N}; load ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n` +
      'variant: server main thread µs/request, server process µs/request, client (this process) main thread µs/request, reader µs/request, ' +
      'p50 ms, engine (ClickHouse elapsed) ms, server engine call ms, p50 − raw p50, paired median − raw, server main thread context switches per request ' +
      '(voluntary+involuntary); server libuv and V8 threads, ClickHouse threads µs/request; this process, all threads µs/request (raw: its queries); ' +
      'requests per second (medians of the rounds)',
  );
  for (const v of vs)
    console.log(
      `${v.name.padEnd(20)} ${[v.main, v.proc, v.client, v.readerCpu].map((xs) => median(xs).toFixed(0).padStart(6)).join(' ')} ${[v.p50, v.engine, v.server].map((xs) => median(xs).toFixed(3).padStart(8)).join(' ')}` +
        (ref ? ` ${(median(v.p50) - median(ref.p50)).toFixed(3).padStart(7)}` : '') +
        (ref && v.diff.length ? ` ${median(v.diff).toFixed(3).padStart(7)}` : '') +
        (v.child ? ` ${median(v.vol).toFixed(2)}+${median(v.invol).toFixed(2)} ${median(v.uv).toFixed(0)} ${median(v.ch).toFixed(0)}` : '') +
        ` ${median(v.self).toFixed(0)}` +
        (v.rps.length ? ` ${median(v.rps).toFixed(0)}/s` : ''),
    );
  const timed = vs.filter((v) => v.steps.length);
  if (timed.length) {
    console.log(`\nthe round trip by step (ms, medians of the rounds of each step's median): ${timed.map((v) => v.name).join(' / ')}`);
    for (const [k, step] of STEPS.entries()) console.log(`  ${step.padEnd(40)} ${timed.map((v) => median(v.steps.map((s) => s[k])).toFixed(3)).join(' / ')}`);
  }
  for (const v of vs) await v.stop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
