/**
 * The web console (`/console/`): static files built by Vite from `console/` into `dist/console/`
 * (`npm run build:console`, run by `npm install` through the `prepare` script). The console is a
 * plain client of the public `/v0` API with the user's token: this file adds no API, only files.
 *
 * Every response carries a strict Content-Security-Policy (scripts and styles only from this
 * origin, no inline script, no eval, no framing, requests only to this origin) and no CORS headers.
 * Paths are looked up under the build directory only: one strict character set, no `..` or hidden
 * segment, regular files whose real path stays inside the directory, and known extensions only.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { routeNotFound } from '../errors.js';
import { PACKAGE_ROOT } from '../../basics/package-dir.js';

export const CONSOLE_PATH = '/console/';

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export const CONSOLE_DIR = path.join(PACKAGE_ROOT, 'dist', 'console');

/** The file a request path names inside `root`, or null (never outside it, never a directory). */
export function consoleFile(root: string, rel: string): string | null {
  if (rel === '') rel = 'index.html';
  if (rel.length > 200 || !/^[A-Za-z0-9._\-/]+$/.test(rel)) return null;
  const segments = rel.split('/');
  if (segments.some((s) => s === '' || s.startsWith('.'))) return null;
  if (!TYPES[path.extname(rel).toLowerCase()]) return null;
  const file = path.join(root, ...segments);
  try {
    const real = fs.realpathSync(file);
    const realRoot = fs.realpathSync(root);
    if (!real.startsWith(realRoot + path.sep)) return null;
    if (!fs.statSync(real).isFile()) return null;
    return real;
  } catch {
    return null;
  }
}

function secure(reply: FastifyReply): FastifyReply {
  for (const h of Object.keys(reply.getHeaders())) if (h.startsWith('access-control-')) reply.removeHeader(h);
  return reply.headers(SECURITY_HEADERS);
}

export const consoleRoutes =
  (_s: Services, root: string = CONSOLE_DIR): FastifyPluginAsync =>
  async (app) => {
    app.get('/', async (_req, reply) => secure(reply).redirect(CONSOLE_PATH, 302));
    // `/console` and `/console/` (the router ignores trailing slashes) are the page; asset URLs are absolute.
    app.get('/console', (req, reply) => serve(req, reply, ''));
    app.get<{ Params: { '*': string } }>('/console/*', (req, reply) => serve(req, reply, req.params['*'] ?? ''));

    async function serve(req: FastifyRequest, reply: FastifyReply, rel: string): Promise<FastifyReply> {
      secure(reply);
      const file = consoleFile(root, rel);
      if (!file) {
        if (rel === '' || rel === 'index.html') {
          return reply
            .code(503)
            .type('text/plain; charset=utf-8')
            .send('The Pipit console is not built. Run `npm run build:console` (npm install runs it) and reload.\n');
        }
        return reply
          .code(404)
          .type('application/json')
          .send({ error: routeNotFound('GET', req.url) });
      }
      // Built assets carry a content hash in their name: cache them for good; the page is always revalidated.
      const hashed = rel.startsWith('assets/');
      reply.header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
      reply.type(TYPES[path.extname(file).toLowerCase()]);
      return reply.send(await fs.promises.readFile(file));
    }
  };
