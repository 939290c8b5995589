/**
 * Typed server settings, read from the environment once at boot. Nothing else in the code base
 * reads process.env; everything receives a Config. Rejects invalid values with a clear message.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { planLanes } from '../engine/lanes.js';

export interface Config {
  /** TCP port (PIPIT_PORT, default 7181 like Tinybird Local). */
  port: number;
  /** Bind address (PIPIT_HOST, default 127.0.0.1). */
  host: string;
  /** Root of all state: engine data, catalog, write-ahead log (PIPIT_DATA_DIR, default ./pipit-data). */
  dataDir: string;
  /** Public base URL used in `job_url` and similar fields (PIPIT_API_HOST, default http://host:port). */
  apiHost: string;
  /** Engine calls at once in each lane, user queries and internal work (PIPIT_ENGINE_SESSIONS, default 8). */
  engineSessions: number;
  /**
   * Threads in libuv's pool (UV_THREADPOOL_SIZE as the process started with it; libuv's default 4).
   * Every running engine call holds one, so the engine lanes are narrowed to leave spare threads
   * for file writes (see src/engine/lanes.ts). `npm start` starts with 24 (2 × sessions + 8).
   */
  threadpoolSize: number;
  /** Bytes of memory the whole engine may use (PIPIT_ENGINE_MAX_MEMORY, default 60% of the machine's memory). */
  engineMaxMemory: number;
  /**
   * Bytes of decompressed column blocks the embedded engine keeps for user queries
   * (PIPIT_ENGINE_UNCOMPRESSED_CACHE; default the smaller of 256 MiB and 1/32 of the engine's
   * budget, which it counts in and never frees under pressure, so at most half of it; 0 turns it
   * off). ClickHouse's advice for frequent short queries: an endpoint over the same recent rows
   * skips decompressing them again. Only reads of at most 1,048,576 rows use it (ClickHouse's
   * merge_tree_max_rows_to_use_cache), so large scans never evict it.
   */
  engineUncompressedCache: number;
  /** fsync the Events API write-ahead log before acknowledging (PIPIT_WAL_FSYNC=1; default off: survives kill -9, not power loss). */
  walFsync: boolean;
  /** Log level for the JSON logger (PIPIT_LOG_LEVEL, default info). */
  logLevel: string;
  /** Record the `tinybird.*` service data sources (PIPIT_SERVICE_DATASOURCES, default 1; 0 turns recording off, e.g. to benchmark its cost). */
  serviceDatasources: boolean;
  /** Milliseconds between inserts of buffered service data source records (PIPIT_SERVICE_FLUSH_MS, default 1000: what a crash may lose). */
  serviceFlushMs: number;
  /** Loopback-only port serving /metrics without a token (PIPIT_METRICS_PORT; unset: only GET /metrics with an ADMIN token). */
  metricsPort: number | null;
  /** Where log lines go (not from the environment: stdout; tests pass a collector). Lines are redacted first. */
  logDestination?: { write(line: string): unknown };
  /** Seconds a user query may run (PIPIT_QUERY_TIMEOUT, default 10; overrun → 408). */
  queryTimeout: number;
  /** Bytes a query result may have (PIPIT_QUERY_MAX_RESULT_BYTES, default 100 MB). */
  queryMaxResultBytes: number;
  /**
   * Bytes of memory a user query may use (PIPIT_QUERY_MAX_MEMORY; default the engine budget divided
   * by 5, or by user-query slots + 1 when there are fewer than 4: four queries at their limit still
   * leave a share for ingestion and jobs; more than that are refused by the engine's budget with a
   * retryable 503 when they really use it, instead of every query getting less).
   */
  queryMaxMemory: number;
  /** User queries one token may run at once (PIPIT_QUERY_CONCURRENCY_PER_TOKEN; default derived from the sessions). */
  queryConcurrencyPerToken: number;
  /** User queries one workspace may run at once (PIPIT_QUERY_CONCURRENCY_PER_WORKSPACE; default derived from the sessions). */
  queryConcurrencyPerWorkspace: number;
  /** User queries one token may have waiting for a slot; more → 429 (PIPIT_QUERY_QUEUE_PER_TOKEN; default 8 × its concurrency: a dashboard's burst waits, a flood is refused). */
  queryQueuePerToken: number;
  /** Seconds a user query may wait for a slot before a 429 (PIPIT_QUERY_QUEUE_TIMEOUT, default 5; 0 = no waiting). */
  queryQueueTimeout: number;
  /** Allow url= imports from loopback/private addresses (PIPIT_ALLOW_PRIVATE_URLS=1; for development and tests). */
  allowPrivateUrls: boolean;
  /** Requests per second each API Endpoint answers, burst the same (PIPIT_ENDPOINT_RPS; default 0 = no limit). Over it → 429. */
  endpointRps: number;
  /** Directory local-directory sink connections must resolve inside (PIPIT_SINK_LOCAL_ROOT, default <dataDir>/exports). */
  sinkLocalRoot: string;
  /** AWS account whose root the S3 trust policy names (PIPIT_AWS_ACCOUNT_ID; unset: the S3 integration endpoints answer 404). */
  awsAccountId: string | null;
  /** GCP service account shown by /v0/datasources-bigquery-credentials (PIPIT_GCP_SERVICE_ACCOUNT; unset: 503). */
  gcpServiceAccount: string | null;
  /**
   * Test only (PIPIT_TEST_PAUSE_AT): a journal checkpoint name (`copy:staged`, `alter:engine`, ...)
   * at which the process prints `PIPIT_PAUSED <name>` and stops that operation forever, so a fault
   * test can kill it there; `<name>+sigstop` stops the whole process there instead (SIGSTOP, as a
   * stalled copy), which carries on when continued (SIGCONT). Unset in production.
   */
  testPauseAt: string | null;
  /**
   * Bytes of free disk the engine keeps in reserve (PIPIT_DISK_RESERVE_MB, default 32; 0 = none):
   * below it engine inserts and DDL are refused with a retryable 503, so the engine never has to
   * write its metadata on a full disk.
   */
  diskReserveBytes: number;
  /**
   * The ClickHouse server or cluster to use instead of the embedded engine (PIPIT_ENGINE_URL,
   * `http(s)://host:port`; unset: embedded chDB under the data directory). See docs/deploy.md.
   */
  engineUrl: string | null;
  /** User and password for the engine (PIPIT_ENGINE_USER, default `default`; PIPIT_ENGINE_PASSWORD, default empty). */
  engineUser: string;
  enginePassword: string;
  /** Cluster name: DDL runs ON CLUSTER and tables are Replicated (PIPIT_ENGINE_CLUSTER; only with PIPIT_ENGINE_URL). */
  engineCluster: string | null;
  /** Rows one copy job may write (PIPIT_COPY_MAX_ROWS, default 100 000 000 as in the seed); more → 403. */
  copyMaxRows: number;
  /** Copy jobs of a workspace waiting or working at once (PIPIT_COPY_MAX_ACTIVE_JOBS, default 10); more → 403. */
  copyMaxActiveJobs: number;
  /**
   * A PostgreSQL catalog shared by every copy of the server (PIPIT_CATALOG_URL=postgres://...);
   * null: the embedded PGlite catalog in the data directory.
   */
  catalogUrl: string | null;
  /**
   * The master key every key of the server is derived from (PIPIT_SECRET_KEY, or the contents of
   * the file PIPIT_SECRET_KEY_FILE; at least 32 characters). Required with PIPIT_CATALOG_URL, so
   * every copy signs tokens and decrypts secrets alike; optional in embedded mode (key files).
   */
  secretKey: Buffer | null;
  /** Seconds a job's claim holds without renewal: a dead copy's jobs are failed after it (PIPIT_JOB_LEASE, default 30). */
  jobLeaseSeconds: number;
}

function secretKeyFrom(env: NodeJS.ProcessEnv): Buffer | null {
  let raw = env.PIPIT_SECRET_KEY;
  if (!raw && env.PIPIT_SECRET_KEY_FILE) {
    try {
      raw = fs.readFileSync(env.PIPIT_SECRET_KEY_FILE, 'utf8').trim();
    } catch (err) {
      throw new Error(`PIPIT_SECRET_KEY_FILE can not be read: ${(err as Error).message}`);
    }
  }
  if (!raw) return null;
  if (raw.length < 32) throw new Error('PIPIT_SECRET_KEY must have at least 32 characters (e.g. `openssl rand -hex 32`)');
  return Buffer.from(raw, 'utf8');
}

function catalogUrlFrom(raw: string | undefined): string | null {
  if (!raw) return null;
  if (!/^postgres(ql)?:\/\//.test(raw)) throw new Error('PIPIT_CATALOG_URL must be a postgres:// or postgresql:// URL');
  return raw;
}

function intFrom(env: NodeJS.ProcessEnv, key: string, def: number, min: number, max: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${key} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return n;
}

function boolFrom(env: NodeJS.ProcessEnv, key: string): boolean {
  const raw = (env[key] ?? '').toLowerCase();
  return raw === '1' || raw === 'true' || raw === 'yes';
}

function engineUrlFrom(raw: string | undefined): string | null {
  if (!raw) return null;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`PIPIT_ENGINE_URL must be an http(s)://host:port URL, got "${raw}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`PIPIT_ENGINE_URL must be an http(s)://host:port URL, got "${raw}"`);
  if (u.username || u.password) throw new Error('PIPIT_ENGINE_URL must not carry credentials: set PIPIT_ENGINE_USER and PIPIT_ENGINE_PASSWORD');
  return u.origin;
}

function clusterFrom(raw: string | undefined, engineUrl: string | null): string | null {
  if (!raw) return null;
  if (!engineUrl) throw new Error('PIPIT_ENGINE_CLUSTER needs PIPIT_ENGINE_URL (the embedded engine is one process, not a cluster)');
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(raw)) throw new Error(`PIPIT_ENGINE_CLUSTER must be a cluster name (letters, digits, _ . -), got "${raw}"`);
  return raw;
}

function awsAccount(raw: string | undefined): string | null {
  if (!raw) return null;
  if (!/^\d{12}$/.test(raw)) throw new Error(`PIPIT_AWS_ACCOUNT_ID must be a 12-digit AWS account id, got "${raw}"`);
  return raw;
}

/**
 * The size of this process's libuv thread pool: libuv reads UV_THREADPOOL_SIZE once, when the pool
 * is first used (before any of our code runs), so this is always the process's own environment,
 * also when the rest of the config comes from a literal (tests).
 */
function processThreadpoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/**
 * Engine calls at once in each lane by default. Eight, not the cores' count: a slot is a chDB
 * Session and a pool thread, idle until used, and admission control gives one token half the
 * user slots (4), so a client sending four requests at once is not queued behind its own requests
 * on an idle server (measured: at concurrency 4 the trivial endpoint ran 14–35% more requests per
 * second than with 4 sessions, where that client ran 2 at a time; docs/benchmarks.md, session 9),
 * while 2 slots stay kept for other tokens and the workspace limit (6) still leaves room for
 * another workspace.
 */
export const DEFAULT_ENGINE_SESSIONS = 8;

/**
 * Slots of the user lane kept for a token that has nothing running (a cheap query of someone else
 * is never queued behind one token's heavy ones): a quarter, at least one when there are two.
 */
export function reservedUserSlots(userSlots: number): number {
  return userSlots >= 2 ? Math.max(1, Math.floor(userSlots / 4)) : 0;
}

/** Builds the config from an environment (process.env in main, a literal object in tests). */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: Partial<Config> = {}): Config {
  const port = overrides.port ?? intFrom(env, 'PIPIT_PORT', 7181, 0, 65535);
  const host = overrides.host ?? (env.PIPIT_HOST || '127.0.0.1');
  const dataDir = path.resolve(overrides.dataDir ?? (env.PIPIT_DATA_DIR || 'pipit-data'));
  const engineSessions = overrides.engineSessions ?? intFrom(env, 'PIPIT_ENGINE_SESSIONS', DEFAULT_ENGINE_SESSIONS, 1, 64);
  const threadpoolSize = overrides.threadpoolSize ?? processThreadpoolSize();
  const userSlots = planLanes(threadpoolSize, engineSessions).user;
  const perWorkspace =
    overrides.queryConcurrencyPerWorkspace ??
    intFrom(env, 'PIPIT_QUERY_CONCURRENCY_PER_WORKSPACE', Math.max(1, userSlots - reservedUserSlots(userSlots)), 1, 1024);
  const perToken =
    overrides.queryConcurrencyPerToken ??
    intFrom(env, 'PIPIT_QUERY_CONCURRENCY_PER_TOKEN', Math.max(1, Math.min(perWorkspace - 1, Math.ceil(userSlots / 2))), 1, 1024);
  const engineMaxMemory = overrides.engineMaxMemory ?? intFrom(env, 'PIPIT_ENGINE_MAX_MEMORY', Math.floor(os.totalmem() * 0.6), 64 * 1024 ** 2, 2 ** 50);
  const queryMaxMemory =
    overrides.queryMaxMemory ?? intFrom(env, 'PIPIT_QUERY_MAX_MEMORY', Math.floor(engineMaxMemory / (Math.min(userSlots, 4) + 1)), 1024 ** 2, 2 ** 50);
  const catalogUrl = overrides.catalogUrl !== undefined ? overrides.catalogUrl : catalogUrlFrom(env.PIPIT_CATALOG_URL);
  const secretKey = overrides.secretKey !== undefined ? overrides.secretKey : secretKeyFrom(env);
  if (catalogUrl && !secretKey) {
    throw new Error(
      'PIPIT_SECRET_KEY (or PIPIT_SECRET_KEY_FILE) is required with PIPIT_CATALOG_URL: every copy of the server must sign tokens and decrypt secrets with the same key',
    );
  }
  if (queryMaxMemory > engineMaxMemory) {
    throw new Error(`PIPIT_QUERY_MAX_MEMORY (${queryMaxMemory}) must not exceed the engine's memory budget PIPIT_ENGINE_MAX_MEMORY (${engineMaxMemory})`);
  }
  const engineUrl = overrides.engineUrl !== undefined ? overrides.engineUrl : engineUrlFrom(env.PIPIT_ENGINE_URL);
  return {
    port,
    host,
    dataDir,
    apiHost: overrides.apiHost ?? (env.PIPIT_API_HOST || `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, ''),
    engineSessions,
    threadpoolSize,
    engineMaxMemory,
    engineUncompressedCache:
      overrides.engineUncompressedCache ??
      intFrom(env, 'PIPIT_ENGINE_UNCOMPRESSED_CACHE', Math.min(256 * 1024 ** 2, Math.floor(engineMaxMemory / 32)), 0, Math.floor(engineMaxMemory / 2)),
    walFsync: overrides.walFsync ?? boolFrom(env, 'PIPIT_WAL_FSYNC'),
    logLevel: overrides.logLevel ?? (env.PIPIT_LOG_LEVEL || 'info'),
    logDestination: overrides.logDestination,
    serviceDatasources:
      overrides.serviceDatasources ??
      (env.PIPIT_SERVICE_DATASOURCES === undefined || env.PIPIT_SERVICE_DATASOURCES === '' ? true : boolFrom(env, 'PIPIT_SERVICE_DATASOURCES')),
    serviceFlushMs: overrides.serviceFlushMs ?? intFrom(env, 'PIPIT_SERVICE_FLUSH_MS', 1000, 50, 60_000),
    metricsPort: overrides.metricsPort !== undefined ? overrides.metricsPort : env.PIPIT_METRICS_PORT ? intFrom(env, 'PIPIT_METRICS_PORT', 0, 1, 65535) : null,
    queryTimeout: overrides.queryTimeout ?? intFrom(env, 'PIPIT_QUERY_TIMEOUT', 10, 1, 3600),
    queryMaxResultBytes: overrides.queryMaxResultBytes ?? intFrom(env, 'PIPIT_QUERY_MAX_RESULT_BYTES', 100 * 1024 * 1024, 1024, 2 ** 40),
    queryMaxMemory,
    queryConcurrencyPerToken: perToken,
    queryConcurrencyPerWorkspace: perWorkspace,
    queryQueuePerToken: overrides.queryQueuePerToken ?? intFrom(env, 'PIPIT_QUERY_QUEUE_PER_TOKEN', 8 * perToken, 0, 100_000),
    queryQueueTimeout: overrides.queryQueueTimeout ?? intFrom(env, 'PIPIT_QUERY_QUEUE_TIMEOUT', 5, 0, 3600),
    allowPrivateUrls: overrides.allowPrivateUrls ?? boolFrom(env, 'PIPIT_ALLOW_PRIVATE_URLS'),
    endpointRps: overrides.endpointRps ?? intFrom(env, 'PIPIT_ENDPOINT_RPS', 0, 0, 1_000_000),
    sinkLocalRoot: path.resolve(overrides.sinkLocalRoot ?? (env.PIPIT_SINK_LOCAL_ROOT || path.join(dataDir, 'exports'))),
    awsAccountId: overrides.awsAccountId !== undefined ? overrides.awsAccountId : awsAccount(env.PIPIT_AWS_ACCOUNT_ID),
    gcpServiceAccount: overrides.gcpServiceAccount !== undefined ? overrides.gcpServiceAccount : env.PIPIT_GCP_SERVICE_ACCOUNT || null,
    testPauseAt: overrides.testPauseAt !== undefined ? overrides.testPauseAt : env.PIPIT_TEST_PAUSE_AT || null,
    diskReserveBytes: overrides.diskReserveBytes ?? intFrom(env, 'PIPIT_DISK_RESERVE_MB', 32, 0, 1024 * 1024) * 1024 * 1024,
    engineUrl,
    engineUser: overrides.engineUser ?? (env.PIPIT_ENGINE_USER || 'default'),
    enginePassword: overrides.enginePassword ?? env.PIPIT_ENGINE_PASSWORD ?? '',
    engineCluster: overrides.engineCluster !== undefined ? overrides.engineCluster : clusterFrom(env.PIPIT_ENGINE_CLUSTER, engineUrl),
    copyMaxRows: overrides.copyMaxRows ?? intFrom(env, 'PIPIT_COPY_MAX_ROWS', 100_000_000, 1, Number.MAX_SAFE_INTEGER - 1),
    copyMaxActiveJobs: overrides.copyMaxActiveJobs ?? intFrom(env, 'PIPIT_COPY_MAX_ACTIVE_JOBS', 10, 1, 10_000),
    catalogUrl,
    secretKey,
    jobLeaseSeconds: overrides.jobLeaseSeconds ?? intFrom(env, 'PIPIT_JOB_LEASE', 30, 1, 3600),
  };
}
