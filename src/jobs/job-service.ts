/**
 * Jobs: a queue kept in the catalog and run by workers in every copy of the server. Statuses go
 * waiting → working → done | error (cancelling → cancelled). A job row holds its kind and the
 * payload its handler needs (handlers are registered per kind), so any copy may claim it: claims
 * use FOR UPDATE SKIP LOCKED and a lease the claiming copy renews while the job runs. A job whose
 * lease lapses (its copy died) is failed by another copy, never left stuck, never run twice.
 * The copy that accepts a job with a free slot holds it for itself under the same lease and starts
 * it at once; a job created with an in-process runner (a closure) is pinned to its copy.
 * Cancelling from any copy reaches the copy running the job (catalog notification, or its next
 * lease renewal), which aborts the engine query. Listing shows the last 48 h, newest first.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { type Catalog, type ClaimedJob, type JobKind, type JobRecord, VersionConflict, type Workspace } from '../catalog/catalog.js';
import { badRequest, notFound, PipitError } from '../basics/errors.js';
import { newJobId } from '../basics/ids.js';
import { nowIso } from '../basics/time.js';
import { runAsInternalWork } from '../engine/lanes.js';

/** A job's work in this process: resolves with fields added to the job JSON, throws to fail it. */
export type JobRunner = (job: JobRecord, signal: AbortSignal) => Promise<Record<string, unknown>>;
/** The work of every job of one kind, from the payload stored with the job (any copy runs it). */
export type JobHandler = (job: JobRecord, payload: unknown, signal: AbortSignal) => Promise<Record<string, unknown>>;

export interface JobTimings {
  /** How long a claim holds without renewal (a dead copy's jobs are failed after it). */
  leaseMs: number;
  /** How often leases are renewed, waiting jobs polled for, and lapsed leases looked for. */
  pollMs: number;
}

export const DEFAULT_JOB_TIMINGS: JobTimings = { leaseMs: 30_000, pollMs: 2_000 };

export class JobService {
  /** This copy's name in the catalog's `locked_by` (host, process, and a random part). */
  readonly owner = `${os.hostname()}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`;
  private readonly handlers = new Map<JobKind, JobHandler>();
  /** Runners of jobs pinned to this copy, until they start. */
  private readonly pinned = new Map<string, JobRunner>();
  /** Jobs with a payload this copy accepted with a free slot, held for it until it claims them. */
  private readonly reserved = new Set<string>();
  private readonly running = new Map<string, AbortController>();
  private active = 0;
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;
  private readonly idle: Array<() => void> = [];
  /** Listeners for job status changes (tests wait on these instead of sleeping). */
  readonly listeners = new Set<(job: JobRecord) => void>();

  constructor(
    private readonly catalog: Catalog,
    private readonly concurrency = 2,
    private readonly timings: JobTimings = DEFAULT_JOB_TIMINGS,
    /** Where a failure of the queue's own bookkeeping is reported (never swallowed). */
    private readonly onError: (err: unknown, msg: string) => void = () => undefined,
  ) {}

  /** The work of `kind` for jobs created with a payload. */
  register(kind: JobKind, handler: JobHandler): void {
    this.handlers.set(kind, handler);
  }

  /**
   * Fails the jobs whose copy is gone: on a single-process catalog every unfinished job at start
   * (nothing else runs them), on a shared one those whose lease lapsed. Waiting jobs any copy
   * may run stay queued.
   */
  async recover(): Promise<void> {
    const abandoned = (await this.catalog.abandonedJobs(!this.catalog.shared)).filter(
      (j) => !this.running.has(j.id) && !this.pinned.has(j.id) && !this.reserved.has(j.id),
    );
    if (!abandoned.length) return;
    // A job whose change is journaled is settled with its intent (src/domain/recovery.ts), which
    // knows whether the rows were written: failing it first would invite a retry that writes them twice.
    const journaled = new Set((await this.catalog.listIntents()).map((i) => i.data.job));
    for (const job of abandoned) {
      if (journaled.has(job.id)) continue;
      const cancelled = job.status === 'cancelling';
      try {
        await this.save({
          ...job,
          status: cancelled ? 'cancelled' : 'error',
          error: cancelled ? null : 'The job was interrupted: the server running it stopped; run it again',
        });
      } catch (err) {
        // Another copy settled it first.
        if (!(err instanceof VersionConflict)) throw err;
      }
    }
  }

  /** Starts claiming: on notifications of new or cancelled jobs, and every pollMs. */
  start(): void {
    this.catalog.onChange((c) => {
      if (c.table === '*' || (c.table === 'jobs' && c.status === 'waiting')) this.pump();
      if (c.table === 'jobs' && c.status === 'cancelling' && c.id) this.running.get(c.id)?.abort();
    });
    const tick = () => {
      this.timer = undefined;
      void this.housekeeping().finally(() => {
        if (!this.closing) {
          this.timer = setTimeout(tick, this.timings.pollMs);
          this.timer.unref();
        }
      });
    };
    this.timer = setTimeout(tick, this.timings.pollMs);
    this.timer.unref();
    this.pump();
  }

  /** Renews this copy's leases (aborting jobs cancelled elsewhere), fails lapsed ones, claims waiting ones. */
  private async housekeeping(): Promise<void> {
    try {
      const mine = [...this.running.keys(), ...this.pinned.keys(), ...this.reserved];
      for (const id of await this.catalog.renewLeases(this.owner, mine, this.timings.leaseMs)) this.running.get(id)?.abort();
      if (this.catalog.shared) await this.recover();
    } catch (err) {
      this.onError(err, 'job lease renewal failed');
    }
    this.pump();
  }

  /**
   * A new job. `task` is either the payload for the kind's registered handler (any copy may run
   * it) or a runner in this process (the job is pinned to this copy).
   */
  async create(ws: Workspace, kind: JobKind, data: Record<string, unknown>, task: JobRunner | { payload: unknown }): Promise<JobRecord> {
    const now = nowIso();
    const job: JobRecord = {
      id: newJobId(),
      version: 1,
      workspaceId: ws.id,
      kind,
      status: 'waiting',
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      data,
      error: null,
    };
    if (typeof task === 'function') {
      this.pinned.set(job.id, task);
      try {
        await this.catalog.insertJob(job, null, this.owner, this.timings.leaseMs);
      } catch (err) {
        this.pinned.delete(job.id);
        throw err;
      }
    } else {
      if (!this.handlers.has(kind)) throw new Error(`no handler for jobs of kind ${kind}`);
      // With a free slot the accepting copy starts the job itself at once (as a single process
      // does); busy or closing, any copy may claim it.
      const reserve = !this.closing && this.active + this.reserved.size < this.concurrency;
      if (reserve) this.reserved.add(job.id);
      try {
        await this.catalog.insertJob(job, task.payload, reserve ? this.owner : null, this.timings.leaseMs);
      } catch (err) {
        this.reserved.delete(job.id);
        throw err;
      }
    }
    this.pump();
    return job;
  }

  /** Claims and starts jobs while there is room; concurrent calls share one pass (and ask for another). */
  private pump(): void {
    if (this.closing) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = (async () => {
      do {
        this.pumpAgain = false;
        const free = this.concurrency - this.active;
        if (free <= 0) break;
        let claimed: ClaimedJob[];
        try {
          claimed = await this.catalog.claimJobs(this.owner, free, this.timings.leaseMs);
        } catch (err) {
          this.onError(err, 'claiming jobs failed');
          break;
        }
        for (const c of claimed) this.startJob(c);
        if (claimed.length === free) this.pumpAgain = true;
      } while (this.pumpAgain && !this.closing);
    })().finally(() => {
      this.pumping = undefined;
      this.settleIdle();
    });
  }

  private settleIdle(): void {
    if (this.active === 0 && !this.pumping) for (const w of this.idle.splice(0)) w();
  }

  private startJob(c: ClaimedJob): void {
    this.active++;
    for (const l of this.listeners) l(c.job);
    void this.execute(c).finally(() => {
      this.active--;
      this.pump();
      this.settleIdle();
    });
  }

  private async execute({ job, payload }: ClaimedJob): Promise<void> {
    const runner = this.pinned.get(job.id);
    this.pinned.delete(job.id);
    this.reserved.delete(job.id);
    const handler = this.handlers.get(job.kind);
    const run: JobRunner | undefined = runner ?? (handler && ((j, signal) => handler(j, payload, signal)));
    let state: JobRecord = job;
    if (!run) {
      await this.settle({ ...state, status: 'error', error: `This server can not run jobs of kind ${job.kind}` });
      return;
    }
    const ac = new AbortController();
    this.running.set(job.id, ac);
    try {
      // Jobs are internal work: their engine calls never queue behind (or are refused for) user queries.
      const result = await runAsInternalWork(() => run(state, ac.signal));
      // A runner that returns did its work: a cancel that came too late to stop it (a staged append
      // past its point of no return publishes every row) must not report the rows as not written.
      // Runners stop on a cancel by throwing (the engine's calls do).
      state = { ...state, data: { ...state.data, ...result }, status: 'done' };
    } catch (err) {
      const extra = err instanceof PipitError ? err.extra : {};
      state = ac.signal.aborted
        ? { ...state, status: 'cancelled' }
        : { ...state, status: 'error', error: (err as Error).message, data: { ...state.data, ...extra } };
    } finally {
      this.running.delete(job.id);
    }
    await this.settle(state);
  }

  /**
   * Records a job's outcome, retrying while the catalog refuses the write (a full disk, a lost
   * connection): a job never rejects out of its worker. A change made meanwhile (a cancel from
   * another copy) is read again and the outcome applied over it. While the server shuts down one
   * try is made; a job left `working` is failed once its lease lapses.
   */
  private async settle(outcome: JobRecord): Promise<void> {
    let state = outcome;
    for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        await this.save(state);
        return;
      } catch (err) {
        if (err instanceof VersionConflict) {
          const cur = await this.catalog.getJob(state.id).catch(() => null);
          if (!cur) return;
          state = { ...outcome, version: cur.version };
          continue;
        }
        this.onError(err, `the outcome of job ${state.id} could not be recorded yet`);
        if (this.closing) return;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** A version-checked update of the job (VersionConflict when it changed meanwhile). */
  private async save(job: JobRecord): Promise<JobRecord> {
    const saved = await this.catalog.updateJob({ ...job, updatedAt: nowIso() });
    for (const l of this.listeners) l(saved);
    return saved;
  }

  /**
   * Records a job that failed before it could be queued (a scheduled run whose pipe no longer
   * plans), so the failure shows in the Jobs API as well as in the log.
   */
  async recordFailure(ws: Workspace, kind: JobKind, data: Record<string, unknown>, error: string): Promise<JobRecord> {
    const now = nowIso();
    const job: JobRecord = {
      id: newJobId(),
      version: 1,
      workspaceId: ws.id,
      kind,
      status: 'error',
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      data,
      error,
    };
    await this.catalog.insertJob(job, null, null, 0);
    return job;
  }

  async get(ws: Workspace, id: string): Promise<JobRecord> {
    const job = await this.catalog.getJob(id);
    if (!job) throw notFound(`Job with id "${id}" not found`);
    if (job.workspaceId !== ws.id) throw new PipitError('forbidden', "The token you have provided doesn't have access to this resource");
    return job;
  }

  /** Cancels a waiting job at once, asks a working one to stop (whichever copy runs it). */
  async cancel(ws: Workspace, id: string): Promise<JobRecord> {
    for (;;) {
      const job = await this.get(ws, id);
      if (job.status === 'cancelling') throw badRequest('Job is already being cancelled');
      try {
        if (job.status === 'waiting') {
          const saved = await this.save({ ...job, status: 'cancelled' });
          this.pinned.delete(id);
          this.reserved.delete(id);
          return saved;
        }
        if (job.status === 'working' && job.data.is_cancellable_while_working) {
          const saved = await this.save({ ...job, status: 'cancelling' });
          this.running.get(id)?.abort();
          return saved;
        }
      } catch (err) {
        // Claimed or finished meanwhile: decide again on what it is now.
        if (err instanceof VersionConflict) continue;
        throw err;
      }
      throw badRequest('Job is not in cancellable status');
    }
  }

  list(ws: Workspace, filter: Parameters<Catalog['listJobs']>[1]): Promise<JobRecord[]> {
    return this.catalog.listJobs(ws.id, filter);
  }

  /** Resolves when this copy has no job running and none waiting that it could claim. */
  async drain(): Promise<void> {
    for (;;) {
      this.pump();
      await this.pumping;
      // A whole pass found nothing more to claim and nothing runs.
      if (this.active === 0) return;
      await new Promise<void>((r) => this.idle.push(r));
    }
  }

  /** Stops claiming and waits for running jobs at shutdown (an outcome the catalog refuses is tried once). */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // Jobs pinned here that did not start can never run: they fail now rather than at the next start.
    for (const id of [...this.pinned.keys()]) {
      this.pinned.delete(id);
      const job = await this.catalog.getJob(id).catch(() => null);
      if (job?.status === 'waiting')
        await this.save({ ...job, status: 'error', error: 'The server stopped before the job started; run it again' }).catch(() => undefined);
    }
    this.closing = true;
    await this.drain();
  }
}
