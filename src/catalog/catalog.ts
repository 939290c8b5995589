/**
 * The catalog: Pipit's metadata (workspaces, tokens, data sources, jobs) behind one interface,
 * so the embedded store (PGlite) and PostgreSQL for scale-out are interchangeable. Records are
 * plain data; the catalog never interprets them beyond the indexed fields.
 */
import type { Column, EngineSpec, IndexSpec } from '../basics/types.js';

export interface Workspace {
  id: string;
  name: string;
  /** Engine database holding this workspace's tables. */
  database: string;
  createdAt: string;
}

/** A scope as stored: `ADMIN`, `DATASOURCES:CREATE`, `DATASOURCES:APPEND` + resource id, ... */
export interface Scope {
  type: string;
  resource?: string;
  filter?: string;
}

export interface TokenRecord {
  id: string;
  /** null for server-level (user) tokens. */
  workspaceId: string | null;
  name: string;
  token: string;
  scopes: Scope[];
  description: string;
  createdAt: string;
  /** Where the token was created from (`C` custom, `DS`/`P` for a resource's token); absent = custom. */
  origin?: { type: string; resourceId?: string };
  /**
   * The user's admin token (`admin_token` of GET /tokens, Tinybird's ADMIN_USER): an ADMIN token of
   * its workspace that also lists every workspace of the server with their tokens. Set by the
   * server only, never through the API; only such a token sees its value or manages it.
   */
  userAdmin?: boolean;
}

export interface DatasourceRecord {
  id: string;
  workspaceId: string;
  name: string;
  description: string;
  columns: Column[];
  engine: EngineSpec;
  indexes: IndexSpec[];
  /** `ndjson` when every column has a JSONPath, else `csv`. */
  format: 'csv' | 'ndjson';
  headers: Record<string, string>;
  createdAt: string;
  /** Last change of metadata or data. */
  updatedAt: string;
}

export type NodeType = 'standard' | 'endpoint' | 'materialized' | 'copy' | 'sink';

/** A node of a pipe: one SQL transformation (a template when it starts with %). */
export interface NodeRecord {
  id: string;
  name: string;
  sql: string;
  description: string | null;
  nodeType: NodeType;
  /** Resources the SQL reads (names at the time of the last save). */
  dependencies: string[];
  createdAt: string;
  updatedAt: string;
  /** Type-specific fields (materialized target, copy target and schedule, sink settings). */
  data: Record<string, unknown>;
}

export interface PipeRecord {
  id: string;
  workspaceId: string;
  name: string;
  description: string | null;
  /** Id of the endpoint node, or null. */
  endpoint: string | null;
  /** Id of the pipe this one was copied from (`from=`), or null. */
  parent: string | null;
  nodes: NodeRecord[];
  createdAt: string;
  updatedAt: string;
  /** Pipe-level fields of later features (copy/sink schedules). */
  data: Record<string, unknown>;
}

/** A workspace variable (`tb_secret`); the value is encrypted (see VariableService). */
export interface VariableRecord {
  id: string;
  workspaceId: string;
  name: string;
  type: 'secret';
  /** `v1.<iv>.<tag>.<ciphertext>` (AES-256-GCM, base64url). */
  value: string;
  createdAt: string;
  updatedAt: string;
  editedBy: string | null;
}

/**
 * A connection to object storage (sinks): settings in the clear, credentials encrypted (see
 * ConnectionService) and never returned.
 */
export interface ConnectionRecord {
  id: string;
  workspaceId: string;
  name: string;
  /** `s3`, `s3_iamrole`, `gcs_hmac` or `local`. */
  service: string;
  /** Non-secret settings (region, endpoint, role ARN, directory, ...). */
  settings: Record<string, string>;
  /** Encrypted credentials (`v1.<iv>.<tag>.<ciphertext>`), or null when the kind has none. */
  secret: string | null;
  createdAt: string;
  updatedAt: string;
}

export type JobStatus = 'waiting' | 'working' | 'done' | 'error' | 'cancelling' | 'cancelled';

export interface JobRecord {
  id: string;
  workspaceId: string;
  kind: string;
  status: JobStatus;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  /** Kind-specific fields shown in the job JSON (mode, url, statistics, datasource, ...). */
  data: Record<string, unknown>;
  error: string | null;
}

/**
 * A multi-step change of engine and catalog state in progress (see src/domain/journal.ts): written
 * before its first engine step, updated as it passes its points of no return, deleted after its
 * last step. One that is still here on start was interrupted and is rolled forward or back.
 */
export interface IntentRecord {
  id: string;
  workspaceId: string;
  /** `alter`, `replace`, `append`, `materialize`, `unlink`. */
  kind: string;
  createdAt: string;
  updatedAt: string;
  /** Kind-specific: the engine objects it creates and what it has done so far. */
  data: Record<string, unknown>;
}

export interface JobFilter {
  kind?: string;
  status?: string;
  createdAfter?: string;
  createdBefore?: string;
  pipeId?: string;
  pipeName?: string;
  limit: number;
}

export interface Catalog {
  /** All workspaces, oldest first. */
  listWorkspaces(): Promise<Workspace[]>;
  insertWorkspace(ws: Workspace): Promise<void>;

  /** Token by its secret value; null if unknown. */
  findToken(value: string): Promise<TokenRecord | null>;
  listTokens(workspaceId: string | null): Promise<TokenRecord[]>;
  insertToken(t: TokenRecord): Promise<void>;
  /** Replaces the record with the same id (name, value, scopes, description). */
  updateToken(t: TokenRecord): Promise<void>;
  deleteToken(id: string): Promise<void>;

  listDatasources(workspaceId: string): Promise<DatasourceRecord[]>;
  insertDatasource(ds: DatasourceRecord): Promise<void>;
  /** Replaces the record with the same id. */
  updateDatasource(ds: DatasourceRecord): Promise<void>;
  deleteDatasource(workspaceId: string, id: string): Promise<void>;

  listPipes(workspaceId: string): Promise<PipeRecord[]>;
  insertPipe(p: PipeRecord): Promise<void>;
  /** Replaces the record with the same id. */
  updatePipe(p: PipeRecord): Promise<void>;
  deletePipe(workspaceId: string, id: string): Promise<void>;

  listVariables(workspaceId: string): Promise<VariableRecord[]>;
  /** Inserts or replaces (by workspace and name). */
  upsertVariable(v: VariableRecord): Promise<void>;
  deleteVariable(workspaceId: string, name: string): Promise<void>;

  listConnections(workspaceId: string): Promise<ConnectionRecord[]>;
  /** Inserts or replaces (by id). */
  upsertConnection(c: ConnectionRecord): Promise<void>;
  deleteConnection(workspaceId: string, id: string): Promise<void>;

  insertJob(job: JobRecord): Promise<void>;
  updateJob(job: JobRecord): Promise<void>;
  getJob(id: string): Promise<JobRecord | null>;
  listJobs(workspaceId: string, filter: JobFilter): Promise<JobRecord[]>;
  /** Jobs in one of the statuses, any workspace (used to recover after a restart). */
  jobsInStatus(statuses: JobStatus[]): Promise<JobRecord[]>;

  /** Open intents of every workspace, oldest first. */
  listIntents(): Promise<IntentRecord[]>;
  /** Inserts or replaces (by id). */
  upsertIntent(intent: IntentRecord): Promise<void>;
  deleteIntent(id: string): Promise<void>;

  close(): Promise<void>;
}
