/**
 * `GET /tokens`: local token discovery, like Tinybird Local. It hands out the admin and user
 * tokens, so it answers only when both hold:
 * - the client is on loopback (the socket's peer address), and
 * - the `Host` header names this machine: `localhost`, a loopback address (`127.x.x.x`,
 *   `[::1]`), or the host of `PIPIT_API_HOST`. A web page the developer visits can make the
 *   browser call a loopback port (DNS rebinding: `evil.example` resolving to 127.0.0.1), but the
 *   browser then sends `Host: evil.example`.
 * It carries no CORS headers (also on its preflight), so no other origin may read the answer.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import net from 'node:net';
import type { Services } from '../services.js';
import { forbidden, PipitError } from '../../basics/errors.js';
import { isLoopbackAddress } from '../address-policy.js';

/** The host name of a `Host` header: lower-cased, port and IPv6 brackets removed, no trailing dot. */
export function hostOf(header: string | undefined): string | null {
  if (!header) return null;
  const h = header.trim().toLowerCase();
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(h) ?? /^([^:[\]]+)(?::\d+)?$/.exec(h);
  return m ? m[1].replace(/\.$/, '') : null;
}

/** Whether a `Host` header names this machine (loopback) or the configured public host. */
export function isLocalHostHeader(header: string | undefined, apiHost: string): boolean {
  const host = hostOf(header);
  if (!host) return false;
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (net.isIP(host) && isLoopbackAddress(host)) return true;
  try {
    const configured = new URL(apiHost).hostname
      .toLowerCase()
      .replace(/^\[|\]$/g, '')
      .replace(/\.$/, '');
    // A wildcard bind address (PIPIT_HOST=0.0.0.0 makes the default PIPIT_API_HOST http://0.0.0.0:7181)
    // names no host: browsers send `Host: 0.0.0.0` for pages that target it.
    if (configured === '0.0.0.0' || configured === '::') return false;
    return host === configured;
  } catch {
    return false;
  }
}

/** Tinybird Forward routes this server does not implement. */
// `GET /v0/environments` itself is the classic `tb` CLI's branch list (an empty one: cli-compat.ts).
export const FORWARD_ONLY = ['/v1/build', '/v1/deploy', '/v1/deployments', '/v1/deployments/*', '/v1/environments', '/v1/environments/*', '/v0/environments/*'];

/** Route hook: drops the CORS headers every other route gets. */
function withoutCors(_req: FastifyRequest, reply: FastifyReply, done: () => void): void {
  for (const h of Object.keys(reply.getHeaders())) if (h.startsWith('access-control-')) reply.removeHeader(h);
  done();
}

export const localRoutes =
  (s: Services): FastifyPluginAsync =>
  async (app) => {
    app.get('/tokens', { onRequest: withoutCors }, async (req) => {
      // A convenience of the embedded mode: copies sharing a catalog print the tokens once, at the first start.
      if (s.catalog.shared)
        throw new PipitError(
          'not_found',
          'Local tokens are served in embedded mode only: with PIPIT_CATALOG_URL the first copy printed them at its first start',
        );
      if (!isLoopbackAddress(req.socket.remoteAddress ?? '')) throw forbidden('Local tokens are only served to loopback clients');
      if (!isLocalHostHeader(req.headers.host, s.config.apiHost)) {
        throw forbidden(
          'Local tokens are only served to requests for localhost, a loopback address or the configured PIPIT_API_HOST (the Host header names another host)',
        );
      }
      return s.localTokens;
    });
    app.options('/tokens', { onRequest: withoutCors }, async (_req, reply) => reply.code(204).send());
    // Liveness: the process answers.
    app.get('/v0/health', async () => ({ status: 'ok' }));
    // Readiness (for load balancers): the engine and the catalog answer within 2 s each.
    app.get('/v0/health/ready', async (_req, reply) => {
      const check = async (f: () => Promise<unknown>) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([f(), new Promise((_r, rej) => (timer = setTimeout(() => rej(new Error('no answer within 2 s')), 2000)))]);
          return 'ok';
        } catch (err) {
          return `error: ${(err as Error).message}`;
        } finally {
          clearTimeout(timer);
        }
      };
      const [engine, catalog] = await Promise.all([check(() => s.engine.rows('SELECT 1')), check(() => s.catalog.ping())]);
      const ready = engine === 'ok' && catalog === 'ok';
      reply.code(ready ? 200 : 503);
      return { status: ready ? 'ok' : 'unavailable', engine, catalog };
    });
    // Tinybird Forward's project routes (`tb build`/`tb deploy`, the TypeScript SDK's build and
    // branches): this server speaks the classic /v0 API, so they answer a clear 501 instead of a
    // bare route-not-found. Datafiles go in through the Data Sources and Pipes APIs.
    for (const route of FORWARD_ONLY) {
      app.all(route, async (req) => {
        throw new PipitError(
          'not_implemented',
          `${req.method} ${req.url.split('?')[0]} is not supported by this server: Pipit implements Tinybird's /v0 API, not Tinybird Forward's builds, deployments and branches. Create data sources and pipes with the /v0/datasources and /v0/pipes APIs.`,
        );
      });
    }
  };
