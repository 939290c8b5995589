/**
 * What every scheduled node (copy, sink) shares: its schedule fields in the node's data, pausing
 * and resuming, and cancelling its jobs. The scheduler (src/domain/scheduler.ts) runs the ticks.
 */
import type { CopyNode, JobKind, JobRecord, NodeRecord, NodeSchedule, PipeRecord, SinkNode } from '../catalog/catalog.js';
import { patchData } from '../catalog/records.js';
import type { Enqueue, JobService } from '../jobs/job-service.js';
import type { Auth } from './access.js';
import { badRequest, notFound } from '../basics/errors.js';
import type { PipeService } from './pipe-service.js';
import type { NodeJobServices, RunPayload } from './pipe-jobs.js';
import type { PreparedQuery } from './query-service.js';

/** The schedule of a node: that of a copy or sink node's data, none for other types. */
export function scheduleOfNode(node: NodeRecord): NodeSchedule {
  if (node.nodeType !== 'copy' && node.nodeType !== 'sink') return { cron: null, schedule_status: 'running', last_tick: null };
  const { cron, schedule_status, last_tick } = node.data;
  return { cron, schedule_status, last_tick };
}

export class Schedules {
  constructor(
    private readonly pipes: PipeService,
    private readonly jobs: JobService,
    private readonly now: () => Date,
  ) {}

  /** Pauses or resumes the node's schedule; resuming starts from now (ticks missed while paused are not run). */
  async setStatus(auth: Auth, pipe: PipeRecord, node: CopyNode | SinkNode, status: 'running' | 'paused', what: 'copy' | 'sink'): Promise<PipeRecord> {
    if (!scheduleOfNode(node).cron) throw notFound(`Scheduled ${what} for pipe '${pipe.name}' not found`);
    const patch: Partial<NodeSchedule> = { schedule_status: status, ...(status === 'running' ? { last_tick: this.now().toISOString() } : {}) };
    return this.pipes.save(auth.workspace, { ...pipe, nodes: pipe.nodes.map((n) => (n.id === node.id ? patchData(node, patch) : n)) });
  }

  /** Cancels the pipe's waiting and working jobs of `kind` and pauses its schedule. */
  async cancelAll(
    auth: Auth,
    pipe: PipeRecord,
    node: CopyNode | SinkNode,
    kind: JobKind,
    what: 'copy' | 'sink',
  ): Promise<{ pipe: PipeRecord; cancelled: JobRecord[] }> {
    const cancelled: JobRecord[] = [];
    for (const status of ['waiting', 'working']) {
      for (const j of await this.jobs.list(auth.workspace, { kind, status, pipeId: pipe.id, limit: 100 })) {
        // A job that finished meanwhile is listed as it is now.
        cancelled.push(await this.jobs.cancel(auth.workspace, j.id).catch(() => j));
      }
    }
    const saved = scheduleOfNode(node).cron ? await this.setStatus(auth, pipe, node, 'paused', what) : pipe;
    return { pipe: saved, cancelled };
  }
}

/**
 * A service of scheduled nodes (copy, sink): its jobs are of the node's type, run by `execute` from
 * their payload on whichever copy claims them; `schedules` pauses, resumes and cancels.
 */
export abstract class ScheduledNodes<S extends NodeJobServices, P extends RunPayload> {
  protected readonly schedules: Schedules;
  readonly jobKind: 'copy' | 'sink';
  /** Enqueues a run's job (any copy runs it, with `execute`). */
  protected readonly enqueue: Enqueue<P>;

  constructor(
    readonly nodeType: 'copy' | 'sink',
    protected readonly s: S,
    /** The scheduler's clock (tests drive it). */
    protected readonly now: () => Date,
  ) {
    this.jobKind = nodeType;
    this.schedules = new Schedules(s.pipes, s.jobs, now);
    this.enqueue = s.jobs.register(nodeType, (job, payload: P, signal) => this.execute(job, payload, signal));
  }

  /** The node's query as a run prepares it: its template parameters, and `job_timestamp` (UTC) of the run. */
  protected async prepareQuery(auth: Auth, pipe: PipeRecord, node: NodeRecord, p: P): Promise<PreparedQuery> {
    const prepared = await this.s.queries.prepare(auth, node.sql, {
      params: { job_timestamp: p.jobTimestamp.slice(0, 19).replace('T', ' '), ...p.params },
      testMode: false,
      pipe,
      nodeLimit: pipe.nodes.findIndex((n) => n.id === node.id),
      savedNode: true,
    });
    if (prepared.format) throw badRequest(`A ${this.nodeType} node can not have a FORMAT clause`);
    return prepared;
  }

  /** The job, on whichever copy of the server claims it. */
  protected abstract execute(job: JobRecord, payload: P, signal: AbortSignal): Promise<Record<string, unknown>>;
}
