/**
 * The scheduler: one for every scheduled node type (copies, sinks). A pass at the start of every
 * minute of its clock (cron's resolution; or on demand, in tests with a controllable clock)
 * enqueues the job of each running schedule whose cron tick is due. Each tick is claimed in the
 * catalog with a compare-and-set on the pipe's last tick before its job is enqueued, so N copies
 * of the server run every tick once, and restarts neither skip nor repeat a run. A run that fails
 * to start is logged and recorded as a failed job, never swallowed.
 */
import type { Catalog, JobKind, JobRecord, NodeType, PipeRecord, Workspace } from '../catalog/catalog.js';
import type { Auth } from './access.js';
import type { PipeService } from './pipe-service.js';
import { scheduleOfNode } from './schedules.js';
import { runAsInternalWork } from '../engine/lanes.js';
import { dueTick, parseCron } from '../jobs/cron.js';
import type { JobService } from '../jobs/job-service.js';

const MINUTE_MS = 60_000;
/** How long after the minute the pass runs: the tick is then due even with a slightly early timer. */
const WAKE_MARGIN_MS = 50;

/** A kind of scheduled node and how one of its ticks runs. */
export interface ScheduledKind {
  nodeType: NodeType;
  jobKind: JobKind;
  /** Enqueues the job of the tick `due` (throws when it can not start). */
  runScheduled(auth: Auth, pipe: PipeRecord, due: Date): Promise<JobRecord>;
}

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The minute the timer was last armed for. */
  private lastTarget = 0;
  private running: Promise<JobRecord[]> | undefined;

  constructor(
    private readonly catalog: Catalog,
    private readonly pipes: PipeService,
    private readonly jobs: JobService,
    private readonly kinds: ScheduledKind[],
    private readonly workspaces: () => Promise<Workspace[]>,
    private readonly authFor: (ws: Workspace) => Promise<Auth>,
    private readonly onError: (err: unknown, msg: string) => void,
    /** The clock the minutes are read from (the services' replaceable clock). */
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Wakes at the next minute of the clock (plus a few milliseconds, so the tick is due), runs a
   * pass, and sleeps until the following one. Calling it again re-arms from the clock's current
   * time (tests that replace the clock do).
   */
  start(): void {
    if (this.timer) clearTimeout(this.timer);
    this.stopped = false;
    const now = this.now().getTime();
    const target = Math.floor(now / MINUTE_MS) + 1;
    let delay = target * MINUTE_MS - now + WAKE_MARGIN_MS;
    // The same minute again: the clock did not move (a frozen test clock); no busy loop.
    if (target === this.lastTarget) delay = Math.max(delay, 1000);
    this.lastTarget = target;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick()
        .catch((err) => this.onError(err, 'scheduler pass failed'))
        .finally(() => {
          if (!this.stopped && !this.timer) this.start();
        });
    }, delay);
    this.timer.unref();
  }

  /** One pass; concurrent calls share it. Returns the jobs this copy enqueued. */
  tick(): Promise<JobRecord[]> {
    // A pass is internal work: checking a scheduled pipe's SQL never waits for (or is refused by) user queries.
    this.running ??= runAsInternalWork(async () => {
      try {
        const out: JobRecord[] = [];
        for (const ws of await this.workspaces()) out.push(...(await this.tickWorkspace(ws)));
        return out;
      } finally {
        this.running = undefined;
      }
    });
    return this.running;
  }

  private async tickWorkspace(ws: Workspace): Promise<JobRecord[]> {
    const now = this.now();
    const out: JobRecord[] = [];
    const claimed = await this.catalog.lastTicks(ws.id);
    for (const pipe of await this.pipes.list(ws)) {
      for (const kind of this.kinds) {
        const node = pipe.nodes.find((n) => n.nodeType === kind.nodeType);
        if (!node) continue;
        const sched = scheduleOfNode(node);
        if (!sched.cron || sched.schedule_status !== 'running') continue;
        const origin = sched.last_tick ?? pipe.updatedAt;
        const last = claimed.get(pipe.id);
        const since = new Date(last?.origin === origin ? last.tick : origin);
        const due = dueTick(parseCron(sched.cron), since, now);
        if (!due) continue;
        // Another copy (or an earlier pass) took this tick: nothing to do.
        if (!(await this.catalog.claimTick(ws.id, pipe.id, origin, due.toISOString()))) continue;
        try {
          out.push(await kind.runScheduled(await this.authFor(ws), pipe, due));
        } catch (err) {
          // A broken pipe does not stop the others; its failure shows in the log and the Jobs API, and its next tick tries again.
          const message = (err as Error).message;
          this.onError(err, `scheduled ${kind.jobKind} of pipe ${pipe.name} (workspace ${ws.name}) could not start`);
          await this.jobs
            .recordFailure(ws, kind.jobKind, { pipe_id: pipe.id, pipe_name: pipe.name, scheduled_tick: due.toISOString() }, message)
            .catch((e) => this.onError(e, 'recording a failed scheduled run failed'));
        }
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}
