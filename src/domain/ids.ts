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
