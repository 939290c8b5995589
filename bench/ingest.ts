/**
 * `npm run bench -- ingest`: Events API ingest throughput against raw chDB in the same run, as ratios.
 * (a) 1M NDJSON rows (~130 MB, 6 columns incl. DateTime and LowCardinality) as 10 MB requests from
 *     2 concurrent clients with wait=true, vs raw chDB `session.insert` of the same bytes;
 * (b) requests/s of 100-row requests at concurrency 8 with the default 202.
 * The server runs as a child process (chDB allows one data directory per process).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const SCHEMA =
  'timestamp DateTime `json:$.timestamp`, session_id String `json:$.session_id`, action LowCardinality(String) `json:$.action`, version String `json:$.version`, value Float64 `json:$.value`, path String `json:$.path`';
const DDL = 'timestamp DateTime, session_id String, action LowCardinality(String), version String, value Float64, path String';

function makeData(): Buffer[] {
  const acts = ['page_hit', 'click', 'scroll', 'purchase', 'signup'];
  const chunks: Buffer[] = [];
  let cur: string[] = [];
  let size = 0;
  for (let i = 0; i < ROWS; i++) {
    const l = JSON.stringify({
      timestamp: new Date(1700000000000 + i * 1000).toISOString(),
      session_id: `s-${i % 50000}-0123456789abcdef`,
      action: acts[i % 5],
      version: '1',
      value: i * 1.5,
      path: `/p/${i % 1000}/index.html`,
    });
    // Requests stay within the Events API's 10 MB cap (a larger one is answered 413).
    if (size + l.length + 1 > 10 * 1024 * 1024) {
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
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, PIPIT_DATA_DIR: dir, PIPIT_PORT: String(port), PIPIT_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    child.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return child;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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
  const raw = new Session(path.join(tmp, 'raw'));
  await raw.queryAsync('CREATE DATABASE IF NOT EXISTS b');
  const apiMBs: number[] = [];
  const rawMBs: number[] = [];
  const rps: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const name = `bench_${run}`;
      await fetch(`${base}/v0/datasources?name=${name}&mode=create&format=ndjson`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ schema: SCHEMA }).toString(),
      });
      // (a) Events API, 2 concurrent clients, 10 MB requests, wait=true.
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        [0, 1].map(async () => {
          while (next < chunks.length) {
            const c = chunks[next++];
            const r = await fetch(`${base}/v0/events?name=${name}&wait=true`, { method: 'POST', headers: auth, body: new Uint8Array(c) });
            if (r.status !== 200) throw new Error(`events ${r.status} ${await r.text()}`);
          }
        }),
      );
      const apiS = (performance.now() - t0) / 1000;
      // Raw chDB: the same bytes with session.insert into an equivalent table.
      await raw.queryAsync(`CREATE TABLE b.t${run} (${DDL}) ENGINE = MergeTree ORDER BY timestamp`);
      const t1 = performance.now();
      for (const c of chunks) await raw.insert({ table: `b.t${run}`, values: c, format: 'JSONEachRow', settings: { date_time_input_format: 'best_effort' } });
      const rawS = (performance.now() - t1) / 1000;
      apiMBs.push(totalBytes / 1e6 / apiS);
      rawMBs.push(totalBytes / 1e6 / rawS);
      // (b) 100-row requests, concurrency 8, default 202, for 5 s.
      const small = Buffer.from(chunks[0].toString().split('\n').slice(0, 100).join('\n'));
      let done = 0;
      const until = performance.now() + 5000;
      const t2 = performance.now();
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (performance.now() < until) {
            const r = await fetch(`${base}/v0/events?name=${name}`, { method: 'POST', headers: auth, body: new Uint8Array(small) });
            if (r.status !== 202) throw new Error(`events ${r.status}`);
            await r.arrayBuffer();
            done++;
          }
        }),
      );
      rps.push(done / ((performance.now() - t2) / 1000));
      console.log(
        `run ${run + 1}: events ${apiMBs[run].toFixed(1)} MB/s, raw chDB ${rawMBs[run].toFixed(1)} MB/s, ratio ${(apiMBs[run] / rawMBs[run]).toFixed(2)}; small requests ${rps[run].toFixed(0)} req/s`,
      );
    }
    console.log(
      `median: events ${median(apiMBs).toFixed(1)} MB/s, raw chDB ${median(rawMBs).toFixed(1)} MB/s, ratio ${median(apiMBs.map((a, i) => a / rawMBs[i])).toFixed(2)}; 100-row requests at concurrency 8: ${median(rps).toFixed(0)} req/s`,
    );
  } finally {
    raw.close();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
