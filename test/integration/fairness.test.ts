/**
 * One token can not starve everyone (issue 10, item 2). Replays the reports: a read token's slow
 * queries made an admin's `SELECT 1` wait 18.6 s, and heavy queries held every thread of libuv's
 * pool so Events API acknowledgements (WAL file writes) waited 9.3 s. Checks admission control
 * (per-token and per-workspace limits, slots kept for a token with nothing running, a bounded
 * queue, 429 with Retry-After), that acknowledgements never wait for queries (also in a server
 * started with libuv's default pool of 4 threads), and the engine's memory budget.
 *
 * Slow queries sleep instead of computing (`sleep(3) UNION ALL sleep(3)` on one thread: 6 s),
 * so they hold Sessions and threads without loading the machine's cores. Bounds are generous:
 * "fast" is under 1.5 s while the slow queries take 6 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_SESSIONS, loadConfig, reservedUserSlots } from '../../src/config/config.js';
import { planLanes, threadpoolFor } from '../../src/engine/lanes.js';
import { Admission } from '../../src/sql/admission.js';
import { engineRows, startServer, type TestServer } from '../helpers/server.js';

const FAST_MS = 1500;
const SLOW_SQL = 'SELECT sleep(3) UNION ALL SELECT sleep(3)';
const slowPath = `/v0/sql?max_threads=1&q=${encodeURIComponent(`${SLOW_SQL} FORMAT CSV`)}`;
const selectOne = `/v0/sql?q=${encodeURIComponent('SELECT 1 AS one FORMAT CSV')}`;
const MiB = 1024 ** 2;

let s: TestServer;
let tokenA: string;
let tokenC: string;
let tokenWs2: string;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = Date.now();
  const value = await fn();
  return { ms: Date.now() - t, value };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function readToken(name: string): Promise<string> {
  const r = await s.req('POST', `/v0/tokens?name=${name}&scope=DATASOURCES:READ:fair_events`);
  expect(r.status, await r.clone().text()).toBe(200);
  return (await r.json()).token;
}

const usage = () => s.app.services.queries.admission.usage;

beforeAll(async () => {
  s = await startServer({ config: { queryQueuePerToken: 2, queryQueueTimeout: 2, engineMaxMemory: 320 * MiB, queryMaxMemory: 256 * MiB } });
  const r = await s.req('POST', '/v0/events?name=fair_events&wait=true', { body: '{"k":"a","v":1}\n' });
  expect(r.status, await r.clone().text()).toBe(200);
  tokenA = await readToken('slow_reader');
  tokenC = await readToken('other_reader');
  const w = await s.req('POST', '/v0/workspaces', { body: new URLSearchParams({ name: 'second' }), token: s.app.services.localTokens.user_token });
  expect(w.status, await w.clone().text()).toBe(200);
  tokenWs2 = (await w.json()).token;
}, 60_000);

afterAll(async () => {
  await s?.close();
});

describe('admission control', () => {
  it('defaults: per-token below per-workspace below the slots; a slot is kept for a token with nothing running', () => {
    // The server under test runs 4 user-query slots (engineSessions 4 in a 16-thread pool).
    const c = s.app.services.config;
    expect(c.threadpoolSize).toBeGreaterThanOrEqual(10);
    const l = s.app.services.queries.admission.limits;
    expect(l).toMatchObject({ slots: 4, reserved: 1, perToken: 2, perWorkspace: 3 });
  });

  it('the shipped defaults (8 sessions, as npm start runs them) let one client run 4 queries at once and still keep slots for others', async () => {
    const d = loadConfig({}, { threadpoolSize: threadpoolFor(DEFAULT_ENGINE_SESSIONS) });
    expect(d.engineSessions).toBe(8);
    const slots = planLanes(d.threadpoolSize, d.engineSessions).user;
    const limits = { slots, reserved: reservedUserSlots(slots), perToken: d.queryConcurrencyPerToken, perWorkspace: d.queryConcurrencyPerWorkspace };
    expect(limits).toEqual({ slots: 8, reserved: 2, perToken: 4, perWorkspace: 6 });
    // Four queries at their memory limit still leave a share of the budget, as with 4 slots (more
    // sessions do not make each query's limit smaller; the budget refuses what overcommits).
    expect(d.queryMaxMemory).toBe(Math.floor(d.engineMaxMemory / 5));
    const a = new Admission({ ...limits, queuePerToken: d.queryQueuePerToken, queueTimeoutMs: 1000, queryTimeout: d.queryTimeout });
    const app = { token: 'app', workspace: 'w' };
    // Four at once from one token: none waits.
    const mine = await Promise.all(Array.from({ length: 4 }, () => a.enter(app)));
    expect(a.usage).toMatchObject({ running: 4, waiting: 0, waited: 0 });
    // A fifth waits; another token of the workspace and one of another workspace start at once.
    const fifth = a.enter(app);
    expect(a.usage).toMatchObject({ running: 4, waiting: 1 });
    const frees = [await a.enter({ token: 'dashboard', workspace: 'w' }), await a.enter({ token: 'other', workspace: 'w2' })];
    expect(a.usage).toMatchObject({ running: 6, waiting: 1 });
    mine[0]();
    (await fifth)();
    for (const f of [...mine, ...frees]) f();
    expect(a.usage).toMatchObject({ running: 0, waiting: 0 });
  });

  it("one token's slow queries do not delay another token's cheap query or an Events API acknowledgement", async () => {
    // Token A sends 4 slow queries: 2 run (its limit), 2 wait (its queue).
    const slow = Array.from({ length: 4 }, () => s.req('GET', slowPath, { token: tokenA }));
    await until(() => usage().running === 2 && usage().waiting === 2, 'A: 2 running, 2 waiting');

    // A fifth is over A's concurrency + queue: 429 at once, with Retry-After.
    const over = await timed(() => s.req('GET', slowPath, { token: tokenA }));
    expect(over.value.status).toBe(429);
    expect(Number(over.value.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await over.value.json()).error).toMatch(/maximum of 2 concurrent queries/);
    expect(over.ms).toBeLessThan(FAST_MS);

    // The admin and another read token are answered at once.
    for (const token of [s.token, tokenC, s.token]) {
      const r = await timed(() => s.req('GET', selectOne, { token }));
      expect(r.value.status).toBe(200);
      expect(await r.value.text()).toBe('1\n');
      expect(r.ms).toBeLessThan(FAST_MS);
    }
    // So is an Events API acknowledgement (the WAL write does not queue behind engine calls).
    const ack = await timed(() => s.req('POST', '/v0/events?name=fair_events', { body: '{"k":"b","v":2}\n{"k":"c","v":3}\n' }));
    expect(ack.value.status).toBe(202);
    expect(ack.ms).toBeLessThan(FAST_MS);

    // Token C starts a slow query too: the workspace now runs 3, its limit. Another workspace
    // still gets the slot kept for it at once.
    const slowC = s.req('GET', slowPath, { token: tokenC });
    await until(() => usage().running === 3, 'C running');
    const other = await timed(() => s.req('GET', selectOne, { token: tokenWs2 }));
    expect(other.value.status).toBe(200);
    expect(other.ms).toBeLessThan(FAST_MS);

    // A's waiting queries gave up after the queue's bound (2 s) with a 429 and Retry-After; the
    // running ones end normally.
    const answers = await Promise.all(slow);
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429, 429]);
    for (const r of answers.filter((x) => x.status === 429)) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await r.json()).error).toMatch(/waited 2 s for a free engine slot/);
    }
    for (const r of answers.filter((x) => x.status === 200)) expect(await r.text()).toBe('0\n0\n');
    expect((await slowC).status).toBe(200);
    await until(() => usage().running === 0 && usage().waiting === 0, 'every slot freed');
    const lanes = (s.app.services.engine as unknown as { laneUsage: { user: number; internal: number } }).laneUsage;
    expect(lanes.user).toBe(0);
  }, 30_000);

  it('a client that goes away leaves the queue, and streamed results free their slot', async () => {
    const sleep2 = `/v0/sql?q=${encodeURIComponent('SELECT sleep(2) FORMAT CSV')}`;
    const slow = Array.from({ length: 2 }, () => s.req('GET', sleep2, { token: tokenA }));
    await until(() => usage().running === 2, 'A running');
    const ac = new AbortController();
    const gone = fetch(s.url + sleep2, { headers: { authorization: `Bearer ${tokenA}` }, signal: ac.signal }).catch(() => null);
    await until(() => usage().waiting === 1, 'A waiting');
    ac.abort();
    await gone;
    await until(() => usage().waiting === 0, 'the queue to empty');
    // A streamed format (CSV rows) read to the end by another token.
    const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT number FROM numbers(100000) FORMAT CSV')}`, { token: tokenC });
    expect(r.status).toBe(200);
    expect((await r.text()).split('\n').length).toBe(100_001);
    expect((await Promise.all(slow)).map((x) => x.status)).toEqual([200, 200]);
    await until(() => usage().running === 0, 'every slot freed');
  }, 30_000);
});

describe('memory', () => {
  it("the engine runs with a server-wide budget and per-query limits derived from the machine's memory", async () => {
    const [row] = await engineRows<{ value: string }>(s, "SELECT value FROM system.server_settings WHERE name = 'max_server_memory_usage'");
    expect(Number(row.value)).toBe(320 * MiB);
    // Defaults: a budget below the machine's memory, and every user slot at its limit still
    // leaves a share of it (not a fixed 8 GiB each, which four sessions made 32 GiB on 24).
    const d = loadConfig({}, { engineSessions: 4, threadpoolSize: 16 });
    expect(d.engineMaxMemory).toBeLessThan(os.totalmem());
    expect(d.queryMaxMemory * 5).toBeLessThanOrEqual(d.engineMaxMemory);
    expect(() => loadConfig({ PIPIT_ENGINE_MAX_MEMORY: String(1024 * MiB), PIPIT_QUERY_MAX_MEMORY: String(2048 * MiB) })).toThrow(/must not exceed/);
  });

  it("user queries read through the engine's cache of decompressed blocks, sized from the budget", async () => {
    expect(s.app.services.config.engineUncompressedCache).toBe(10 * MiB); // 320 MiB / 32
    expect(loadConfig({}, { engineMaxMemory: 64 * 1024 * MiB }).engineUncompressedCache).toBe(256 * MiB);
    expect(loadConfig({ PIPIT_ENGINE_UNCOMPRESSED_CACHE: '0' }).engineUncompressedCache).toBe(0);
    expect(() => loadConfig({ PIPIT_ENGINE_MAX_MEMORY: String(1024 * MiB), PIPIT_ENGINE_UNCOMPRESSED_CACHE: String(600 * MiB) })).toThrow(
      /PIPIT_ENGINE_UNCOMPRESSED_CACHE/,
    );
    if (s.app.services.engine.inProcess !== true) return; // a remote server's cache is its own configuration
    const [size] = await engineRows<{ value: string }>(s, "SELECT value FROM system.server_settings WHERE name = 'uncompressed_cache_size'");
    expect(Number(size.value)).toBe(10 * MiB);
    const hits = async () =>
      Number((await engineRows<{ n: string }>(s, "SELECT sum(value) AS n FROM system.events WHERE event = 'UncompressedCacheHits'"))[0]?.n ?? 0);
    const before = await hits();
    for (let i = 0; i < 2; i++) {
      const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT sum(v) AS v FROM fair_events FORMAT CSV')}`, { token: tokenC });
      expect(r.status, await r.clone().text()).toBe(200);
    }
    expect(await hits()).toBeGreaterThan(before);
  });

  it('a query over its memory limit fails with a clear 400 and the server keeps answering', async () => {
    const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT length(groupArray(number)) FROM numbers(100000000)')}`, { token: tokenA });
    expect(r.status).toBe(400);
    expect(r.headers.get('x-db-exception-code')).toBe('241');
    expect((await r.json()).error).toMatch(/memory limit exceeded.*maximum: 256\.00 MiB/i);
    expect((await s.req('GET', selectOne)).status).toBe(200);
  });

  it('queries that together reach the budget fail one by one (400 or a retryable 503), never the process', async () => {
    // Each holds a 120 MB string (made in one allocation of 128 MiB, under its 256 MiB limit)
    // while it sleeps two seconds: the LIMIT makes the string before the outer step, whose `if`
    // sleeps before reading it. Three at once need 384 MiB, past the engine's 320 MiB budget, so
    // one fails with the retryable 503 (a few rounds, in case a loaded machine did not overlap
    // them; up to 10). The fourth may also wait past the 2 s queue bound: 429. (A groupArray over
    // 8M rows held 64 MiB once built: three passed the budget only while growing at the same
    // moment, and a CI run once went 10 rounds without a 503.)
    const q = `/v0/sql?q=${encodeURIComponent("SELECT if(sleep(2) = 0, length(s), 0) FROM (SELECT repeat(repeat('x', 1000), 120000 + rand() % 1) AS s LIMIT 1) FORMAT CSV")}`;
    const seen = new Set<number>();
    const rounds: number[][] = [];
    for (let round = 0; round < 10 && !seen.has(503); round++) {
      const rs = await Promise.all([s.token, s.token, tokenWs2, tokenWs2].map((token) => s.req('GET', q, { token })));
      rounds.push(rs.map((r) => r.status));
      for (const r of rs) {
        seen.add(r.status);
        expect([200, 400, 429, 503]).toContain(r.status);
        if (r.status === 503) {
          expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
          expect((await r.json()).error).toMatch(/short of memory/);
        } else if (r.status === 400) expect((await r.json()).error).toMatch(/memory limit/i);
        else if (r.status === 200) expect(await r.text()).toBe('120000000\n');
      }
    }
    expect(seen.has(503), `statuses by round: ${JSON.stringify(rounds)}`).toBe(true);
    expect((await s.req('GET', selectOne)).status).toBe(200);
    const ack = await s.req('POST', '/v0/events?name=fair_events&wait=true', { body: '{"k":"d","v":4}\n' });
    expect(ack.status).toBe(200);
  }, 90_000);
});

describe("libuv's default pool of 4 threads", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-fairness-'));
  let child: ChildProcess | undefined;

  afterAll(() => {
    child?.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('Events API acknowledgements never wait for queries, even when the process was started without UV_THREADPOOL_SIZE', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, UV_THREADPOOL_SIZE: '4', PIPIT_DATA_DIR: dataDir, PIPIT_PORT: String(port), PIPIT_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('listening')) resolve();
      });
      child!.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    const { admin_token: token } = await (await fetch(`${base}/tokens`)).json();
    const auth = { authorization: `Bearer ${token}` };
    const r = await fetch(`${base}/v0/events?name=t4&wait=true`, { method: 'POST', headers: auth, body: '{"k":"a"}\n' });
    expect(r.status).toBe(200);

    // Four slow queries: before, all four ran at once and held all four threads.
    const slow = Array.from({ length: 4 }, () => fetch(base + slowPath, { headers: auth }));
    await new Promise((res) => setTimeout(res, 500));
    for (let i = 0; i < 3; i++) {
      const ack = await timed(() => fetch(`${base}/v0/events?name=t4`, { method: 'POST', headers: auth, body: `{"k":"b${i}"}\n` }));
      expect(ack.value.status).toBe(202);
      expect(ack.ms).toBeLessThan(FAST_MS);
    }
    // The slow queries are not waited for: the process is killed in afterAll.
    for (const p of slow) p.catch(() => undefined);
  }, 60_000);
});
