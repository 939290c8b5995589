/**
 * Request rate limits as token buckets: per JWT (`limits.rps` of its claims) and per API
 * Endpoint (PIPIT_ENDPOINT_RPS, off by default). A limited handler answers with
 * `X-RateLimit-Limit/Remaining/Reset` on every response, and refuses with 429, `Retry-After`
 * and Tinybird's `Too many requests: retry after N seconds` once the bucket is empty (clients
 * such as tinybird-python-sdk sleep on these headers; without them they retry in a tight loop).
 * Buckets live in this process: with several copies behind a balancer each copy limits alone.
 * Time is the app's clock (tests hold it still, so a loaded machine cannot refill a bucket mid-test).
 */
import type { FastifyReply } from 'fastify';
import type { Services } from './services.js';
import { PipitError } from '../basics/errors.js';

export const LIMITS_DOCUMENTATION = 'https://docs.tinybird.co/api-reference/api-reference.html#limits';

export interface Take {
  ok: boolean;
  limit: number;
  /** Whole requests left in the bucket after this one. */
  remaining: number;
  /** Seconds until the bucket is full again. */
  reset: number;
  /** Seconds until the next request would be allowed (when refused). */
  retryAfter: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets by key, each refilling at `rate` per second up to `burst`. */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly maxKeys = 100_000) {}

  take(key: string, rate: number, burst = Math.max(1, rate), now = Date.now()): Take {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.prune(rate, burst, now);
      b = { tokens: burst, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    return {
      ok,
      limit: Math.ceil(burst),
      remaining: Math.max(0, Math.floor(b.tokens)),
      reset: Math.ceil((burst - b.tokens) / rate),
      retryAfter: ok ? 0 : Math.max(1, Math.ceil((1 - b.tokens) / rate)),
    };
  }

  /** Drops buckets that refilled (they hold no state worth keeping), else the oldest half. */
  private prune(rate: number, burst: number, now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * rate >= burst) this.buckets.delete(k);
    if (this.buckets.size < this.maxKeys) return;
    let n = this.buckets.size / 2;
    for (const k of this.buckets.keys()) {
      if (n-- <= 0) break;
      this.buckets.delete(k);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** The rate-limit headers of a response; on refusal also Retry-After and the 429 error. */
export function applyLimit(reply: FastifyReply, t: Take): void {
  reply.header('x-ratelimit-limit', String(t.limit));
  reply.header('x-ratelimit-remaining', String(t.remaining));
  reply.header('x-ratelimit-reset', String(t.reset));
  if (t.ok) return;
  reply.header('retry-after', String(t.retryAfter));
  throw new PipitError('too_many_requests', `Too many requests: retry after ${t.retryAfter} seconds`, { documentation: LIMITS_DOCUMENTATION });
}

interface Limiters {
  jwt: TokenBuckets;
  endpoints: TokenBuckets;
}

const perApp = new WeakMap<Services, Limiters>();

function limiters(s: Services): Limiters {
  let l = perApp.get(s);
  if (!l) {
    l = { jwt: new TokenBuckets(), endpoints: new TokenBuckets() };
    perApp.set(s, l);
  }
  return l;
}

/** Enforces a JWT's `limits.rps` (keyed by the token's signature, so each JWT has its own bucket). */
export function limitJwt(s: Services, reply: FastifyReply, jwtValue: string, rps: number): void {
  applyLimit(reply, limiters(s).jwt.take(jwtValue.slice(jwtValue.lastIndexOf('.') + 1), rps, undefined, s.clock.now().getTime()));
}

/** Enforces the per-endpoint limit (PIPIT_ENDPOINT_RPS) for one pipe; nothing when it is off. */
export function limitEndpoint(s: Services, reply: FastifyReply, workspaceId: string, pipeId: string): void {
  const rps = s.config.endpointRps;
  if (!rps) return;
  applyLimit(reply, limiters(s).endpoints.take(`${workspaceId}/${pipeId}`, rps, undefined, s.clock.now().getTime()));
}
