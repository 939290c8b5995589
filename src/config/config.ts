/**
 * Typed server settings, read from the environment once at boot. Nothing else in the code base
 * reads process.env; everything receives a Config. Rejects invalid values with a clear message.
 */
import path from 'node:path';

export interface Config {
  /** TCP port (PIPIT_PORT, default 7181 like Tinybird Local). */
  port: number;
  /** Bind address (PIPIT_HOST, default 127.0.0.1). */
  host: string;
  /** Root of all state: engine data, catalog, write-ahead log (PIPIT_DATA_DIR, default ./pipit-data). */
  dataDir: string;
  /** Public base URL used in `job_url` and similar fields (PIPIT_API_HOST, default http://host:port). */
  apiHost: string;
  /** Number of engine sessions in the pool (PIPIT_ENGINE_SESSIONS, default 4). */
  engineSessions: number;
  /** fsync the Events API write-ahead log before acknowledging (PIPIT_WAL_FSYNC=1; default off: survives kill -9, not power loss). */
  walFsync: boolean;
  /** Log level for the JSON logger (PIPIT_LOG_LEVEL, default info). */
  logLevel: string;
  /** Where log lines go (not from the environment: stdout; tests pass a collector). Lines are redacted first. */
  logDestination?: { write(line: string): unknown };
  /** Seconds a user query may run (PIPIT_QUERY_TIMEOUT, default 10; overrun → 408). */
  queryTimeout: number;
  /** Bytes a query result may have (PIPIT_QUERY_MAX_RESULT_BYTES, default 100 MB). */
  queryMaxResultBytes: number;
  /** Bytes of memory a query may use (PIPIT_QUERY_MAX_MEMORY, default 8 GiB). */
  queryMaxMemory: number;
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
  /** Rows one copy job may write (PIPIT_COPY_MAX_ROWS, default 100 000 000 as in the seed); more → 403. */
  copyMaxRows: number;
  /** Copy jobs of a workspace waiting or working at once (PIPIT_COPY_MAX_ACTIVE_JOBS, default 10); more → 403. */
  copyMaxActiveJobs: number;
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

function awsAccount(raw: string | undefined): string | null {
  if (!raw) return null;
  if (!/^\d{12}$/.test(raw)) throw new Error(`PIPIT_AWS_ACCOUNT_ID must be a 12-digit AWS account id, got "${raw}"`);
  return raw;
}

/** Builds the config from an environment (process.env in main, a literal object in tests). */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: Partial<Config> = {}): Config {
  const port = overrides.port ?? intFrom(env, 'PIPIT_PORT', 7181, 0, 65535);
  const host = overrides.host ?? (env.PIPIT_HOST || '127.0.0.1');
  const dataDir = path.resolve(overrides.dataDir ?? (env.PIPIT_DATA_DIR || 'pipit-data'));
  return {
    port,
    host,
    dataDir,
    apiHost: overrides.apiHost ?? (env.PIPIT_API_HOST || `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, ''),
    engineSessions: overrides.engineSessions ?? intFrom(env, 'PIPIT_ENGINE_SESSIONS', 4, 1, 64),
    walFsync: overrides.walFsync ?? boolFrom(env, 'PIPIT_WAL_FSYNC'),
    logLevel: overrides.logLevel ?? (env.PIPIT_LOG_LEVEL || 'info'),
    logDestination: overrides.logDestination,
    queryTimeout: overrides.queryTimeout ?? intFrom(env, 'PIPIT_QUERY_TIMEOUT', 10, 1, 3600),
    queryMaxResultBytes: overrides.queryMaxResultBytes ?? intFrom(env, 'PIPIT_QUERY_MAX_RESULT_BYTES', 100 * 1024 * 1024, 1024, 2 ** 40),
    queryMaxMemory: overrides.queryMaxMemory ?? intFrom(env, 'PIPIT_QUERY_MAX_MEMORY', 8 * 1024 ** 3, 1024 ** 2, 2 ** 44),
    allowPrivateUrls: overrides.allowPrivateUrls ?? boolFrom(env, 'PIPIT_ALLOW_PRIVATE_URLS'),
    endpointRps: overrides.endpointRps ?? intFrom(env, 'PIPIT_ENDPOINT_RPS', 0, 0, 1_000_000),
    sinkLocalRoot: path.resolve(overrides.sinkLocalRoot ?? (env.PIPIT_SINK_LOCAL_ROOT || path.join(dataDir, 'exports'))),
    awsAccountId: overrides.awsAccountId !== undefined ? overrides.awsAccountId : awsAccount(env.PIPIT_AWS_ACCOUNT_ID),
    gcpServiceAccount: overrides.gcpServiceAccount !== undefined ? overrides.gcpServiceAccount : env.PIPIT_GCP_SERVICE_ACCOUNT || null,
    copyMaxRows: overrides.copyMaxRows ?? intFrom(env, 'PIPIT_COPY_MAX_ROWS', 100_000_000, 1, Number.MAX_SAFE_INTEGER - 1),
    copyMaxActiveJobs: overrides.copyMaxActiveJobs ?? intFrom(env, 'PIPIT_COPY_MAX_ACTIVE_JOBS', 10, 1, 10_000),
  };
}
