/**
 * Catalog over PostgreSQL SQL: the embedded store (PGlite, Postgres in WASM, persisted to a
 * directory) and a PostgreSQL server share these statements and the numbered migrations.
 * Each record keeps its indexed fields as columns and the rest as a jsonb document.
 */
import type {
  Catalog,
  ConnectionRecord,
  DatasourceRecord,
  IntentRecord,
  JobFilter,
  JobRecord,
  JobStatus,
  PipeRecord,
  TokenRecord,
  VariableRecord,
  Workspace,
} from './catalog.js';
import { migrations } from './migrations.js';
import { nulError, nulPath } from '../basics/input-limits.js';

/** The minimal SQL client both PGlite and node-postgres satisfy. */
export interface SqlClient {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  exec(sql: string): Promise<unknown>;
  close(): Promise<void>;
}

type Doc = { doc: unknown };

export class SqlCatalog implements Catalog {
  private constructor(private readonly db: SqlClient) {}

  /** Opens the catalog and applies pending migrations (append-only, numbered). */
  static async open(db: SqlClient): Promise<SqlCatalog> {
    await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await db.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await db.exec(`BEGIN; ${m.sql}; INSERT INTO schema_migrations(version) VALUES (${m.version}); COMMIT;`);
    }
    return new SqlCatalog(refuseNul(db));
  }

  async listWorkspaces(): Promise<Workspace[]> {
    const r = await this.db.query<Doc>('SELECT doc FROM workspaces ORDER BY created_at, id');
    return r.rows.map((x) => x.doc as Workspace);
  }

  async insertWorkspace(ws: Workspace): Promise<void> {
    await this.db.query('INSERT INTO workspaces(id, name, created_at, doc) VALUES ($1, $2, $3, $4)', [ws.id, ws.name, ws.createdAt, ws]);
  }

  async findToken(value: string): Promise<TokenRecord | null> {
    const r = await this.db.query<Doc>('SELECT doc FROM tokens WHERE token = $1', [value]);
    return r.rows.length ? (r.rows[0].doc as TokenRecord) : null;
  }

  async listTokens(workspaceId: string | null): Promise<TokenRecord[]> {
    const r =
      workspaceId === null
        ? await this.db.query<Doc>('SELECT doc FROM tokens WHERE workspace_id IS NULL ORDER BY created_at, id')
        : await this.db.query<Doc>('SELECT doc FROM tokens WHERE workspace_id = $1 ORDER BY created_at, id', [workspaceId]);
    return r.rows.map((x) => x.doc as TokenRecord);
  }

  async insertToken(t: TokenRecord): Promise<void> {
    await this.db.query('INSERT INTO tokens(id, workspace_id, name, token, created_at, doc) VALUES ($1, $2, $3, $4, $5, $6)', [
      t.id,
      t.workspaceId,
      t.name,
      t.token,
      t.createdAt,
      t,
    ]);
  }

  async updateToken(t: TokenRecord): Promise<void> {
    await this.db.query('UPDATE tokens SET name = $2, token = $3, doc = $4 WHERE id = $1', [t.id, t.name, t.token, t]);
  }

  async deleteToken(id: string): Promise<void> {
    await this.db.query('DELETE FROM tokens WHERE id = $1', [id]);
  }

  async listDatasources(workspaceId: string): Promise<DatasourceRecord[]> {
    const r = await this.db.query<Doc>('SELECT doc FROM datasources WHERE workspace_id = $1 ORDER BY created_at, id', [workspaceId]);
    return r.rows.map((x) => x.doc as DatasourceRecord);
  }

  async insertDatasource(ds: DatasourceRecord): Promise<void> {
    await this.db.query('INSERT INTO datasources(id, workspace_id, name, created_at, doc) VALUES ($1, $2, $3, $4, $5)', [
      ds.id,
      ds.workspaceId,
      ds.name,
      ds.createdAt,
      ds,
    ]);
  }

  async updateDatasource(ds: DatasourceRecord): Promise<void> {
    await this.db.query('UPDATE datasources SET name = $3, doc = $4 WHERE workspace_id = $1 AND id = $2', [ds.workspaceId, ds.id, ds.name, ds]);
  }

  async deleteDatasource(workspaceId: string, id: string): Promise<void> {
    await this.db.query('DELETE FROM datasources WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
  }

  async listPipes(workspaceId: string): Promise<PipeRecord[]> {
    const r = await this.db.query<Doc>('SELECT doc FROM pipes WHERE workspace_id = $1 ORDER BY created_at, id', [workspaceId]);
    return r.rows.map((x) => x.doc as PipeRecord);
  }

  async insertPipe(p: PipeRecord): Promise<void> {
    await this.db.query('INSERT INTO pipes(id, workspace_id, name, created_at, doc) VALUES ($1, $2, $3, $4, $5)', [
      p.id,
      p.workspaceId,
      p.name,
      p.createdAt,
      p,
    ]);
  }

  async updatePipe(p: PipeRecord): Promise<void> {
    await this.db.query('UPDATE pipes SET name = $3, doc = $4 WHERE workspace_id = $1 AND id = $2', [p.workspaceId, p.id, p.name, p]);
  }

  async deletePipe(workspaceId: string, id: string): Promise<void> {
    await this.db.query('DELETE FROM pipes WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
  }

  async listVariables(workspaceId: string): Promise<VariableRecord[]> {
    const r = await this.db.query<Doc>('SELECT doc FROM variables WHERE workspace_id = $1 ORDER BY created_at, id', [workspaceId]);
    return r.rows.map((x) => x.doc as VariableRecord);
  }

  async upsertVariable(v: VariableRecord): Promise<void> {
    await this.db.query(
      'INSERT INTO variables(id, workspace_id, name, created_at, doc) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id, name) DO UPDATE SET doc = EXCLUDED.doc',
      [v.id, v.workspaceId, v.name, v.createdAt, v],
    );
  }

  async deleteVariable(workspaceId: string, name: string): Promise<void> {
    await this.db.query('DELETE FROM variables WHERE workspace_id = $1 AND name = $2', [workspaceId, name]);
  }

  async listConnections(workspaceId: string): Promise<ConnectionRecord[]> {
    const r = await this.db.query<Doc>('SELECT doc FROM connections WHERE workspace_id = $1 ORDER BY created_at, id', [workspaceId]);
    return r.rows.map((x) => x.doc as ConnectionRecord);
  }

  async upsertConnection(c: ConnectionRecord): Promise<void> {
    await this.db.query(
      'INSERT INTO connections(id, workspace_id, name, created_at, doc) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, doc = EXCLUDED.doc',
      [c.id, c.workspaceId, c.name, c.createdAt, c],
    );
  }

  async deleteConnection(workspaceId: string, id: string): Promise<void> {
    await this.db.query('DELETE FROM connections WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
  }

  async insertJob(job: JobRecord): Promise<void> {
    await this.db.query('INSERT INTO jobs(id, workspace_id, kind, status, created_at, doc) VALUES ($1, $2, $3, $4, $5, $6)', [
      job.id,
      job.workspaceId,
      job.kind,
      job.status,
      job.createdAt,
      job,
    ]);
  }

  async updateJob(job: JobRecord): Promise<void> {
    await this.db.query('UPDATE jobs SET status = $2, doc = $3 WHERE id = $1', [job.id, job.status, job]);
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const r = await this.db.query<Doc>('SELECT doc FROM jobs WHERE id = $1', [id]);
    return r.rows.length ? (r.rows[0].doc as JobRecord) : null;
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
    const r = await this.db.query<Doc>(`SELECT doc FROM jobs WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`, params);
    return r.rows.map((x) => x.doc as JobRecord);
  }

  async jobsInStatus(statuses: JobStatus[]): Promise<JobRecord[]> {
    const r = await this.db.query<Doc>('SELECT doc FROM jobs WHERE status = ANY($1) ORDER BY created_at', [statuses]);
    return r.rows.map((x) => x.doc as JobRecord);
  }

  async listIntents(): Promise<IntentRecord[]> {
    const r = await this.db.query<Doc>('SELECT doc FROM intents ORDER BY created_at, id');
    return r.rows.map((x) => x.doc as IntentRecord);
  }

  async upsertIntent(i: IntentRecord): Promise<void> {
    await this.db.query(
      'INSERT INTO intents(id, workspace_id, kind, created_at, doc) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc',
      [i.id, i.workspaceId, i.kind, i.createdAt, i],
    );
  }

  async deleteIntent(id: string): Promise<void> {
    await this.db.query('DELETE FROM intents WHERE id = $1', [id]);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

/**
 * PostgreSQL text and jsonb cannot hold NUL characters (the statement fails with an encoding
 * error), so every statement's parameters are checked here, at the one boundary all user text
 * crosses on its way in: a NUL is a 400 naming the field (`description`, `nodes[0].sql`, or the
 * column a lookup compares). Job updates are the exception: they carry messages the server wrote
 * (engine errors quoting user data) and must not fail, so NULs there become U+FFFD.
 */
export function refuseNul(db: SqlClient): SqlClient {
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
    exec: (sql) => db.exec(sql),
    close: () => db.close(),
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
