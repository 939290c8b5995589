/**
 * The catalog: Pipit's metadata (workspaces, tokens, data sources, jobs) behind one interface,
 * so the embedded store (PGlite) and PostgreSQL for scale-out are interchangeable. Changeable
 * records carry a `version`: an update names the version it read and is refused with
 * VersionConflict when another request (or another copy of the server) changed the record first.
 * A taken unique name is a UniqueViolation (SQLSTATE 23505), never recognised by message text.
 */
import type { Column, EngineSpec, IndexSpec } from '../basics/types.js';
import { PipitError } from '../basics/errors.js';
import { newResourceId } from '../basics/ids.js';
import { nowIso } from '../basics/time.js';

/** A unique constraint refused the write (SQLSTATE 23505): the caller words the 4xx. */
/** The fields a new record of a workspace's named resource starts with: an id (a new one unless given), version 1, created and updated now. */
export function newNamedRecord(ws: Workspace, name: string, id = newResourceId()) {
  const now = nowIso();
  return { id, version: 1, workspaceId: ws.id, name, createdAt: now, updatedAt: now };
}

export class UniqueViolation extends Error {
  constructor(readonly constraint: string | undefined) {
    super(`unique violation${constraint ? ` (${constraint})` : ''}`);
  }
}

/**
 * The record changed since it was read (its version moved): a 409 the client may retry, as
 * two concurrent changes of one resource are not merged.
 */
export class VersionConflict extends PipitError {
  constructor(what: string) {
    super('conflict', `The ${what} was changed by another request at the same time; read it again and retry`);
  }
}

/** A change of the catalog seen by a copy (its own or another copy's): caches drop what it names. */
export interface CatalogChange {
  /** Table changed; `*` when changes may have been missed (a lost connection): drop everything. */
  table: string;
  workspaceId: string | null;
  id: string | null;
  /** For jobs: the new status. */
  status?: string;
}

export interface Workspace {
  id: string;
  name: string;
  /** Engine database holding this workspace's tables. */
  database: string;
  createdAt: string;
}

/** A scope as stored: `ADMIN`, `DATASOURCES:CREATE`, `DATASOURCES:APPEND` + resource id, ... */
export type ScopeType =
  | 'ADMIN'
  | 'USER'
  | 'TOKENS'
  | 'DATASOURCES:READ'
  | 'DATASOURCES:APPEND'
  | 'DATASOURCES:CREATE'
  | 'DATASOURCES:DROP'
  | 'PIPES:READ'
  | 'PIPES:CREATE'
  | 'PIPES:DROP';

export interface Scope {
  type: ScopeType;
  resource?: string;
  filter?: string;
}

export interface TokenRecord {
  id: string;
  /** Bumped by every update (optimistic concurrency). */
  version: number;
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
  version: number;
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

/** The schedule of a copy or sink node. */
export type NodeSchedule = {
  cron: string | null;
  schedule_status: 'running' | 'paused';
  /** When the schedule (re)started, or the last tick enqueued (ISO): ticks before it are not owed. */
  last_tick: string | null;
};

/** A materialized node's fields. */
export type MaterializedData = {
  /** Target data source id. */
  materialized: string;
  /** Engine name of the view (database-qualified). */
  view: string;
  /** Id of the data source whose inserts trigger the view. */
  trigger: string | null;
};

/** A copy node's fields. */
export type CopyData = NodeSchedule & { copy_target: string; mode: 'append' | 'replace' };

export type SinkFormat = 'csv' | 'ndjson' | 'parquet';
export type SinkCompression = 'none' | 'gz' | 'zstd';
export type WriteStrategy = 'new' | 'truncate';

/** A sink node's fields. */
export type SinkData = NodeSchedule & {
  sink_connection: string;
  sink_connection_name: string;
  sink_service: string;
  sink_path: string;
  sink_file_template: string;
  sink_format: SinkFormat;
  sink_compression: SinkCompression;
  sink_write_strategy: WriteStrategy;
};

/** A node of a pipe: one SQL transformation (a template when it starts with %). */
interface NodeBase {
  id: string;
  name: string;
  sql: string;
  description: string | null;
  /** Resources the SQL reads (names at the time of the last save). */
  dependencies: string[];
  createdAt: string;
  updatedAt: string;
}

/**
 * A node by its type, with the type's fields in `data` (stored as they are; `data` may keep keys
 * of an earlier type, which nothing reads).
 */
export type StandardNode = NodeBase & { nodeType: 'standard' | 'endpoint'; data: Record<string, unknown> };
export type MaterializedNode = NodeBase & { nodeType: 'materialized'; data: MaterializedData };
export type CopyNode = NodeBase & { nodeType: 'copy'; data: CopyData };
export type SinkNode = NodeBase & { nodeType: 'sink'; data: SinkData };
export type NodeRecord = StandardNode | MaterializedNode | CopyNode | SinkNode;

export interface PipeRecord {
  id: string;
  version: number;
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
  version: number;
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
  version: number;
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

/** What a job does (the `kind` of the job JSON). */
export type JobKind = 'import' | 'populateview' | 'copy' | 'sink' | 'delete_data';

export interface JobRecord {
  id: string;
  version: number;
  workspaceId: string;
  kind: JobKind;
  status: JobStatus;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  /** Kind-specific fields shown in the job JSON (mode, url, statistics, datasource, ...). */
  data: Record<string, unknown>;
  error: string | null;
}

/** What every kind of intent may record. */
export interface IntentCommon {
  /** The job that runs the change, settled with the intent on recovery. */
  job?: string;
}

/** A staged append (src/domain/atomic-writes.ts): rows staged, then published in chunks. */
export interface AppendIntentData extends IntentCommon {
  database: string;
  /** Target data source id. */
  target: string;
  /** Staging table name (in the same database). */
  staging: string;
  /** Columns written (names). */
  cols: string[];
  phase: 'stage' | 'publish';
  rows?: number;
  chunkRows?: number;
  /** Chunks already in the target. */
  published?: number;
}

/** A shadow replace (src/domain/atomic-writes.ts): a shadow table loaded, then swapped in. */
export interface ReplaceIntentData extends IntentCommon {
  database: string;
  target: string;
  shadow: string;
  /** Table UUID of the shadow: after EXCHANGE TABLES the target's name points at it. */
  shadowUuid?: string | null;
  /** replace_condition: only matching rows are replaced (delete + insert from the shadow). */
  condition: string | null;
  /** Deduplication token prefix (the import id). */
  token: string;
  /** Also move the shadow's quarantine rows into the target's quarantine. */
  quarantine: boolean;
  phase: 'load' | 'swap';
}

/** An alter (src/domain/alter-service.ts), recorded before its first engine step. */
export interface AlterIntentData extends IntentCommon {
  ds: string;
  before: DatasourceRecord;
  after: DatasourceRecord;
  /** Statements that can run again without harm (IF [NOT] EXISTS forms). */
  engineOps: string[];
  quarantineOps: string[];
  /** The ingest stages follow a schema change. */
  stages: boolean;
}

/** A materialization being created: its view, and the target data source once created. */
export interface MaterializeIntentData extends IntentCommon {
  pipe: string;
  node: string;
  view: string;
  created: string | null;
}

/** A materialized node being turned back into a standard one. */
export interface UnlinkIntentData extends IntentCommon {
  pipe: string;
  node: string;
  view: string;
}

/** What each kind of intent records. */
export interface IntentDataByKind {
  append: AppendIntentData;
  replace: ReplaceIntentData;
  alter: AlterIntentData;
  materialize: MaterializeIntentData;
  unlink: UnlinkIntentData;
}
export type IntentKind = keyof IntentDataByKind;

/**
 * A multi-step change of engine and catalog state in progress (see src/domain/journal.ts): written
 * before its first engine step, updated as it passes its points of no return, deleted after its
 * last step. One that is still here on start was interrupted and is rolled forward or back.
 */
export interface Intent<K extends IntentKind = IntentKind> {
  id: string;
  workspaceId: string;
  kind: K;
  createdAt: string;
  updatedAt: string;
  /** The engine objects it creates and what it has done so far. */
  data: IntentDataByKind[K];
}

/** An intent of any kind, narrowed by `kind` (as the catalog parses it). */
export type IntentRecord = { [K in IntentKind]: Intent<K> }[IntentKind];

/** A job as a copy claimed it: the record and the task its handler runs. */
export interface ClaimedJob {
  job: JobRecord;
  /** The handler's input (kind-specific). */
  payload: unknown;
}

export interface JobFilter {
  kind?: JobKind;
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
  /** Replaces the record with the same id and version (VersionConflict otherwise); returns it with its new version. */
  updateToken(t: TokenRecord): Promise<TokenRecord>;
  deleteToken(id: string): Promise<void>;

  listDatasources(workspaceId: string): Promise<DatasourceRecord[]>;
  insertDatasource(ds: DatasourceRecord): Promise<void>;
  /** Replaces the record with the same id and version (VersionConflict otherwise); returns it with its new version. */
  updateDatasource(ds: DatasourceRecord): Promise<DatasourceRecord>;
  /** Sets `updatedAt` whatever the version (bookkeeping after a data change); null when the record is gone. */
  touchDatasource(workspaceId: string, id: string, updatedAt: string): Promise<DatasourceRecord | null>;
  deleteDatasource(workspaceId: string, id: string): Promise<void>;

  listPipes(workspaceId: string): Promise<PipeRecord[]>;
  insertPipe(p: PipeRecord): Promise<void>;
  /** Replaces the record with the same id and version (VersionConflict otherwise); returns it with its new version. */
  updatePipe(p: PipeRecord): Promise<PipeRecord>;
  deletePipe(workspaceId: string, id: string): Promise<void>;

  listVariables(workspaceId: string): Promise<VariableRecord[]>;
  insertVariable(v: VariableRecord): Promise<void>;
  /** Replaces the record with the same id and version (VersionConflict otherwise). */
  updateVariable(v: VariableRecord): Promise<VariableRecord>;
  deleteVariable(workspaceId: string, name: string): Promise<void>;

  listConnections(workspaceId: string): Promise<ConnectionRecord[]>;
  insertConnection(c: ConnectionRecord): Promise<void>;
  /** Replaces the record with the same id and version (VersionConflict otherwise). */
  updateConnection(c: ConnectionRecord): Promise<ConnectionRecord>;
  deleteConnection(workspaceId: string, id: string): Promise<void>;

  /**
   * A new job with the payload its kind's handler runs. With `owner` the job is reserved for that
   * copy (it accepted the job with a free slot and starts it at once) under a lease the owner keeps
   * renewing; a lapsed or released reservation leaves it to any copy.
   */
  insertJob(job: JobRecord, payload: unknown, owner: string | null, leaseMs: number): Promise<void>;
  /**
   * Replaces the record with the same id and version (VersionConflict otherwise); returns it with
   * its new version. A finished status ends the claim on the job (its `owner` can no longer settle it).
   */
  updateJob(job: JobRecord): Promise<JobRecord>;
  /**
   * Records the outcome of a job its `owner` runs: only while that copy still holds the claim
   * (the job is `working` or `cancelling` under its name: not failed or taken over by another copy
   * meanwhile), whatever the version (a cancel asked meanwhile is answered by the outcome). Null
   * when refused.
   */
  settleJob(job: JobRecord, owner: string): Promise<JobRecord | null>;
  getJob(id: string): Promise<JobRecord | null>;
  /** The payload stored with a job (null when it has none). */
  jobPayload(id: string): Promise<unknown>;
  listJobs(workspaceId: string, filter: JobFilter): Promise<JobRecord[]>;
  /**
   * Claims up to `limit` waiting jobs for `owner` (FOR UPDATE SKIP LOCKED: two copies never claim
   * the same job), its own reservations and unreserved ones (or whose reservation lapsed): they
   * become `working` under a lease of `leaseMs`.
   */
  claimJobs(owner: string, limit: number, leaseMs: number): Promise<ClaimedJob[]>;
  /**
   * Renews the leases `owner` still holds on the jobs `ids`; returns the status of each renewed.
   * A lease that lapsed is lost for good (not renewed, even if no copy took the job over yet).
   */
  renewLeases(owner: string, ids: string[], leaseMs: number): Promise<Map<string, JobStatus>>;
  /** Gives the waiting jobs reserved by `owner` (every reservation with null) back to the queue. */
  releaseJobs(owner: string | null): Promise<void>;
  /**
   * Running jobs (`working`, `cancelling`) whose owner stopped renewing its lease (every one with
   * `all`: a single-process restart), with their payloads.
   */
  abandonedJobs(all: boolean): Promise<ClaimedJob[]>;

  /**
   * Claims a schedule's tick: true when `tick` is later than the last tick claimed for the pipe's
   * schedule started at `origin` (a compare-and-set, so N copies run each tick once). A schedule
   * set or resumed again has a new origin and starts afresh.
   */
  claimTick(workspaceId: string, pipeId: string, origin: string, tick: string): Promise<boolean>;
  /** The last tick claimed for each scheduled pipe of the workspace, with its schedule's origin. */
  lastTicks(workspaceId: string): Promise<Map<string, { origin: string; tick: string }>>;

  /** Inside a transaction: waits for, then holds until it ends, the lock named `name` (one holder across copies). */
  lock(name: string): Promise<void>;
  /**
   * Runs `fn` while holding the lock named `name` across copies, shared (with other shared holders)
   * or exclusive (a session of its own holds a transaction-scoped advisory lock). Shared catalogs
   * only: `fn` must not need the single connection of an embedded one. `kind`: what a shared
   * holder is (ingest inserts and INSERT statements wait for their lock connections apart).
   */
  holding<T>(name: string, mode: 'shared' | 'exclusive', fn: () => Promise<T>, kind?: 'insert' | 'statement'): Promise<T>;
  /** Runs `fn` in one transaction (committed when it resolves, rolled back when it throws). */
  transaction<T>(fn: (tx: Catalog) => Promise<T>): Promise<T>;
  /** Calls `listener` for each change of cached records, made by this copy or another (LISTEN/NOTIFY). */
  onChange(listener: (change: CatalogChange) => void): void;
  /** True when several copies of the server may share this catalog (PostgreSQL). */
  readonly shared: boolean;
  /** Answers when the catalog is reachable (health checks). */
  ping(): Promise<void>;

  /** Open intents of every workspace, oldest first. */
  listIntents(): Promise<IntentRecord[]>;
  /** A new intent, held by `owner` for `leaseMs`. */
  insertIntent(intent: Intent, owner: string, leaseMs: number): Promise<void>;
  /**
   * Replaces an intent `owner` still holds (not taken over by another copy, not ended), renewing
   * its lease; with `job`, only while `owner` also holds that job's lease (a point of no return of
   * the job's change). False when refused.
   */
  updateIntent(intent: Intent, owner: string, leaseMs: number, job?: string): Promise<boolean>;
  /** Extends the leases `owner` holds on the intents `ids`. */
  renewIntents(owner: string, ids: string[], leaseMs: number): Promise<void>;
  /**
   * Takes over, for `owner` and `leaseMs`, the open intents whose holder is gone (lease lapsed; with
   * `all`, every one: a single-process catalog at start), oldest first. A compare-and-set: an intent
   * is taken by one copy only, and never while its holder renews it.
   */
  claimAbandonedIntents(owner: string, leaseMs: number, all: boolean): Promise<IntentRecord[]>;
  /** Deletes an intent `owner` holds (one another copy took over is left to it). */
  deleteIntent(id: string, owner: string): Promise<void>;

  close(): Promise<void>;
}
