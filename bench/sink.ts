/**
 * `npm run bench -- sink`: a sink job against the same export run directly on raw chDB.
 *
 * Data: a 10M-row data source (DateTime, UInt64, LowCardinality(String), String, Float64). An
 * S3-compatible server (s3rver) runs on loopback in a child process, so its request handling does
 * not share this process's event loop. Cases, each `write_strategy=truncate` into its own key:
 * - Parquet (zstd inside the file, the engine's default codec);
 * - CSV with header, gzip-compressed.
 * Through the API: `POST /v0/pipes/:p/sink` with the format, timed until `GET /v0/jobs/:id` says
 * done (the job also lists the prefix before and after and counts the rows it wrote by reading
 * them back: Parquet from its footer, CSV by decompressing and counting lines). Raw chDB: a
 * Session on the server's data directory running `INSERT INTO FUNCTION s3(...) SELECT * FROM
 * <table>` with the same settings. Each run measures both, alternating which goes first; the
 * figures are medians over runs.
 *
 * Environment: BENCH_RUNS (3), BENCH_SINK_ROWS (10,000,000).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { physicalNames } from '../src/ingest/physical.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ROWS = Number(process.env.BENCH_SINK_ROWS ?? 10_000_000);
const BUCKET = 'bench-bucket';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** s3rver in a child process on a loopback port; resolves with its endpoint. */
async function startS3(dir: string): Promise<{ endpoint: string; child: ChildProcess }> {
  const script = `
    const S3rver = require('s3rver');
    new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: ${JSON.stringify(dir)}, configureBuckets: [{ name: ${JSON.stringify(BUCKET)} }] })
      .run().then(({ port }) => process.stdout.write('PORT ' + port + '\\n'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd() });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /PORT (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, child };
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-bench-sink-'));
  const s3 = await startS3(path.join(tmp, 's3'));
  const config = loadConfig({}, { dataDir: path.join(tmp, 'data'), port: 0, host: '127.0.0.1', logLevel: 'silent', allowPrivateUrls: true });
  const app = await createApp(config);
  await app.http.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.http.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  (config as { apiHost: string }).apiHost = url;
  const token = app.services.localTokens.workspace_admin_token;
  const req = async (method: string, p: string, body?: Record<string, string>) => {
    const r = await fetch(url + p, { method, headers: { authorization: `Bearer ${token}` }, body: body ? new URLSearchParams(body) : undefined });
    const j = (await r.json()) as Record<string, unknown>;
    if (r.status !== 200) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  };
  try {
    await req('POST', '/v0/datasources?name=events&mode=create', {
      schema: 'ts DateTime, user_id UInt64, country LowCardinality(String), event String, value Float64',
    });
    const ws = app.services.access.defaultWorkspace;
    const ds = await app.services.datasources.get(ws, 'events');
    const table = physicalNames(ws.database, ds.id).table;
    let t = performance.now();
    await app.services.engine.exec(
      `INSERT INTO ${table} SELECT toDateTime('2024-01-01 00:00:00') + number % 2592000, number % 1000003, ['ES','FR','US','DE','IT','BR','JP','MX'][number % 8 + 1], concat('event_', toString(number % 97)), (number % 10007) / 10007 FROM numbers(${ROWS})`,
    );
    await app.services.engine.exec(`OPTIMIZE TABLE ${table} FINAL`);
    console.log(`loaded ${ROWS.toLocaleString()} rows in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    await req('POST', '/v0/connectors', {
      service: 's3',
      name: 'bench',
      s3_endpoint: s3.endpoint,
      s3_access_key_id: 'S3RVER',
      s3_secret_access_key: 'S3RVER',
      bucket: BUCKET,
    });
    const cases = [
      {
        name: 'parquet',
        format: 'parquet',
        compression: 'zstd',
        raw: `'Parquet', 'auto', 'none') SELECT * FROM ${table} SETTINGS output_format_parquet_compression_method = 'zstd', `,
      },
      { name: 'csv_gz', format: 'csv', compression: 'gz', raw: `'CSVWithNames', 'auto', 'gzip') SELECT * FROM ${table} SETTINGS ` },
    ];
    for (const c of cases) {
      await fetch(`${url}/v0/pipes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `sink_${c.name}`, nodes: [{ name: 'n', sql: 'SELECT * FROM events' }] }),
      });
      await req('POST', `/v0/pipes/sink_${c.name}/nodes/n/sink`, {
        connection: 'bench',
        path: `s3://${BUCKET}/api`,
        file_template: c.name,
        format: c.format,
        compression: c.compression,
        write_strategy: 'truncate',
      });
    }
    const raw = new Session(path.join(config.dataDir, 'engine'));
    const results: Record<string, { api: number[]; raw: number[]; bytes: number; rows: number }> = {};
    for (let run = 0; run < RUNS; run++) {
      for (const c of cases) {
        const r = (results[c.name] ??= { api: [], raw: [], bytes: 0, rows: 0 });
        const viaApi = async () => {
          t = performance.now();
          const started = (await req('POST', `/v0/pipes/sink_${c.name}/sink`)) as { job: { id: string } };
          for (;;) {
            const job = (await req('GET', `/v0/jobs/${started.job.id}`)) as { status: string; statistics?: { rows: number; bytes: number }; error?: string };
            if (job.status === 'error') throw new Error(job.error);
            if (job.status === 'done') {
              r.api.push((performance.now() - t) / 1000);
              r.bytes = job.statistics!.bytes;
              r.rows = job.statistics!.rows;
              return;
            }
            await new Promise((res) => setTimeout(res, 20));
          }
        };
        const viaRaw = async () => {
          t = performance.now();
          await raw.queryAsync(
            `INSERT INTO FUNCTION s3('${s3.endpoint}/${BUCKET}/raw/${c.name}', 'S3RVER', 'S3RVER', ${c.raw}s3_truncate_on_insert = 1, s3_retry_attempts = 10`,
          );
          r.raw.push((performance.now() - t) / 1000);
        };
        if (run % 2 === 0) {
          await viaApi();
          await viaRaw();
        } else {
          await viaRaw();
          await viaApi();
        }
        console.log(`run ${run + 1} ${c.name}: API ${r.api[r.api.length - 1].toFixed(2)} s, raw chDB ${r.raw[r.raw.length - 1].toFixed(2)} s`);
      }
    }
    raw.close();
    console.log('\n| case | rows | file MB | API sink job s | raw chDB s | ratio (raw/API) | API rows/s |\n| --- | --- | --- | --- | --- | --- | --- |');
    for (const [name, r] of Object.entries(results)) {
      const api = median(r.api);
      const rw = median(r.raw);
      console.log(
        `| ${name} | ${r.rows.toLocaleString()} | ${(r.bytes / 1e6).toFixed(1)} | ${api.toFixed(2)} | ${rw.toFixed(2)} | ${(rw / api).toFixed(2)} | ${Math.round(r.rows / api).toLocaleString()} |`,
      );
    }
  } finally {
    await app.close();
    s3.child.kill();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
