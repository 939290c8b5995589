/**
 * Each route's Tinybird handler name lives in its own `config` (fastify's route config), not in a
 * table over URLs: `app.get('/v0/pipes', named('APIPipeListHandler'), handler)`. Messages that
 * name the handler (a JWT refused by a route that takes none) read it from `req.routeOptions`.
 */
import type { FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Tinybird's handler class for the route, as its messages name it. */
    handler?: string;
  }
}

/** Route options that name the route's handler. */
export const named = (handler: string) => ({ config: { handler } });

/** The route's handler name; routes that declare none are Tinybird's generic `APIHandler`. */
export const handlerName = (req: FastifyRequest): string => req.routeOptions?.config?.handler ?? 'APIHandler';
