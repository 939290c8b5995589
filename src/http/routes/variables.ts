/**
 * The Variables API (`/v0/variables`, ADMIN only): workspace secrets for tb_secret()/tb_var().
 * Values are write-only: no route ever returns one.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../../app.js';
import type { VariableRecord } from '../../catalog/catalog.js';
import { notFound } from '../../domain/errors.js';
import { tbTime } from '../../domain/time.js';
import { authenticate } from '../auth.js';
import { decoded, hasBody, isForm, isJson, queryParams, rawStream, readAll } from '../body.js';
import { checkJsonDepth } from '../../domain/input-limits.js';

function variableJson(v: VariableRecord): Record<string, unknown> {
  return { name: v.name, type: v.type, created_at: tbTime(v.createdAt), updated_at: tbTime(v.updatedAt), edited_by: v.editedBy };
}

/** Arguments from the query string and a form or JSON body. */
async function args(req: FastifyRequest): Promise<Record<string, string>> {
  const out = queryParams(req);
  if (!hasBody(req)) return out;
  const body = await readAll(decoded(rawStream(req), req.headers['content-encoding']), 64 * 1024);
  if (isJson(req)) {
    checkJsonDepth(body.toString('utf8'));
    try {
      const j = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      for (const [k, v] of Object.entries(j ?? {})) if (v !== null && v !== undefined) out[k] = String(v);
    } catch {
      /* not JSON: nothing more */
    }
  } else if (isForm(req) || body.length) {
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) out[k] = v;
  }
  return out;
}

export function variableRoutes(s: Services): FastifyPluginAsync {
  return async (app) => {
    const admin = async (req: FastifyRequest) => {
      const auth = await authenticate(s, req);
      auth.requireAdmin();
      return auth;
    };
    app.get('/v0/variables', async (req) => {
      const auth = await admin(req);
      return { variables: (await s.variables.list(auth.workspace)).map(variableJson) };
    });
    app.post('/v0/variables', async (req) => {
      const auth = await admin(req);
      const a = await args(req);
      return variableJson(await s.variables.create(auth.workspace, a.name, a.value, a.type, auth.token.name));
    });
    app.get('/v0/variables/:name', async (req) => {
      const auth = await admin(req);
      const v = await s.variables.get(auth.workspace, (req.params as { name: string }).name);
      if (!v) throw notFound('Not found');
      return variableJson(v);
    });
    app.put('/v0/variables/:name', async (req) => {
      const auth = await admin(req);
      const a = await args(req);
      return variableJson(await s.variables.update(auth.workspace, (req.params as { name: string }).name, a.value, a.type, auth.token.name));
    });
    app.delete('/v0/variables/:name', async (req) => {
      const auth = await admin(req);
      await s.variables.delete(auth.workspace, (req.params as { name: string }).name);
      return { ok: true };
    });
  };
}
