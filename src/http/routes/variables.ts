/**
 * The Variables API (`/v0/variables`, ADMIN only): workspace secrets for tb_secret()/tb_var().
 * Seed 003's Environment Variables (`/v0/env_vars`: list as `env_vars`, create from JSON
 * `{name, value}`, update and delete by name) are the same store under another name. Values are
 * write-only: no route of either ever returns one (the seed's EnvVar shows `value`; Tinybird
 * never returns a secret, and Pipit follows it).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { bodyLimit, named, pathParams } from '../route-docs.js';
import type { VariableRecord } from '../../catalog/catalog.js';
import { notFound } from '../../basics/errors.js';
import { tbTime } from '../../basics/time.js';
import { authenticateAdmin } from '../auth.js';
import { hasBody, isForm, isJson, jsonObject, jsonText, queryParams, readBody } from '../body.js';

function variableJson(v: VariableRecord): Record<string, unknown> {
  return { name: v.name, type: v.type, created_at: tbTime(v.createdAt), updated_at: tbTime(v.updatedAt), edited_by: v.editedBy };
}

/** Arguments from the query string and a form or JSON body (JSON fields must be strings). */
async function args(req: FastifyRequest): Promise<Record<string, string>> {
  const out = queryParams(req);
  if (!hasBody(req)) return out;
  const body = (await readBody(req)).toString('utf8');
  if (isJson(req) || (!isForm(req) && /^\s*\{/.test(body))) {
    if (!body.trim()) return out;
    const j = jsonObject(body, 'The request body should be a JSON object like {"name": "...", "value": "..."}');
    for (const k of Object.keys(j)) {
      const v = jsonText(j, k);
      if (v !== undefined) out[k] = v;
    }
  } else if (body.length) {
    for (const [k, v] of new URLSearchParams(body)) out[k] = v;
  }
  return out;
}

export function variableRoutes(s: Services): FastifyPluginAsync {
  return async (app) => {
    bodyLimit(app, 64 * 1024);
    const admin = (req: FastifyRequest) => authenticateAdmin(s, req);
    // The same routes under both names; only the list's key differs.
    for (const [base, listKey] of [
      ['/v0/variables', 'variables'],
      ['/v0/env_vars', 'env_vars'],
    ] as const) {
      app.get(base, named('APIVariablesHandler', { summary: "The workspace's variables" }), async (req) => {
        const auth = await admin(req);
        return { [listKey]: (await s.variables.list(auth.workspace)).map(variableJson) };
      });
      app.post(base, named('APIVariablesHandler', { summary: 'Create a variable' }), async (req) => {
        const auth = await admin(req);
        const a = await args(req);
        return variableJson(await s.variables.create(auth.workspace, a.name, a.value, a.type, auth.token.name));
      });
      app.get<{ Params: { name: string } }>(
        `${base}/:name`,
        named('APIVariableHandler', { summary: 'A variable (its value is never shown)', params: pathParams({ name: 'Variable name' }) }),
        async (req) => {
          const auth = await admin(req);
          const v = await s.variables.get(auth.workspace, req.params.name);
          if (!v) throw notFound('Not found');
          return variableJson(v);
        },
      );
      app.put<{ Params: { name: string } }>(
        `${base}/:name`,
        named('APIVariableHandler', { summary: "Change a variable's value", params: pathParams({ name: 'Variable name' }) }),
        async (req) => {
          const auth = await admin(req);
          const a = await args(req);
          return variableJson(await s.variables.update(auth.workspace, req.params.name, a.value, a.type, auth.token.name));
        },
      );
      app.delete<{ Params: { name: string } }>(
        `${base}/:name`,
        named('APIVariableHandler', { summary: 'Delete a variable', params: pathParams({ name: 'Variable name' }) }),
        async (req) => {
          const auth = await admin(req);
          await s.variables.delete(auth.workspace, req.params.name);
          return { ok: true };
        },
      );
    }
  };
}
