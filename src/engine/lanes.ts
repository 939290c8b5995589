/**
 * Engine lanes: how many chDB calls run at once, and for whom.
 *
 * Every asynchronous chDB call (queryAsync, insert, each fetch of a stream) holds one thread of
 * libuv's thread pool for as long as it runs. Node uses the same pool for file writes (the Events
 * API's write-ahead log), DNS lookups and gzip, and the pool's size (UV_THREADPOOL_SIZE, 4 unless
 * set before the process starts) is fixed once it is first used. With four slow queries running,
 * a WAL write waited for one of them to end (9.3 s for a 202). So the engine never runs more calls
 * than the pool has threads minus SPARE_THREADS, and splits those calls into two lanes that never
 * wait for each other:
 * - the user lane: user SELECTs (Query API, endpoints, node checks), at most `user` at once;
 * - the internal lane: inserts, DDL, materialized-view and job statements, at most `internal` at
 *   once, of which one is kept for inserts (so jobs cannot hold back ingestion).
 * Statements run by jobs and scheduler passes (runAsInternalWork) use the internal lane, also when
 * they describe user SQL on a read-only Session. KILL QUERY takes no slot: it must never wait
 * behind the queries it stops.
 */
import { ScopedContext } from '../basics/scoped-context.js';
import { EngineError } from './engine.js';

/** Threads of libuv's pool never given to the engine: file writes, DNS, gzip. */
export const SPARE_THREADS = 2;

export interface LanePlan {
  /** User SELECTs at once. */
  user: number;
  /** Internal statements at once. */
  internal: number;
  /** libuv's thread pool size the plan was made for. */
  threadpool: number;
  /** True when the pool is too small for the configured sessions and the lanes were narrowed. */
  narrowed: boolean;
}

/**
 * Lanes for `sessions` (PIPIT_ENGINE_SESSIONS) user and internal calls each, within a thread pool
 * of `threadpool` threads: both lanes get `sessions` when the pool has room for them plus the
 * spare threads, else the room there is is split between them (at least one each).
 */
export function planLanes(threadpool: number, sessions: number): LanePlan {
  if (threadpool - SPARE_THREADS >= 2 * sessions) return { user: sessions, internal: sessions, threadpool, narrowed: false };
  const room = Math.max(2, threadpool - SPARE_THREADS);
  const internal = Math.max(1, Math.floor(room / 2));
  return { user: Math.max(1, room - internal), internal, threadpool, narrowed: true };
}

/** The thread pool size that fits `sessions` in both lanes. */
export const threadpoolFor = (sessions: number) => 2 * sessions + SPARE_THREADS;

interface Waiter {
  kind: SlotKind;
  grant: () => void;
}

export type SlotKind = 'select' | 'statement' | 'insert';

/** A counting semaphore with FIFO waiters, where some kinds may use fewer slots than others. */
class Slots {
  private used = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly size: number,
    /** Slots a kind may hold at most (default: all). */
    private readonly capOf: (kind: SlotKind) => number = () => size,
  ) {}

  get busy(): number {
    return this.used;
  }

  /** Takers waiting for a slot. */
  get queued(): number {
    return this.waiters.length;
  }

  private fits(kind: SlotKind): boolean {
    return this.used < Math.min(this.size, this.capOf(kind));
  }

  /** Waits for a slot; resolves with its release (idempotent). */
  async take(kind: SlotKind, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw cancelled();
    if (!this.waiters.some((w) => this.fits(w.kind)) && this.fits(kind)) {
      this.used++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        kind,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(cancelled());
        this.pump();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
      this.pump();
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.used--;
      this.pump();
    };
  }

  /** Grants waiting takers in order, skipping those whose kind is at its cap. */
  private pump(): void {
    for (let i = 0; i < this.waiters.length && this.used < this.size; ) {
      const w = this.waiters[i];
      if (!this.fits(w.kind)) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      this.used++;
      w.grant();
    }
  }
}

const cancelled = () => new EngineError(394, 'QUERY_WAS_CANCELLED', 'Query was cancelled');

/**
 * Internal-lane slots a call of `kind` may hold at once: statements other than inserts leave one
 * free for inserts (so jobs cannot hold back ingestion). Also sizes what each kind holds while it
 * waits for a slot (the write gate's lock connections with a shared catalog).
 */
export function internalSlotsFor(internal: number, kind: SlotKind): number {
  return kind === 'insert' || internal < 2 ? internal : internal - 1;
}

/** The two lanes of one engine. */
export class EngineLanes {
  readonly user: Slots;
  readonly internal: Slots;

  constructor(readonly plan: Pick<LanePlan, 'user' | 'internal'>) {
    this.user = new Slots(plan.user);
    this.internal = new Slots(plan.internal, (kind) => internalSlotsFor(plan.internal, kind));
  }

  /** A slot for a call of `kind`: user SELECTs on the user lane unless they run as internal work. */
  take(kind: SlotKind, signal?: AbortSignal): Promise<() => void> {
    if (kind === 'select' && !isInternalWork()) return this.user.take(kind, signal);
    return this.internal.take(kind === 'select' ? 'statement' : kind, signal);
  }
}

const internalWork = new ScopedContext<true>();

/**
 * Runs `fn` (a job, a scheduler pass) as internal work: its engine calls use the internal lane and
 * its user-SQL checks skip the per-token admission queue, so server work never waits behind (or
 * is refused because of) users' queries.
 */
export function runAsInternalWork<T>(fn: () => Promise<T>): Promise<T> {
  return internalWork.run(true, fn);
}

export function isInternalWork(): boolean {
  return internalWork.get() === true;
}
