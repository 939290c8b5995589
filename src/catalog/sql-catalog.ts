/**
 * Catalog over PostgreSQL SQL: the embedded store (PGlite, Postgres in WASM, persisted to a
 * directory) and a PostgreSQL server share these statements and the numbered migrations.
 * Each record keeps its indexed fields as columns and the rest as a jsonb document; the `version`
 * column is the truth for the record's version (checked by every update). Rows are parsed into
 * typed records here, once.
 */
import type {
  Catalog,
  CatalogChange,
  ClaimedJob,
  ConnectionRecord,
  DatasourceRecord,
  Intent,
  IntentRecord,
  JobFilter,
  JobRecord,
  JobStatus,
  PipeRecord,
  TokenRecord,
  VariableRecord,
  Workspace,
} from './catalog.js';
import { UniqueViolation, VersionConflict } from './catalog.js';
import { migrations } from './migrations.js';
import { nulError, nulPath } from '../basics/input-limits.js';
import { parseIntent, parseNode, parseWorkspace } from './records.js';

/** One connection's statements (the whole client, or one transaction). */
export interface SqlQuery {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

/** The minimal SQL client both PGlite and node-postgres satisfy. */
export interface SqlClient extends SqlQuery {
  /** Runs statements separated by semicolons (migrations). */
  exec(sql: string): Promise<unknown>;
  /** Runs `fn` on one connection between BEGIN and COMMIT (ROLLBACK when it throws). */
  transaction<T>(fn: (tx: SqlQuery) => Promise<T>): Promise<T>;
  /** A transaction for `holding` (locks held across engine work), on connections of its own when the client has them. */
  lockTransaction?<T>(fn: (tx: SqlQuery) => Promise<T>, kind?: 'insert' | 'statement'): Promise<T>;
  /**
   * Delivers NOTIFY payloads of `channel` (from every connection, every copy); `onReset` when some
   * may have been lost (the listening connection was re-established).
   */
  listen(channel: string, onNotify: (payload: string) => void, onReset: () => void): Promise<void>;
  /** True when other processes may share the database. */
  readonly shared: boolean;
  close(): Promise<void>;
}

type Row = { doc: Record<string, unknown>; version: number | string };

/** The tables of a workspace's named resources (migrations' resourceTable, plus a version column). */
type NamedTable = 'datasources' | 'pipes' | 'variables' | 'connections';

/** The notification channel the catalog's triggers write to (see migration 6). */
export const CHANGE_CHANNEL = 'pipit_catalog';

/** Lock id that serialises migrations between copies starting at once. */
const MIGRATION_LOCK = 718_1001;

const withVersion = <T>(r: Row): T => ({ ...r.doc, version: Number(r.version) }) as T;

const parsePipe = (r: Row): PipeRecord => {
  const p = withVersion<PipeRecord>(r);
  return { ...p, nodes: (p.nodes as unknown[]).map(parseNode) };
};

/** SQLSTATE 23505 as UniqueViolation; everything else unchanged. */
function mapError(err: unknown): never {
  const e = err as { code?: string; constraint?: string };
  if (e?.code === '23505') throw new UniqueViolation(e.constraint);
  throw err;
}

export class SqlCatalog implements Catalog {
  private readonly listeners: Array<(c: CatalogChange) => void>;

  private constructor(
    private readonly client: SqlClient,
    private readonly db: SqlQuery,
    listeners?: Array<(c: CatalogChange) => void>,
  ) {
    this.listeners = listeners ?? [];
  }

  get shared(): boolean {
    return this.client.shared;
  }

  /** Opens the catalog and applies pending migrations (append-only, numbered; one copy at a time). */
  static async open(client: SqlClient): Promise<SqlCatalog> {
    await client.transaction(async (tx) => {
      // The lock first: two copies starting at once must not both create the table (PostgreSQL's
      // CREATE TABLE IF NOT EXISTS is not safe against a concurrent one).
      await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
      const done = new Set((await tx.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        for (const stmt of splitStatements(m.sql)) await tx.query(stmt);
        await tx.query('INSERT INTO schema_migrations(version) VALUES ($1)', [m.version]);
      }
    });
    const catalog = new SqlCatalog(client, refuseNul(client));
    await client.listen(
      CHANGE_CHANNEL,
      (payload) => {
        let c: { t?: string; w?: string | null; id?: string | null; s?: string };
        try {
          c = JSON.parse(payload);
        } catch {
          return;
        }
        catalog.emit({ table: String(c.t), workspaceId: c.w ?? null, id: c.id ?? null, status: c.s });
      },
      () => catalog.emit({ table: '*', workspaceId: null, id: null }),
    );
    return catalog;
  }

  private emit(c: CatalogChange): void {
    for (const l of this.listeners) {
      try {
        l(c);
      } catch {
        /* a listener's bug must not stop the others */
      }
    }
  }

  onChange(listener: (change: CatalogChange) => void): void {
    this.listeners.push(listener);
  }

  async transaction<T>(fn: (tx: Catalog) => Promise<T>): Promise<T> {
    return this.client.transaction((tx) => fn(new SqlCatalog(this.client, refuseNul(tx), this.listeners)));
  }

  async lock(name: string): Promise<void> {
    await this.q('SELECT pg_advisory_xact_lock(hashtext($1))', [`pipit:${name}`]);
  }

  async holding<T>(name: string, mode: 'shared' | 'exclusive', fn: () => Promise<T>, kind: 'insert' | 'statement' = 'insert'): Promise<T> {
    const take = mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock';
    const locked = async (tx: SqlQuery): Promise<T> => {
      await tx.query(`SELECT ${take}(hashtext($1))`, [`pipit:${name}`]);
      return fn();
    };
    return this.client.lockTransaction ? this.client.lockTransaction(locked, kind) : this.client.transaction(locked);
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  private async q<R = Row>(sql: string, params?: unknown[]): Promise<R[]> {
    try {
      return (await this.db.query<R>(sql, params)).rows;
    } catch (err) {
      mapError(err);
    }
  }

  /** An update checked against the version read; the record with its new version. */
  private async versioned<T extends { id: string; version: number }>(table: string, what: string, rec: T, sets: string, params: unknown[]): Promise<T> {
    const next = { ...rec, version: rec.version + 1 };
    const rows = await this.q<{ version: number }>(
      `UPDATE ${table} SET ${sets}, doc = $3, version = version + 1 WHERE id = $1 AND version = $2 RETURNING version`,
      [rec.id, rec.version, next, ...params],
    );
    if (!rows.length) throw new VersionConflict(what);
    return next;
  }

  /** A workspace's records of a table of named resources, oldest first. */
  private async listNamed<T>(table: NamedTable, workspaceId: string, parse: (r: Row) => T): Promise<T[]> {
    return (await this.q(`SELECT doc, version FROM ${table} WHERE workspace_id = $1 ORDER BY created_at, id`, [workspaceId])).map(parse);
  }

  /** Inserts a record into a table of named resources: its indexed columns and the whole record as the document. */
  private async insertNamed(table: NamedTable, r: { id: string; workspaceId: string; name: string; createdAt: string; version: number }): Promise<void> {
    await this.q(`INSERT INTO ${table}(id, workspace_id, name, created_at, doc, version) VALUES ($1, $2, $3, $4, $5, $6)`, [
      r.id,
      r.workspaceId,
      r.name,
      r.createdAt,
      r,
      r.version,
    ]);
  }

  async listWorkspaces(): Promise<Workspace[]> {
    return (await this.q('SELECT doc, 0 AS version FROM workspaces ORDER BY created_at, id')).map((r) => parseWorkspace(r.doc));
  }

  async insertWorkspace(ws: Workspace): Promise<void> {
    await this.q('INSERT INTO workspaces(id, name, created_at, doc) VALUES ($1, $2, $3, $4)', [ws.id, ws.name, ws.createdAt, ws]);
  }

  async findToken(value: string): Promise<TokenRecord | null> {
    const r = await this.q('SELECT doc, version FROM tokens WHERE token = $1', [value]);
    return r.length ? withVersion<TokenRecord>(r[0]) : null;
  }

  async listTokens(workspaceId: string | null): Promise<TokenRecord[]> {
    const r =
      workspaceId === null
        ? await this.q('SELECT doc, version FROM tokens WHERE workspace_id IS NULL ORDER BY created_at, id')
        : await this.q('SELECT doc, version FROM tokens WHERE workspace_id = $1 ORDER BY created_at, id', [workspaceId]);
    return r.map((x) => withVersion<TokenRecord>(x));
  }

  async insertToken(t: TokenRecord): Promise<void> {
    await this.q('INSERT INTO tokens(id, workspace_id, name, token, created_at, doc, version) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      t.id,
      t.workspaceId,
      t.name,
      t.token,
      t.createdAt,
      t,
      t.version,
    ]);
  }

  updateToken(t: TokenRecord): Promise<TokenRecord> {
    return this.versioned('tokens', 'token', t, 'name = $4, token = $5', [t.name, t.token]);
  }

  async deleteToken(id: string): Promise<void> {
    await this.q('DELETE FROM tokens WHERE id = $1', [id]);
  }

  async listDatasources(workspaceId: string): Promise<DatasourceRecord[]> {
    return this.listNamed('datasources', workspaceId, (x) => withVersion<DatasourceRecord>(x));
  }

  async insertDatasource(ds: DatasourceRecord): Promise<void> {
    await this.insertNamed('datasources', ds);
  }

  updateDatasource(ds: DatasourceRecord): Promise<DatasourceRecord> {
    return this.versioned('datasources', 'Data Source', ds, 'name = $4', [ds.name]);
  }

  async touchDatasource(workspaceId: string, id: string, updatedAt: string): Promise<DatasourceRecord | null> {
    const r = await this.q(
      `UPDATE datasources SET doc = jsonb_set(doc, '{updatedAt}', to_jsonb($3::text)), version = version + 1
       WHERE workspace_id = $1 AND id = $2 RETURNING doc, version`,
      [workspaceId, id, updatedAt],
    );
    return r.length ? withVersion<DatasourceRecord>(r[0]) : null;
  }

  async deleteDatasource(workspaceId: string, id: string): Promise<void> {
    await this.q('DELETE FROM datasources WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
  }

  async listPipes(workspaceId: string): Promise<PipeRecord[]> {
    return this.listNamed('pipes', workspaceId, parsePipe);
  }

  async insertPipe(p: PipeRecord): Promise<void> {
    await this.insertNamed('pipes', p);
  }

  updatePipe(p: PipeRecord): Promise<PipeRecord> {
    return this.versioned('pipes', 'Pipe', p, 'name = $4', [p.name]);
  }

  async deletePipe(workspaceId: string, id: string): Promise<void> {
    await this.q('DELETE FROM pipes WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
    await this.q('DELETE FROM schedule_ticks WHERE pipe_id = $1', [id]);
  }

  async listVariables(workspaceId: string): Promise<VariableRecord[]> {
    return this.listNamed('variables', workspaceId, (x) => withVersion<VariableRecord>(x));
  }

  async insertVariable(v: VariableRecord): Promise<void> {
    await this.insertNamed('variables', v);
  }

  updateVariable(v: VariableRecord): Promise<VariableRecord> {
    return this.versioned('variables', 'variable', v, 'name = $4', [v.name]);
  }

  async deleteVariable(workspaceId: string, name: string): Promise<void> {
    await this.q('DELETE FROM variables WHERE workspace_id = $1 AND name = $2', [workspaceId, name]);
  }

  async listConnections(workspaceId: string): Promise<ConnectionRecord[]> {
    return this.listNamed('connections', workspaceId, (x) => withVersion<ConnectionRecord>(x));
  }

  async insertConnection(c: ConnectionRecord): Promise<void> {
    await this.insertNamed('connections', c);
  }

  updateConnection(c: ConnectionRecord): Promise<ConnectionRecord> {
    return this.versioned('connections', 'connection', c, 'name = $4', [c.name]);
  }

  async deleteConnection(workspaceId: string, id: string): Promise<void> {
    await this.q('DELETE FROM connections WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
  }

  async insertJob(job: JobRecord, payload: unknown, owner: string | null, leaseMs: number): Promise<void> {
    await this.q(
      `INSERT INTO jobs(id, workspace_id, kind, status, created_at, doc, version, payload, locked_by, locked_until)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text, CASE WHEN $9::text IS NULL THEN NULL ELSE now() + $10 * interval '1 millisecond' END)`,
      [job.id, job.workspaceId, job.kind, job.status, job.createdAt, job, job.version, payload === undefined ? null : JSON.stringify(payload), owner, leaseMs],
    );
  }

  updateJob(job: JobRecord): Promise<JobRecord> {
    // A finished job is no copy's any more: its former owner's outcome is refused (settleJob).
    return this.versioned(
      'jobs',
      'job',
      job,
      `status = $4, locked_by = CASE WHEN $4 IN ('done', 'error', 'cancelled') THEN NULL ELSE locked_by END,
       locked_until = CASE WHEN $4 IN ('done', 'error', 'cancelled') THEN NULL ELSE locked_until END`,
      [job.status],
    );
  }

  async settleJob(job: JobRecord, owner: string): Promise<JobRecord | null> {
    const r = await this.q<{ version: number | string }>(
      `UPDATE jobs SET status = $3, doc = $4, version = version + 1, locked_by = NULL, locked_until = NULL
       WHERE id = $1 AND locked_by = $2 AND status IN ('working', 'cancelling') RETURNING version`,
      [job.id, owner, job.status, job],
    );
    return r.length ? { ...job, version: Number(r[0].version) } : null;
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const r = await this.q('SELECT doc, version FROM jobs WHERE id = $1', [id]);
    return r.length ? withVersion<JobRecord>(r[0]) : null;
  }

  async jobPayload(id: string): Promise<unknown> {
    const r = await this.q<{ payload: unknown }>('SELECT payload FROM jobs WHERE id = $1', [id]);
    return r.length ? payloadOf(r[0].payload) : null;
  }

  async listJobs(workspaceId: string, f: JobFilter): Promise<JobRecord[]> {
    const where = ['workspace_id = $1'];
    const params: unknown[] = [workspaceId];
    const add = (cond: string, v: unknown) => {
      params.push(v);
      where.push(cond.replace('?', `$${params.length}`));
    };
    if (f.kind) add('kind = ?', f.kind);
    if (f.status) add('status = ?', f.status);
    if (f.createdAfter) add('created_at > ?', f.createdAfter);
    if (f.createdBefore) add('created_at < ?', f.createdBefore);
    if (f.pipeId) add("doc->'data'->>'pipe_id' = ?", f.pipeId);
    if (f.pipeName) add("doc->'data'->>'pipe_name' = ?", f.pipeName);
    params.push(f.limit);
    const r = await this.q(`SELECT doc, version FROM jobs WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`, params);
    return r.map((x) => withVersion<JobRecord>(x));
  }

  async claimJobs(owner: string, limit: number, leaseMs: number): Promise<ClaimedJob[]> {
    const r = await this.q<Row & { payload: unknown }>(
      `UPDATE jobs j SET status = 'working', version = j.version + 1, locked_by = $1, locked_until = now() + $3 * interval '1 millisecond',
         doc = j.doc || jsonb_build_object('status', 'working', 'startedAt', to_jsonb($4::text), 'updatedAt', to_jsonb($4::text), 'version', j.version + 1)
       FROM (SELECT id FROM jobs WHERE status = 'waiting' AND (locked_by IS NULL OR locked_by = $1 OR locked_until < now())
             ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) c
       WHERE j.id = c.id RETURNING j.doc, j.version, j.payload`,
      [owner, limit, leaseMs, new Date().toISOString()],
    );
    return r.map((x) => ({ job: withVersion<JobRecord>(x), payload: payloadOf(x.payload) }));
  }

  async renewLeases(owner: string, ids: string[], leaseMs: number): Promise<Map<string, JobStatus>> {
    if (!ids.length) return new Map();
    const r = await this.q<{ id: string; status: JobStatus }>(
      `UPDATE jobs SET locked_until = now() + $3 * interval '1 millisecond'
       WHERE locked_by = $1 AND id = ANY($2) AND locked_until > now() AND status IN ('waiting', 'working', 'cancelling') RETURNING id, status`,
      [owner, ids, leaseMs],
    );
    return new Map(r.map((x) => [x.id, x.status]));
  }

  async releaseJobs(owner: string | null): Promise<void> {
    await this.q(
      `UPDATE jobs SET locked_by = NULL, locked_until = NULL WHERE status = 'waiting' AND locked_by IS NOT NULL AND ($1::text IS NULL OR locked_by = $1)`,
      [owner],
    );
  }

  async abandonedJobs(all: boolean): Promise<ClaimedJob[]> {
    const r = await this.q<Row & { payload: unknown }>(
      `SELECT doc, version, payload FROM jobs WHERE status IN ('working', 'cancelling') AND ($1 OR locked_until IS NULL OR locked_until < now())
       ORDER BY created_at`,
      [all],
    );
    return r.map((x) => ({ job: withVersion<JobRecord>(x), payload: payloadOf(x.payload) }));
  }

  async claimTick(workspaceId: string, pipeId: string, origin: string, tick: string): Promise<boolean> {
    const r = await this.q(
      `INSERT INTO schedule_ticks(pipe_id, workspace_id, origin, last_tick) VALUES ($1, $2, $3, $4::timestamptz)
       ON CONFLICT (pipe_id) DO UPDATE SET origin = EXCLUDED.origin, last_tick = EXCLUDED.last_tick
         WHERE schedule_ticks.origin <> EXCLUDED.origin OR schedule_ticks.last_tick < EXCLUDED.last_tick
       RETURNING pipe_id`,
      [pipeId, workspaceId, origin, tick],
    );
    return r.length === 1;
  }

  async lastTicks(workspaceId: string): Promise<Map<string, { origin: string; tick: string }>> {
    const r = await this.q<{ pipe_id: string; origin: string; last_tick: Date | string }>(
      'SELECT pipe_id, origin, last_tick FROM schedule_ticks WHERE workspace_id = $1',
      [workspaceId],
    );
    return new Map(r.map((x) => [x.pipe_id, { origin: x.origin, tick: new Date(x.last_tick).toISOString() }]));
  }

  async listIntents(): Promise<IntentRecord[]> {
    return (await this.q('SELECT doc, 0 AS version FROM intents ORDER BY created_at, id')).map((x) => parseIntent(x.doc));
  }

  async insertIntent(i: Intent, owner: string, leaseMs: number): Promise<void> {
    await this.q(
      `INSERT INTO intents(id, workspace_id, kind, created_at, doc, locked_by, locked_until)
         VALUES ($1, $2, $3, $4, $5, $6, now() + $7 * interval '1 millisecond')`,
      [i.id, i.workspaceId, i.kind, i.createdAt, i, owner, leaseMs],
    );
  }

  async updateIntent(i: IntentRecord, owner: string, leaseMs: number, job?: string): Promise<boolean> {
    const r = await this.q(
      `UPDATE intents SET doc = $2, locked_until = now() + $4 * interval '1 millisecond'
       WHERE id = $1 AND locked_by = $3
         AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM jobs WHERE id = $5 AND locked_by = $3 AND locked_until > now() AND status IN ('working', 'cancelling')))
       RETURNING id`,
      [i.id, i, owner, leaseMs, job ?? null],
    );
    return r.length === 1;
  }

  async renewIntents(owner: string, ids: string[], leaseMs: number): Promise<void> {
    if (!ids.length) return;
    await this.q(`UPDATE intents SET locked_until = now() + $3 * interval '1 millisecond' WHERE locked_by = $1 AND id = ANY($2)`, [owner, ids, leaseMs]);
  }

  async claimAbandonedIntents(owner: string, leaseMs: number, all: boolean): Promise<IntentRecord[]> {
    const r = await this.q(
      `UPDATE intents i SET locked_by = $1, locked_until = now() + $2 * interval '1 millisecond'
       FROM (SELECT id FROM intents WHERE $3 OR locked_until IS NULL OR locked_until < now() FOR UPDATE SKIP LOCKED) c
       WHERE i.id = c.id RETURNING i.doc`,
      [owner, leaseMs, all],
    );
    return r.map((x) => parseIntent(x.doc)).sort((x, y) => x.createdAt.localeCompare(y.createdAt) || x.id.localeCompare(y.id));
  }

  async deleteIntent(id: string, owner: string): Promise<void> {
    await this.q('DELETE FROM intents WHERE id = $1 AND locked_by = $2', [id, owner]);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** A job's payload as the driver returns jsonb (parsed, or still text). */
function payloadOf(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : (v ?? null);
}

/** Statements of a migration, split on semicolons outside `$$` bodies. */
function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inBody = false;
  for (const part of sql.split(/(\$\$|;)/)) {
    if (part === '$$') inBody = !inBody;
    if (part === ';' && !inBody) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    } else cur += part;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/**
 * PostgreSQL text and jsonb cannot hold NUL characters (the statement fails with an encoding
 * error), so every statement's parameters are checked here, at the one boundary all user text
 * crosses on its way in: a NUL is a 400 naming the field (`description`, `nodes[0].sql`, or the
 * column a lookup compares). Job updates are the exception: they carry messages the server wrote
 * (engine errors quoting user data) and must not fail, so NULs there become U+FFFD.
 */
export function refuseNul(db: SqlQuery): SqlQuery {
  return {
    query<R>(sql: string, params?: unknown[]) {
      if (params?.length) {
        for (let i = 0; i < params.length; i++) {
          const field = nulPath(params[i]);
          if (field === null) continue;
          if (/^\s*UPDATE\s+jobs\b/i.test(sql)) {
            params = params.map(withoutNul);
            break;
          }
          return Promise.reject(nulError(field || columnOf(sql, i + 1)));
        }
      }
      return db.query<R>(sql, params);
    },
  };
}

/** The column a `$n` parameter is compared with or inserted into, for the error message. */
function columnOf(sql: string, n: number): string | null {
  const cmp = new RegExp(`([A-Za-z_][A-Za-z0-9_]*)'?\\s*(?:=|<|>|=\\s*ANY\\()\\s*\\$${n}\\b`).exec(sql);
  if (cmp) return cmp[1];
  const ins = /INSERT\s+INTO\s+\w+\s*\(([^)]*)\)/i.exec(sql);
  if (ins) return ins[1].split(',')[n - 1]?.trim() ?? null;
  return null;
}

function withoutNul(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/\u0000/g, '\ufffd');
  if (Array.isArray(v)) return v.map(withoutNul);
  if (v === null || typeof v !== 'object' || v instanceof Date) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [withoutNul(k), withoutNul(x)]));
}
