/**
 * What every scheduled node (copy, sink) shares: its schedule fields in the node's data, pausing
 * and resuming, and cancelling its jobs. The scheduler (src/domain/scheduler.ts) runs the ticks.
 */
import type { JobKind, JobRecord, NodeRecord, PipeRecord } from '../catalog/catalog.js';
import type { JobService } from '../jobs/job-service.js';
import type { Auth } from './access.js';
import { notFound } from '../basics/errors.js';
import type { PipeService } from './pipe-service.js';

/** The schedule of a node, as its data keeps it. */
export interface Schedule {
  cron: string | null;
  schedule_status: 'running' | 'paused';
  /** When the schedule (re)started: ticks before it are not owed (ticks claimed live in the catalog). */
  last_tick: string | null;
}

/** The schedule fields of a node's data (absent fields: no schedule). */
export function scheduleOfNode(node: NodeRecord): Schedule {
  const d = node.data;
  return {
    cron: typeof d.cron === 'string' && d.cron ? d.cron : null,
    schedule_status: d.schedule_status === 'paused' ? 'paused' : 'running',
    last_tick: typeof d.last_tick === 'string' ? d.last_tick : null,
  };
}

export class Schedules {
  constructor(
    private readonly pipes: PipeService,
    private readonly jobs: JobService,
    private readonly now: () => Date,
  ) {}

  /** Pauses or resumes the node's schedule; resuming starts from now (ticks missed while paused are not run). */
  async setStatus(auth: Auth, pipe: PipeRecord, node: NodeRecord, status: 'running' | 'paused', what: 'copy' | 'sink'): Promise<PipeRecord> {
    if (!scheduleOfNode(node).cron) throw notFound(`Scheduled ${what} for pipe '${pipe.name}' not found`);
    const patch: Partial<Schedule> = { schedule_status: status, ...(status === 'running' ? { last_tick: this.now().toISOString() } : {}) };
    return this.pipes.save(auth.workspace, { ...pipe, nodes: pipe.nodes.map((n) => (n.id === node.id ? { ...n, data: { ...n.data, ...patch } } : n)) });
  }

  /** Cancels the pipe's waiting and working jobs of `kind` and pauses its schedule. */
  async cancelAll(auth: Auth, pipe: PipeRecord, node: NodeRecord, kind: JobKind, what: 'copy' | 'sink'): Promise<{ pipe: PipeRecord; cancelled: JobRecord[] }> {
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
