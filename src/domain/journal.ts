/**
 * The intent journal: every change that takes more than one step across the engine and the
 * catalog (alter, replace, staged appends of copies and populates, materialize, unlink) writes an
 * intent to the catalog before its first engine step, records its points of no return in it, and
 * deletes it after its last step. A `kill -9` in between leaves the intent behind, and the next
 * start (src/domain/recovery.ts) rolls it forward or back, so catalog and engine agree again.
 *
 * Checkpoints name the moments between steps. PIPIT_TEST_PAUSE_AT (test only) stops the operation
 * at one of them forever, after printing `PIPIT_PAUSED <name>`, so a fault test can kill there.
 */
import type { Catalog, IntentRecord, Workspace } from '../catalog/catalog.js';
import { newJobId } from '../basics/ids.js';
import { nowIso } from '../basics/time.js';

export type { IntentRecord };

export class Journal {
  /** Test hook: the checkpoint at which to stop (Config.testPauseAt). */
  pauseAt: string | null = null;

  constructor(private readonly catalog: Catalog) {}

  /** Records an intent before the first step of a change. */
  async begin(ws: Workspace, kind: string, data: Record<string, unknown>): Promise<IntentRecord> {
    const now = nowIso();
    const intent: IntentRecord = { id: newJobId(), workspaceId: ws.id, kind, createdAt: now, updatedAt: now, data };
    await this.catalog.upsertIntent(intent);
    return intent;
  }

  /** Records progress (a phase reached, an object created); returns the updated intent. */
  async update(intent: IntentRecord, patch: Record<string, unknown>): Promise<IntentRecord> {
    const next: IntentRecord = { ...intent, updatedAt: nowIso(), data: { ...intent.data, ...patch } };
    await this.catalog.upsertIntent(next);
    Object.assign(intent, next);
    return intent;
  }

  /** The change is whole: forget it. */
  async end(intent: IntentRecord): Promise<void> {
    await this.catalog.deleteIntent(intent.id);
  }

  list(): Promise<IntentRecord[]> {
    return this.catalog.listIntents();
  }

  /** A named point between two steps (a no-op unless a fault test asked to stop here). */
  async checkpoint(name: string): Promise<void> {
    if (this.pauseAt !== name) return;
    process.stdout.write(`PIPIT_PAUSED ${name}\n`);
    await new Promise<never>(() => undefined);
  }
}
