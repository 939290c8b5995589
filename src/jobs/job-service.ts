/**
 * Jobs: a queue kept in the catalog and run by workers inside the server. Statuses go
 * waiting → working → done | error (cancelling → cancelled); jobs a crash left `working` are
 * marked as errors on start, never left stuck. Listing shows the last 48 h, newest first.
 */
import type { Catalog, JobRecord, Workspace } from '../catalog/catalog.js';
import { badRequest, notFound, PipitError } from '../basics/errors.js';
import { newJobId } from '../basics/ids.js';
import { nowIso } from '../basics/time.js';
import { runAsInternalWork } from '../engine/lanes.js';

export type JobRunner = (job: JobRecord, signal: AbortSignal) => Promise<Record<string, unknown>>;

export class JobService {
  private readonly running = new Map<string, AbortController>();
  private readonly queue: Array<{ job: JobRecord; run: JobRunner }> = [];
  private active = 0;
  private readonly idle: Array<() => void> = [];
  /** Listeners for job status changes (tests wait on these instead of sleeping). */
  readonly listeners = new Set<(job: JobRecord) => void>();

  constructor(
    private readonly catalog: Catalog,
    private readonly concurrency = 2,
  ) {}

  /** Fails jobs a previous process left working or waiting (their runner state is gone). */
  async recover(): Promise<void> {
    for (const job of await this.catalog.jobsInStatus(['working', 'waiting', 'cancelling'])) {
      const cancelled = job.status === 'cancelling';
      await this.save({
        ...job,
        status: cancelled ? 'cancelled' : 'error',
        error: cancelled ? null : 'The job was interrupted by a server restart; run it again',
      });
    }
  }

  async create(ws: Workspace, kind: string, data: Record<string, unknown>, run: JobRunner): Promise<JobRecord> {
    const now = nowIso();
    const job: JobRecord = { id: newJobId(), workspaceId: ws.id, kind, status: 'waiting', createdAt: now, updatedAt: now, startedAt: null, data, error: null };
    await this.catalog.insertJob(job);
    this.queue.push({ job, run });
    this.pump();
    return job;
  }

  private pump(): void {
    while (this.active < this.concurrency && this.queue.length) {
      const { job, run } = this.queue.shift()!;
      this.active++;
      void this.execute(job, run).finally(() => {
        this.active--;
        this.pump();
        if (this.active === 0 && !this.queue.length) for (const w of this.idle.splice(0)) w();
      });
    }
  }

  private async execute(job: JobRecord, run: JobRunner): Promise<void> {
    let current: JobRecord | null;
    try {
      current = await this.catalog.getJob(job.id);
    } catch {
      current = job;
    }
    if (current?.status !== 'waiting') return;
    const ac = new AbortController();
    this.running.set(job.id, ac);
    let state: JobRecord = { ...current, status: 'working', startedAt: nowIso() };
    try {
      await this.save(state);
    } catch (err) {
      // The catalog can not take the change (a full disk): the job fails without running, and
      // that outcome is recorded once it can be.
      this.running.delete(job.id);
      await this.saveEventually({ ...state, status: 'error', error: (err as Error).message });
      return;
    }
    try {
      // Jobs are internal work: their engine calls never queue behind (or are refused for) user queries.
      const result = await runAsInternalWork(() => run(state, ac.signal));
      state = { ...state, data: { ...state.data, ...result } };
      // A runner that returns did its work: a cancel that came too late to stop it (a staged append
      // past its point of no return publishes every row) must not report the rows as not written.
      // Runners stop on a cancel by throwing (the engine's calls do).
      state = { ...state, status: 'done' };
    } catch (err) {
      const extra = err instanceof PipitError ? err.extra : {};
      state = ac.signal.aborted
        ? { ...state, status: 'cancelled' }
        : { ...state, status: 'error', error: (err as Error).message, data: { ...state.data, ...extra } };
    } finally {
      this.running.delete(job.id);
    }
    await this.saveEventually(state);
  }

  private closing = false;

  /**
   * Records a job's outcome, retrying while the catalog refuses the write (a full disk): a job
   * never rejects out of its worker. While the server shuts down one try is made; a job left
   * `working` is marked interrupted at the next start.
   */
  private async saveEventually(state: JobRecord): Promise<void> {
    for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        return await this.save(state);
      } catch {
        if (this.closing) return;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async save(job: JobRecord): Promise<void> {
    const saved = { ...job, updatedAt: nowIso() };
    await this.catalog.updateJob(saved);
    for (const l of this.listeners) l(saved);
  }

  async get(ws: Workspace, id: string): Promise<JobRecord> {
    const job = await this.catalog.getJob(id);
    if (!job) throw notFound(`Job with id "${id}" not found`);
    if (job.workspaceId !== ws.id) throw new PipitError('forbidden', "The token you have provided doesn't have access to this resource");
    return job;
  }

  async cancel(ws: Workspace, id: string): Promise<JobRecord> {
    const job = await this.get(ws, id);
    if (job.status === 'cancelling') throw badRequest('Job is already being cancelled');
    if (job.status === 'waiting') {
      const q = this.queue.findIndex((x) => x.job.id === id);
      if (q >= 0) this.queue.splice(q, 1);
      await this.save({ ...job, status: 'cancelled' });
      return (await this.catalog.getJob(id))!;
    }
    const ac = this.running.get(id);
    if (job.status === 'working' && ac && job.data.is_cancellable_while_working) {
      await this.save({ ...job, status: 'cancelling' });
      ac.abort();
      return (await this.catalog.getJob(id))!;
    }
    throw badRequest('Job is not in cancellable status');
  }

  list(ws: Workspace, filter: Parameters<Catalog['listJobs']>[1]): Promise<JobRecord[]> {
    return this.catalog.listJobs(ws.id, filter);
  }

  /** Resolves when no job is queued or running. */
  async drain(): Promise<void> {
    if (this.active === 0 && !this.queue.length) return;
    await new Promise<void>((r) => this.idle.push(r));
  }

  /** Waits for running jobs at shutdown (an outcome the catalog refuses is tried once). */
  async close(): Promise<void> {
    this.closing = true;
    await this.drain();
  }
}
