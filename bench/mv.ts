/**
 * `npm run bench -- mv`: Events API ingest throughput into a data source with 0, 1 and 3
 * materialized views attached, against raw chDB inserts of the same bytes into a table with the
 * same views, in one run, as ratios.
 *
 * Data: BENCH_MV_ROWS (1,000,000) NDJSON rows, 6 columns (DateTime, UInt32, 2 LowCardinality(String),
 * Float64, String), as ~10 MB requests.
 * Views (created through the API: POST /v0/pipes with one node, then
 * POST /v0/pipes/:p/nodes/:n/materialization?datasource=...; the target is created from the node's
 * output, AggregatingMergeTree for -State columns):
 *   agg:  SELECT country, action, countState() AS c, sumState(value) AS s FROM src GROUP BY country, action
 *   copy: SELECT timestamp, user_id, country, value FROM src WHERE action = 'purchase' (MergeTree ORDER BY timestamp)
 *   uniq: SELECT toStartOfHour(timestamp) AS hour, uniqState(user_id) AS users FROM src GROUP BY hour
 * 0 views; 1 = agg; 3 = agg + copy + uniq.
 * - API: POST /v0/events?name=src&wait=true from 2 concurrent clients (a keep-alive fetch);
 * - raw chDB: 2 Sessions on the server's data directory (the server runs in this process: chDB holds
 *   one directory per process), `session.insert` (JSONEachRow) of the same requests into a MergeTree
 *   table with the same columns and sorting key, with the same views as
 *   `CREATE MATERIALIZED VIEW ... TO <target>` over targets with the same columns and engines.
 * Each run measures every configuration on both sides, alternating which goes first; after each
 * side the row counts of the source and every target are checked and its tables dropped (so no
 * background merge of one measurement runs into the next). Figures are medians over runs.
 *
 * Environment: BENCH_RUNS (5), BENCH_MV_ROWS (1,000,000), BENCH_MV_BREAKDOWN (1: after the runs,
 * where the time goes: raw variants adding one step of the API path at a time, with 3 and 0
 * views, and a per-request timeline of the Events API against raw inserts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { createApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ROWS = Number(process.env.BENCH_MV_ROWS ?? 1_000_000);
const BREAKDOWN = (process.env.BENCH_MV_BREAKDOWN ?? '1') !== '0';
const CLIENTS = 2;
/** Passes of the breakdown (each variant once per pass, the order reversed every other pass). */
const PASSES = 5;
const CONFIGS = [0, 1, 3] as const;

const SCHEMA =
  'timestamp DateTime `json:$.timestamp`, user_id UInt32 `json:$.user_id`, country LowCardinality(String) `json:$.country`, ' +
  'action LowCardinality(String) `json:$.action`, value Float64 `json:$.value`, path String `json:$.path`';
const DDL = 'timestamp DateTime, user_id UInt32, country LowCardinality(String), action LowCardinality(String), value Float64, path String';

/** A view: its node SQL over `src`, the engine arguments of its API target, and the raw target DDL. */
interface View {
  name: 'agg' | 'copy' | 'uniq';
  sql: (src: string) => string;
  engine: Record<string, string>;
  rawTarget: string;
  /** A query over the target giving the source row count it accounts for (or a count to compare). */
  check: (target: string) => string;
}

const VIEWS: View[] = [
  {
    name: 'agg',
    sql: (src) => `SELECT country, action, countState() AS c, sumState(value) AS s FROM ${src} GROUP BY country, action`,
    engine: {},
    rawTarget:
      '(country LowCardinality(String), action LowCardinality(String), c AggregateFunction(count), s AggregateFunction(sum, Float64)) ENGINE = AggregatingMergeTree ORDER BY (country, action)',
    check: (t) => `SELECT countMerge(c) FROM ${t}`,
  },
  {
    name: 'copy',
    sql: (src) => `SELECT timestamp, user_id, country, value FROM ${src} WHERE action = 'purchase'`,
    engine: { engine: 'MergeTree', engine_sorting_key: 'timestamp' },
    rawTarget: '(timestamp DateTime, user_id UInt32, country LowCardinality(String), value Float64) ENGINE = MergeTree ORDER BY timestamp',
    check: (t) => `SELECT count() FROM ${t}`,
  },
  {
    name: 'uniq',
    sql: (src) => `SELECT toStartOfHour(timestamp) AS hour, uniqState(user_id) AS users FROM ${src} GROUP BY hour`,
    engine: {},
    rawTarget: '(hour DateTime, users AggregateFunction(uniq, UInt32)) ENGINE = AggregatingMergeTree ORDER BY hour',
    check: (t) => `SELECT uniqMerge(users) FROM ${t}`,
  },
];
const viewsOf = (n: number) => VIEWS.slice(0, n);

function makeData(): Buffer[] {
  const acts = ['page_hit', 'click', 'scroll', 'purchase', 'signup'];
  const countries = ['ES', 'US', 'FR', 'DE', 'GB', 'IT', 'JP', 'BR'];
  const chunks: Buffer[] = [];
  let cur: string[] = [];
  let size = 0;
  for (let i = 0; i < ROWS; i++) {
    const l = JSON.stringify({
      timestamp: new Date(1700000000000 + i * 1000).toISOString(),
      user_id: (i * 7919) % 50000,
      country: countries[i % 8],
      action: acts[i % 5],
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

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Runs `fn` over every chunk from `CLIENTS` workers (worker k passes k); wall seconds. */
async function feed(chunks: Buffer[], fn: (c: Buffer, worker: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, w) => {
      while (next < chunks.length) await fn(chunks[next++], w);
    }),
  );
  return (performance.now() - t0) / 1000;
}

async function main() {
  const chunks = makeData();
  const totalBytes = chunks.reduce((n, c) => n + c.length, 0);
  const purchases = Math.floor((ROWS + 1) / 5);
  const users = new Set(Array.from({ length: ROWS }, (_, i) => (i * 7919) % 50000)).size;
  console.log(`data: ${ROWS.toLocaleString('en-US')} rows, ${(totalBytes / 1e6).toFixed(1)} MB in ${chunks.length} requests`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-bench-mv-'));
  const config = loadConfig({}, { dataDir: tmp, port: 0, host: '127.0.0.1', logLevel: 'silent' });
  const app: App = await createApp(config);
  await app.http.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.http.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const base = `http://127.0.0.1:${port}`;
  const token = app.services.localTokens.workspace_admin_token;
  const auth = { authorization: `Bearer ${token}` };
  const raw = Array.from({ length: CLIENTS }, () => new Session(path.join(tmp, 'engine')));
  const ws = app.services.access.defaultWorkspace;

  const api = async (method: string, p: string, body?: string, type = 'application/x-www-form-urlencoded') => {
    const r = await fetch(`${base}${p}`, { method, headers: { ...auth, ...(body !== undefined ? { 'content-type': type } : {}) }, body });
    const text = await r.text();
    if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const scalar = async (sql: string) => Number((await raw[0].queryAsync(sql, { format: 'TabSeparated' })).text().trim());
  const physical = async (name: string) => `${ws.database}.${(await app.services.datasources.get(ws, name)).id}`;

  /** Expected results of every check, from the data itself. */
  const expected: Record<string, number> = { src: ROWS, agg: ROWS, copy: purchases, uniq: users };

  const setupApi = async (tag: string, n: number) => {
    await api(
      'POST',
      `/v0/datasources?name=${tag}_src&mode=create&format=ndjson&engine_sorting_key=timestamp`,
      new URLSearchParams({ schema: SCHEMA }).toString(),
    );
    for (const v of viewsOf(n)) {
      await api(
        'POST',
        '/v0/pipes',
        JSON.stringify({ name: `${tag}_${v.name}_pipe`, nodes: [{ name: `${tag}_${v.name}_node`, sql: v.sql(`${tag}_src`) }] }),
        'application/json',
      );
      const args = new URLSearchParams({ datasource: `${tag}_${v.name}`, ...v.engine });
      await api('POST', `/v0/pipes/${tag}_${v.name}_pipe/nodes/${tag}_${v.name}_node/materialization?${args}`);
    }
  };
  const checkApi = async (tag: string, n: number) => {
    const got = [['src', await scalar(`SELECT count() FROM ${await physical(`${tag}_src`)}`)]] as Array<[string, number]>;
    for (const v of viewsOf(n)) got.push([v.name, await scalar(v.check(await physical(`${tag}_${v.name}`)))]);
    for (const [k, x] of got) if (x !== expected[k]) throw new Error(`API ${tag}: ${k} = ${x}, expected ${expected[k]}`);
  };
  const dropApi = async (tag: string, n: number) => {
    await api('DELETE', `/v0/datasources/${tag}_src?force=true`);
    for (const v of viewsOf(n)) {
      await api('DELETE', `/v0/datasources/${tag}_${v.name}?force=true`);
      await api('DELETE', `/v0/pipes/${tag}_${v.name}_pipe`);
    }
  };
  await raw[0].queryAsync('CREATE DATABASE IF NOT EXISTS raw_bench');
  const setupRaw = async (tag: string, n: number) => {
    await raw[0].queryAsync(`CREATE TABLE raw_bench.${tag}_src (${DDL}) ENGINE = MergeTree ORDER BY timestamp`);
    for (const v of viewsOf(n)) {
      await raw[0].queryAsync(`CREATE TABLE raw_bench.${tag}_${v.name} ${v.rawTarget}`);
      await raw[0].queryAsync(`CREATE MATERIALIZED VIEW raw_bench.${tag}_${v.name}_mv TO raw_bench.${tag}_${v.name} AS ${v.sql(`raw_bench.${tag}_src`)}`);
    }
  };
  const checkRaw = async (tag: string, n: number) => {
    const got = [['src', await scalar(`SELECT count() FROM raw_bench.${tag}_src`)]] as Array<[string, number]>;
    for (const v of viewsOf(n)) got.push([v.name, await scalar(v.check(`raw_bench.${tag}_${v.name}`))]);
    for (const [k, x] of got) if (x !== expected[k]) throw new Error(`raw ${tag}: ${k} = ${x}, expected ${expected[k]}`);
  };
  const dropRaw = async (tag: string, n: number) => {
    for (const v of viewsOf(n)) await raw[0].queryAsync(`DROP VIEW raw_bench.${tag}_${v.name}_mv SYNC`);
    await raw[0].queryAsync(`DROP TABLE raw_bench.${tag}_src SYNC`);
    for (const v of viewsOf(n)) await raw[0].queryAsync(`DROP TABLE raw_bench.${tag}_${v.name} SYNC`);
  };
  const ingestApi = (tag: string, data = chunks) =>
    feed(data, async (c) => {
      const r = await fetch(`${base}/v0/events?name=${tag}_src&wait=true`, { method: 'POST', headers: auth, body: new Uint8Array(c) });
      if (r.status !== 200) throw new Error(`events ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    });
  const ingestRaw = (table: string, data = chunks, settings: Record<string, string | number> = {}) =>
    feed(data, async (c, w) => {
      await raw[w].insert({ table, values: c, format: 'JSONEachRow', settings: { date_time_input_format: 'best_effort', ...settings } });
    });

  try {
    // Warm-up: one request each way into a 3-view setup.
    await setupApi('warm', 3);
    await setupRaw('warm', 3);
    await ingestApi('warm', chunks.slice(0, 2));
    await ingestRaw('raw_bench.warm_src', chunks.slice(0, 2));
    await dropApi('warm', 3);
    await dropRaw('warm', 3);

    const mbs: Record<string, { api: number[]; raw: number[] }> = {};
    for (const n of CONFIGS) mbs[n] = { api: [], raw: [] };
    for (let run = 0; run < RUNS; run++) {
      const line: string[] = [];
      for (const n of CONFIGS) {
        const tag = `r${run}_v${n}`;
        const order = (run + n) % 2 === 0 ? (['api', 'raw'] as const) : (['raw', 'api'] as const);
        for (const side of order) {
          if (side === 'api') {
            await setupApi(tag, n);
            const s = await ingestApi(tag);
            await checkApi(tag, n);
            await dropApi(tag, n);
            mbs[n].api.push(totalBytes / 1e6 / s);
          } else {
            await setupRaw(tag, n);
            const s = await ingestRaw(`raw_bench.${tag}_src`);
            await checkRaw(tag, n);
            await dropRaw(tag, n);
            mbs[n].raw.push(totalBytes / 1e6 / s);
          }
        }
        const a = mbs[n].api.at(-1)!;
        const r = mbs[n].raw.at(-1)!;
        line.push(`${n} views ${a.toFixed(1)}/${r.toFixed(1)} MB/s (${(a / r).toFixed(2)})`);
      }
      console.log(`run ${run + 1} (api/raw; load ${os.loadavg()[0].toFixed(1)}): ${line.join('; ')}`);
    }

    console.log(
      `\nmedians over ${RUNS} runs (MB/s of NDJSON; API = Events API wait=true, raw = chDB session.insert JSONEachRow; ${CLIENTS} concurrent clients each):`,
    );
    console.log('| views | API MB/s | raw MB/s | ratio | API rows/s | raw rows/s | API vs its 0-view figure | raw vs its 0-view figure |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    const rowsPerMB = ROWS / (totalBytes / 1e6);
    for (const n of CONFIGS) {
      const a = median(mbs[n].api);
      const r = median(mbs[n].raw);
      const ratio = median(mbs[n].api.map((x, i) => x / mbs[n].raw[i]));
      const relA = median(mbs[n].api.map((x, i) => x / mbs[0].api[i]));
      const relR = median(mbs[n].raw.map((x, i) => x / mbs[0].raw[i]));
      console.log(
        `| ${n} | ${a.toFixed(1)} | ${r.toFixed(1)} | ${ratio.toFixed(2)} | ${Math.round(a * rowsPerMB).toLocaleString('en-US')} | ${Math.round(r * rowsPerMB).toLocaleString('en-US')} | ${relA.toFixed(2)} | ${relR.toFixed(2)} |`,
      );
    }

    if (BREAKDOWN) await breakdown();
  } finally {
    for (const s of raw) s.close();
    await app.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  /**
   * Where the time goes with 3 views: the API path against raw variants that add one of its
   * steps at a time (each measured PASSES times, alternating, median MB/s):
   * - raw JSONEachRow into the source (the baseline above);
   * - + Pipit's insert settings (insert_deduplication_token per request,
   *   deduplicate_blocks_in_dependent_materialized_views = 1) and the source table's
   *   non_replicated_deduplication_window = 1000: block hashes for the source and every target;
   * - the engine path of the API alone: LineAsString into the data source's Null stage (its two
   *   routing views parse every line and send it to the table or quarantine), with Pipit's
   *   settings, from raw Sessions (no HTTP, no write-ahead log);
   * - the whole Events API.
   */
  async function breakdown() {
    const n = 3;
    const variants: Array<[string, () => Promise<number>]> = [
      [
        'raw JSONEachRow into the source',
        async () => {
          await setupRaw('bd', n);
          try {
            return await ingestRaw('raw_bench.bd_src');
          } finally {
            await dropRaw('bd', n);
          }
        },
      ],
      [
        'raw + dedup token/window and dependent-view dedup',
        async () => {
          await setupRaw('bd', n);
          await raw[0].queryAsync('ALTER TABLE raw_bench.bd_src MODIFY SETTING non_replicated_deduplication_window = 1000');
          let k = 0;
          try {
            return await feed(chunks, async (c, w) => {
              await raw[w].insert({
                table: 'raw_bench.bd_src',
                values: c,
                format: 'JSONEachRow',
                settings: {
                  date_time_input_format: 'best_effort',
                  insert_deduplication_token: `bd-${k++}`,
                  deduplicate_blocks_in_dependent_materialized_views: 1,
                },
              });
            });
          } finally {
            await dropRaw('bd', n);
          }
        },
      ],
      [
        'LineAsString into the Null stage (engine path of the API)',
        async () => {
          await setupApi('bd', n);
          const stage = `${await physical('bd_src')}_sj`;
          let k = 0;
          try {
            return await feed(chunks, async (c, w) => {
              const id = `bd${k++}`;
              await raw[w].queryAsync(
                `INSERT INTO ${stage} (__line) SETTINGS log_comment='${id}', insert_deduplication_token='wal-${id}', ` +
                  `deduplicate_blocks_in_dependent_materialized_views=1 FORMAT LineAsString\n${c.toString('utf8')}`,
              );
            });
          } finally {
            await dropApi('bd', n);
          }
        },
      ],
      [
        'Events API (wait=true)',
        async () => {
          await setupApi('bd', n);
          try {
            return await ingestApi('bd');
          } finally {
            await dropApi('bd', n);
          }
        },
      ],
    ];
    const acc = variants.map(() => [] as number[]);
    for (let pass = 0; pass < PASSES; pass++) {
      const order = variants.map((_, i) => i);
      if (pass % 2) order.reverse();
      for (const i of order) acc[i].push(totalBytes / 1e6 / (await variants[i][1]()));
    }
    console.log(`\nwhere the time goes with ${n} views (MB/s, median of ${PASSES} passes; ${CLIENTS} concurrent clients; load ${os.loadavg()[0].toFixed(1)}):`);
    for (const [i, [name]] of variants.entries())
      console.log(`  ${name.padEnd(60)} ${median(acc[i]).toFixed(1)}  (${acc[i].map((x) => x.toFixed(1)).join(', ')})`);
    // The same steps with no view.
    const zero: Array<[string, () => Promise<number>]> = [
      [
        '0 views: raw JSONEachRow',
        async () => {
          await setupRaw('bz', 0);
          try {
            return await ingestRaw('raw_bench.bz_src');
          } finally {
            await dropRaw('bz', 0);
          }
        },
      ],
      [
        '0 views: LineAsString into the Null stage',
        async () => {
          await setupApi('bz', 0);
          const stage = `${await physical('bz_src')}_sj`;
          let k = 0;
          try {
            return await feed(chunks, async (c, w) => {
              const id = `bz${k++}`;
              await raw[w].queryAsync(
                `INSERT INTO ${stage} (__line) SETTINGS log_comment='${id}', insert_deduplication_token='wal-${id}', ` +
                  `deduplicate_blocks_in_dependent_materialized_views=1 FORMAT LineAsString\n${c.toString('utf8')}`,
              );
            });
          } finally {
            await dropApi('bz', 0);
          }
        },
      ],
      [
        '0 views: Events API (wait=true)',
        async () => {
          await setupApi('bz', 0);
          try {
            return await ingestApi('bz');
          } finally {
            await dropApi('bz', 0);
          }
        },
      ],
    ];
    const acc0 = zero.map(() => [] as number[]);
    for (let pass = 0; pass < PASSES; pass++) {
      const order = zero.map((_, i) => i);
      if (pass % 2) order.reverse();
      for (const i of order) acc0[i].push(totalBytes / 1e6 / (await zero[i][1]()));
    }
    for (const [i, [name]] of zero.entries())
      console.log(`  ${name.padEnd(60)} ${median(acc0[i]).toFixed(1)}  (${acc0[i].map((x) => x.toFixed(1)).join(', ')})`);

    // Timeline of one ~10 MB request, one client at a time: request sent → the route hands the
    // body to the event buffer (HTTP, reading 10 MB, line count) → the engine insert starts
    // (write-ahead log file written) → engine insert done → quarantine count done → client has
    // the answer. Against raw chDB JSONEachRow inserts of the same bytes, request by request
    // interleaved (alternating which goes first).
    const { events, engine, ingest } = app.services;
    const origAppend = events.appendLarge.bind(events);
    const origInsert = engine.insert.bind(engine);
    const origCount = ingest.countQuarantined.bind(ingest);
    let m = { append: 0, insert0: 0, insert1: 0, count1: 0 };
    events.appendLarge = async (...a) => {
      m.append = performance.now();
      return origAppend(...a);
    };
    engine.insert = async (o) => {
      m.insert0 = performance.now();
      try {
        return await origInsert(o);
      } finally {
        m.insert1 = performance.now();
      }
    };
    ingest.countQuarantined = async (...a) => {
      const r = await origCount(...a);
      m.count1 = performance.now();
      return r;
    };
    try {
      for (const v of [0, n]) {
        const seg: number[][] = [[], [], [], [], [], [], []];
        for (let pass = 0; pass < 3; pass++) {
          await setupApi('tl', v);
          await setupRaw('tl', v);
          for (const [j, c] of chunks.entries()) {
            const viaApi = async () => {
              m = { append: 0, insert0: 0, insert1: 0, count1: 0 };
              const t0 = performance.now();
              const r = await fetch(`${base}/v0/events?name=tl_src&wait=true`, { method: 'POST', headers: auth, body: new Uint8Array(c) });
              await r.arrayBuffer();
              const t1 = performance.now();
              seg[0].push(m.append - t0);
              seg[1].push(m.insert0 - m.append);
              seg[2].push(m.insert1 - m.insert0);
              seg[3].push(m.count1 - m.insert1);
              seg[4].push(t1 - m.count1);
              seg[5].push(t1 - t0);
            };
            const viaRaw = async () => {
              const t0 = performance.now();
              await raw[0].insert({ table: 'raw_bench.tl_src', values: c, format: 'JSONEachRow', settings: { date_time_input_format: 'best_effort' } });
              seg[6].push(performance.now() - t0);
            };
            for (const f of (j + pass) % 2 ? [viaRaw, viaApi] : [viaApi, viaRaw]) await f();
          }
          await dropApi('tl', v);
          await dropRaw('tl', v);
        }
        const f = (xs: number[]) => median(xs).toFixed(1);
        console.log(
          `\ntimeline of one ~10 MB request with ${v} views, one client (ms, medians of ${seg[0].length} requests): ` +
            `request sent → event buffer ${f(seg[0])}; → engine insert starts (write-ahead log) ${f(seg[1])}; engine insert (LineAsString → stage → table${v ? ' → views' : ''}) ${f(seg[2])}; ` +
            `quarantine count ${f(seg[3])}; → client has the answer ${f(seg[4])}; whole request ${f(seg[5])}; raw JSONEachRow insert of the same bytes ${f(seg[6])}`,
        );
      }
    } finally {
      events.appendLarge = origAppend;
      engine.insert = origInsert;
      ingest.countQuarantined = origCount;
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
