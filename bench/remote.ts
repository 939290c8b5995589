/**
 * `npm run bench -- remote`: the same ingest and endpoint workloads on the embedded engine and on the
 * remote engine (PIPIT_ENGINE_URL) against the ClickHouse-compatible test server
 * (`npm run engine-test-server`, chDB in another process), side by side, in one run:
 * (a) ingest: BENCH_REMOTE_ROWS (200,000) NDJSON rows through the Events API, ~10 MB requests from 2
 *     concurrent clients with wait=true (bench/ingest.ts's shape);
 * (b) endpoint, trivial: `%\nSELECT {{ Int32(x, 1) }} AS x`, BENCH_REMOTE_TRIVIAL (500) requests at
 *     concurrency 1 and 4;
 * (c) endpoint, aggregate over the ingested rows with a changing parameter, BENCH_REMOTE_AGG (100) requests.
 * Each server is a child process (`src/main.ts`); the modes alternate over BENCH_RUNS (2) runs, medians.
 * The test server is a test double, not a ClickHouse server: the remote figures measure Pipit's HTTP
 * path to an engine plus that double's own overhead (a chDB Session per request), not ClickHouse.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const ROWS = Number(process.env.BENCH_REMOTE_ROWS ?? 200_000);
const TRIVIAL_N = Number(process.env.BENCH_REMOTE_TRIVIAL ?? 500);
const AGG_N = Number(process.env.BENCH_REMOTE_AGG ?? 100);
const SCHEMA =
  'timestamp DateTime `json:$.timestamp`, session_id String `json:$.session_id`, action LowCardinality(String) `json:$.action`, value Float64 `json:$.value`';

function makeData(): Buffer[] {
  const acts = ['page_hit', 'click', 'scroll', 'purchase', 'signup'];
  const chunks: Buffer[] = [];
  let cur: string[] = [];
  let size = 0;
  for (let i = 0; i < ROWS; i++) {
    const l = JSON.stringify({
      timestamp: new Date(1700000000000 + i * 1000).toISOString(),
      session_id: `s-${i % 50000}`,
      action: acts[i % 5],
      value: i * 1.5,
    });
    if (size + l.length + 1 > 10 * 1024 * 1024) {
      chunks.push(Buffer.from(`${cur.join('\n')}\n`));
      cur = [];
      size = 0;
    }
    cur.push(l);
    size += l.length + 1;
  }
  if (cur.length) chunks.push(Buffer.from(`${cur.join('\n')}\n`));
  return chunks;
}

function startChild(args: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += String(d);
      const m = ready.exec(out);
      if (m) resolve({ child, match: m });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
}

const stop = (c: ChildProcess) =>
  new Promise<void>((r) => {
    if (c.exitCode !== null) return r();
    c.once('exit', () => r());
    c.kill('SIGTERM');
  });

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function call(url: string, method: string, token: string, body?: Buffer | string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const median = (xs: number[]) => pct(xs, 50);

async function load(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<{ p50: number; p99: number; rps: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t = performance.now();
        await fn(i);
        lat.push(performance.now() - t);
      }
    }),
  );
  return { p50: pct(lat, 50), p99: pct(lat, 99), rps: n / ((performance.now() - t0) / 1000) };
}

type Figures = Record<string, number>;

async function runMode(mode: 'embedded' | 'remote', data: Buffer[]): Promise<Figures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pipit-bench-${mode}-`));
  const children: ChildProcess[] = [];
  try {
    const env: Record<string, string> = { PIPIT_DATA_DIR: path.join(dir, 'pipit'), PIPIT_PORT: '0', PIPIT_LOG_LEVEL: 'silent', UV_THREADPOOL_SIZE: '16' };
    if (mode === 'remote') {
      const es = await startChild(
        ['test/engine-server/main.ts', '--port', '0', '--data', path.join(dir, 'engine')],
        { UV_THREADPOOL_SIZE: '16' },
        /listening on (\S+)/,
      );
      children.push(es.child);
      env.PIPIT_ENGINE_URL = es.match[1];
    }
    const srv = await startChild(['src/main.ts'], env, /Pipit listening on (http:\/\/127\.0\.0\.1:\d+)/);
    children.push(srv.child);
    const base = srv.match[1];
    const token = JSON.parse(fs.readFileSync(path.join(dir, 'pipit', 'tokens.json'), 'utf8')).workspace_admin_token as string;
    let r = await call(`${base}/v0/datasources?name=ev&schema=${encodeURIComponent(SCHEMA)}`, 'POST', token);
    if (r.status !== 200) throw new Error(`create: ${r.status} ${r.text}`);
    // (a) ingest
    let idx = 0;
    const t0 = performance.now();
    await Promise.all(
      [0, 1].map(async () => {
        for (let i = idx++; i < data.length; i = idx++) {
          const res = await call(`${base}/v0/events?name=ev&wait=true`, 'POST', token, data[i]);
          if (res.status !== 200) throw new Error(`events: ${res.status} ${res.text}`);
        }
      }),
    );
    const ingest = ROWS / ((performance.now() - t0) / 1000);
    const pipe = async (name: string, sql: string) => {
      r = await call(`${base}/v0/pipes?name=${name}&sql=${encodeURIComponent(sql)}`, 'POST', token);
      if (r.status !== 200) throw new Error(`pipe: ${r.status} ${r.text}`);
      const node = JSON.parse(r.text).nodes[0].name;
      r = await call(`${base}/v0/pipes/${name}/nodes/${node}/endpoint`, 'POST', token);
      if (r.status !== 200) throw new Error(`endpoint: ${r.status} ${r.text}`);
    };
    await pipe('trivial', '%\nSELECT {{ Int32(x, 1) }} AS x');
    await pipe('agg', '%\nSELECT action, count() c, avg(value) v FROM ev WHERE value > {{ Float64(min_value, 0) }} GROUP BY action');
    const ep = (p: string) => async (i: number) => {
      const res = await call(`${base}/v0/pipes/${p}.json?${p === 'trivial' ? `x=${i}` : `min_value=${(i % 5) * 1000}`}`, 'GET', token);
      if (res.status !== 200) throw new Error(`${p}: ${res.status} ${res.text}`);
    };
    await load(50, 2, ep('trivial'));
    const t1 = await load(TRIVIAL_N, 1, ep('trivial'));
    const t4 = await load(TRIVIAL_N * 2, 4, ep('trivial'));
    const a1 = await load(AGG_N, 1, ep('agg'));
    const a4 = await load(AGG_N * 2, 4, ep('agg'));
    return {
      ingest,
      trivial_c1_p50: t1.p50,
      trivial_c1_p99: t1.p99,
      trivial_c4_rps: t4.rps,
      agg_c1_p50: a1.p50,
      agg_c1_p99: a1.p99,
      agg_c4_rps: a4.rps,
    };
  } finally {
    for (const c of children.reverse()) await stop(c);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const data = makeData();
const runs: Record<'embedded' | 'remote', Figures[]> = { embedded: [], remote: [] };
for (let run = 0; run < RUNS; run++) {
  for (const mode of run % 2 ? (['remote', 'embedded'] as const) : (['embedded', 'remote'] as const)) {
    runs[mode].push(await runMode(mode, data));
    console.log(`run ${run + 1} ${mode}: ${JSON.stringify(runs[mode].at(-1))}`);
  }
}
const med = (mode: 'embedded' | 'remote', k: string) => median(runs[mode].map((f) => f[k]));
const rows: Array<[string, string, (v: number) => string]> = [
  ['ingest', `Events API ingest, ${ROWS} rows, wait=true (rows/s)`, (v) => Math.round(v).toLocaleString('en')],
  ['trivial_c1_p50', 'trivial endpoint, c=1, p50 (ms)', (v) => v.toFixed(2)],
  ['trivial_c1_p99', 'trivial endpoint, c=1, p99 (ms)', (v) => v.toFixed(2)],
  ['trivial_c4_rps', 'trivial endpoint, c=4 (req/s)', (v) => Math.round(v).toString()],
  ['agg_c1_p50', `aggregate endpoint over ${ROWS} rows, c=1, p50 (ms)`, (v) => v.toFixed(2)],
  ['agg_c1_p99', 'aggregate endpoint, c=1, p99 (ms)', (v) => v.toFixed(2)],
  ['agg_c4_rps', 'aggregate endpoint, c=4 (req/s)', (v) => Math.round(v).toString()],
];
console.log('\n| workload | embedded | remote (test server) |\n| --- | --- | --- |');
for (const [k, label, f] of rows) console.log(`| ${label} | ${f(med('embedded', k))} | ${f(med('remote', k))} |`);
agent.destroy();
