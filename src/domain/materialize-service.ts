/**
 * Materialized Views: a node of a pipe becomes an engine `MATERIALIZED VIEW ... TO <target>`
 * over its checked, rewritten SQL, so every insert into its source (also through other nodes,
 * other pipes and chains of views) updates the target inside the engine.
 *
 * Populating without counting a row twice or not at all: the view is attached while inserts are
 * held back (Engine.exclusiveWrites), and in the same instant the source's active parts are
 * recorded and its merges stopped. The populate job reads exactly those parts; every row
 * inserted later reaches the target through the view only. Merges restart when the job ends.
 */
import type { DatasourceRecord, MaterializedData, MaterializedNode, NodeRecord, PipeRecord, Workspace } from '../catalog/catalog.js';
import { retype } from '../catalog/records.js';
import type { Auth } from './access.js';
import { jobNode, killedOnAbort, type NodeJobServices, type PipeJobPayload, pipeJobPayload } from './pipe-jobs.js';
import type { DatasourceService } from './datasource-service.js';
import { badRequest, conflict, forbidden } from '../basics/errors.js';
import { pipeType } from './pipe-service.js';
import { checkExpression, parseEngineParams, parseType, printType, type TypeNode } from '../schema/index.js';
import type { Column } from '../basics/types.js';
import { EngineError } from '../engine/engine.js';
import { ident, name, sql, trusted } from '../engine/sql.js';
import { physicalNames } from '../ingest/physical.js';
import { stagedAppend } from './atomic-writes.js';
import { newResourceId } from '../basics/ids.js';
import type { IntentRecord, JobRecord } from '../catalog/catalog.js';
import type { Enqueue } from '../jobs/job-service.js';

export interface MaterializeOptions {
  datasource: string;
  override?: boolean;
  engine?: string;
  engineArgs?: Record<string, string>;
  populate?: boolean;
  populateSubset?: number;
  populateCondition?: string;
  unlinkOnPopulateError?: boolean;
}

export interface PopulateOptions {
  subset?: number;
  condition?: string;
  truncate?: boolean;
  unlinkOnError?: boolean;
}

/**
 * Checks a populate's subset and condition, returning the checked condition. Callers check before
 * they truncate the target or stop the trigger's merges, so a bad option leaves nothing changed.
 */
function checkPopulateOptions(opts: Pick<PopulateOptions, 'subset' | 'condition'>): string | undefined {
  if (opts.subset !== undefined && !(opts.subset > 0 && opts.subset < 0.1)) throw badRequest('populate_subset must be greater than 0 and lower than 0.1');
  return opts.condition ? checkExpression(opts.condition, 'populate_condition') : undefined;
}

export interface OutputColumn {
  name: string;
  type: string;
}

/**
 * What a populate job needs besides its pipe and node: the target, the trigger whose merges were
 * stopped and the parts frozen then (the rows the job reads), the subset and condition.
 */
interface PopulatePayload extends PipeJobPayload {
  targetId: string;
  triggerId: string | null;
  parts: string[];
  subset?: number;
  condition?: string;
  unlinkOnError?: boolean;
}

const MAX_SUBSET_ROWS = 2_000_000;

export class MaterializeService {
  private readonly enqueuePopulate: Enqueue<PopulatePayload>;

  constructor(private readonly s: NodeJobServices & { datasources: DatasourceService }) {
    this.enqueuePopulate = s.jobs.register(
      'populateview',
      (job, payload: PopulatePayload, signal) => this.executePopulate(job, payload, signal),
      (job, payload) => this.restartMerges(payload, job.id),
    );
  }

  /** The checked SQL of a node in its pipe, rendered with template defaults. */
  private async prepareNode(auth: Auth, pipe: PipeRecord, node: NodeRecord, override?: { dsId: string; sql: string }) {
    const index = pipe.nodes.findIndex((n) => n.id === node.id);
    const prepared = await this.s.queries.prepare(auth, node.sql, {
      testMode: true,
      params: {},
      pipe,
      nodeLimit: index,
      sourceOverride: override,
      savedNode: true,
      forView: true,
    });
    if (prepared.format) throw badRequest('A materialized node can not have a FORMAT clause');
    if (Object.keys(prepared.queryParams).length)
      throw badRequest('A materialized node can not use tb_secret(): its SQL runs inside the engine on every insert');
    return prepared;
  }

  /** Names and engine types of a node's output columns. */
  async describe(auth: Auth, pipe: PipeRecord, node: NodeRecord, queryId: string): Promise<OutputColumn[]> {
    const prepared = await this.prepareNode(auth, pipe, node);
    const meta = await this.s.queries.describe(prepared, queryId);
    for (const c of meta) {
      if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(c.name)) {
        throw badRequest(`Column '${c.name}' should have an alias and start by a character. Change the query and try it again.`);
      }
    }
    return meta;
  }

  /**
   * Refuses output columns the target can not store: columns it does not have, and types the
   * engine can not convert into the column's (a `CAST` of the node's output, `LIMIT 0`, on a
   * read-only Session). The engine decides, as it does when the view writes: `countState()`
   * (`AggregateFunction(count)`) goes into `AggregateFunction(count, UInt64)`, `sumState` of an
   * Int32 does not go into `AggregateFunction(sum, Int64)`.
   */
  async checkCompatible(auth: Auth, pipe: PipeRecord, node: NodeRecord, output: OutputColumn[], target: DatasourceRecord, queryId: string): Promise<void> {
    const pairs = output.map((o) => {
      const t = target.columns.find((c) => c.name === o.name);
      if (!t)
        throw badRequest(
          `The column '${o.name}' of the node is not in the Data Source '${target.name}'. Its columns are: ${target.columns.map((c) => c.name).join(', ')}`,
        );
      return { o, t };
    });
    const prepared = await this.prepareNode(auth, pipe, node);
    const probe = (cols: typeof pairs, n: number) =>
      this.s.queries.collect(
        {
          ...prepared,
          sql: sql`SELECT ${cols.map(({ o, t }) => sql`CAST(${ident(o.name)}, ${t.type}) AS ${ident(o.name)}`)} FROM (${trusted(prepared.sql)}) LIMIT 0`.text,
        },
        'JSON',
        `${queryId}c${n}`,
      );
    try {
      await probe(pairs, 0);
      return;
    } catch (err) {
      if (!(err instanceof EngineError)) throw err;
    }
    // Which column: one probe each (only when the whole one failed).
    for (const [i, pair] of pairs.entries()) {
      try {
        await probe([pair], i + 1);
      } catch (err) {
        if (!(err instanceof EngineError)) throw err;
        throw badRequest(incompatibleMessage(pair.o, pair.t.type, err.message));
      }
    }
    throw badRequest(`The node can not be materialized into the Data Source '${target.name}': its columns can not be converted to the Data Source's types`);
  }

  /** Columns and engine of a target created from a node's output. */
  private targetSpec(output: OutputColumn[], engine: string | undefined, engineArgs: Record<string, string>) {
    const columns: Column[] = output.map((o) => ({
      name: o.name,
      type: o.type,
      nullable: /^Nullable\(/.test(o.type),
      defaultValue: null,
      codec: null,
      jsonpath: null,
    }));
    for (const c of columns) parseType(c.type);
    const aggregating = columns.some((c) => /^(Simple)?AggregateFunction\(/.test(c.type));
    const args = { ...engineArgs };
    if (!engine && !args.engine_sorting_key) {
      const keys = columns
        .filter((c) => !c.nullable && !/AggregateFunction|^Float|^Array|^Map|^Tuple|^JSON|^Dynamic|^Variant/.test(c.type))
        .map((c) => ident(c.name).text);
      args.engine_sorting_key = keys.length ? keys.slice(0, aggregating ? keys.length : 4).join(', ') : 'tuple()';
    }
    return { columns, engine: parseEngineParams(engine ?? (aggregating ? 'AggregatingMergeTree' : 'MergeTree'), args) };
  }

  /** Materializes `node` into `opts.datasource`; returns the updated pipe, the target and a populate job. */
  async materialize(
    auth: Auth,
    pipe: PipeRecord,
    node: NodeRecord,
    opts: MaterializeOptions,
    queryId: string,
  ): Promise<{ pipe: PipeRecord; target: DatasourceRecord; created: boolean; job?: JobRecord }> {
    const ws = auth.workspace;
    if (node.nodeType === 'materialized') throw badRequest(`Node ${node.name} is already being materialized`);
    const role = pipeType(pipe);
    if (role !== 'default')
      throw forbidden(
        `The pipe '${pipe.name}' is already ${role === 'endpoint' ? 'published as an API Endpoint' : `a ${role} pipe`}: a pipe has one role, so its nodes can not be materialized`,
      );
    if (!opts.datasource) throw badRequest('The "datasource" parameter is required to materialize a node');
    let target = await this.s.datasources.find(ws, opts.datasource);
    // The view keeps writing into its target on every insert: the write rule, before anything changes.
    if (target && opts.override) auth.requireWrite(target, 'change', 'A materialization with override_datasource');
    else if (target) auth.requireWrite(target, 'append', 'A materialized view');
    else auth.requireWrite(null, 'create', `A materialized view into "${opts.datasource}"`);
    // Everything a request can get wrong is refused before anything changes (issue 11 item 24):
    // the populate arguments, the node's output, the target's fit or the new target's definition.
    if (opts.populate) checkPopulateOptions({ subset: opts.populateSubset, condition: opts.populateCondition });
    const output = await this.describe(auth, pipe, node, queryId);
    if (target && opts.override && (await this.feeders(ws, target.id)))
      throw conflict(`The Data Source '${target.name}' receives data from other materialized views and can not be overridden`);
    if (target && !opts.override) await this.checkCompatible(auth, pipe, node, output, target, queryId);
    let created = false;
    /** An overridden target: dropped only once its replacement and the view exist. */
    let replaced: DatasourceRecord | null = null;
    const view = `${ws.database}.${node.id}_mv`;
    // Created target, view, node record and populate job: undone together if anything between
    // them fails or the process dies (recoverMaterialize, also on the next start).
    const journal = this.s.datasources.journal;
    const intent = await journal.begin(ws, 'materialize', { pipe: pipe.id, node: node.id, view, created: null });
    try {
      if (!target || opts.override) {
        const spec = this.targetSpec(output, opts.engine, opts.engineArgs ?? {});
        replaced = target;
        // An overriding target is built under a passing name, so the engine refusing its
        // definition (or the view) leaves the overridden target as it was.
        const name = replaced ? `tmp_override_${newResourceId().slice(2, 18)}` : opts.datasource;
        target = await this.s.datasources.create(ws, { name, columns: spec.columns, engine: spec.engine, indexes: [], description: '' });
        created = true;
        await journal.update(intent, { created: target.id });
      }
      let tgt = target;
      const prepared = await this.prepareNode(auth, pipe, node);
      const cols = output.map((o) => ident(o.name));
      let snapshot: { trigger: DatasourceRecord | null; parts: string[] } = { trigger: null, parts: [] };
      try {
        snapshot = await this.s.engine.exclusiveWrites(async () => {
          await this.s.engine.exec(
            sql`CREATE MATERIALIZED VIEW ${name(view)} TO ${name(physicalNames(ws.database, tgt.id).table)} (${output.map((o) => sql`${ident(o.name)} ${trusted(o.type)}`)}) AS SELECT ${cols} FROM (${trusted(prepared.sql)})`
              .text,
          );
          const trigger = await this.triggerOf(ws, view);
          const parts = trigger && opts.populate ? await this.freeze(ws, trigger) : [];
          return { trigger, parts };
        });
      } catch (err) {
        if (err instanceof EngineError) throw badRequest(`The node can not be materialized: ${prepared.userNames(err.message)}`);
        throw err;
      }
      await journal.checkpoint('materialize:view');
      if (replaced) {
        await this.s.datasources.drop(ws, replaced);
        tgt = await this.s.datasources.rename(ws, tgt, opts.datasource);
      }
      const data: MaterializedData = { materialized: tgt.id, view, trigger: snapshot.trigger?.id ?? null };
      const materialized = retype(node, 'materialized', data);
      const saved = await this.s.pipes.save(ws, { ...pipe, nodes: pipe.nodes.map((n) => (n.id === node.id ? materialized : n)) });
      let job: JobRecord | undefined;
      if (opts.populate) {
        job = await this.populateJob(auth, saved, materialized, snapshot, {
          subset: opts.populateSubset,
          condition: opts.populateCondition,
          unlinkOnError: opts.unlinkOnPopulateError,
        });
      }
      await journal.end(intent);
      return { pipe: saved, target: tgt, created, job };
    } catch (err) {
      // No view, no half-set node, no target of its own: as before the request.
      await this.recoverMaterialize(ws, intent).catch(() => undefined);
      throw err;
    }
  }

  /** Undoes an unfinished materialization: its view, its node's record, the target it created. */
  async recoverMaterialize(ws: Workspace, intent: IntentRecord): Promise<void> {
    const d = intent.data as { pipe: string; node: string; view: string; created: string | null };
    await this.s.engine.exec(sql`DROP VIEW IF EXISTS ${name(d.view)} SYNC`.text);
    await this.revertNode(ws, d.pipe, d.node);
    const created = d.created ? await this.s.datasources.find(ws, d.created) : null;
    if (created) await this.s.datasources.drop(ws, created);
    await this.s.datasources.journal.end(intent);
  }

  /** Finishes an interrupted unlink: the view is dropped and the node is a standard node. */
  async recoverUnlink(ws: Workspace, intent: IntentRecord): Promise<void> {
    const d = intent.data as { pipe: string; node: string; view: string };
    await this.s.engine.exec(sql`DROP VIEW IF EXISTS ${name(d.view)} SYNC`.text);
    await this.revertNode(ws, d.pipe, d.node);
    await this.s.datasources.journal.end(intent);
  }

  /** Makes a materialized node a standard one again (catalog only); returns the saved pipe. */
  private async revertNode(ws: Workspace, pipeId: string, nodeId: string): Promise<PipeRecord | null> {
    const pipe = await this.s.pipes.find(ws, pipeId);
    const node = pipe?.nodes.find((n) => n.id === nodeId);
    if (!pipe || !node) return null;
    if (node.nodeType !== 'materialized') return pipe;
    const drop = ['materialized', 'view', 'trigger'];
    return this.s.pipes.save(ws, { ...pipe, nodes: pipe.nodes.map((n) => (n.id === node.id ? retype(n, 'standard', drop) : n)) });
  }

  /** The data source whose inserts trigger a view (as the engine sees it). */
  private async triggerOf(ws: Workspace, view: string): Promise<DatasourceRecord | null> {
    const table = view.slice(view.indexOf('.') + 1);
    const rows = await this.s.engine.rows<{ name: string }>(
      sql`SELECT name FROM system.tables WHERE database = ${ws.database} AND has(dependencies_table, ${table})`.text,
    );
    for (const r of rows) {
      const ds = await this.s.datasources.find(ws, r.name);
      if (ds) return ds;
    }
    return null;
  }

  /** Stops merges of the trigger and returns its active parts (call inside exclusiveWrites). */
  private async freeze(ws: Workspace, trigger: DatasourceRecord): Promise<string[]> {
    const t = name(physicalNames(ws.database, trigger.id).table);
    await this.s.engine.exec(sql`SYSTEM STOP MERGES ${t}`.text);
    const rows = await this.s.engine.rows<{ name: string }>(
      sql`SELECT name FROM system.parts WHERE database = ${ws.database} AND table = ${trigger.id} AND active`.text,
    );
    return rows.map((r) => r.name);
  }

  /** How many views write into a data source. */
  async feeders(ws: Workspace, dsId: string): Promise<number> {
    let n = 0;
    for (const p of await this.s.pipes.list(ws)) for (const node of p.nodes) if (node.nodeType === 'materialized' && node.data.materialized === dsId) n++;
    return n;
  }

  /** A populate of a materialized node (POST .../population): truncate and snapshot atomically. */
  async populate(auth: Auth, pipe: PipeRecord, node: NodeRecord, opts: PopulateOptions): Promise<JobRecord> {
    const ws = auth.workspace;
    if (node.nodeType !== 'materialized') throw badRequest(`Node '${node.name}' is not materialized`);
    const data = node.data;
    const target = await this.s.datasources.get(ws, data.materialized);
    auth.requireWrite(target, opts.truncate ? 'change' : 'append', opts.truncate ? 'A populate with truncate' : 'A populate');
    // Before the truncate and the frozen merges: a bad option changes nothing.
    checkPopulateOptions(opts);
    const trigger = data.trigger ? await this.s.datasources.find(ws, data.trigger) : null;
    const snapshot = await this.s.engine.exclusiveWrites(async () => {
      if (opts.truncate) await this.s.engine.exec(sql`TRUNCATE TABLE ${name(physicalNames(ws.database, target.id).table)}`.text);
      return { trigger, parts: trigger ? await this.freeze(ws, trigger) : [] };
    });
    return this.populateJob(auth, pipe, node, snapshot, opts);
  }

  /**
   * The populate job of a snapshot taken under exclusiveWrites: its trigger's merges are stopped
   * and `parts` are its active parts. Checked now (a 400 restarts the merges); the job runs on
   * whichever copy claims it, from its payload, and whoever ends it restarts the merges.
   */
  private async populateJob(
    auth: Auth,
    pipe: PipeRecord,
    node: MaterializedNode,
    snapshot: { trigger: DatasourceRecord | null; parts: string[] },
    opts: PopulateOptions,
  ): Promise<JobRecord> {
    const payload: PopulatePayload = {
      ...pipeJobPayload(auth, pipe, node),
      targetId: node.data.materialized,
      triggerId: snapshot.trigger?.id ?? null,
      parts: snapshot.parts,
      subset: opts.subset,
      condition: opts.condition,
      unlinkOnError: opts.unlinkOnError,
    };
    try {
      const target = await this.s.datasources.get(auth.workspace, payload.targetId);
      await this.populateQuery(auth, pipe, node, payload);
      return await this.enqueuePopulate(
        auth.workspace,
        { pipe_id: pipe.id, pipe_name: pipe.name, datasource: { id: target.id, name: target.name }, is_cancellable_while_working: true },
        payload,
      );
    } catch (err) {
      await this.restartMerges(payload);
      throw err;
    }
  }

  /** The populate's query: the node over the frozen parts of its trigger (with the subset and condition asked for). */
  private async populateQuery(
    auth: Auth,
    pipe: PipeRecord,
    node: MaterializedNode,
    p: PopulatePayload,
  ): Promise<{ names: string[]; select: string; userNames: (s: string) => string }> {
    const condition = checkPopulateOptions(p);
    let override: { dsId: string; sql: string } | undefined;
    if (p.triggerId) {
      const t = name(physicalNames(auth.workspace.database, p.triggerId).table);
      const where = [p.parts.length ? sql`_part IN (${p.parts})` : sql`0`];
      if (condition) where.push(sql`(${trusted(condition)})`);
      if (p.subset !== undefined) where.push(sql`randCanonical() < ${Number(p.subset)}`);
      const limit = p.subset !== undefined ? sql` LIMIT ${MAX_SUBSET_ROWS}` : sql``;
      override = { dsId: p.triggerId, sql: sql`(SELECT * FROM ${t} WHERE ${trusted(where.join(' AND '))}${limit})`.text };
    }
    const prepared = await this.prepareNode(auth, pipe, node, override);
    const names = (await this.s.queries.describe(prepared, `${node.id}d`)).map((o) => o.name);
    return { names, select: sql`SELECT ${names.map(ident)} FROM (${trusted(prepared.sql)})`.text, userNames: prepared.userNames };
  }

  /** The populate job, on whichever copy of the server claims it. */
  private async executePopulate(job: JobRecord, p: PopulatePayload, signal: AbortSignal): Promise<Record<string, unknown>> {
    const { auth, pipe, node } = await jobNode(this.s.pipes, p, 'materialized');
    const ws = auth.workspace;
    if (p.triggerId && p.parts.length) {
      // Merges restart with the engine: a job that waited across a restart would miss merged parts.
      const [r] = await this.s.engine.rows<{ c: string }>(
        sql`SELECT count() AS c FROM system.parts WHERE database = ${ws.database} AND table = ${p.triggerId} AND active AND name IN (${p.parts})`.text,
      );
      if (Number(r?.c ?? 0) !== p.parts.length)
        throw new Error('The data the populate was to read changed (merges ran while the job waited: the engine restarted); run the populate again');
    }
    const target = await this.s.datasources.get(ws, p.targetId);
    const q = await this.populateQuery(auth, pipe, node, p);
    try {
      // All or nothing, also across a crash: staged, then published whole (atomic-writes.ts).
      const rows = await killedOnAbort(this.s.engine, job.id, signal, () =>
        stagedAppend(this.s.engine, this.s.datasources.journal, ws, target, q.names, q.select, {
          queryId: job.id,
          signal,
          job: job.id,
          checkpoint: 'populate',
        }),
      );
      return { queries: [{ query_id: job.id, status: 'done' }], progress_percentage: 100, statistics: { rows } };
    } catch (err) {
      if (p.unlinkOnError && !signal.aborted) await this.unlink(auth, pipe.id, node.id).catch(() => undefined);
      if (err instanceof EngineError) throw new Error(q.userNames(err.message));
      throw err;
    }
  }

  /**
   * Restarts the merges a populate stopped (when its job ends, whoever ends it; idempotent), unless
   * another populate of the same source still reads its frozen parts. (One that froze them just
   * now and has no job yet finds its parts merged if they were, and fails rather than miss rows.)
   */
  private async restartMerges(p: PopulatePayload, jobId?: string): Promise<void> {
    if (!p.triggerId) return;
    const ws = p.authority.workspace;
    // Unsure (the catalog did not answer): restarted, as a populate's parts check then tells.
    const others = await this.s.jobs.unfinished(ws, 'populateview').catch(() => []);
    if (others.some((o) => o.job.id !== jobId && (o.payload as PopulatePayload | null)?.triggerId === p.triggerId)) return;
    await this.s.engine.exec(sql`SYSTEM START MERGES ${name(physicalNames(ws.database, p.triggerId).table)}`.text);
  }

  /** Detaches the view: the target keeps its data and stops receiving rows. */
  async unlink(auth: Auth, pipeId: string, nodeId: string): Promise<PipeRecord> {
    const ws = auth.workspace;
    const pipe = await this.s.pipes.get(ws, pipeId);
    const node = this.s.pipes.node(pipe, nodeId);
    if (node.nodeType !== 'materialized') throw badRequest(`Node '${node.name}' is not materialized`);
    const data = node.data;
    const journal = this.s.datasources.journal;
    const intent = await journal.begin(ws, 'unlink', { pipe: pipe.id, node: node.id, view: data.view });
    await this.s.engine.exec(sql`DROP VIEW IF EXISTS ${name(data.view)} SYNC`.text);
    await journal.checkpoint('unlink:view');
    const saved = await this.revertNode(ws, pipe.id, node.id);
    await journal.end(intent);
    return saved ?? pipe;
  }

  /** Materialized nodes that read a data source or write into it (for delete/rename checks). */
  async dependents(ws: Workspace, dsId: string, dsName: string): Promise<Array<{ pipe: PipeRecord; node: MaterializedNode }>> {
    const out: Array<{ pipe: PipeRecord; node: MaterializedNode }> = [];
    for (const p of await this.s.pipes.list(ws)) {
      for (const n of p.nodes) {
        if (n.nodeType !== 'materialized') continue;
        const d = n.data;
        if (d.materialized === dsId || d.trigger === dsId || n.dependencies.includes(dsName)) out.push({ pipe: p, node: n });
      }
    }
    return out;
  }
}

/** The aggregate below LowCardinality/Nullable wrappers, if the type is one. */
function aggregateOf(type: string): Extract<TypeNode, { kind: 'aggregate' }> | null {
  let t: TypeNode;
  try {
    t = parseType(type);
  } catch {
    return null;
  }
  while (t.kind === 'nullable' || t.kind === 'lowcardinality') t = t.inner;
  return t.kind === 'aggregate' ? t : null;
}

/** Tinybird's messages for a node column the engine can not store in the target column. */
function incompatibleMessage(o: OutputColumn, storage: string, engineMessage: string): string {
  const target = aggregateOf(storage);
  const source = aggregateOf(o.type);
  const fn = (a: NonNullable<typeof target>) => a.func.replace(/\(.*$/, '');
  if (target && source && fn(target) !== fn(source)) {
    return `Incompatible aggregate functions for column '${o.name}': the node computes '${fn(source)}' and the Data Source stores '${fn(target)}'`;
  }
  if (target && source) {
    const args = (a: NonNullable<typeof target>) => a.args.map(printType).join(', ') || '(no arguments)';
    return `Incompatible data types between aggregate function '${fn(target)}' which returns ${args(source)} and column storage type ${args(target)}`;
  }
  const reason = engineMessage
    .replace(/:? In scope [\s\S]*$/, '')
    .replace(/\. Note: [\s\S]*$/, '')
    .trim();
  return `Incompatible data types for column '${o.name}': the node returns ${o.type} and the Data Source stores ${storage} (${reason})`;
}
