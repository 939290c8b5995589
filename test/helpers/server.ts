/**
 * Test harness: a real Pipit app (embedded chDB engine, PGlite catalog) on a loopback port, with
 * a fresh data directory per test file, and a tiny fetch wrapper carrying the admin token.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApp, type App } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config/config.js';

export interface TestServer {
  app: App;
  url: string;
  token: string;
  dataDir: string;
  /** fetch against the server; adds the admin token unless `token` is given (null = none). */
  req(method: string, pathAndQuery: string, opts?: { body?: BodyInit; headers?: Record<string, string>; token?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

export interface ServerOptions {
  /** Let url= imports and analyze fetch loopback/private addresses (default true: tests serve files on loopback). */
  allowPrivateUrls?: boolean;
  /** Any other configuration (e.g. a short queryTimeout). */
  config?: Partial<Config>;
}

export async function startServer(opts: ServerOptions = {}): Promise<TestServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-test-'));
  const config = loadConfig(
    {},
    { dataDir, port: 0, host: '127.0.0.1', logLevel: 'silent', allowPrivateUrls: opts.allowPrivateUrls ?? true, engineSessions: 4, ...opts.config },
  );
  const app = await createApp(config);
  await app.http.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.http.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const url = `http://127.0.0.1:${port}`;
  (config as { apiHost: string }).apiHost = url;
  const token = app.services.localTokens.workspace_admin_token;
  return {
    app,
    url,
    token,
    dataDir,
    req(method, p, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      const t = opts.token === undefined ? token : opts.token;
      if (t) headers.authorization = `Bearer ${t}`;
      return fetch(url + p, { method, body: opts.body, headers });
    },
    async close() {
      await app.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
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
