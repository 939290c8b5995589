/**
 * `GET /tokens`: local token discovery, like Tinybird Local. Answers only to loopback clients.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../app.js';
import { forbidden } from '../../domain/errors.js';

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

export const localRoutes = (s: Services): FastifyPluginAsync => async (app) => {
  app.get('/tokens', async (req) => {
    if (!LOOPBACK.test(req.socket.remoteAddress ?? '')) throw forbidden('Local tokens are only served to loopback clients');
    return s.localTokens;
  });
  app.get('/v0/health', async () => ({ status: 'ok' }));
};
