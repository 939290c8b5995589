/**
 * `npm run bench -- observability`: what recording the service data sources (`tinybird.*`) costs,
 * with recording on (PIPIT_SERVICE_DATASOURCES=1) and off (=0) in one run. Two servers run as child
 * processes (chDB holds one data directory per process) with the same settings but that switch;
 * they are measured one after the other, alternating which goes first, so both see the same load.
 *
 * - (a) endpoint latency: a trivial endpoint (`%\nSELECT {{ Int32(x, 1) }} AS x`), each call with
 *   another x, from one keep-alive client (BENCH_OBS_CALLS calls, default 2,000), p50 and p99;
 * - (b) Events API throughput: 100-row requests (202, no wait) from 8 clients for BENCH_OBS_SECONDS
 *   (default 5) seconds, requests per second.
 * - (c) recording's own work per endpoint call, in this process: the metrics and the buffered
 *   pipe_stats_rt record the response hook makes (100,000 calls; the inserts happen later, off the
 *   request path, and are part of (a) and (b)).
 * Figures are medians over BENCH_RUNS (default 3) runs. On a loaded machine the difference of the
 * p50s of (a) is within the noise; (c) is the cost itself.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from '../src/engine/engine.js';
import { Observability } from '../src/observability/observability.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CALLS = Number(process.env.BENCH_OBS_CALLS ?? 2000);
const SECONDS = Number(process.env.BENCH_OBS_SECONDS ?? 5);
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Server {
  proc: ChildProcess;
  port: number;
  token: string;
  dir: string;
}

async function start(recording: boolean, port: number): Promise<Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-bench-obs-'));
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/main.ts')], {
    env: {
      ...process.env,
      PIPIT_DATA_DIR: dir,
      PIPIT_PORT: String(port),
      PIPIT_LOG_LEVEL: 'warn',
      PIPIT_SERVICE_DATASOURCES: recording ? '1' : '0',
      UV_THREADPOOL_SIZE: '16',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c) => {
      out += c;
      if (out.includes('Pipit listening')) resolve();
    });
    proc.on('exit', (code) => reject(new Error(`server exited (${code})`)));
  });
  const token = JSON.parse(fs.readFileSync(path.join(dir, 'tokens.json'), 'utf8')).workspace_admin_token;
  return { proc, port, token, dir };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function request(s: Server, method: string, p: string, body?: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: s.port, path: p, method, agent, headers: { authorization: `Bearer ${s.token}`, ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function setup(s: Server): Promise<void> {
  const schema = 'k String `json:$.k`, v Int32 `json:$.v`';
  await request(s, 'POST', '/v0/datasources?name=events&mode=create', new URLSearchParams({ schema }).toString(), {
    'content-type': 'application/x-www-form-urlencoded',
  });
  const pipe = JSON.stringify({ name: 'trivial', nodes: [{ name: 'n', sql: '%\nSELECT {{ Int32(x, 1) }} AS x', type: 'endpoint' }] });
  await request(s, 'POST', '/v0/pipes', pipe, { 'content-type': 'application/json' });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const median = (xs: number[]) => pct(xs, 50);

async function endpointLatency(s: Server): Promise<{ p50: number; p99: number }> {
  const lat: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    const status = await request(s, 'GET', `/v0/pipes/trivial.json?x=${i}`);
    if (status !== 200) throw new Error(`endpoint answered ${status}`);
    lat.push(performance.now() - t);
  }
  return { p50: pct(lat, 50), p99: pct(lat, 99) };
}

const BATCH = Array.from({ length: 100 }, (_, i) => JSON.stringify({ k: `k${i % 7}`, v: i })).join('\n');

async function eventsThroughput(s: Server): Promise<number> {
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < end) {
        const status = await request(s, 'POST', '/v0/events?name=events', BATCH);
        if (status !== 202) throw new Error(`events answered ${status}`);
        n++;
      }
    }),
  );
  return n / SECONDS;
}

/** (c): microseconds of recording per call, without any engine (records are only buffered). */
function recordingCost(): number {
  const obs = new Observability({} as Engine, { enabled: true, flushMs: 1_000_000 });
  const n = 100_000;
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    const info = { id: `01J${i}`, token: { id: 'tid', name: 'reader' }, workspaceId: 'ws', pipe: { id: 't_1', name: 'trivial' }, parameters: { x: String(i) } };
    obs.httpRequests.inc({ family: 'endpoint', method: 'GET', status: '200' });
    obs.httpDuration.observe({ family: 'endpoint' }, 0.0015);
    obs.request(info, { status: 200, durationSec: 0.0015, method: 'GET', url: `/v0/pipes/trivial.json?x=${i}`, userAgent: 'bench' });
    // The buffer is inserted every second in the server; here it is emptied now and then instead.
    if (i % 5000 === 4999) (obs as unknown as { buffers: Map<string, unknown[]> }).buffers.clear();
  }
  const us = ((performance.now() - t) * 1000) / n;
  void obs.close();
  return us;
}
const costs = [recordingCost(), recordingCost(), recordingCost()];
console.log(`recording's own work per endpoint call: ${median(costs).toFixed(2)} µs (median of 3 × 100,000 calls)`);

const on = await start(true, 17391);
const off = await start(false, 17392);
try {
  await setup(on);
  await setup(off);
  // Warm-up.
  for (const s of [on, off]) for (let i = 0; i < 200; i++) await request(s, 'GET', `/v0/pipes/trivial.json?x=${i}`);
  const results = {
    on: { p50: [] as number[], p99: [] as number[], rps: [] as number[] },
    off: { p50: [] as number[], p99: [] as number[], rps: [] as number[] },
  };
  for (let run = 0; run < RUNS; run++) {
    const order: Array<['on' | 'off', Server]> =
      run % 2 === 0
        ? [
            ['on', on],
            ['off', off],
          ]
        : [
            ['off', off],
            ['on', on],
          ];
    for (const [name, s] of order) {
      const l = await endpointLatency(s);
      results[name].p50.push(l.p50);
      results[name].p99.push(l.p99);
    }
    for (const [name, s] of order) results[name].rps.push(await eventsThroughput(s));
    console.log(
      `run ${run + 1}: endpoint p50 on ${results.on.p50[run].toFixed(3)} ms / off ${results.off.p50[run].toFixed(3)} ms; ` +
        `events on ${results.on.rps[run].toFixed(0)} req/s / off ${results.off.rps[run].toFixed(0)} req/s`,
    );
  }
  console.log('| recording | endpoint p50 ms | endpoint p99 ms | events 100-row req/s |');
  console.log('| --- | --- | --- | --- |');
  for (const name of ['on', 'off'] as const) {
    const r = results[name];
    console.log(`| ${name} | ${median(r.p50).toFixed(3)} | ${median(r.p99).toFixed(3)} | ${median(r.rps).toFixed(0)} |`);
  }
  console.log(`recording's cost at p50: ${(median(results.on.p50) - median(results.off.p50)).toFixed(3)} ms per endpoint call`);
} finally {
  for (const s of [on, off]) {
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
  agent.destroy();
}
