/**
 * Admission control for user queries (Query API, endpoints, node checks, explains): who may take
 * one of the engine's user-query slots now, who waits, and who is refused.
 *
 * A query of token T in workspace W starts when a slot is free and
 * - T runs fewer than `perToken` queries and W fewer than `perWorkspace`, and the general slots
 *   (all but `reserved`) are not all taken; or
 * - T runs nothing and W is under its limit: the reserved slots are only for such a token, so one
 *   token's heavy queries never delay another token's cheap query behind them.
 * Otherwise it waits in one queue, in arrival order, where every freed slot goes to the first
 * waiter allowed to take it (a token at its limit never holds back the others). A token with
 * `queuePerToken` queries waiting, or a query that waited `queueTimeoutMs`, gets a 429 with
 * Retry-After. A client that goes away leaves the queue at once.
 *
 * Internal work (jobs, scheduler passes) does not come here: it has its own engine lane.
 * Counters live in this process; with several copies behind a balancer each admits alone.
 */
import { PipitError } from '../basics/errors.js';
import { EngineError } from '../engine/engine.js';

export interface AdmissionLimits {
  /** User-query slots of the engine (its user lane). */
  slots: number;
  /** Of those, slots only a token with nothing running may take. */
  reserved: number;
  perToken: number;
  perWorkspace: number;
  /** Queries one token may have waiting; one more is refused at once. */
  queuePerToken: number;
  /** How long a query may wait for a slot. */
  queueTimeoutMs: number;
  /** Seconds a query may run (max_execution_time): bounds when a running query frees its slot. */
  queryTimeout: number;
}

/** Who runs a query. */
export interface Caller {
  /** Identifies the token (a static token's id, a JWT's signature). */
  token: string;
  workspace: string;
}

/** A 429 or 503 that tells the client when to come back (sent as Retry-After). */
export class RetryLater extends PipitError {
  constructor(
    code: 'too_many_requests' | 'unavailable',
    message: string,
    readonly retryAfter: number,
  ) {
    super(code, message, { documentation: 'https://docs.tinybird.co/api-reference/api-reference.html#limits' });
  }
}

interface Waiter {
  caller: Caller;
  admit: () => void;
}

/** The queue holds at most this many queries per slot in all (beyond it, 429 at once). */
const QUEUE_PER_SLOT = 16;

export class Admission {
  private running = 0;
  /** Start times of the running queries, per token and per workspace. */
  private readonly byToken = new Map<string, number[]>();
  private readonly byWorkspace = new Map<string, number[]>();
  private readonly queue: Waiter[] = [];
  private readonly queuedByToken = new Map<string, number>();

  constructor(readonly limits: AdmissionLimits) {}

  /** Totals since start: queries that waited, seconds they waited, queries refused with a 429. */
  private waited = 0;
  private waitSeconds = 0;
  private refused = 0;

  /** Running and waiting queries, and the totals above (for tests and metrics). */
  get usage(): { running: number; waiting: number; waited: number; waitSeconds: number; refused: number } {
    return { running: this.running, waiting: this.queue.length, waited: this.waited, waitSeconds: this.waitSeconds, refused: this.refused };
  }

  /**
   * Waits until `caller` may run a query; resolves with the function that frees its slot
   * (idempotent). Rejects with a 429 (RetryLater), or QUERY_WAS_CANCELLED when `signal` aborts.
   */
  async enter(caller: Caller, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw cancelled();
    // Every waiter left in the queue is at a limit (pump admits the others), so this is fair.
    if (this.allowed(caller)) return this.start(caller);
    const l = this.limits;
    const queued = this.queuedByToken.get(caller.token) ?? 0;
    if (queued >= l.queuePerToken || this.queue.length >= l.slots * QUEUE_PER_SLOT || l.queueTimeoutMs <= 0) {
      const mine = this.byToken.get(caller.token)?.length ?? 0;
      const retry = this.retryAfter(mine >= l.perToken ? this.byToken.get(caller.token) : undefined);
      this.refused++;
      throw new RetryLater(
        'too_many_requests',
        mine >= l.perToken
          ? `Too many requests: this token has reached its maximum of ${l.perToken} concurrent queries (${mine} running, ${queued} waiting). Retry after ${retry} seconds`
          : `Too many requests: the server is running as many queries as it can (${this.running} running, ${this.queue.length} waiting). Retry after ${retry} seconds`,
        retry,
      );
    }
    const queuedAt = performance.now();
    this.waited++;
    return new Promise<() => void>((resolve, reject) => {
      const w: Waiter = {
        caller,
        admit: () => {
          this.waitSeconds += (performance.now() - queuedAt) / 1000;
          cleanup();
          resolve(this.start(caller));
        },
      };
      const leave = () => {
        const i = this.queue.indexOf(w);
        if (i < 0) return false;
        this.queue.splice(i, 1);
        const n = (this.queuedByToken.get(caller.token) ?? 1) - 1;
        if (n > 0) this.queuedByToken.set(caller.token, n);
        else this.queuedByToken.delete(caller.token);
        return true;
      };
      const timer = setTimeout(() => {
        if (!leave()) return;
        cleanup();
        const waited = Math.round(l.queueTimeoutMs / 100) / 10;
        const retry = this.retryAfter();
        this.refused++;
        this.waitSeconds += (performance.now() - queuedAt) / 1000;
        reject(
          new RetryLater(
            'too_many_requests',
            `Too many requests: the query waited ${waited} s for a free engine slot (the server is busy). Retry after ${retry} seconds`,
            retry,
          ),
        );
        this.pump();
      }, l.queueTimeoutMs);
      const onAbort = () => {
        if (!leave()) return;
        cleanup();
        reject(cancelled());
        this.pump();
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(w);
      this.queuedByToken.set(caller.token, queued + 1);
      this.pump();
    });
  }

  private allowed(c: Caller): boolean {
    const l = this.limits;
    if (this.running >= l.slots) return false;
    const ws = this.byWorkspace.get(c.workspace)?.length ?? 0;
    if (ws >= l.perWorkspace) return false;
    const mine = this.byToken.get(c.token)?.length ?? 0;
    if (mine === 0) return true;
    return mine < l.perToken && this.running < l.slots - l.reserved;
  }

  private start(c: Caller): () => void {
    const at = Date.now();
    this.running++;
    push(this.byToken, c.token, at);
    push(this.byWorkspace, c.workspace, at);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.running--;
      pull(this.byToken, c.token, at);
      pull(this.byWorkspace, c.workspace, at);
      this.pump();
    };
  }

  /** Admits waiters in arrival order, skipping those still at a limit. */
  private pump(): void {
    for (let i = 0; i < this.queue.length && this.running < this.limits.slots; ) {
      const w = this.queue[i];
      if (!this.allowed(w.caller)) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      const n = (this.queuedByToken.get(w.caller.token) ?? 1) - 1;
      if (n > 0) this.queuedByToken.set(w.caller.token, n);
      else this.queuedByToken.delete(w.caller.token);
      w.admit();
    }
  }

  /**
   * Seconds until one of `starts` (default: every running query) has surely ended: a query stops
   * at its time limit, so the oldest one ends by then. At least 1.
   */
  private retryAfter(starts?: number[]): number {
    let oldest = Infinity;
    if (starts) for (const t of starts) oldest = Math.min(oldest, t);
    else for (const list of this.byToken.values()) for (const t of list) oldest = Math.min(oldest, t);
    if (oldest === Infinity) return 1;
    return Math.max(1, Math.ceil(this.limits.queryTimeout - (Date.now() - oldest) / 1000));
  }
}

function push(m: Map<string, number[]>, key: string, at: number): void {
  const list = m.get(key);
  if (list) list.push(at);
  else m.set(key, [at]);
}

function pull(m: Map<string, number[]>, key: string, at: number): void {
  const list = m.get(key);
  if (!list) return;
  const i = list.indexOf(at);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) m.delete(key);
}

const cancelled = () => new EngineError(394, 'QUERY_WAS_CANCELLED', 'Query was cancelled');
