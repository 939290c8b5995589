/**
 * User queries end to end: build the caller's scope (what its token may read in its workspace),
 * check and rewrite the SQL with the analyzer, run it on the engine's read-only Sessions with the
 * configured limits, and translate engine errors back into the user's names. Every feature that
 * runs user SQL (Query API, pipes, endpoints, materialized views, copies, sinks) goes through here.
 */
import type { DatasourceRecord, Workspace } from '../catalog/catalog.js';
import type { Config } from '../config/config.js';
import type { Auth } from '../domain/access.js';
import type { DatasourceService } from '../domain/datasource-service.js';
import { PipitError } from '../domain/errors.js';
import { EngineError, type Engine, type SelectLimits, type SelectResult } from '../engine/engine.js';
import { SANDBOX_DATABASE } from '../engine/embedded-engine.js';
import { physicalNames } from '../ingest/physical.js';
import { analyzeQuery, type AnalyzedQuery, type ResolvedTable, type SqlScope } from './analyzer.js';

export interface PreparedQuery extends AnalyzedQuery {
  /** Rewrites physical names in an engine message back to the names the user wrote. */
  userNames(message: string): string;
}

export interface RunOptions {
  format: string;
  queryId: string;
  signal?: AbortSignal;
  maxThreads?: number;
  formatSettings?: Record<string, 0 | 1>;
  buffered?: boolean;
}

export class QueryService {
  private databases = new Set<string>();

  constructor(
    private readonly engine: Engine,
    private readonly datasources: DatasourceService,
    private readonly config: Pick<Config, 'queryTimeout' | 'queryMaxResultBytes' | 'queryMaxMemory'>,
  ) {}

  /** Learns the engine's database names (refused as qualifiers in user SQL). */
  async init(): Promise<void> {
    const rows = await this.engine.rows<{ name: string }>('SELECT name FROM system.databases');
    this.databases = new Set(rows.map((r) => r.name.toLowerCase()));
  }

  /** The resources `auth` may read, as the analyzer's scope. */
  async scope(auth: Auth): Promise<{ scope: SqlScope; names: Array<[string, string]> }> {
    const ws = auth.workspace;
    const all = await this.datasources.list(ws);
    const byName = new Map<string, DatasourceRecord>();
    const names: Array<[string, string]> = [];
    for (const ds of all) {
      byName.set(ds.name, ds);
      const n = physicalNames(ws.database, ds.id);
      names.push([n.quarantine, `${ds.name}_quarantine`], [n.table, ds.name], [`${ds.id}_quarantine`, `${ds.name}_quarantine`], [ds.id, ds.name]);
    }
    const readable = (ds: DatasourceRecord, name: string): DatasourceRecord => {
      if (!auth.canRead(ds.id)) throw new PipitError('forbidden', `Resource '${name}' not found`);
      return ds;
    };
    const scope: SqlScope = {
      databases: this.databases,
      resolve: (name): ResolvedTable | undefined => {
        const ds = byName.get(name);
        if (ds) {
          readable(ds, name);
          return { name, kind: 'datasource', id: ds.id, sql: physicalNames(ws.database, ds.id).table };
        }
        if (name.endsWith('_quarantine')) {
          const base = byName.get(name.slice(0, -'_quarantine'.length));
          if (base) {
            readable(base, name);
            return { name, kind: 'quarantine', id: base.id, sql: physicalNames(ws.database, base.id).quarantine };
          }
        }
        return undefined;
      },
      resolveJoinTable: (name) => {
        const ds = byName.get(name);
        if (!ds || ds.engine.engine !== 'Join') return undefined;
        readable(ds, name);
        return physicalNames(ws.database, ds.id).table;
      },
    };
    // Longest physical names first, so `t_x_quarantine` is not half-replaced by `t_x`.
    names.sort((a, b) => b[0].length - a[0].length);
    return { scope, names };
  }

  /** Checks and rewrites one user query for `auth`. */
  async prepare(auth: Auth, sql: string): Promise<PreparedQuery> {
    const { scope, names } = await this.scope(auth);
    let analyzed: AnalyzedQuery;
    try {
      analyzed = analyzeQuery(sql, scope);
    } catch (err) {
      // A limited token learns nothing about resources it may not read, not even that they exist.
      if (err instanceof PipitError && err.code === 'not_found' && !auth.isAdmin) throw new PipitError('forbidden', err.message);
      throw err;
    }
    const database = auth.workspace.database;
    return { ...analyzed, userNames: (m) => userNames(m, names, database) };
  }

  limits(maxThreads?: number, formatSettings?: Record<string, 0 | 1>): SelectLimits {
    return {
      maxExecutionTime: this.config.queryTimeout,
      maxResultBytes: this.config.queryMaxResultBytes,
      maxMemoryUsage: this.config.queryMaxMemory,
      maxThreads,
      formatSettings,
    };
  }

  /** Runs a prepared query; engine errors come back with the user's names. */
  async run(q: PreparedQuery, opts: RunOptions): Promise<SelectResult> {
    try {
      return await this.engine.select(q.sql, {
        format: opts.format,
        queryId: opts.queryId,
        signal: opts.signal,
        buffered: opts.buffered,
        limits: this.limits(opts.maxThreads, opts.formatSettings),
      });
    } catch (err) {
      throw translate(err, q);
    }
  }
}

/** An engine error with physical names replaced by user names (for errors raised mid-stream too). */
export function translate(err: unknown, q: PreparedQuery): unknown {
  if (!(err instanceof EngineError)) return err;
  return new EngineError(err.chCode, err.chType, q.userNames(err.message));
}

function userNames(message: string, names: Array<[string, string]>, database: string): string {
  let m = message.replace(/\/\* pipit:[0-9A-Za-z]+ \*\/ ?/g, '');
  for (const [physical, name] of names) m = m.split('`' + physical.replace('.', '`.`') + '`').join(name).split(physical).join(name);
  return m
    .split(`${database}.`).join('')
    .split(`\`${database}\`.`).join('')
    .split(`${SANDBOX_DATABASE}.`).join('')
    .split(`\`${SANDBOX_DATABASE}\`.`).join('')
    .split(database).join('')
    .split(SANDBOX_DATABASE).join('');
}
