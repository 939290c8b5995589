/**
 * `npm run bench -- floor`: what HTTP alone costs on this machine, with the clients the endpoint and
 * ingest benches use, so their figures can be read against it. A server that does nothing but
 * answer, in its own process like the server under test:
 * - "node:http": Node's HTTP server, a handler that reads the body and answers a fixed JSON;
 * - "Fastify": the same through Fastify (Pipit's HTTP framework), the body read as a Buffer.
 * Measured for each:
 * - GET at concurrency 1 with the endpoint bench's client (keep-alive node:http, reading the whole
 *   body): p50 round trip, the least any endpoint's p50 overhead over in-process raw chDB can be;
 * - GET at concurrency 4: requests/s;
 * - POST of the ingest bench's 100-row body (its row shape) from 8 Node fetch clients for 5 s:
 *   requests/s, the most any server can take here with these clients (target: 1,500).
 * Medians of BENCH_RUNS (3), the servers alternating.
 *
 * `--serve chdb <port> <dir> <a|b|s> <n>` (used by bench/endpoint-ab.ts, not by this bench's own
 * measurement): the least an endpoint server in its own process can be. A node:http server with one
 * chDB Session (default settings) on `dir` answering `GET /q?<parameters>` with the natural SQL of
 * endpoint case (a), (b) or (s) (bench/endpoint-cases.ts), FORMAT JSON, the engine's bytes as the body;
 * for (b) it first creates and fills `bench.events` (n rows, one part after OPTIMIZE FINAL); for
 * (s) n is the engine's sleep in ms.
 * Its `x-floor-engine-ms` header is the wall time of its queryAsync call, and `x-timeline` the same
 * marks bench/endpoint-timeline.mjs gives a Pipit server (request, queryAsync called, resolved,
 * head written; process.hrtime in ms).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { EVENTS_COLUMNS, naturalAgg, naturalSleep, naturalTrivial, rowsSql } from './endpoint-cases.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ANSWER = JSON.stringify({
  meta: [{ name: 'x', type: 'Int32' }],
  data: [{ x: 1 }],
  rows: 1,
  statistics: { elapsed: 0.0001, rows_read: 1, bytes_read: 1 },
});

/** The floor of an endpoint server: node:http and one chDB Session running the natural SQL. */
async function serveChdb(port: number, dir: string, which: string, rows: number): Promise<void> {
  const { Session } = await import('chdb');
  // FLOOR_CONNECTION_ARGS (space-separated engine arguments) and FLOOR_SETTINGS (`|`-separated
  // session settings): for trying an engine option on the floor alone.
  const args = (process.env.FLOOR_CONNECTION_ARGS ?? '').split(' ').filter(Boolean);
  const session = args.length ? new Session(dir, { connectionArgs: args }) : new Session(dir);
  for (const setting of (process.env.FLOOR_SETTINGS ?? '').split('|').filter(Boolean)) await session.queryAsync(`SET ${setting}`);
  if (which === 'b') {
    await session.queryAsync('CREATE DATABASE IF NOT EXISTS bench');
    await session.queryAsync(`CREATE TABLE bench.events (${EVENTS_COLUMNS}) ENGINE = MergeTree ORDER BY timestamp`);
    await session.queryAsync(`INSERT INTO bench.events ${rowsSql(rows)}`);
    await session.queryAsync('OPTIMIZE TABLE bench.events FINAL');
  }
  http
    .createServer((req, res) => {
      const mono = () => Number(process.hrtime.bigint()) / 1e6;
      const marks = [mono()];
      const params = Object.fromEntries(new URL(req.url ?? '/', 'http://x').searchParams);
      const sql = which === 'b' ? naturalAgg('bench.events', params) : which === 's' ? naturalSleep(params, rows) : naturalTrivial(params);
      const t = performance.now();
      marks.push(mono());
      session.queryAsync(sql, { format: 'JSON' }).then(
        (r) => {
          marks.push(mono());
          const b = r.bytes();
          const ms = (performance.now() - t).toFixed(4);
          marks.push(mono());
          res.writeHead(200, { 'content-type': 'application/json', 'x-floor-engine-ms': ms, 'x-timeline': marks.map((x) => x.toFixed(4)).join(',') });
          res.end(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        },
      );
    })
    .listen(port, '127.0.0.1', () => console.log('ready'));
}

async function serve(kind: string, port: number): Promise<void> {
  if (kind === 'node:http') {
    http
      .createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(req.method === 'POST' ? 202 : 200, { 'content-type': 'application/json' });
          res.end(ANSWER);
        });
      })
      .listen(port, '127.0.0.1', () => console.log('ready'));
    return;
  }
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false, bodyLimit: 100 * 1024 * 1024 });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.get('/v0/pipes/:pipe', async (_req, reply) => reply.type('application/json').send(ANSWER));
  app.post('/v0/events', async (_req, reply) => reply.code(202).type('application/json').send(ANSWER));
  await app.listen({ port, host: '127.0.0.1' });
  console.log('ready');
}

/** The ingest bench's row shape (bench/ingest.ts makeData). */
function hundredRows(): string {
  const acts = ['page_hit', 'click', 'scroll', 'purchase', 'signup'];
  const rows: string[] = [];
  for (let i = 0; i < 100; i++) {
    rows.push(
      JSON.stringify({
        timestamp: new Date(1700000000000 + i * 1000).toISOString().slice(0, 19).replace('T', ' '),
        session_id: `s-${i % 50000}-0123456789abcdef`,
        action: acts[i % 5],
        version: '1',
        value: i * 1.5,
        path: `/p/${i % 1000}/index.html`,
        payload: JSON.stringify({
          user_agent: 'Mozilla/5.0',
          locale: ['en-US', 'es-ES', 'ja-JP'][i % 3],
          referrer: `https://example.com/${i % 97}`,
          n: i % 10,
        }),
      }),
    );
  }
  return `${rows.join('\n')}\n`;
}

async function start(kind: string): Promise<{ child: ChildProcess; port: number }> {
  const port = 30000 + Math.floor(Math.random() * 20000);
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--serve', kind, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.once('exit', () => child.kill('SIGKILL'));
  await new Promise((r) => child.stdout!.once('data', r));
  return { child, port };
}

async function measure(kind: string, body: string) {
  const { child, port } = await start(kind);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const get = () =>
    new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/v0/pipes/trivial_ep.json?x=1', agent }, (res) => {
          res.on('data', () => undefined);
          res.on('end', resolve);
        })
        .on('error', reject);
    });
  for (let i = 0; i < 1000; i++) await get();
  const lat: number[] = [];
  for (let i = 0; i < 4000; i++) {
    const t = performance.now();
    await get();
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  let n = 0;
  let t0 = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (n++ < 8000) await get();
    }),
  );
  const c4 = 8000 / ((performance.now() - t0) / 1000);
  const url = `http://127.0.0.1:${port}/v0/events?name=events`;
  let done = 0;
  t0 = performance.now();
  const until = t0 + 5000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < until) {
        const r = await fetch(url, { method: 'POST', headers: { authorization: 'Bearer x' }, body });
        await r.text();
        done++;
      }
    }),
  );
  const post = done / ((performance.now() - t0) / 1000);
  agent.destroy();
  child.kill();
  return { p50: lat[Math.floor(lat.length / 2)], c4, post };
}

async function main() {
  const body = hundredRows();
  const kinds = ['node:http', 'Fastify'];
  const results = new Map<string, Array<{ p50: number; c4: number; post: number }>>(kinds.map((k) => [k, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const kind of run % 2 ? [...kinds].reverse() : kinds) {
      const r = await measure(kind, body);
      results.get(kind)!.push(r);
      console.log(
        `run ${run + 1}, ${kind}: GET c1 p50 ${r.p50.toFixed(3)} ms; GET c4 ${r.c4.toFixed(0)} req/s; 100-row POST from 8 fetch clients ${r.post.toFixed(0)} req/s`,
      );
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`medians of ${RUNS} (${body.length} B bodies):`);
  for (const [kind, rs] of results) {
    console.log(
      `  ${kind}: GET c1 p50 ${median(rs.map((r) => r.p50)).toFixed(3)} ms; GET c4 ${median(rs.map((r) => r.c4)).toFixed(0)} req/s; 100-row POST, 8 fetch clients: ${median(rs.map((r) => r.post)).toFixed(0)} req/s`,
    );
  }
}

if (process.argv[2] === '--serve' && process.argv[3] === 'chdb')
  await serveChdb(Number(process.argv[4]), process.argv[5], process.argv[6], Number(process.argv[7]));
else if (process.argv[2] === '--serve') await serve(process.argv[3], Number(process.argv[4]));
else await main();
