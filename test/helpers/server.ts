/**
 * Test harness: a real Pipit app (embedded chDB engine, PGlite catalog) on a loopback port, with
 * a fresh data directory per test file, and a tiny fetch wrapper carrying the admin token.
 * With PIPIT_TEST_CATALOG=pg (`npm run test:pg`) every server gets a fresh database on a throw-away
 * PostgreSQL cluster (one per test worker, see postgres.ts) as its catalog instead.
 * With PIPIT_TEST_ENGINE=remote (`npm run test:remote`) the app uses the remote engine against a
 * ClickHouse-compatible test server (test/engine-server, a child process per server) instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApp, type App } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { JobKind, JobRecord } from '../../src/catalog/catalog.js';
import { forgetLeftover, registerLeftover } from './leftovers.js';
import { startPostgres, type TestPostgres } from './postgres.js';

let cluster: Promise<TestPostgres> | undefined;
let databases = 0;

/** A fresh catalog database on this worker's PostgreSQL cluster (started on first use, stopped at exit). */
export async function testCatalogUrl(): Promise<string> {
  if (!cluster) {
    cluster = startPostgres();
    const pg = await cluster;
    process.on('exit', () => void pg.stop());
  }
  return (await cluster).createDatabase(`pipit_${process.pid}_${++databases}`);
}

/** The master key test servers share when their catalog is PostgreSQL. */
export const TEST_SECRET_KEY = Buffer.from('pipit-test-master-key-0123456789abcdef');

/** Catalog settings of the catalog the suite runs against (PIPIT_TEST_CATALOG=pg: PostgreSQL). */
async function catalogConfig(): Promise<Partial<Config>> {
  if (process.env.PIPIT_TEST_CATALOG !== 'pg') return {};
  return { catalogUrl: await testCatalogUrl(), secretKey: TEST_SECRET_KEY };
}

export interface TestServer {
  app: App;
  url: string;
  token: string;
  dataDir: string;
  /** fetch against the server; adds the admin token unless `token` is given (null = none). */
  req(method: string, pathAndQuery: string, opts?: { body?: BodyInit; headers?: Record<string, string>; token?: string | null }): Promise<Response>;
  /** Stops the app and starts a new one on the same data directory, catalog and engine (`app` and `url` change). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface ServerOptions {
  /** Let url= imports and analyze fetch loopback/private addresses (default true: tests serve files on loopback). */
  allowPrivateUrls?: boolean;
  /** Any other configuration (e.g. a short queryTimeout). */
  config?: Partial<Config>;
}

/**
 * `n` jobs of `kind` that hold the server's job slots until `release()` (their payload marks
 * them: the kind's own handler, wrapped, runs every other job as usual). `started` resolves once
 * all of them run.
 */
export async function holdJobs(
  s: TestServer,
  kind: JobKind,
  n: number,
  data: Record<string, unknown> = {},
): Promise<{ jobs: JobRecord[]; started: Promise<void>; release: () => void }> {
  const jobs = s.app.services.jobs;
  const own = jobs.registered(kind);
  const key = `held-${Math.random()}`;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let running = 0;
  let allStarted!: () => void;
  const started = new Promise<void>((r) => (allStarted = r));
  jobs.register(
    kind,
    async (job, payload, signal) => {
      if ((payload as { held?: string } | null)?.held !== key) return own!.run(job, payload, signal);
      if (++running === n) allStarted();
      await gate;
      return {};
    },
    own?.ended && ((job, payload) => ((payload as { held?: string } | null)?.held === key ? Promise.resolve() : own.ended!(job, payload))),
  );
  const created: JobRecord[] = [];
  for (let i = 0; i < n; i++) created.push(await jobs.create(s.app.services.access.defaultWorkspace, kind, data, { held: key }));
  return { jobs: created, started, release };
}

/** True when the suites run against the remote engine (PIPIT_TEST_ENGINE=remote). */
export const remoteEngine = process.env.PIPIT_TEST_ENGINE === 'remote';

export interface EngineTestServerProcess {
  url: string;
  child: ChildProcess;
  /** Query ids the test server is running now. */
  processes(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts `npm run engine-test-server` (its script, directly) on a free loopback port with its own data directory. */
export async function startEngineTestServerProcess(dataDir: string): Promise<EngineTestServerProcess> {
  const root = path.resolve(import.meta.dirname, '../..');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/engine-server/main.ts'), '--port', '0', '--data', dataDir], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '24' },
  });
  if (child.pid) registerLeftover({ pid: child.pid, signal: 'SIGKILL' });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += String(d)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`engine test server did not start: ${stderr}`)), 30_000);
    child.stdout?.on('data', (d) => {
      out += String(d);
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`engine test server exited with ${code}: ${stderr}`));
    });
  });
  return {
    url,
    child,
    async processes() {
      return (await (await fetch(`${url}/__pipit_test/running`)).json()) as string[];
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
      forgetLeftover(child.pid);
    },
  };
}

export async function startServer(opts: ServerOptions = {}): Promise<TestServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-test-'));
  const engineServer = remoteEngine ? await startEngineTestServerProcess(path.join(dataDir, 'engine-server')) : null;
  const config = loadConfig(
    {},
    {
      dataDir,
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      allowPrivateUrls: opts.allowPrivateUrls ?? true,
      engineSessions: 4,
      ...(await catalogConfig()),
      engineUrl: engineServer?.url ?? null,
      ...opts.config,
    },
  );
  const listen = async (): Promise<{ app: App; url: string }> => {
    const app = await createApp(config);
    await app.http.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.http.server.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    (config as { apiHost: string }).apiHost = url;
    return { app, url };
  };
  let started: { app: App; url: string };
  try {
    started = await listen();
  } catch (err) {
    await engineServer?.stop();
    throw err;
  }
  const token = started.app.services.localTokens.workspace_admin_token;
  const server: TestServer = {
    ...started,
    token,
    dataDir,
    req(method, p, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      const t = opts.token === undefined ? token : opts.token;
      if (t) headers.authorization = `Bearer ${t}`;
      return fetch(server.url + p, { method, body: opts.body, headers });
    },
    async restart() {
      await server.app.close();
      Object.assign(server, await listen());
    },
    async close() {
      await server.app.close();
      await engineServer?.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Rows of a table via the engine directly (the Query API comes later). */
export async function engineRows<T = Record<string, unknown>>(s: TestServer, sql: string): Promise<T[]> {
  return s.app.services.engine.rows<T>(sql);
}

/** Physical table names of a data source by name. */
export async function tableOf(s: TestServer, name: string): Promise<{ table: string; quarantine: string }> {
  const ws = s.app.services.access.defaultWorkspace;
  const ds = await s.app.services.datasources.get(ws, name);
  return { table: `${ws.database}.${ds.id}`, quarantine: `${ws.database}.${ds.id}_quarantine` };
}

export async function count(s: TestServer, name: string, quarantine = false): Promise<number> {
  const t = await tableOf(s, name);
  const r = await engineRows<{ c: string }>(s, `SELECT count() AS c FROM ${quarantine ? t.quarantine : t.table}`);
  return Number(r[0].c);
}
