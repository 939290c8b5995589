/**
 * The intent journal: every change that takes more than one step across the engine and the
 * catalog (alter, replace, staged appends of copies and populates, materialize, unlink) writes an
 * intent to the catalog before its first engine step, records its points of no return in it, and
 * deletes it after its last step. A `kill -9` in between leaves the intent behind, and the next
 * start (src/domain/recovery.ts) rolls it forward or back, so catalog and engine agree again.
 *
 * With several copies on one catalog an intent is held like a job: the copy that began it renews
 * its lease while the change runs (`renew`), and another copy settles it only once that lease has
 * lapsed (`claimAbandoned`), so a starting copy never undoes a change a live copy is making.
 *
 * Checkpoints name the moments between steps. PIPIT_TEST_PAUSE_AT (test only) stops the operation
 * at one of them forever, after printing `PIPIT_PAUSED <name>`, so a fault test can kill there (or,
 * with `+sigstop`, stops the process there until it is continued: a copy that stalls).
 */
import crypto from 'node:crypto';
import os from 'node:os';
import type { Catalog, Intent, IntentDataByKind, IntentKind, IntentRecord, Workspace } from '../catalog/catalog.js';
import { newJobId } from '../basics/ids.js';
import { nowIso } from '../basics/time.js';

export type { Intent, IntentRecord };

/** This copy no longer holds the intent (or its job): another copy settles the change. */
export class LostClaim extends Error {
  constructor() {
    super('This server lost its claim on the job (it stalled past its lease): another server settled it, and nothing more is written');
  }
}

export class Journal {
  /** Test hook: the checkpoint at which to stop (Config.testPauseAt). */
  pauseAt: string | null = null;
  /** This copy's name as the holder of its intents (createApp gives it the job service's). */
  owner = `${os.hostname()}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`;
  /** How long an intent's claim holds without renewal (PIPIT_JOB_LEASE, as jobs). */
  leaseMs = 30_000;
  /** The intents this copy holds: begun here and not ended, or taken over to recover. */
  private readonly held = new Set<string>();

  constructor(private readonly catalog: Catalog) {}

  /** Records an intent before the first step of a change. */
  async begin<K extends IntentKind>(ws: Workspace, kind: K, data: IntentDataByKind[K]): Promise<Intent<K>> {
    const now = nowIso();
    const intent: Intent<K> = { id: newJobId(), workspaceId: ws.id, kind, createdAt: now, updatedAt: now, data };
    this.held.add(intent.id);
    try {
      await this.catalog.insertIntent(intent, this.owner, this.leaseMs);
    } catch (err) {
      this.held.delete(intent.id);
      throw err;
    }
    return intent;
  }

  /**
   * Records progress (a phase reached, an object created); returns the updated intent. Refused
   * (LostClaim) once another copy took the intent over (this copy stalled past its lease) or ended
   * it; with `job`, also once this copy no longer holds that job's lease: a job's points of no
   * return are passed only by the copy that still owns the job, so a copy that paused (SIGSTOP, a
   * long GC) never writes after another copy settled its job.
   */
  async update<K extends IntentKind>(intent: Intent<K>, patch: Partial<IntentDataByKind[K]>, job?: string): Promise<Intent<K>> {
    const next: Intent<K> = { ...intent, updatedAt: nowIso(), data: { ...intent.data, ...patch } };
    if (!(await this.catalog.updateIntent(next, this.owner, this.leaseMs, job))) throw new LostClaim();
    Object.assign(intent, next);
    return intent;
  }

  /** The change is whole (or undone): forget it, unless another copy took it over meanwhile. */
  async end(intent: Intent): Promise<void> {
    await this.catalog.deleteIntent(intent.id, this.owner);
    this.held.delete(intent.id);
  }

  /** Every open intent, held by any copy (checks and tests). */
  list(): Promise<IntentRecord[]> {
    return this.catalog.listIntents();
  }

  /** Extends this copy's claim on the intents it holds (called more often than the lease lapses). */
  async renew(): Promise<void> {
    await this.catalog.renewIntents(this.owner, [...this.held], this.leaseMs);
  }

  /**
   * Takes over the intents whose copy is gone, oldest first: with `all` every open one (a single
   * process at start: nothing else runs them), else those whose lease lapsed.
   */
  async claimAbandoned(all: boolean): Promise<IntentRecord[]> {
    const claimed = await this.catalog.claimAbandonedIntents(this.owner, this.leaseMs, all);
    for (const i of claimed) this.held.add(i.id);
    return claimed;
  }

  /** Stops holding an intent whose recovery failed: another copy (or this one) tries again once the lease lapses. */
  release(intent: Intent): void {
    this.held.delete(intent.id);
  }

  /**
   * A named point between two steps (a no-op unless a fault test asked to stop here: forever, or
   * with `+sigstop` the whole process until it is continued).
   */
  async checkpoint(name: string): Promise<void> {
    if (this.pauseAt !== name && this.pauseAt !== `${name}+sigstop`) return;
    await new Promise((written) => process.stdout.write(`PIPIT_PAUSED ${name}\n`, written));
    if (this.pauseAt === name) await new Promise<never>(() => undefined);
    process.kill(process.pid, 'SIGSTOP');
  }
}
