/**
 * The scheduler: a pass at the start of every minute of its clock (cron's resolution; or on
 * demand, in tests with a controllable clock) enqueues the copy and sink jobs whose cron tick is
 * due, so a job starts within moments of its minute. Which tick ran last is kept in the catalog
 * with the pipe, so restarts neither skip nor repeat a run.
 */
import type { Workspace } from '../catalog/catalog.js';
import type { JobRecord } from '../catalog/catalog.js';
import { runAsInternalWork } from '../engine/lanes.js';
import { dueTick, parseCron } from './cron.js';

const MINUTE_MS = 60_000;
/** How long after the minute the pass runs: the tick is then due even with a slightly early timer. */
const WAKE_MARGIN_MS = 50;

/** A service with cron schedules (copies, sinks); `A` is the authority its jobs run with (the domain's Auth). */
export interface Scheduled<A> {
  tick(workspaces: Workspace[], authFor: (ws: Workspace) => Promise<A>, dueTickFn: (cron: string, since: Date, now: Date) => Date | null): Promise<JobRecord[]>;
}

export class Scheduler<A> {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The minute the timer was last armed for. */
  private lastTarget = 0;
  private running: Promise<JobRecord[]> | undefined;

  constructor(
    private readonly copies: Scheduled<A>,
    private readonly workspaces: () => Promise<Workspace[]>,
    private readonly authFor: (ws: Workspace) => Promise<A>,
    private readonly onError: (err: unknown) => void,
    /** Other scheduled services (sinks), ticked after the copies. */
    private readonly others: Scheduled<A>[] = [],
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
        .catch(this.onError)
        .finally(() => {
          if (!this.stopped && !this.timer) this.start();
        });
    }, delay);
    this.timer.unref();
  }

  /** One pass; concurrent calls share it. */
  tick(): Promise<JobRecord[]> {
    // A pass is internal work: checking a scheduled pipe's SQL never waits for (or is refused by) user queries.
    this.running ??= runAsInternalWork(async () => {
      try {
        const workspaces = await this.workspaces();
        const due = (cron: string, since: Date, now: Date) => dueTick(parseCron(cron), since, now);
        const jobs = await this.copies.tick(workspaces, this.authFor, due);
        for (const o of this.others) jobs.push(...(await o.tick(workspaces, this.authFor, due).catch((err) => (this.onError(err), []))));
        return jobs;
      } finally {
        this.running = undefined;
      }
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}
