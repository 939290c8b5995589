/** Resource ids: `t_` + 32 lowercase hex, like Tinybird's; jobs use plain uuids. */
import crypto from 'node:crypto';

export const newResourceId = () => 't_' + crypto.randomUUID().replace(/-/g, '');
export const newJobId = () => crypto.randomUUID();

/** Accepts `t_<hex>` and decorated ids `t_my_description.<32hex>`; returns the canonical id or null. */
export function canonicalId(s: string): string | null {
  if (/^t_[0-9a-f]{32}$/.test(s)) return s;
  const m = /^t_[A-Za-z0-9_]*\.([0-9a-f]{32})$/.exec(s);
  return m ? `t_${m[1]}` : null;
}

/** The record of `byId` (id → record) that `nameOrId` names: its id (also decorated), else its name; null when none. */
export function byNameOrId<T extends { id: string; name: string }>(byId: ReadonlyMap<string, T>, nameOrId: string): T | null {
  const id = canonicalId(nameOrId);
  if (id && byId.has(id)) return byId.get(id)!;
  for (const r of byId.values()) if (r.name === nameOrId) return r;
  return null;
}

const B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let pool = crypto.randomBytes(4096);
let poolPos = 0;

/**
 * A ULID (request ids, import ids): 48-bit millisecond time + 80 random bits, Crockford base32.
 * Random bytes come from a pooled buffer: the `ulid` package calls the CSPRNG once per character
 * (about 65 µs per id, a tenth of a small query's whole overhead).
 */
export function newUlid(now = Date.now()): string {
  let out = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    out = B32[t % 32] + out;
    t = Math.floor(t / 32);
  }
  if (poolPos + 16 > pool.length) {
    pool = crypto.randomBytes(4096);
    poolPos = 0;
  }
  for (let i = 0; i < 16; i++) out += B32[pool[poolPos++] & 31];
  return out;
}
