/**
 * User queries end to end: build the caller's scope (what its token may read in its workspace:
 * data sources, their quarantine, pipes through their endpoint node, the nodes of the pipe being
 * queried), render templates, check and rewrite the SQL with the analyzer, run it on the engine's
 * read-only Sessions with the configured limits, and translate engine errors back into the user's
 * names. Every feature that runs user SQL (Query API, pipes, endpoints, materialized views,
 * copies, sinks) goes through here.
 */
import type { DatasourceRecord, NodeRecord, PipeRecord } from '../catalog/catalog.js';
import type { Config } from '../config/config.js';
import type { Auth } from './access.js';
import type { DatasourceService } from './datasource-service.js';
import { badRequest, forbidden, PipitError } from '../basics/errors.js';
import type { PipeService } from './pipe-service.js';
import type { VariableService } from './variable-service.js';
import { EngineError, type Engine, type SelectLimits, type SelectResult } from '../engine/engine.js';
import { isInternalWork, planLanes } from '../engine/lanes.js';
import { reservedUserSlots } from '../config/config.js';
import { Admission, RetryLater, type Caller } from '../sql/admission.js';
import { physicalNames, userFacingNames } from '../ingest/physical.js';
import { isTemplate, render, usesSecrets, type ParamValue } from '../template/index.js';
import { analyzeQuery, type AnalyzedQuery, type ResolvedTable, type SqlScope } from '../sql/analyzer.js';
import { quoteName } from '../sql/lexer.js';
import { isServiceTable, serviceColumns, serviceTableSql } from '../observability/service-tables.js';
import type { Catalog } from '../catalog/catalog.js';
import { PreparedCache } from './prepared-cache.js';

export interface PreparedQuery extends AnalyzedQuery {
  /** Rewrites physical names in an engine message back to the names the user wrote. */
  userNames(message: string): string;
  /** max_threads asked for by a template (max_threads()). */
  maxThreads?: number;
  /** Result cache TTL in seconds asked for by a template (cache_ttl()). */
  cacheTtl?: number;
  /** Template warnings (reserved parameter names). */
  warnings: string[];
  /** Engine query parameters (template secrets), bound apart from the SQL text. */
  queryParams: Record<string, string>;
  /** Whose query it is: admission control limits queries per token and per workspace. */
  caller: Caller;
}

export interface RunOptions {
  format: string;
  queryId: string;
  signal?: AbortSignal;
  maxThreads?: number;
  formatSettings?: Record<string, 0 | 1>;
  buffered?: boolean;
}

/** How a query is rendered and what it may see besides the workspace's resources. */
export interface QueryContext {
  /** Template parameters of the request. */
  params?: Record<string, ParamValue>;
  /** Render templates in test mode (placeholders for missing parameters). */
  testMode?: boolean;
  /** A pipe whose nodes the query may name (`pipeline=`, a node of the pipe). */
  pipe?: PipeRecord;
  /** With `pipe`: only nodes before this index are visible (a node reads earlier nodes). */
  nodeLimit?: number;
  /** `_` names this pipe (the `q` of an endpoint request). */
  underscore?: PipeRecord;
  /** Read this data source as this SQL instead (a populate's snapshot of its parts). */
  sourceOverride?: { dsId: string; sql: string };
  /**
   * The query is the saved SQL of a node (a copy, sink, populate or explain runs it): it may use
   * tb_secret()/tb_var() whoever runs it, as the nodes it reads may, because only an ADMIN token
   * can save a node that names them. Otherwise only an ADMIN token's query may.
   */
  savedNode?: boolean;
  /**
   * The query becomes a materialized view's SELECT: service data sources are refused at any depth
   * (a view on them would run inside the server's own inserts of every workspace's records).
   */
  forView?: boolean;
}

/** The refusal of a service data source where it can not be read. */
export const SERVICE_IN_VIEW =
  'Service Data Sources (tinybird.*) can not be used in a Materialized View: read them from an API Endpoint, a copy or the Query API';

/** Who may make Pipit read a workspace variable (see QueryContext.savedNode). */
export const SECRETS_ADMIN_ONLY = 'Only an ADMIN token may use tb_secret() or tb_var(): workspace variables are readable by admins only';

/** Render outputs gathered from every template a query expands. */
interface Gathered {
  maxThreads?: number;
  cacheTtl?: number;
  warnings: string[];
  /** Names passed to table() in templates. */
  templateTables: string[];
  queryParams: Record<string, string>;
  /** A template rendered the time of rendering into the SQL. */
  timeDependent?: boolean;
}

const MAX_EXPANSION_DEPTH = 32;

/** The settings admission control and query limits are made of. */
type QueryConfig = Pick<
  Config,
  | 'queryTimeout'
  | 'queryMaxResultBytes'
  | 'queryMaxMemory'
  | 'engineSessions'
  | 'threadpoolSize'
  | 'queryConcurrencyPerToken'
  | 'queryConcurrencyPerWorkspace'
  | 'queryQueuePerToken'
  | 'queryQueueTimeout'
>;

export class QueryService {
  private databases = new Set<string>();
  /** Admission control in front of the engine's user-query slots. */
  readonly admission: Admission;
  private readonly prepared: PreparedCache<PreparedQuery>;
  private defaultLimits: { whole: SelectLimits; streamed: SelectLimits } | undefined;

  constructor(
    catalog: Catalog,
    private readonly engine: Engine,
    private readonly datasources: DatasourceService,
    private readonly pipes: PipeService,
    private readonly config: QueryConfig,
    /** Workspace variables for tb_secret/tb_var (the Variables service). */
    private readonly secrets: Pick<VariableService, 'values' | 'onChange'>,
  ) {
    this.prepared = new PreparedCache(catalog);
    // This copy's own writes reach the record caches before their notification does (a query
    // prepared with a secret's old value would answer with it, or from the result cache under it).
    datasources.onChange((w) => this.prepared.drop(w));
    pipes.onChange((w) => this.prepared.drop(w));
    secrets.onChange((w) => this.prepared.drop(w));
    const slots = planLanes(config.threadpoolSize, config.engineSessions).user;
    this.admission = new Admission({
      slots,
      reserved: reservedUserSlots(slots),
      perToken: config.queryConcurrencyPerToken,
      perWorkspace: config.queryConcurrencyPerWorkspace,
      queuePerToken: config.queryQueuePerToken,
      queueTimeoutMs: config.queryQueueTimeout * 1000,
      queryTimeout: config.queryTimeout,
    });
  }

  /** Learns the engine's database names (refused as qualifiers in user SQL). */
  async init(): Promise<void> {
    const rows = await this.engine.rows<{ name: string }>('SELECT name FROM system.databases');
    this.databases = new Set(rows.map((r) => r.name.toLowerCase()));
  }

  /**
   * Checks, renders and rewrites one user query for `auth`. Names the workspace does not have
   * are 404 for admin tokens and 403 for limited ones (which learn nothing about what exists).
   */
  async prepare(auth: Auth, sql: string, ctx: QueryContext = {}): Promise<PreparedQuery> {
    const ws = auth.workspace;
    // A populate's snapshot (sourceOverride) is prepared once; everything else may repeat.
    const key =
      ctx.sourceOverride === undefined
        ? this.prepared.keyOf(auth, [
            sql,
            ctx.params ?? {},
            ctx.testMode ?? false,
            ctx.pipe ? [ctx.pipe.id, ctx.pipe.version] : null,
            ctx.nodeLimit ?? null,
            ctx.underscore ? [ctx.underscore.id, ctx.underscore.version] : null,
            ctx.savedNode ?? false,
            ctx.forView ?? false,
          ])
        : undefined;
    const hit = key !== undefined ? this.prepared.get(ws.id, key) : undefined;
    if (hit) return hit;
    const stamp = this.prepared.stamp(ws.id);
    const { query, timeDependent } = await this.prepareNow(auth, sql, ctx);
    if (key !== undefined && !timeDependent) this.prepared.set(ws.id, key, stamp, query);
    return query;
  }

  private async prepareNow(auth: Auth, sql: string, ctx: QueryContext): Promise<{ query: PreparedQuery; timeDependent: boolean }> {
    const ws = auth.workspace;
    const [dsList, pipeList] = await Promise.all([this.datasources.list(ws), this.pipes.list(ws)]);
    const dsByName = new Map(dsList.map((d) => [d.name, d]));
    const pipeByName = new Map(pipeList.map((p) => [p.name, p]));
    const gathered: Gathered = { warnings: [], templateTables: [], queryParams: {} };
    const variables = await this.secrets.values(ws);
    const bound = () => new Set(Object.keys(gathered.queryParams));
    const params = ctx.params ?? {};
    const testMode = ctx.testMode ?? false;
    const expanding: string[] = [];

    const renderSql = (text: string, secrets: boolean): string => {
      if (!isTemplate(text)) return text;
      const r = render(text, params, { testMode, variables: secrets ? variables : {} });
      Object.assign(gathered.queryParams, r.queryParams);
      if (r.maxThreads !== undefined) gathered.maxThreads = Math.min(gathered.maxThreads ?? r.maxThreads, r.maxThreads);
      if (r.cacheTtl !== undefined) gathered.cacheTtl = Math.min(gathered.cacheTtl ?? r.cacheTtl, r.cacheTtl);
      for (const w of r.warnings) if (!gathered.warnings.includes(w)) gathered.warnings.push(w);
      for (const t of r.tables) if (!gathered.templateTables.includes(t)) gathered.templateTables.push(t);
      if (r.timeDependent) gathered.timeDependent = true;
      return r.sql;
    };

    /** The SQL of a node, rendered and checked, as a subquery; `trusted` skips data source scope checks. */
    const expand = (pipe: PipeRecord, node: NodeRecord, trusted: boolean, as: ResolvedTable['kind'], name: string): ResolvedTable => {
      if (expanding.includes(node.id)) throw badRequest(`Circular dependency: the node '${node.name}' of the pipe '${pipe.name}' reads itself`);
      if (expanding.length >= MAX_EXPANSION_DEPTH) throw badRequest(`Too many nested pipes and nodes (more than ${MAX_EXPANSION_DEPTH})`);
      expanding.push(node.id);
      try {
        const index = pipe.nodes.findIndex((n) => n.id === node.id);
        const analyzed = analyzeQuery(renderSql(node.sql, true), scopeFor({ pipe, nodeLimit: index, trusted }), { params: bound() });
        if (analyzed.format) throw badRequest(`The node '${node.name}' of the pipe '${pipe.name}' can not have a FORMAT clause`);
        return { name, kind: as, id: as === 'pipe' ? pipe.id : node.id, sql: `(${analyzed.sql})` };
      } finally {
        expanding.pop();
      }
    };

    const readableDs = (ds: DatasourceRecord, name: string, trusted: boolean) => {
      if (!trusted && !auth.canRead(ds.id)) throw new PipitError('forbidden', `Resource '${name}' not found`);
    };

    const scopeFor = (c: { pipe?: PipeRecord; nodeLimit?: number; trusted: boolean; underscore?: PipeRecord }): SqlScope => ({
      databases: this.databases,
      resolve: (name): ResolvedTable | undefined => {
        if (c.pipe) {
          const limit = c.nodeLimit ?? c.pipe.nodes.length;
          const node = c.pipe.nodes.slice(0, limit).find((n) => n.name === name);
          if (node) {
            // A node may use a secret internally; a token that does not read node SQL gets what the endpoint returns, not the node.
            if (!c.trusted && !auth.canCreatePipes && usesSecrets(node.sql)) {
              throw forbidden(`The node '${node.name}' of the pipe '${c.pipe.name}' uses secrets: this token reads it only through the pipe's endpoint`);
            }
            return expand(c.pipe, node, c.trusted, 'node', name);
          }
        }
        const ds = dsByName.get(name);
        if (ds) {
          readableDs(ds, name, c.trusted);
          const own = { virtuals: { _table: ds.name, _database: ws.name }, columns: ds.columns.map((c) => c.name) };
          if (ctx.sourceOverride?.dsId === ds.id) return { name, kind: 'datasource', id: ds.id, sql: ctx.sourceOverride.sql, ...own };
          const table = physicalNames(ws.database, ds.id).table;
          // A row filter of the token applies to every read of the data source, also inside pipes.
          const filter = rowFilter(auth, ds.id);
          return { name, kind: 'datasource', id: ds.id, sql: filter ? `(SELECT * FROM ${table} WHERE ${filter})` : table, ...own };
        }
        if (name.endsWith('_quarantine')) {
          const base = dsByName.get(name.slice(0, -'_quarantine'.length));
          if (base) {
            readableDs(base, name, c.trusted);
            // Quarantined rows are outside any row filter: a filtered token does not see them.
            if (rowFilter(auth, base.id)) throw new PipitError('forbidden', `Resource '${name}' not found`);
            return {
              name,
              kind: 'quarantine',
              id: base.id,
              sql: physicalNames(ws.database, base.id).quarantine,
              virtuals: { _table: `${base.name}_quarantine`, _database: ws.name },
              columns: [...base.columns.map((c) => c.name), 'c__error_column', 'c__error', 'c__import_id', 'insertion_date'],
            };
          }
        }
        const pipe = name === '_' && c.underscore ? c.underscore : pipeByName.get(name);
        if (pipe) {
          if (!c.trusted && !auth.canReadPipe(pipe.id)) throw new PipitError('forbidden', `Resource '${name}' not found`);
          const node = pipe.nodes.find((n) => n.id === pipe.endpoint) ?? (auth.canCreatePipes ? pipe.nodes[pipe.nodes.length - 1] : undefined);
          if (!node) throw badRequest(`The pipe '${pipe.name}' does not have an endpoint yet`);
          // Reading a pipe one may read grants its nodes' data sources, as an endpoint does.
          return expand(pipe, node, true, 'pipe', name);
        }
        return undefined;
      },
      // `tinybird.<name>`: the workspace's own rows of a service data source, read-only. Workspace-wide
      // readers (ADMIN, PIPES:CREATE) read them directly; others through a pipe they may read.
      resolveQualified: (db, name): ResolvedTable | undefined => {
        if (db !== 'tinybird') return undefined;
        if (!isServiceTable(name)) throw new PipitError('not_found', `Resource 'tinybird.${name}' not found`);
        if (ctx.forView) throw badRequest(SERVICE_IN_VIEW);
        if (!c.trusted && !auth.canCreatePipes) throw new PipitError('forbidden', `Resource 'tinybird.${name}' not found`);
        return {
          name: `tinybird.${name}`,
          kind: 'service',
          id: name,
          sql: serviceTableSql(name, ws.id),
          virtuals: { _table: name, _database: 'tinybird' },
          columns: serviceColumns(name),
        };
      },
      resolveJoinTable: (name) => {
        const ds = dsByName.get(name);
        if (ds?.engine.engine !== 'Join') return undefined;
        readableDs(ds, name, c.trusted);
        if (rowFilter(auth, ds.id)) throw new PipitError('forbidden', `joinGet can not read '${name}' through a token with a row filter`);
        return physicalNames(ws.database, ds.id).table;
      },
    });

    // Variables are ADMIN-only: a query of another token may not name them (in any branch).
    const secrets = auth.isAdmin || ctx.savedNode === true;
    if (!secrets && usesSecrets(sql)) throw forbidden(SECRETS_ADMIN_ONLY);
    let analyzed: AnalyzedQuery;
    try {
      const rendered = renderSql(sql, secrets);
      // A saved node of a pipe the token reads (a copy run) reads what the pipe reads, as an endpoint does.
      const trusted = ctx.savedNode === true && ctx.pipe !== undefined && auth.canReadPipe(ctx.pipe.id);
      analyzed = analyzeQuery(rendered, scopeFor({ pipe: ctx.pipe, nodeLimit: ctx.nodeLimit, trusted, underscore: ctx.underscore }), { params: bound() });
    } catch (err) {
      // A limited token learns nothing about resources it may not read, not even that they exist.
      if (err instanceof PipitError && err.code === 'not_found' && !auth.isAdmin) throw new PipitError('forbidden', err.message);
      throw err;
    }
    const query: PreparedQuery = {
      ...analyzed,
      sql: unwrapped(analyzed),
      // Engine messages may quote a bound value (`toInt32(secret)` fails with it): never shown.
      userNames: (m) =>
        redactValues(
          userFacingNames(
            m,
            (id) =>
              dsList.find((d) => d.id === id)?.name ??
              pipeList.find((p) => p.id === id)?.name ??
              pipeList.flatMap((p) => p.nodes).find((n) => n.id === id)?.name,
          ),
          Object.values(gathered.queryParams),
        ),
      maxThreads: gathered.maxThreads,
      cacheTtl: gathered.cacheTtl,
      warnings: gathered.warnings,
      queryParams: gathered.queryParams,
      // A JWT has no record id: each one (its signature) is a caller of its own.
      caller: { token: auth.token.id || `jwt:${auth.token.token.slice(auth.token.token.lastIndexOf('.') + 1)}`, workspace: ws.id },
      tables: [
        ...analyzed.tables,
        ...gathered.templateTables
          .filter((t) => !analyzed.tables.some((x) => x.name === t))
          .map((t) => ({ name: t, kind: 'datasource' as const, id: '', sql: '' })),
      ],
    };
    // Shared by every request it is served to (PreparedCache): nobody changes it.
    Object.freeze(query.tables);
    Object.freeze(query.warnings);
    Object.freeze(query.queryParams);
    return { query: Object.freeze(query), timeDependent: gathered.timeDependent === true };
  }

  /**
   * The limit profile of a user query; `whole` for one answered whole (SelectOptions.buffered).
   * A whole answer is formatted in the query's own thread (output_format_parallel_formatting=0):
   * the engine's parallel formatting hands every block to formatter and collector threads, which
   * for an endpoint's small answer cost more than the query (a trivial JSON query: 1.22 → 0.80 ms
   * of CPU, docs/benchmarks.md, session 7). Whole answers are bounded by max_result_bytes; at that
   * bound (100 MB of JSON) formatting in one thread took ~16% longer on 2 cores. Streamed answers
   * (exports) keep the engine's default.
   */
  limits(maxThreads?: number, formatSettings?: Record<string, 0 | 1>, whole = false): SelectLimits {
    // The common profiles are one object each, so an engine can remember what it derived from them.
    if (maxThreads === undefined && (!formatSettings || Object.keys(formatSettings).length === 0)) {
      const d = (this.defaultLimits ??= { whole: Object.freeze(this.limitsOf(undefined, undefined, true)), streamed: Object.freeze(this.limitsOf()) });
      return whole ? d.whole : d.streamed;
    }
    return this.limitsOf(maxThreads, formatSettings, whole);
  }

  private limitsOf(maxThreads?: number, formatSettings?: Record<string, 0 | 1>, whole = false): SelectLimits {
    return {
      maxExecutionTime: this.config.queryTimeout,
      maxResultBytes: this.config.queryMaxResultBytes,
      maxMemoryUsage: this.config.queryMaxMemory,
      maxThreads,
      // Tinybird's default (seed 001): Parquet String columns are plain Binary unless the request
      // asks for output_format_parquet_string_as_string=1; ClickHouse 26.7's default is 1.
      formatSettings: { output_format_parquet_string_as_string: 0, ...(whole ? { output_format_parallel_formatting: 0 } : {}), ...formatSettings },
    };
  }

  /**
   * Runs a prepared query once admission control lets its caller in (internal work skips it);
   * the slot is held until the result is read to its end or cancelled. Engine errors come back
   * with the user's names.
   */
  async run(q: PreparedQuery, opts: RunOptions): Promise<SelectResult> {
    const free = isInternalWork() ? undefined : await this.admission.enter(q.caller, opts.signal);
    try {
      const r = await this.engine.select(q.sql, {
        format: opts.format,
        queryId: opts.queryId,
        signal: opts.signal,
        buffered: opts.buffered,
        params: q.queryParams,
        limits: this.limits(opts.maxThreads ?? q.maxThreads, opts.formatSettings, opts.buffered === true),
      });
      if (r.whole === undefined) return free ? freeing(r, free) : r;
      // Answered whole: the query has ended.
      free?.();
      return r;
    } catch (err) {
      free?.();
      throw translate(err, q);
    }
  }

  /**
   * Names and engine types of a prepared query's output columns, from the engine (`LIMIT 0`):
   * it also checks the query against the tables (unknown columns, types).
   */
  async describe(q: PreparedQuery, queryId: string): Promise<Array<{ name: string; type: string }>> {
    const bytes = await this.collect({ ...q, sql: `SELECT * FROM (${q.sql}) LIMIT 0` }, 'JSON', queryId);
    return (JSON.parse(bytes.toString('utf8')) as { meta: Array<{ name: string; type: string }> }).meta;
  }

  /** Runs a prepared query to completion and returns its bytes (small results: schemas, validation). */
  async collect(q: PreparedQuery, format: string, queryId: string): Promise<Buffer> {
    const r = await this.run(q, { format, queryId, buffered: true });
    if (r.whole) return r.whole;
    const parts: Buffer[] = [];
    try {
      for await (const c of r) parts.push(c);
    } catch (err) {
      throw translate(err, q);
    }
    return Buffer.concat(parts);
  }
}

/** Expressions of row filters read no tables. */
const NO_TABLES: SqlScope = { resolve: () => undefined, databases: new Set() };

/**
 * The SQL filter of the token's `DATASOURCES:READ:<ds>:<filter>` scope for a data source,
 * re-serialised through the analyzer (it was checked when the token was created; it is checked
 * again, so what reaches the engine is always checked tokens).
 */
export function rowFilter(auth: Auth, dsId: string): string | undefined {
  const filter = auth.readFilter(dsId);
  if (filter === undefined) return undefined;
  return `(${analyzeQuery(`SELECT 1 WHERE ${filter}`, NO_TABLES, { settingsAsName: true }).sql.replace(/^SELECT 1 WHERE /, '')})`;
}

/**
 * An engine error with physical names replaced by user names (for errors raised mid-stream too).
 * The engine's whole memory budget running out is the server's condition, not the query's: a 503
 * to retry (a query over its own limit stays the engine's 400).
 */
export function translate(err: unknown, q: PreparedQuery): unknown {
  if (!(err instanceof EngineError)) return err;
  if (err.chCode === 241 && /\(total\) memory limit exceeded/i.test(err.message)) {
    return new RetryLater(
      'unavailable',
      'The server is short of memory for this query right now (the engine reached its memory budget): retry in a few seconds, or make the query use less memory',
      5,
    );
  }
  return new EngineError(err.chCode, err.chType, q.userNames(err.message));
}

/** A message with every bound secret value (as written, escaped or JSON-quoted) replaced by `[secret]`. */
export function redactValues(message: string, values: readonly string[]): string {
  const forms = new Set<string>();
  for (const v of values) {
    if (!v) continue;
    forms.add(v);
    forms.add(v.replace(/\\/g, '\\\\').replace(/'/g, "\\'"));
    forms.add(JSON.stringify(v).slice(1, -1));
  }
  for (const f of [...forms].sort((a, b) => b.length - a.length)) message = message.split(f).join('[secret]');
  return message;
}

/** The result, calling `free` once when it is read to its end, fails or is cancelled. */
function freeing(r: SelectResult, free: () => void): SelectResult {
  return {
    stats: r.stats,
    cancel() {
      try {
        r.cancel();
      } finally {
        free();
      }
    },
    async *[Symbol.asyncIterator]() {
      try {
        yield* r;
      } finally {
        free();
      }
    },
  };
}

/**
 * An endpoint request is `SELECT * FROM <pipe>`, which the analyzer rewrites to
 * `SELECT * FROM (<node>) AS <pipe>`: the same rows and columns as the node's own statement, but
 * the engine plans the extra level on every call (about a fifth of a trivial query's cost). Exactly
 * that shape runs as the node's statement itself; anything else is left as analysed.
 */
function unwrapped(q: AnalyzedQuery): string {
  for (const t of q.tables) {
    if (t.kind !== 'pipe' || !t.sql.startsWith('(') || !t.sql.endsWith(')')) continue;
    if (q.sql === `SELECT * FROM ${t.sql} AS ${quoteName(t.name)}`) return t.sql.slice(1, -1);
  }
  return q.sql;
}
