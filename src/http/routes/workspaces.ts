/**
 * Workspaces and the organization: several isolated workspaces on one server (each with its own
 * engine database, tokens and resources). The server-level user token (`user_token` of
 * GET /tokens) creates and lists them; any workspace token describes its own workspace.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { bodyLimit, named, pathParams } from '../route-docs.js';

/** Routes on the organization (`:id`). */
type OrgRoute = { Params: { id: string } };
import type { Workspace } from '../../catalog/catalog.js';
import type { Auth } from '../../domain/access.js';
import { badRequest, forbidden, notFound } from '../../basics/errors.js';
import { tbTime } from '../../basics/time.js';
import { authenticate } from '../auth.js';
import { hasBody, isJson, queryParams, readBody } from '../body.js';
import { checkJsonDepth } from '../../basics/input-limits.js';

async function args(req: FastifyRequest): Promise<Record<string, string>> {
  const out = queryParams(req);
  if (!hasBody(req)) return out;
  const body = (await readBody(req)).toString('utf8');
  if (isJson(req)) {
    checkJsonDepth(body);
    try {
      for (const [k, v] of Object.entries(JSON.parse(body) as Record<string, unknown>)) if (v !== null && v !== undefined) out[k] = String(v);
    } catch {
      throw badRequest('The request body should be a JSON object');
    }
  } else for (const [k, v] of new URLSearchParams(body)) out[k] = v;
  return out;
}

export function workspaceRoutes(s: Services): FastifyPluginAsync {
  const org = () => s.access.organization;
  const wsJson = (ws: Workspace, extra: Record<string, unknown> = {}) => ({
    id: ws.id,
    name: ws.name,
    created_at: tbTime(ws.createdAt),
    organization_id: org().id,
    role: 'admin',
    ...extra,
  });
  /**
   * The user token and the user's admin token (`admin_token` of GET /tokens) see every workspace;
   * another workspace admin token sees only its own.
   */
  const visible = (auth: Auth): Workspace[] => {
    if (auth.isUser || auth.isUserAdmin) return s.access.listWorkspaces();
    if (auth.isAdmin) return [auth.workspace];
    throw forbidden('token needs scope USER or admin');
  };

  return async (app) => {
    // Form, JSON and SQL bodies of these routes (readBody).

    bodyLimit(app, 64 * 1024);
    /** The caller's workspace with its owner and the token's scope (Tinybird's /v1/workspace, read by the SDK). */
    const current = (auth: Auth) => {
      const user = s.access.user;
      const scope = auth.isUserAdmin ? 'ADMIN_USER' : auth.isAdmin ? 'ADMIN' : (auth.token.scopes[0]?.type ?? '');
      return wsJson(auth.workspace, { user_id: user.id, user_email: user.email, scope, main: null });
    };
    app.get('/v0/workspace', async (req) => {
      const auth = await authenticate(s, req);
      const ws = auth.workspace;
      return { ...current(auth), datasources: (await s.datasources.list(ws)).length, pipes: (await s.pipes.list(ws)).length };
    });
    app.get('/v1/workspace', async (req) => current(await authenticate(s, req)));

    const list = async (req: FastifyRequest) => {
      const auth = await authenticate(s, req);
      const withOrg = queryParams(req).with_organization === 'true';
      const workspaces = visible(auth);
      // The user's tokens list every workspace with the token to work in it (Tinybird Local; the
      // TypeScript SDK builds with it); a workspace admin token gets no token values here.
      const withTokens = auth.isUser || auth.isUserAdmin;
      const items = await Promise.all(
        workspaces.map(async (w) => {
          const extra: Record<string, unknown> = withOrg ? { organization: org() } : {};
          if (withTokens) {
            const t = await s.access.workspaceToken(w);
            if (t) extra.token = t.token;
          }
          return wsJson(w, extra);
        }),
      );
      return { workspaces: items, ...(withOrg ? { organization_id: org().id } : {}) };
    };
    app.get('/v0/workspaces', list);
    app.get('/v0/user/workspaces', list);
    app.get('/v1/user/workspaces', list);

    const create = async (req: FastifyRequest) => {
      const auth = await authenticate(s, req);
      auth.requireUser();
      const a = await args(req);
      if (!a.name) throw badRequest('missing name');
      if (a.assign_to_organization_id && a.assign_to_organization_id !== org().id) throw notFound(`Organization "${a.assign_to_organization_id}" not found`);
      const { workspace, admin } = await s.access.createWorkspace(a.name);
      await s.datasources.ensureDatabase(workspace);
      return wsJson(workspace, { token: admin.token });
    };
    app.post('/v0/workspaces', create);
    app.post('/v1/workspaces', create);

    app.get('/v0/organizations', async (req) => {
      const auth = await authenticate(s, req);
      visible(auth);
      return { organizations: [{ ...org(), workspaces: s.access.listWorkspaces().length }] };
    });
    const orgOf = async (req: FastifyRequest<OrgRoute>) => {
      const auth = await authenticate(s, req);
      const ws = visible(auth);
      const id = req.params.id;
      if (id !== org().id) throw notFound(`Organization "${id}" not found`);
      return { auth, ws };
    };
    const onOrg = (summary: string) => named(null, { summary, params: pathParams({ id: 'Organization id' }) });
    app.get<OrgRoute>('/v0/organizations/:id/members', onOrg("The organization's members"), async (req) => {
      await orgOf(req);
      return { members: [{ id: s.access.user.id, email: s.access.user.email, role: 'admin' }] };
    });
    app.get<OrgRoute>('/v0/organizations/:id/workspaces', onOrg("The organization's workspaces"), async (req) => {
      const { ws } = await orgOf(req);
      return { workspaces: ws.map((w) => wsJson(w)) };
    });
  };
}
