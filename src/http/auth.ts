/**
 * Token extraction as Tinybird does it: `?token=` first, then `Authorization: Bearer <t>`, then
 * the `token` field of a url-encoded form body (body.ts formToken); the caller resolved by the
 * access service. JWTs are refused by every handler that does not ask for them (Tinybird's
 * `Handler X does not support JWT tokens`), and a JWT's `limits.rps` is enforced where they are
 * accepted.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { INVALID_TOKEN, type Auth, type ResourceLookup } from '../domain/access.js';
import { forbidden } from '../basics/errors.js';
import type { Services } from './services.js';
import { limitJwt } from './rate-limit.js';
import { formToken } from './body.js';
import { handlerName } from './route-docs.js';
import { noteCaller } from '../observability/context.js';

export function tokenOf(req: FastifyRequest): string | undefined {
  // Only `token` of the query string, as queryArgs reads it (which would copy every argument).
  const query: unknown = req.query;
  const v: unknown = query && typeof query === 'object' && Object.hasOwn(query, 'token') ? (query as { token: unknown }).token : undefined;
  // A repeated `token` counts by its first value.
  if (Array.isArray(v)) {
    if (v.length) return String(v[0]);
  } else if (v !== undefined && String(v)) return String(v);
  const h = req.headers.authorization;
  if (!h) return undefined;
  const parts = h.split(' ');
  return parts.length === 2 && parts[0] === 'Bearer' ? parts[1] : undefined;
}

export interface AuthOptions {
  /**
   * Accept JWTs (endpoint data; also the Query API and the Events API, where the newer
   * platform's DATASOURCES:READ / DATASOURCES:APPEND JWT scopes are used). With `reply`, a
   * JWT's `limits.rps` is enforced and its rate-limit headers set.
   */
  jwt?: boolean;
  reply?: FastifyReply;
}

const lookups = new WeakMap<Services, ResourceLookup>();

function lookupOf(s: Services): ResourceLookup {
  let l = lookups.get(s);
  if (!l) {
    l = { datasource: (ws, ref) => s.datasources.find(ws, ref), pipe: (ws, ref) => s.pipes.find(ws, ref) };
    lookups.set(s, l);
  }
  return l;
}

/** The caller, who must hold ADMIN (403 otherwise). */
export async function authenticateAdmin(services: Services, req: FastifyRequest): Promise<Auth> {
  const auth = await authenticate(services, req);
  auth.requireAdmin();
  return auth;
}

export async function authenticate(services: Services, req: FastifyRequest, opts: AuthOptions = {}): Promise<Auth> {
  const auth = await services.access.authenticate(tokenOf(req) ?? (await formToken(req)), lookupOf(services));
  noteCaller(req, { id: auth.token.id, name: auth.token.name }, auth.workspace.id);
  if (auth.jwt) {
    if (!opts.jwt) throw forbidden(`${INVALID_TOKEN}. Handler ${handlerName(req)} does not support JWT tokens`);
    if (auth.jwt.rps !== undefined && opts.reply) limitJwt(services, opts.reply, auth.token.token, auth.jwt.rps);
  }
  return auth;
}
