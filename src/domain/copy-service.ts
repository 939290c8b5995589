/**
 * Copy Pipes: a node whose result is written into a target data source, on demand
 * (`POST /v0/pipes/:p/copy`, template parameters from the request) or on a cron schedule (UTC)
 * run by the server's scheduler. `append` mode stages the rows and publishes them whole, `replace`
 * mode loads a shadow table and swaps it in: readers never see a half-copied target, and a crash
 * in the middle is rolled forward or back on the next start (see atomic-writes.ts).
 */
import type { CopyData, CopyNode, DatasourceRecord, JobRecord, NodeRecord, PipeRecord, Workspace } from '../catalog/catalog.js';
import { retype } from '../catalog/records.js';
import { EngineError, markSelect } from '../engine/engine.js';
import { ident, name, type Sql, sql, trusted } from '../engine/sql.js';
import { createTableSql, physicalNames } from '../ingest/physical.js';
import { abandonReplace, beginReplace, stagedAppend, swapIn } from './atomic-writes.js';
import { scheduleOf } from '../jobs/cron.js';
import type { PreparedQuery } from './query-service.js';
import type { ParamValue } from '../template/index.js';
import type { Auth } from './access.js';
import { jobNode, killedOnAbort, type NodeJobServices, type RunPayload, pipeJobPayload } from './pipe-jobs.js';
import type { DatasourceService } from './datasource-service.js';
import { badRequest, forbidden, notFound } from '../basics/errors.js';
import { newResourceId } from '../basics/ids.js';
import { pipeType } from './pipe-service.js';
import { ScheduledNodes } from './schedules.js';

export interface CopySettings {
  target?: string;
  /** A cron expression; `None`/empty removes the schedule; `@on-demand` means none. */
  cron?: string;
  mode?: string;
}

/**
 * What a copy job needs besides its pipe and node (PipeJobPayload): the target, the run's
 * parameters and timestamp.
 */
interface CopyPayload extends RunPayload {
  targetId: string;
  mode: 'append' | 'replace';
}

/** The seed's copy job limits (`403 Job limits exceeded`). */
export interface CopyLimits {
  /** Rows one copy job may write (seed 001: 100M). */
  maxRows: number;
  /** Copy jobs of a workspace that may be active (waiting or working) at once. */
  maxActiveJobs: number;
}

export const DEFAULT_COPY_LIMITS: CopyLimits = { maxRows: 100_000_000, maxActiveJobs: 10 };

/** `100M`, `1.5K`, `7`: a row limit as the seed writes it. */
function shortCount(n: number): string {
  for (const [unit, v] of [
    ['B', 1e9],
    ['M', 1e6],
    ['K', 1e3],
  ] as const)
    if (n >= v && Number.isInteger((n / v) * 10)) return `${n / v}${unit}`;
  return String(n);
}

export class CopyService extends ScheduledNodes<NodeJobServices & { datasources: DatasourceService }, CopyPayload> {
  /** Per workspace: the check of the active-job limit and the enqueue happen one at a time. */
  private readonly admission = new Map<string, Promise<unknown>>();

  constructor(
    s: NodeJobServices & { datasources: DatasourceService },
    now: () => Date = () => new Date(),
    /** Job limits (PIPIT_COPY_MAX_ROWS, PIPIT_COPY_MAX_ACTIVE_JOBS); tests may change them. */
    readonly limits: CopyLimits = { ...DEFAULT_COPY_LIMITS },
  ) {
    super('copy', s, now);
  }

  /**
   * Seed 001's 403 `Job limits exceeded`, checked before a job is enqueued: the result must not
   * have more than `maxRows` rows (counted by the engine, reading at most one row past the limit,
   * so nothing is half-copied), and the workspace must have fewer than `maxActiveJobs` copy jobs
   * waiting or working.
   */
  private async admit(ws: Workspace, prepared: PreparedQuery, create: () => Promise<JobRecord>): Promise<JobRecord> {
    const max = this.limits.maxRows;
    const bound = Object.keys(prepared.queryParams).length > 0;
    let rows: number;
    try {
      const r = await this.s.engine.query(sql`SELECT count() AS c FROM (SELECT 1 FROM (${trusted(prepared.sql)}) LIMIT ${max + 1})`.text, {
        format: 'JSONEachRow',
        params: bound ? prepared.queryParams : undefined,
      });
      rows = Number((JSON.parse(r.bytes.toString('utf8').trim() || '{"c":0}') as { c: string | number }).c);
    } catch (err) {
      if (err instanceof EngineError) throw badRequest(prepared.userNames(err.message));
      throw err;
    }
    if (rows > max)
      throw forbidden(
        `Job limits exceeded. Tried to copy more than ${shortCount(max)} rows: the copy's result has more than ${max} rows, the limit of one copy job`,
      );
    const previous = this.admission.get(ws.id) ?? Promise.resolve();
    const turn = previous
      .catch(() => undefined)
      .then(async () => {
        const active = (
          await Promise.all(['waiting', 'working'].map((status) => this.s.jobs.list(ws, { kind: 'copy', status, limit: this.limits.maxActiveJobs + 1 })))
        ).flat().length;
        if (active >= this.limits.maxActiveJobs) {
          throw forbidden(
            `Job limits exceeded. There are too many active (working and waiting) Copy jobs: ${active} of at most ${this.limits.maxActiveJobs} in this workspace. Wait for them to finish or cancel them.`,
          );
        }
        return create();
      });
    this.admission.set(ws.id, turn);
    try {
      return await turn;
    } finally {
      if (this.admission.get(ws.id) === turn) this.admission.delete(ws.id);
    }
  }

  private checkMode(mode: string | undefined): 'append' | 'replace' {
    const m = (mode ?? 'append').toLowerCase();
    if (m !== 'append' && m !== 'replace') throw badRequest(`Invalid mode "${mode}". Valid modes are: append, replace`);
    return m;
  }

  /** The write rule for what a copy in `mode` does to its target. */
  private checkWrite(auth: Auth, target: { id: string; name: string }, mode: 'append' | 'replace'): void {
    auth.requireWrite(target, mode === 'replace' ? 'change' : 'append', mode === 'replace' ? 'A copy in replace mode' : 'A copy');
  }

  /** Output columns of the node must all exist in the target. */
  private async checkColumns(auth: Auth, pipe: PipeRecord, node: NodeRecord, targetId: string, reqId: string): Promise<void> {
    const target = await this.s.datasources.get(auth.workspace, targetId);
    const index = pipe.nodes.findIndex((n) => n.id === node.id);
    const prepared = await this.s.queries.prepare(auth, node.sql, { testMode: true, params: {}, pipe, nodeLimit: index, savedNode: true });
    let meta: Array<{ name: string }>;
    try {
      meta = await this.s.queries.describe(prepared, reqId);
    } catch (err) {
      // Templates whose test-mode placeholders do not run are checked when the copy runs.
      if (err instanceof EngineError) return;
      throw err;
    }
    const missing = meta.filter((m) => !target.columns.some((c) => c.name === m.name)).map((m) => m.name);
    if (missing.length) {
      throw badRequest(
        `The columns in the SQL query don't match the columns in the target Data Source: ${missing.map((m) => `'${m}'`).join(', ')} not in '${target.name}' (${target.columns.map((c) => c.name).join(', ')})`,
      );
    }
  }

  async set(auth: Auth, pipe: PipeRecord, node: NodeRecord, s: CopySettings, reqId: string): Promise<PipeRecord> {
    const role = pipeType(pipe);
    if (role === 'materialized') throw forbidden(`The pipe '${pipe.name}' is materializing: unlink the Materialized View before setting it as a Copy pipe`);
    if (role === 'endpoint') throw forbidden(`The pipe '${pipe.name}' is an API Endpoint: unpublish it before setting it as a Copy pipe`);
    if (role === 'sink') throw forbidden(`The pipe '${pipe.name}' is a Sink pipe and can not be a Copy pipe`);
    if (role === 'copy') throw forbidden(`The pipe '${pipe.name}' is already a Copy pipe: use PUT to change its settings`);
    if (!s.target) throw badRequest('The "target_datasource" parameter is required');
    const target = await this.s.datasources.find(auth.workspace, s.target);
    if (!target) throw notFound(`Target Data Source "${s.target}" not found`);
    const cron = scheduleOf(s.cron);
    const mode = this.checkMode(s.mode);
    // Scheduled runs write with the workspace's authority: who sets the copy must hold the write.
    this.checkWrite(auth, target, mode);
    await this.checkColumns(auth, pipe, node, target.id, reqId);
    const data: CopyData = { copy_target: target.id, mode, cron, schedule_status: 'running', last_tick: cron ? this.now().toISOString() : null };
    return this.s.pipes.save(auth.workspace, {
      ...pipe,
      nodes: pipe.nodes.map((n) => (n.id === node.id ? retype(n, 'copy', data) : n)),
    });
  }

  async update(auth: Auth, pipe: PipeRecord, node: NodeRecord, s: CopySettings, reqId: string): Promise<PipeRecord> {
    if (node.nodeType !== 'copy') throw badRequest(`Node '${node.name}' is not a copy node`);
    const cur = node.data;
    const next: CopyData = { ...cur };
    let target = await this.s.datasources.find(auth.workspace, cur.copy_target);
    if (s.target !== undefined) {
      target = await this.s.datasources.find(auth.workspace, s.target);
      if (!target) throw notFound(`Target Data Source "${s.target}" not found`);
      next.copy_target = target.id;
    }
    if (s.cron !== undefined) {
      next.cron = scheduleOf(s.cron);
      next.last_tick = next.cron ? this.now().toISOString() : null;
    }
    if (s.mode !== undefined) next.mode = this.checkMode(s.mode);
    if (!target) throw notFound('Target Data Source not found');
    this.checkWrite(auth, target, next.mode);
    if (s.target !== undefined) await this.checkColumns(auth, pipe, node, target.id, reqId);
    return this.s.pipes.save(auth.workspace, { ...pipe, nodes: pipe.nodes.map((n) => (n.id === node.id ? { ...node, data: next } : n)) });
  }

  async unset(auth: Auth, pipe: PipeRecord, node: NodeRecord): Promise<PipeRecord> {
    if (node.nodeType !== 'copy') throw badRequest(`Node '${node.name}' is not a copy node`);
    const drop = ['copy_target', 'mode', 'cron', 'schedule_status', 'last_tick'];
    return this.s.pipes.save(auth.workspace, { ...pipe, nodes: pipe.nodes.map((n) => (n.id === node.id ? retype(n, 'standard', drop) : n)) });
  }

  copyNode(pipe: PipeRecord): CopyNode {
    const node = pipe.nodes.find((n): n is CopyNode => n.nodeType === 'copy');
    if (!node) throw badRequest(`The pipe '${pipe.name}' is not a Copy pipe`);
    return node;
  }

  async setStatus(auth: Auth, pipe: PipeRecord, status: 'running' | 'paused'): Promise<PipeRecord> {
    const node = this.copyNode(pipe);
    const data = node.data;
    if (status === 'running' && data.cron) {
      const target = await this.s.datasources.find(auth.workspace, data.copy_target);
      if (target) this.checkWrite(auth, target, data.mode);
    }
    return this.schedules.setStatus(auth, pipe, node, status, 'copy');
  }

  /** Cancels the pipe's waiting and working copy jobs and pauses its schedule. */
  cancelAll(auth: Auth, pipe: PipeRecord): Promise<{ pipe: PipeRecord; cancelled: JobRecord[] }> {
    return this.schedules.cancelAll(auth, pipe, this.copyNode(pipe), 'copy', 'copy');
  }

  /** Enqueues a copy job; `params` are template parameters. */
  async run(auth: Auth, pipe: PipeRecord, params: Record<string, ParamValue>, modeOverride?: string, jobTimestamp?: Date): Promise<JobRecord> {
    const ws = auth.workspace;
    const node = this.copyNode(pipe);
    const data = node.data;
    const mode = modeOverride !== undefined ? this.checkMode(modeOverride) : data.mode;
    const target = await this.s.datasources.find(ws, data.copy_target);
    if (!target) throw notFound('Target Data Source not found');
    this.checkWrite(auth, target, mode);
    const payload: CopyPayload = {
      ...pipeJobPayload(auth, pipe, node),
      targetId: target.id,
      mode,
      params,
      jobTimestamp: (jobTimestamp ?? this.now()).toISOString(),
      queryId: newResourceId(),
    };
    const prepared = await this.prepareQuery(auth, pipe, node, payload);
    return this.admit(ws, prepared, () =>
      this.enqueue(
        ws,
        {
          pipe_id: pipe.id,
          pipe_name: pipe.name,
          datasource: { id: target.id, name: target.name },
          mode,
          query_id: payload.queryId,
          query_sql: prepared.userNames(prepared.sql),
          is_cancellable_while_working: true,
        },
        payload,
      ),
    );
  }

  /**
   * The copy job, on whichever copy of the server claims it: the node's query is prepared again
   * from the payload with the authority of who started it (its scopes as they were then), against
   * the pipe as it is when the job starts.
   */
  protected async execute(job: JobRecord, p: CopyPayload, signal: AbortSignal): Promise<Record<string, unknown>> {
    const { auth, pipe, node } = await jobNode(this.s.pipes, p, 'copy');
    const ws = auth.workspace;
    let prepared: PreparedQuery | undefined;
    try {
      return await killedOnAbort(this.s.engine, job.id, signal, async () => {
        const q = await this.prepareQuery(auth, pipe, node, p);
        prepared = q;
        const meta = await this.s.queries.describe(q, `${p.queryId}m`);
        const cols = meta.map((m) => ident(m.name));
        const bound = Object.keys(q.queryParams).length > 0;
        // With secrets the statement is bound (and re-formatted): its marker goes into the SELECT.
        const select = sql`SELECT ${cols} FROM (${trusted(bound ? markSelect(q.sql, job.id) : q.sql)})`.text;
        const execOpts = { queryId: job.id, params: bound ? q.queryParams : undefined, signal };
        const target = await this.s.datasources.get(ws, p.targetId);
        let written: number | undefined;
        if (p.mode === 'append') {
          written = await stagedAppend(
            this.s.engine,
            this.s.datasources.journal,
            ws,
            target,
            meta.map((m) => m.name),
            select,
            { ...execOpts, job: job.id, checkpoint: 'copy' },
          );
        } else {
          await this.replace(ws, target, cols, select, { ...execOpts, job: job.id });
        }
        const rows = await this.s.engine.rows<{ c: string }>(sql`SELECT count() AS c FROM ${name(physicalNames(ws.database, target.id).table)}`.text);
        const targetRows = Number(rows[0]?.c ?? 0);
        // rows: what this run wrote (datasources_ops_log); a replace leaves exactly its rows.
        return { statistics: { target_rows: targetRows, rows: written ?? targetRows } };
      });
    } catch (err) {
      if (err instanceof EngineError) throw new Error(prepared ? prepared.userNames(err.message) : err.message);
      throw err;
    }
  }

  /** Loads the result into a shadow copy of the target and swaps them (see atomic-writes.ts). */
  private async replace(
    ws: Workspace,
    target: DatasourceRecord,
    cols: Sql[],
    select: string,
    execOpts: { queryId: string; params?: Record<string, string>; signal?: AbortSignal; job: string },
  ): Promise<void> {
    const journal = this.s.datasources.journal;
    const { intent, shadow } = await beginReplace(this.s.engine, journal, ws, target, (sh) => [createTableSql(sh, ws.database)], {
      token: execOpts.job,
      quarantine: false,
      job: execOpts.job,
    });
    try {
      await this.s.engine.exec(sql`INSERT INTO ${name(physicalNames(ws.database, shadow.id).table)} (${cols}) ${trusted(select)}`.text, execOpts);
      if (execOpts.signal?.aborted) throw new Error('The job was cancelled');
    } catch (err) {
      await abandonReplace(this.s.engine, journal, intent);
      throw err;
    }
    await swapIn(this.s.engine, journal, intent);
    await this.s.datasources.touch(ws, target);
  }

  /** The job of a scheduled tick (the scheduler's ScheduledKind for copies). */
  runScheduled(auth: Auth, pipe: PipeRecord, due: Date): Promise<JobRecord> {
    return this.run(auth, pipe, {}, undefined, due);
  }
}
