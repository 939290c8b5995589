/**
 * Jobs: a queue kept in the catalog and run by workers in every copy of the server. Statuses go
 * waiting → working → done | error (cancelling → cancelled). A job row holds its kind and the
 * payload its handler needs (handlers are registered per kind; the payload holds ids and settings,
 * never a secret: those are read again from the catalog when the job runs), so any copy may claim
 * it: claims use FOR UPDATE SKIP LOCKED and a lease the claiming copy renews while the job runs.
 * The copy that accepts a job with a free slot reserves it for itself under the same lease and
 * starts it at once; closing, it gives its reservations back to the queue.
 *
 * A job whose lease lapses (its copy died or stalled) is failed by another copy, never left stuck,
 * never run twice: the lapsed lease is lost for good (not renewed), the stalled copy aborts its run
 * once it notices, its outcome is recorded only while it still holds the claim, and its change's
 * points of no return check the claim (Journal.update). Whoever ends a job, whatever way, runs its
 * kind's `ended` step (a populate's stopped merges restart). Cancelling from any copy reaches the
 * copy running the job (catalog notification, or its next lease renewal), which aborts the engine
 * query. Listing shows the last 48 h, newest first.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { type Catalog, type ClaimedJob, type JobKind, type JobRecord, VersionConflict, type Workspace } from '../catalog/catalog.js';
import { badRequest, notFound, PipitError } from '../basics/errors.js';
import { newJobId } from '../basics/ids.js';
import { nowIso } from '../basics/time.js';
import { runAsInternalWork } from '../engine/lanes.js';

/** The work of a job of one kind, from the payload stored with it: resolves with fields added to the job JSON, throws to fail it. */
export type JobRun<P> = (job: JobRecord, payload: P, signal: AbortSignal) => Promise<Record<string, unknown>>;
/**
 * What must follow a job of one kind once its work ended, however it ended and on whichever copy
 * ends it (run to its outcome, failed after its copy died, cancelled while waiting): undoes what
 * creating it left held. It runs before the outcome is recorded (except a cancel while waiting),
 * so a job seen ended has had its end step. Idempotent: it may run more than once.
 */
export type JobEnded<P> = (job: JobRecord, payload: P) => Promise<void>;

/** Enqueues a job of one kind: its JSON fields and the payload its handler runs from. */
export type Enqueue<P> = (ws: Workspace, data: Record<string, unknown>, payload: P) => Promise<JobRecord>;

interface Handler {
  run: JobRun<unknown>;
  ended?: JobEnded<unknown>;
}

/** The abort reason of a job whose lease this copy lost. */
const LEASE_LOST = 'lease lost';
const INTERRUPTED = 'The job was interrupted: the server running it stopped; run it again';

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
  private readonly handlers = new Map<JobKind, Handler>();
  /** Jobs this copy accepted with a free slot, reserved for it until it claims them. */
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
  /** Listeners for jobs this copy created, called while the creating request still runs (its request id). */
  readonly created = new Set<(job: JobRecord) => void>();
  /** Stops the engine statements of a job (createApp: Engine.kill), for jobs failed after their copy died. */
  stopQueries: (jobId: string) => Promise<void> = async () => undefined;

  constructor(
    private readonly catalog: Catalog,
    private readonly concurrency = 2,
    private readonly timings: JobTimings = DEFAULT_JOB_TIMINGS,
    /** Where a failure of the queue's own bookkeeping is reported (never swallowed). */
    private readonly onError: (err: unknown, msg: string) => void = () => undefined,
  ) {}

  /**
   * The work of jobs of `kind`, and what follows each once it ended (see JobEnded). Returns the
   * kind's enqueue, whose payload type is the one the work reads.
   */
  register<P>(kind: JobKind, run: JobRun<P>, ended?: JobEnded<P>): Enqueue<P> {
    // The payload was made by the same kind's enqueue (`payload: P`).
    this.handlers.set(kind, {
      run: (job, payload, signal) => run(job, payload as P, signal),
      ended: ended && ((job, payload) => ended(job, payload as P)),
    });
    return (ws, data, payload) => this.create(ws, kind, data, payload);
  }

  /** The work registered for `kind` (tests wrap it to hold jobs). */
  registered(kind: JobKind): { run: JobRun<unknown>; ended?: JobEnded<unknown> } | undefined {
    return this.handlers.get(kind);
  }

  /**
   * Fails the jobs whose copy is gone: on a single-process catalog every running job at start
   * (nothing else runs them; the waiting ones stay queued and run again), on a shared one those
   * whose lease lapsed. A job whose change is journaled is left to its intent (src/domain/recovery.ts).
   */
  async recover(): Promise<void> {
    const all = !this.catalog.shared;
    // A restarted single process holds no reservation of its previous life.
    if (all) await this.catalog.releaseJobs(null);
    const abandoned = (await this.catalog.abandonedJobs(all)).filter((c) => !this.running.has(c.job.id));
    if (!abandoned.length) return;
    // A job whose change is journaled is settled with its intent (src/domain/recovery.ts), which
    // knows whether the rows were written: failing it first would invite a retry that writes them twice.
    const journaled = new Set((await this.catalog.listIntents()).map((i) => i.data.job));
    for (const { job, payload } of abandoned) {
      if (journaled.has(job.id)) continue;
      const cancelled = job.status === 'cancelling';
      // A stalled copy's statement may still run in a shared engine. The end step runs before the
      // outcome is recorded: a copy dying in between leaves the job to the next one, never a
      // recorded outcome whose end step (a populate's merges restart) nobody runs.
      await this.stopQueries(job.id).catch(() => undefined);
      await this.ended(job, payload);
      try {
        await this.save({ ...job, status: cancelled ? 'cancelled' : 'error', error: cancelled ? null : INTERRUPTED });
      } catch (err) {
        // Another copy settled it first (and ended it too: the end step is idempotent).
        if (err instanceof VersionConflict) continue;
        throw err;
      }
    }
  }

  /**
   * The outcome of a job whose journaled change was settled by recovery (src/domain/recovery.ts):
   * `forward` finished it (done), `back` undid it (nothing was written). A job finished meanwhile
   * is left as it is.
   */
  async settleRecovered(id: string, outcome: 'forward' | 'back'): Promise<void> {
    // Another copy may fail the job (its lease lapsed too) meanwhile: read it again and say what happened.
    let endedOnce = false;
    for (;;) {
      const job = await this.catalog.getJob(id);
      if (!job || job.status === 'done' || job.status === 'cancelled') return;
      // The end step first, as in recover().
      if (!endedOnce) await this.ended(job, await this.catalog.jobPayload(id));
      endedOnce = true;
      try {
        if (outcome === 'forward')
          await this.save({ ...job, status: 'done', error: null, data: { ...job.data, recovered: 'completed after an interruption' } });
        else await this.save({ ...job, status: 'error', error: 'The job was interrupted (its server stopped) before it wrote anything; run it again' });
      } catch (err) {
        if (err instanceof VersionConflict) continue;
        throw err;
      }
      return;
    }
  }

  /** Runs the kind's `ended` step; a failure is reported, never thrown (the job's outcome stands). */
  private async ended(job: JobRecord, payload: unknown): Promise<void> {
    const ended = this.handlers.get(job.kind)?.ended;
    if (!ended) return;
    try {
      await ended(job, payload);
    } catch (err) {
      this.onError(err, `the end step of job ${job.id} failed`);
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

  /**
   * Renews this copy's leases: a job cancelled elsewhere is aborted, one whose lease lapsed (this
   * copy stalled: another copy fails it) is aborted and its reservation dropped. Then fails other
   * copies' lapsed jobs and claims waiting ones.
   */
  private async housekeeping(): Promise<void> {
    try {
      const mine = [...this.running.keys(), ...this.reserved];
      const held = await this.catalog.renewLeases(this.owner, mine, this.timings.leaseMs);
      for (const id of mine) {
        const status = held.get(id);
        if (status === undefined) {
          this.reserved.delete(id);
          this.running.get(id)?.abort(LEASE_LOST);
        } else if (status === 'cancelling') this.running.get(id)?.abort();
      }
      if (this.catalog.shared) await this.recover();
    } catch (err) {
      this.onError(err, 'job lease renewal failed');
    }
    this.pump();
  }

  /** A new job; `payload` is what the kind's registered handler runs it from, on any copy (services use the Enqueue `register` returned). */
  async create<P>(ws: Workspace, kind: JobKind, data: Record<string, unknown>, payload: P): Promise<JobRecord> {
    if (!this.handlers.has(kind)) throw new Error(`no handler for jobs of kind ${kind}`);
    const job = newJob(ws, kind, data, 'waiting', null);
    // With a free slot the accepting copy starts the job itself at once (as a single process
    // does); busy or closing, any copy may claim it.
    const reserve = !this.closing && this.active + this.reserved.size < this.concurrency;
    if (reserve) this.reserved.add(job.id);
    try {
      await this.catalog.insertJob(job, payload, reserve ? this.owner : null, this.timings.leaseMs);
    } catch (err) {
      this.reserved.delete(job.id);
      throw err;
    }
    for (const l of this.created) l(job);
    // Reserved as close() began: handed back too.
    if (reserve && this.closing) await this.handBack();
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
    this.reserved.delete(job.id);
    const handler = this.handlers.get(job.kind);
    let state: JobRecord = job;
    if (!handler) {
      await this.settle({ ...state, status: 'error', error: `This server can not run jobs of kind ${job.kind}` });
      return;
    }
    const ac = new AbortController();
    this.running.set(job.id, ac);
    try {
      // Jobs are internal work: their engine calls never queue behind (or are refused for) user queries.
      const result = await runAsInternalWork(() => handler.run(state, payload, ac.signal));
      // A runner that returns did its work: a cancel that came too late to stop it (a staged append
      // past its point of no return publishes every row) must not report the rows as not written.
      // Runners stop on a cancel by throwing (the engine's calls do).
      state = { ...state, data: { ...state.data, ...result }, status: 'done' };
    } catch (err) {
      const extra = err instanceof PipitError ? err.extra : {};
      const lost = ac.signal.reason === LEASE_LOST;
      state =
        ac.signal.aborted && !lost
          ? { ...state, status: 'cancelled' }
          : { ...state, status: 'error', error: lost ? INTERRUPTED : (err as Error).message, data: { ...state.data, ...extra } };
    } finally {
      this.running.delete(job.id);
    }
    // The end step before the outcome is recorded (see recover()): whoever sees the job ended sees
    // its end step done, and a copy dying in between leaves both to the next copy.
    await this.ended(state, payload);
    await this.settle(state);
  }

  /**
   * Records a job's outcome while this copy still holds its claim (a copy that stalled past its
   * lease never overwrites the failure another copy recorded), retrying while the catalog refuses
   * the write (a full disk, a lost connection): a job never rejects out of its worker. While the
   * server shuts down one try is made; a job left `working` is failed once its lease lapses.
   */
  private async settle(outcome: JobRecord): Promise<void> {
    for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        const saved = await this.catalog.settleJob({ ...outcome, updatedAt: nowIso() }, this.owner);
        // Refused: another copy failed it or took it over; its record stands.
        if (saved) for (const l of this.listeners) l(saved);
        return;
      } catch (err) {
        this.onError(err, `the outcome of job ${outcome.id} could not be recorded yet`);
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
    const job = newJob(ws, kind, data, 'error', error);
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
          this.reserved.delete(id);
          await this.ended(saved, await this.catalog.jobPayload(id));
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

  /** The workspace's jobs of `kind` not finished yet (waiting, working, cancelling), with their payloads. */
  async unfinished(ws: Workspace, kind: JobKind): Promise<ClaimedJob[]> {
    const out: ClaimedJob[] = [];
    for (const status of ['waiting', 'working', 'cancelling'])
      for (const job of await this.list(ws, { kind, status, limit: 1000 })) out.push({ job, payload: await this.catalog.jobPayload(job.id) });
    return out;
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

  /**
   * Stops claiming at shutdown: the jobs this copy reserved but did not start go back to the queue
   * (another copy claims them at once), and the running ones are waited for (an outcome the
   * catalog refuses is tried once).
   */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.closing = true;
    await this.pumping;
    await this.handBack();
    await this.drain();
  }

  /** Gives this copy's reservations back to the queue (closing: it starts no more jobs). */
  private async handBack(): Promise<void> {
    try {
      await this.catalog.releaseJobs(this.owner);
      this.reserved.clear();
    } catch (err) {
      // Their reservation lapses with the lease instead.
      this.onError(err, 'the jobs reserved by this server could not be handed back');
    }
  }
}

function newJob(ws: Workspace, kind: JobKind, data: Record<string, unknown>, status: JobRecord['status'], error: string | null): JobRecord {
  const now = nowIso();
  return { id: newJobId(), version: 1, workspaceId: ws.id, kind, status, createdAt: now, updatedAt: now, startedAt: null, data, error };
}
