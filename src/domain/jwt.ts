/**
 * JSON Web Tokens as Tinybird uses them: HS256 only (HMAC-SHA256 keyed with a workspace admin
 * token value), compact serialisation, no other algorithm accepted (no `none`, no RS/ES keys
 * that an HMAC secret could be confused with). Only the encoding and the signature live here;
 * what the claims mean is the access service's business.
 */
import crypto from 'node:crypto';

const PART = /^[A-Za-z0-9_-]+$/;

export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** `<header>.<payload>` as sent: what the signature covers. */
  signingInput: string;
  signature: Buffer;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A signed compact JWT: `base64url(header).base64url(payload).base64url(HMAC-SHA256)`. */
export function signJwt(payload: Record<string, unknown>, secret: string): string {
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function jsonObject(part: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Splits and decodes a compact JWT without trusting it; null when it is not one. */
export function decodeJwt(value: string): DecodedJwt | null {
  const parts = value.split('.');
  if (parts.length !== 3 || !parts.every((p) => PART.test(p))) return null;
  const header = jsonObject(parts[0]);
  const payload = jsonObject(parts[1]);
  if (!header || !payload) return null;
  return { header, payload, signingInput: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2], 'base64url') };
}

/** True when the token is HS256 and signed with one of the secrets (constant-time comparison). */
export function verifyHs256(jwt: DecodedJwt, secrets: readonly string[]): boolean {
  if (jwt.header.alg !== 'HS256') return false;
  let ok = false;
  for (const secret of secrets) {
    const expected = crypto.createHmac('sha256', secret).update(jwt.signingInput).digest();
    // Every secret is tried, so the time taken says nothing about which one (if any) matched.
    if (expected.length === jwt.signature.length && crypto.timingSafeEqual(expected, jwt.signature)) ok = true;
  }
  return ok;
}
