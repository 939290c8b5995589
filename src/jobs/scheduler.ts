/**
 * The scheduler: one pass a minute (or on demand, in tests with a controllable clock) enqueues
 * the copy jobs whose cron tick is due. Which tick ran last is kept in the catalog with the
 * pipe, so restarts neither skip nor repeat a run.
 */
import type { Workspace } from '../catalog/catalog.js';
import type { Auth } from '../domain/access.js';
import type { CopyService } from '../domain/copy-service.js';
import type { JobRecord } from '../catalog/catalog.js';
import { dueTick, parseCron } from './cron.js';

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<JobRecord[]> | undefined;

  constructor(
    private readonly copies: CopyService,
    private readonly workspaces: () => Promise<Workspace[]>,
    private readonly authFor: (ws: Workspace) => Promise<Auth>,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(intervalMs = 20_000): void {
    this.timer = setInterval(() => void this.tick().catch(this.onError), intervalMs);
    this.timer.unref();
  }

  /** One pass; concurrent calls share it. */
  tick(): Promise<JobRecord[]> {
    this.running ??= (async () => {
      try {
        return await this.copies.tick(await this.workspaces(), this.authFor, (cron, since, now) => dueTick(parseCron(cron), since, now));
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }
}
