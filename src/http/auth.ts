/**
 * Token extraction as Tinybird does it: `?token=` first, then `Authorization: Bearer <t>`.
 */
import type { FastifyRequest } from 'fastify';
import type { Auth } from '../domain/access.js';
import type { Services } from '../app.js';

export function tokenOf(req: FastifyRequest): string | undefined {
  const q = (req.query as Record<string, unknown> | undefined)?.token;
  if (typeof q === 'string' && q) return q;
  if (Array.isArray(q) && typeof q[0] === 'string') return q[0];
  const h = req.headers.authorization;
  if (!h) return undefined;
  const parts = h.split(' ');
  return parts.length === 2 && parts[0] === 'Bearer' ? parts[1] : undefined;
}

export function authenticate(services: Services, req: FastifyRequest): Promise<Auth> {
  return services.access.authenticate(tokenOf(req));
}
