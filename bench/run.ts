/**
 * `npm run bench [-- ingest|query|endpoint|mv|sink ...]`: runs the named benchmarks (all by default), each in its
 * own process, one after the other: chDB holds one data directory per process, and each benchmark
 * needs its own.
 * - ingest (bench/ingest.ts): Events API ingest throughput against raw chDB;
 * - query (bench/query.ts): /v0/sql latency and throughput against a raw chDB Session pool;
 * - endpoint (bench/endpoint.ts): API Endpoint latency and throughput against a raw chDB Session
 *   pool running the same rendered SQL;
 * - mv (bench/mv.ts): Events API ingest with 0, 1 and 3 materialized views attached against raw
 *   chDB with the same views;
 * - sink (bench/sink.ts): a 10M-row sink job to Parquet and CSV.gz on a loopback s3rver against
 *   the same INSERT INTO FUNCTION s3 on raw chDB.
 * - observability (bench/observability.ts): endpoint latency and Events API throughput with the
 *   service data sources recorded and not (PIPIT_SERVICE_DATASOURCES=1/0).
 * - start (bench/start.ts): npm start until the server answers, on an empty data directory and with 100 data
 *   sources and pipes.
 * - remote (bench/remote.ts): the ingest and endpoint workloads on the embedded engine and on the remote
 *   engine against the ClickHouse-compatible test server, side by side.
 * - floor (bench/floor.ts): what HTTP alone costs here with the endpoint and ingest benches' clients
 *   (a server that only answers, node:http and Fastify), to read their figures against.
 * Settings come from the environment (BENCH_RUNS, BENCH_ROWS, BENCH_QUERY_*, BENCH_ENDPOINT_*, BENCH_MV_*; see each file).
 */
import { DEFAULT_ENGINE_SESSIONS } from '../src/config/config.js';
import { threadpoolFor } from '../src/engine/lanes.js';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ALL = ['ingest', 'query', 'endpoint', 'mv', 'sink', 'observability', 'remote', 'start', 'floor'];
const wanted = process.argv.slice(2).filter((a) => a !== '--');
const names = wanted.length ? wanted : ALL;
const unknown = names.filter((n) => !ALL.includes(n));
if (unknown.length) {
  console.error(`unknown benchmark ${unknown.join(', ')}; available: ${ALL.join(', ')}`);
  process.exit(2);
}

const dir = path.dirname(fileURLToPath(import.meta.url));
// As `npm start` does: the engine's lanes need libuv's pool at 2 × sessions + 8 threads (read once
// when a process starts), or the server under test runs with a single user-query slot.
const env = {
  ...process.env,
  UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(threadpoolFor(Number(process.env.PIPIT_ENGINE_SESSIONS) || DEFAULT_ENGINE_SESSIONS)),
};
for (const name of names) {
  console.log(`== bench/${name}`);
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(dir, `${name}.ts`)], { stdio: 'inherit', env });
    child.on('exit', resolve);
  });
  if (code !== 0) {
    console.error(`bench/${name} failed (exit ${code})`);
    process.exit(1);
  }
}
