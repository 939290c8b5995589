/**
 * `npm run bench -- ingest`: Events API ingest throughput against raw chDB in the same run, as ratios.
 * (a) 1M events (7 columns: a plain `YYYY-MM-DD hh:mm:ss` DateTime, LowCardinality, a JSON-string
 *     `payload` column, ...) as ~8 MB NDJSON requests from 2 concurrent clients with wait=true
 *     (keep-alive `node:http` requests of the prebuilt bodies: Node's fetch costs its process ~4–5 ms
 *     of CPU per MB sent, `node:http` ~0.5, and the clients share the machine's cores with the
 *     server while raw chDB has no client; the fetch figure is printed as an extra line), vs
 *     what a user would otherwise run: raw chDB with default settings, `session.insert`
 *     (JSONEachRow) of the same bytes from 2 concurrent Sessions into an equivalent MergeTree table
 *     (and, as an extra line, the former reference: one Session with date_time_input_format=best_effort);
 * (b) requests/s of 100-row requests at concurrency 8 (Node fetch clients) with the default 202;
 * (c) Data Sources API appends (`mode=append`) of 2 requests' data as NDJSON and as CSV, one at a
 *     time: the server's CPU per MB (no target; an extra line).
 * The server runs as a child process (chDB allows one data directory per process), from the built
 * JavaScript as `npm start` runs it (dist/server/main.mjs; `npm run build:server`). Each run
 * alternates which side goes first. Prints each target of issue 15 and whether it holds.
 * Also prints CPU time per MB for (a) (the server's, from /proc; raw chDB's, the bench process's),
 * whose ratio load inflates far less than throughput: on a loaded machine it is the better guide;
 * and for (b) the CPU per request of the server and of the bench's own fetch clients (which share
 * the machine's cores with the server: on 2 cores their cost bounds the rate too).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const SCHEMA =
  'timestamp DateTime `json:$.timestamp`, session_id String `json:$.session_id`, action LowCardinality(String) `json:$.action`, ' +
  'version String `json:$.version`, value Float64 `json:$.value`, path String `json:$.path`, payload String `json:$.payload`';
const DDL = 'timestamp DateTime, session_id String, action LowCardinality(String), version String, value Float64, path String, payload String';
const REQUEST_BYTES = 8 * 1024 * 1024;
const plainTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

/** The requests' bodies, built once (each a Buffer over its own ArrayBuffer, as fetch takes it). */
function makeData(): Buffer<ArrayBuffer>[] {
  const acts = ['page_hit', 'click', 'scroll', 'purchase', 'signup'];
  const chunks: Buffer<ArrayBuffer>[] = [];
  let cur: string[] = [];
  let size = 0;
  for (let i = 0; i < ROWS; i++) {
    const l = JSON.stringify({
      timestamp: plainTime(1700000000000 + i * 1000),
      session_id: `s-${i % 50000}-0123456789abcdef`,
      action: acts[i % 5],
      version: '1',
      value: i * 1.5,
      path: `/p/${i % 1000}/index.html`,
      payload: JSON.stringify({ user_agent: 'Mozilla/5.0', locale: ['en-US', 'es-ES', 'ja-JP'][i % 3], referrer: `https://example.com/${i % 97}`, n: i % 10 }),
    });
    if (size + l.length + 1 > REQUEST_BYTES) {
      chunks.push(Buffer.from(cur.join('\n') + '\n'));
      cur = [];
      size = 0;
    }
    cur.push(l);
    size += l.length + 1;
  }
  if (cur.length) chunks.push(Buffer.from(cur.join('\n') + '\n'));
  return chunks;
}

async function startServer(dir: string, port: number): Promise<ChildProcess> {
  const built = fs.existsSync('dist/server/main.mjs');
  if (!built) console.log('dist/server/main.mjs is not built (npm run build:server): running the sources through tsx');
  const child = spawn(process.execPath, built ? ['dist/server/main.mjs'] : ['--import', 'tsx', 'src/main.ts'], {
    env: {
      ...process.env,
      PIPIT_DATA_DIR: dir,
      PIPIT_PORT: String(port),
      PIPIT_LOG_LEVEL: 'silent',
      UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    child.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return child;
}

/** CSV of NDJSON rows (fields in the schema's order, every field quoted). */
function toCsv(ndjson: Buffer): Buffer<ArrayBuffer> {
  const cols = DDL.split(', ').map((c) => c.split(' ')[0]);
  const q = (v: unknown) => `"${String(v).replace(/"/g, '""')}"`;
  const lines = ndjson.toString().split('\n').filter(Boolean);
  return Buffer.from(lines.map((l) => cols.map((c) => q((JSON.parse(l) as Record<string, unknown>)[c])).join(',')).join('\n') + '\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** CPU ms (user + system) a process has used so far, from /proc (Linux; clock ticks of 10 ms); NaN elsewhere. */
function procCpuMs(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return Number.NaN;
  }
}
const ownCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function main() {
  const chunks = makeData();
  const totalBytes = chunks.reduce((n, c) => n + c.length, 0);
  console.log(`data: ${ROWS} rows, ${(totalBytes / 1e6).toFixed(1)} MB in ${chunks.length} requests`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-bench-'));
  const port = 30000 + Math.floor(Math.random() * 10000);
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer(path.join(tmp, 'server'), port);
  const { admin_token: token } = await (await fetch(`${base}/tokens`)).json();
  const auth = { authorization: `Bearer ${token}` };
  const agent = new http.Agent({ keepAlive: true });
  /** POST of a prebuilt body over a keep-alive connection; the status code. */
  const post = (pathAndQuery: string, body: Buffer) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: 'POST', path: pathAndQuery, agent, headers: { ...auth, 'content-length': body.length } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const raw = [new Session(path.join(tmp, 'raw')), new Session(path.join(tmp, 'raw'))];
  await raw[0].queryAsync('CREATE DATABASE IF NOT EXISTS b');
  const apiMBs: number[] = [];
  const fetchMBs: number[] = [];
  const fetchCpu: number[] = [];
  const rawMBs: number[] = [];
  const oldMBs: number[] = [];
  const rps: number[] = [];
  const smallCpu: number[] = [];
  const clientCpu: number[] = [];
  const apiCpu: number[] = [];
  const rawCpu: number[] = [];
  const appendCpu: Record<'ndjson' | 'csv', number[]> = { ndjson: [], csv: [] };
  const appendData = { ndjson: chunks.slice(0, 2), csv: chunks.slice(0, 2).map(toCsv) };
  /** Sends every chunk from 2 workers through `send`; MB/s. */
  const twoClients = async (send: (c: Buffer<ArrayBuffer>, worker: number) => Promise<void>) => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      [0, 1].map(async (w) => {
        while (next < chunks.length) await send(chunks[next++], w);
      }),
    );
    return totalBytes / 1e6 / ((performance.now() - t0) / 1000);
  };
  try {
    for (let run = 0; run < RUNS; run++) {
      const name = `bench_${run}`;
      await fetch(`${base}/v0/datasources?name=${name}&mode=create&format=ndjson`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ schema: SCHEMA }).toString(),
      });
      await raw[0].queryAsync(`CREATE TABLE b.t${run} (${DDL}) ENGINE = MergeTree ORDER BY timestamp`);
      await raw[0].queryAsync(`CREATE TABLE b.o${run} (${DDL}) ENGINE = MergeTree ORDER BY timestamp`);
      const sides: Record<string, () => Promise<void>> = {
        // (a) Events API, 2 concurrent clients, wait=true.
        api: async () => {
          const c0 = procCpuMs(server.pid!);
          apiMBs.push(
            await twoClients(async (c) => {
              const status = await post(`/v0/events?name=${name}&wait=true`, c);
              if (status !== 200) throw new Error(`events ${status}`);
            }),
          );
          apiCpu.push((procCpuMs(server.pid!) - c0) / (totalBytes / 1e6));
        },
        // The same with Node's fetch as the clients (an extra line: fetch copies each body and costs
        // the bench's process several times what the server's body handling does).
        fetch: async () => {
          const c0 = procCpuMs(server.pid!);
          fetchMBs.push(
            await twoClients(async (c) => {
              const r = await fetch(`${base}/v0/events?name=${name}&wait=true`, { method: 'POST', headers: auth, body: c });
              if (r.status !== 200) throw new Error(`events ${r.status} ${await r.text()}`);
              await r.arrayBuffer();
            }),
          );
          fetchCpu.push((procCpuMs(server.pid!) - c0) / (totalBytes / 1e6));
        },
        // Raw chDB as a user would run it: default settings, 2 Sessions.
        raw: async () => {
          const c0 = ownCpuMs();
          rawMBs.push(await twoClients((c, w) => raw[w].insert({ table: `b.t${run}`, values: c, format: 'JSONEachRow' }).then(() => undefined)));
          rawCpu.push((ownCpuMs() - c0) / (totalBytes / 1e6));
        },
        // The former reference: one Session, best_effort date parsing.
        old: async () => {
          const t1 = performance.now();
          for (const c of chunks)
            await raw[0].insert({ table: `b.o${run}`, values: c, format: 'JSONEachRow', settings: { date_time_input_format: 'best_effort' } });
          oldMBs.push(totalBytes / 1e6 / ((performance.now() - t1) / 1000));
        },
      };
      const order = run % 2 === 0 ? ['api', 'raw', 'old', 'fetch'] : ['raw', 'old', 'api', 'fetch'];
      for (const k of order) await sides[k]();
      const n = Number(Buffer.from((await raw[0].queryAsync(`SELECT count() FROM b.t${run}`, { format: 'TabSeparated' })).bytes()).toString());
      if (n !== ROWS) throw new Error(`raw table has ${n} rows`);
      // (c) Data Sources API appends, one request at a time.
      for (const format of ['ndjson', 'csv'] as const) {
        const data = appendData[format];
        const c0 = procCpuMs(server.pid!);
        for (const body of data) {
          const r = await fetch(`${base}/v0/datasources?name=${name}&mode=append&format=${format}`, {
            method: 'POST',
            headers: auth,
            body,
          });
          if (r.status !== 200) throw new Error(`append ${r.status} ${await r.text()}`);
        }
        appendCpu[format].push((procCpuMs(server.pid!) - c0) / (data.reduce((x, b) => x + b.length, 0) / 1e6));
      }
      // (b) 100-row requests, concurrency 8, default 202, for 5 s.
      const small = Buffer.from(chunks[0].toString().split('\n').slice(0, 100).join('\n'));
      let done = 0;
      const until = performance.now() + 5000;
      const c2 = procCpuMs(server.pid!);
      const o2 = ownCpuMs();
      const t2 = performance.now();
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (performance.now() < until) {
            const r = await fetch(`${base}/v0/events?name=${name}`, { method: 'POST', headers: auth, body: small });
            if (r.status !== 202) throw new Error(`events ${r.status}`);
            await r.arrayBuffer();
            done++;
          }
        }),
      );
      rps.push(done / ((performance.now() - t2) / 1000));
      smallCpu.push((procCpuMs(server.pid!) - c2) / done);
      clientCpu.push((ownCpuMs() - o2) / done);
      console.log(
        `run ${run + 1} (load ${os.loadavg()[0].toFixed(1)}): events ${apiMBs[run].toFixed(1)} MB/s, raw chDB (default settings, 2 Sessions) ${rawMBs[run].toFixed(1)} MB/s, ` +
          `ratio ${(apiMBs[run] / rawMBs[run]).toFixed(2)}; with fetch clients ${fetchMBs[run].toFixed(1)} MB/s (server CPU per MB ${fetchCpu[run].toFixed(1)} ms); raw chDB (best_effort, 1 Session) ${oldMBs[run].toFixed(1)} MB/s, ratio ${(apiMBs[run] / oldMBs[run]).toFixed(2)}; ` +
          `100-row requests ${rps[run].toFixed(0)} req/s (CPU per request: server ${smallCpu[run].toFixed(2)} ms, the bench's fetch clients ${clientCpu[run].toFixed(2)} ms); CPU per MB: server ${apiCpu[run].toFixed(1)} ms, raw chDB ${rawCpu[run].toFixed(1)} ms, ratio ${(rawCpu[run] / apiCpu[run]).toFixed(2)}; ` +
          `appends, server CPU per MB: NDJSON ${appendCpu.ndjson[run].toFixed(1)} ms, CSV ${appendCpu.csv[run].toFixed(1)} ms`,
      );
    }
    const ratio = median(apiMBs.map((a, i) => a / rawMBs[i]));
    console.log(
      `median of ${RUNS}: events ${median(apiMBs).toFixed(1)} MB/s, raw chDB ${median(rawMBs).toFixed(1)} MB/s, ratio ${ratio.toFixed(2)}; ` +
        `with fetch clients ${median(fetchMBs).toFixed(1)} MB/s, ratio ${median(fetchMBs.map((a, i) => a / rawMBs[i])).toFixed(2)}; ` +
        `vs best_effort single Session ${median(oldMBs).toFixed(1)} MB/s, ratio ${median(apiMBs.map((a, i) => a / oldMBs[i])).toFixed(2)}; ` +
        `100-row requests at concurrency 8: ${median(rps).toFixed(0)} req/s (CPU per request: server ${median(smallCpu).toFixed(2)} ms, clients ${median(clientCpu).toFixed(2)} ms); ` +
        `CPU per MB: server ${median(apiCpu).toFixed(1)} ms, raw chDB ${median(rawCpu).toFixed(1)} ms, ratio ${median(rawCpu.map((r, i) => r / apiCpu[i])).toFixed(2)}; ` +
        `appends, server CPU per MB: NDJSON ${median(appendCpu.ndjson).toFixed(1)} ms, CSV ${median(appendCpu.csv).toFixed(1)} ms`,
    );
    console.log('targets (issue 15):');
    console.log(`  Events API ingest ≥ 0.8 of raw chDB (default settings): ${ratio.toFixed(2)} — ${ratio >= 0.8 ? 'holds' : 'does not hold'}`);
    console.log(`  100-row requests ≥ 1,500 req/s at concurrency 8: ${median(rps).toFixed(0)} — ${median(rps) >= 1500 ? 'holds' : 'does not hold'}`);
  } finally {
    for (const r of raw) r.close();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
