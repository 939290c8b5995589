/**
 * The scheduler: one pass a minute (or on demand, in tests with a controllable clock) enqueues
 * the copy and sink jobs whose cron tick is due. Which tick ran last is kept in the catalog with the
 * pipe, so restarts neither skip nor repeat a run.
 */
import type { Workspace } from '../catalog/catalog.js';
import type { Auth } from '../domain/access.js';
import type { CopyService } from '../domain/copy-service.js';
import type { JobRecord } from '../catalog/catalog.js';
import { runAsInternalWork } from '../engine/lanes.js';
import { dueTick, parseCron } from './cron.js';

/** A service with cron schedules (copies, sinks). */
export interface Scheduled {
  tick(workspaces: Workspace[], authFor: (ws: Workspace) => Promise<Auth>, dueTickFn: (cron: string, since: Date, now: Date) => Date | null): Promise<JobRecord[]>;
}

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<JobRecord[]> | undefined;

  constructor(
    private readonly copies: CopyService,
    private readonly workspaces: () => Promise<Workspace[]>,
    private readonly authFor: (ws: Workspace) => Promise<Auth>,
    private readonly onError: (err: unknown) => void,
    /** Other scheduled services (sinks), ticked after the copies. */
    private readonly others: Scheduled[] = [],
  ) {}

  start(intervalMs = 20_000): void {
    this.timer = setInterval(() => void this.tick().catch(this.onError), intervalMs);
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
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }
}
