/**
 * Tokens API (`/v0/tokens`, reference §7): static tokens (list, create, get — also as a `.token`
 * datafile —, change name/description/scopes, refresh, delete) and JWTs minted with
 * `expiration_time=`. Scopes name resources by name or id and are stored by id, so a rename
 * keeps them; the JSON shows names. ADMIN or TOKENS manage tokens; a token may not create, change,
 * refresh or delete a token that holds more than it does (Auth.holds: only ADMIN manages or grants
 * ADMIN), and ADMIN token values are not shown to TOKENS-only callers.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { bodyLimit, named, pathParams } from '../route-docs.js';
import type { Scope, TokenRecord } from '../../catalog/catalog.js';
import { type Auth, JWT_SCOPES, MAX_TOKENS, RESOURCE_SCOPES, STATIC_SCOPES, TOKEN_HOST, isStaticScope } from '../../domain/access.js';
import { badRequest, forbidden, notFound, PipitError } from '../../basics/errors.js';
import { checkExpression, checkNameLength } from '../../schema/index.js';
import { tbTime } from '../../basics/time.js';
import { authenticate } from '../auth.js';
import { hasBody, isJson, readBody } from '../body.js';
import { parseUserJson } from '../../basics/input-limits.js';
import { tokenDatafile } from '../../datafile/records.js';

const JWT_DOCUMENTATION = 'https://docs.tinybird.co/api-reference/token-api.html#post--v0-tokens-?';
const READ_SCOPES = new Set(['DATASOURCES:READ', 'PIPES:READ']);
const CANNOT_LIST = 'Token has not enough permissions to get information about Tokens';
const CANNOT_SEE = 'Token has not enough permissions to get information about this token';
const NOT_FOUND = 'Static Token not found';
const TOKEN_NOT_FOUND = 'Token not found';

/** A scope as asked for: from `TYPE[:resource[:filter]]` text or a `{type, resource, filter}` object. */
interface ScopeSpec {
  text: string;
  type: string;
  resource?: string;
  filter?: string;
}

/** Splits a scope string: for DATASOURCES/PIPES the first two parts are the type, the third the resource, the rest (colons included) the filter. */
export function parseScope(text: string): ScopeSpec {
  const parts = text.split(':');
  if ((parts[0] === 'DATASOURCES' || parts[0] === 'PIPES') && parts.length >= 2) {
    return { text, type: `${parts[0]}:${parts[1]}`, resource: parts[2] || undefined, filter: parts.slice(3).join(':') || undefined };
  }
  return { text, type: text };
}

function specOf(v: unknown): ScopeSpec {
  if (typeof v === 'string') return parseScope(v);
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const str = (x: unknown) => (typeof x === 'string' && x !== '' ? x : undefined);
    const type = String(o.type ?? '');
    return { text: [type, str(o.resource), str(o.filter)].filter(Boolean).join(':'), type, resource: str(o.resource), filter: str(o.filter) };
  }
  throw badRequest(`Unknown scope ${JSON.stringify(v)}`);
}

/** Request arguments: query string, then a form or JSON body; `scope` may repeat anywhere. */
interface Args {
  values: Record<string, string>;
  /** Every `scope`/`scopes` given; null when none was. */
  scopes: ScopeSpec[] | null;
  /** A JSON body, as sent. */
  json: Record<string, unknown> | null;
}

async function readArgs(req: FastifyRequest, jsonBody: boolean): Promise<Args> {
  const values: Record<string, string> = {};
  const scopes: unknown[] = [];
  let scopeGiven = false;
  const add = (k: string, v: unknown) => {
    if (k === 'scope' || k === 'scopes') {
      scopeGiven = true;
      for (const x of Array.isArray(v) ? v : [v]) if (x !== '' && x !== null && x !== undefined) scopes.push(x);
    } else if (typeof v === 'string') values[k] = v;
    else if (Array.isArray(v) && typeof v[v.length - 1] === 'string') values[k] = v[v.length - 1];
    else if (typeof v === 'number' || typeof v === 'boolean') values[k] = String(v);
  };
  for (const [k, v] of Object.entries((req.query as Record<string, unknown>) ?? {})) add(k, v);
  let json: Record<string, unknown> | null = null;
  if (hasBody(req)) {
    const buf = await readBody(req);
    const text = buf.toString('utf8');
    // A JWT request's body is JSON whatever its Content-Type (`curl -d` says it is a form).
    if (isJson(req) || jsonBody || /^\s*\{/.test(text)) {
      const parsed = text.trim() ? parseUserJson(text, 'Invalid body, it must be a JSON object') : {};
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('Invalid body, it must be a JSON object');
      json = parsed as Record<string, unknown>;
      for (const [k, v] of Object.entries(json)) if (k !== 'scopes' || !jsonBody) add(k, v);
    } else {
      const form = new URLSearchParams(text);
      for (const k of new Set(form.keys())) add(k, k === 'scope' ? form.getAll(k) : form.get(k));
    }
  }
  return { values, scopes: scopeGiven ? scopes.map(specOf) : null, json };
}

/** Routes on one token (`:token`, its name or id). */
type TokenRoute = { Params: { token: string } };

export const tokenRoutes =
  (s: Services): FastifyPluginAsync =>
  async (app) => {
    const onToken = (handler: string, summary: string) => named(handler, { summary, params: pathParams('token') });
    // Form, JSON and SQL bodies of these routes (readBody).
    bodyLimit(app, 1024 * 1024);
    /** Names of the workspace's data sources and pipes by id (scopes are stored by id). */
    async function namesById(auth: Auth): Promise<Map<string, string>> {
      const [ds, pipes] = await Promise.all([s.datasources.list(auth.workspace), s.pipes.list(auth.workspace)]);
      return new Map([...ds, ...pipes].map((r) => [r.id, r.name]));
    }

    /** Token JSON (§7.3): scopes with resource names; the value only when the caller may see it. */
    function tokenJson(auth: Auth, t: TokenRecord, names: Map<string, string>): Record<string, unknown> {
      const scopes: Array<Record<string, unknown>> = [];
      for (const sc of t.scopes) {
        const out: Record<string, unknown> = { type: sc.type };
        if (RESOURCE_SCOPES.has(sc.type)) {
          const name = sc.resource ? names.get(sc.resource) : undefined;
          if (sc.resource && !name) continue; // its resource was dropped: the scope grants nothing
          if (name) out.resource = name;
        }
        if (READ_SCOPES.has(sc.type)) out.filter = sc.filter ?? '';
        scopes.push(out);
      }
      const json: Record<string, unknown> = { id: t.id };
      if (seesValue(auth, t)) json.token = t.token;
      json.scopes = scopes;
      json.name = t.name;
      json.description = t.description ?? '';
      json.origin = t.origin ? { type: t.origin.type, ...(t.origin.resourceId ? { resource_id: t.origin.resourceId } : {}) } : { type: 'C' };
      json.host = TOKEN_HOST;
      // Seed 003's Token has created_at (Tinybird's own JSON does not; clients ignore extra fields).
      json.created_at = tbTime(t.createdAt);
      return json;
    }

    /** ADMIN sees every value (but the user's admin token's); others do not see ADMIN tokens' values (they would be admins then). */
    function seesValue(auth: Auth, t: TokenRecord): boolean {
      return auth.seesValueOf(t);
    }

    /** The scopes asked for, checked and with resources resolved to ids. */
    async function toScopes(auth: Auth, specs: ScopeSpec[], mode: 'create' | 'update'): Promise<Scope[]> {
      const out: Scope[] = [];
      for (const spec of specs) {
        const { type } = spec;
        if (type === 'ADMIN_USER' || type === 'AUTH') throw badRequest('Cannot set ADMIN_USER scope, please provide a different target scope');
        if (!isStaticScope(type)) {
          throw badRequest(mode === 'create' ? `Unknown scope ${spec.text}` : `Invalid provided scope, valid ones are: ${STATIC_SCOPES.join(', ')}`);
        }
        if (type === 'ADMIN' && !auth.isAdmin) throw badRequest('Cannot set ADMIN scope, please provide a different target scope');
        if (spec.filter && !READ_SCOPES.has(type)) throw badRequest("filters can't only be applied to READ scope");
        const scope: Scope = { type };
        if (RESOURCE_SCOPES.has(type)) {
          if (!spec.resource) throw badRequest(`scope '${type}' requires a resource`);
          const found = type.startsWith('PIPES:') ? await s.pipes.find(auth.workspace, spec.resource) : await s.datasources.find(auth.workspace, spec.resource);
          if (!found) throw badRequest(`datasource or pipe ${spec.resource} does not exist`);
          scope.resource = found.id;
          if (spec.filter) scope.filter = checkExpression(spec.filter, 'filter');
        }
        if (!out.some((x) => x.type === scope.type && x.resource === scope.resource && x.filter === scope.filter)) out.push(scope);
      }
      return out;
    }

    async function checkNameFree(auth: Auth, name: string, self?: string): Promise<void> {
      checkNameLength(name, 'token');
      if ((await s.access.listTokens(auth.workspace)).some((t) => t.name === name && t.id !== self)) {
        throw badRequest(`Auth token with name "${name}" already exists`);
      }
    }

    /**
     * A token the caller manages, by id, name or value; 404 `Static Token not found`. A token that
     * holds more than the caller (an ADMIN token, for a TOKENS one) is not the caller's to manage.
     */
    async function managed(auth: Auth, ref: string, action: 'change' | 'refresh' | 'delete'): Promise<TokenRecord> {
      auth.requireTokens();
      const t = await s.access.findToken(auth.workspace, ref);
      if (!t) throw notFound(NOT_FOUND);
      auth.requireHolds(t, action);
      return t;
    }

    /**
     * A workspace keeps at least one ADMIN token: without one nobody could manage its variables or
     * tokens, and its scheduled copies and sinks (which run with an admin's authority) would stop.
     */
    async function keepsAnAdmin(auth: Auth, t: TokenRecord, scopesAfter: readonly Scope[] | null): Promise<void> {
      const isAdmin = (scopes: readonly Scope[]) => scopes.some((sc) => sc.type === 'ADMIN');
      if (!isAdmin(t.scopes) || (scopesAfter && isAdmin(scopesAfter))) return;
      const admins = (await s.access.listTokens(auth.workspace)).filter((x) => isAdmin(x.scopes));
      if (admins.length <= 1) throw forbidden('The last ADMIN token of a workspace can not be deleted or lose its ADMIN scope');
    }

    /** New scopes may only be ones the caller holds itself. */
    function grantable(auth: Auth, scopes: Scope[]): Scope[] {
      if (!auth.holds(scopes)) throw forbidden('The token can not grant scopes it does not hold');
      return scopes;
    }

    /** Keeps the local token discovery (`GET /tokens`) in step with a refreshed or deleted token. */
    function followLocal(old: string, now: string): void {
      const local = s.localTokens as unknown as Record<string, string>;
      for (const k of Object.keys(local)) if (local[k] === old) local[k] = now;
    }

    app.get('/v0/tokens', named('APITokensHandler', { summary: "The workspace's tokens" }), async (req) => {
      const auth = await authenticate(s, req);
      if (!auth.canManageTokens) throw forbidden(CANNOT_LIST);
      const names = await namesById(auth);
      return { tokens: (await s.access.listTokens(auth.workspace)).map((t) => tokenJson(auth, t, names)) };
    });

    app.post('/v0/tokens', named('APITokensHandler', { summary: 'Create a static token (scope=...) or a JWT (expiration_time=)' }), async (req) => {
      const auth = await authenticate(s, req);
      auth.requireTokens();
      const jwt = (req.query as Record<string, unknown>)?.expiration_time !== undefined;
      const args = await readArgs(req, jwt);
      if (jwt) return mintJwt(auth, args);
      const name = args.values.name;
      if (!name) throw badRequest('Missing argument name');
      if (!args.scopes || args.scopes.length === 0) throw badRequest('scope is mandatory');
      const scopes = grantable(auth, await toScopes(auth, args.scopes, 'create'));
      let origin: TokenRecord['origin'];
      const originType = args.values.origin;
      if (originType && originType !== 'C') {
        const ref = args.values.resource_id;
        if (!ref) throw badRequest(`resource_id is required for origin ${originType}`);
        const found = originType === 'P' ? await s.pipes.find(auth.workspace, ref) : await s.datasources.find(auth.workspace, ref);
        if (!found) throw badRequest(`datasource or pipe ${ref} does not exist`);
        origin = { type: originType, resourceId: found.id };
      }
      await checkNameFree(auth, name);
      if ((await s.access.listTokens(auth.workspace)).length >= MAX_TOKENS) {
        throw badRequest(`The Workspace has reached the maximum number of tokens (${MAX_TOKENS})`);
      }
      const t = await s.access.createToken(auth.workspace.id, name, scopes, args.values.description ?? '', origin);
      return tokenJson(auth, t, await namesById(auth));
    });

    /** `POST /v0/tokens?expiration_time=<unix>` with `{"name"?, "scopes": [...], "limits"?}`: a signed JWT, not stored. */
    async function mintJwt(auth: Auth, args: Args): Promise<Record<string, unknown>> {
      const raw = args.values.expiration_time;
      const exp = Number(raw);
      if (!/^\s*\d+\s*$/.test(raw ?? '') || !Number.isSafeInteger(exp) || exp <= Date.now() / 1000) {
        throw new PipitError(
          'bad_request',
          `The specified expiration time: '${raw}' is invalid, must be a future unix epoch timestamp indicating the token expiration time`,
          { documentation: JWT_DOCUMENTATION },
        );
      }
      const body = args.json ?? {};
      const name = typeof body.name === 'string' && body.name ? body.name : args.values.name;
      if (!name) throw badRequest('Missing argument name');
      checkNameLength(name, 'token');
      if (!Array.isArray(body.scopes)) throw badRequest('Invalid body, scopes must be a list of scope');
      const scopes: Array<Record<string, unknown>> = [];
      for (const sc of body.scopes as unknown[]) {
        if (!sc || typeof sc !== 'object' || Array.isArray(sc)) throw badRequest('Invalid body, scopes must be a list of scope');
        const { type, resource, fixed_params: fixed, filter } = sc as Record<string, unknown>;
        if (typeof type !== 'string' || !(JWT_SCOPES as readonly string[]).includes(type))
          throw badRequest(`Invalid scope, only ${JWT_SCOPES.join(', ')} are allowed`);
        if (typeof resource !== 'string' || !resource) throw badRequest(`When creating a jwt token for ${type}, a resource name is required`);
        const found = type === 'PIPES:READ' ? await s.pipes.find(auth.workspace, resource) : await s.datasources.find(auth.workspace, resource);
        if (!found) throw badRequest(`Resource '${resource}' not found`);
        const out: Record<string, unknown> = { type, resource };
        if (fixed !== undefined && fixed !== null && fixed !== '') {
          if (type !== 'PIPES:READ') throw badRequest('fixed_params can only be used with the PIPES:READ scope');
          if (typeof fixed !== 'object' || Array.isArray(fixed)) throw badRequest('fixed_params must be an object of parameter values');
          out.fixed_params = fixed;
        }
        if (filter !== undefined && filter !== null && filter !== '') {
          if (type !== 'DATASOURCES:READ' || typeof filter !== 'string') throw badRequest("filters can't only be applied to READ scope");
          out.filter = checkExpression(filter, 'filter');
        }
        scopes.push(out);
      }
      let rps: number | null = null;
      if (body.limits !== undefined && body.limits !== null) {
        const r = typeof body.limits === 'object' && !Array.isArray(body.limits) ? (body.limits as Record<string, unknown>).rps : undefined;
        if (r !== undefined && r !== null && (typeof r !== 'number' || !(r > 0))) throw badRequest('Invalid limits, rps must be a positive number');
        if (typeof r === 'number') rps = r;
      }
      const token = await s.access.mintJwt(auth.workspace, { name, exp, scopes, ...(rps !== null ? { limits: { rps } } : {}) });
      return { token, name, exp, scopes, limits: { rps } };
    }

    app.get<TokenRoute>('/v0/tokens/:token', onToken('APITokenHandler', 'A token'), async (req, reply) => {
      const auth = await authenticate(s, req);
      const ref = req.params.token;
      let t = await s.access.findToken(auth.workspace, ref);
      const asFile = !t && ref.endsWith('.token');
      if (asFile) t = await s.access.findToken(auth.workspace, ref.slice(0, -'.token'.length));
      // A token may read itself; others need ADMIN or TOKENS, which see every token, so an
      // unknown one is a 404 for them. For any other caller unknown and hidden look alike (403).
      if (!t && auth.canManageTokens) throw notFound(TOKEN_NOT_FOUND);
      if (!t || (!auth.canManageTokens && t.id !== auth.token.id)) throw forbidden(CANNOT_SEE);
      const names = await namesById(auth);
      if (asFile) return reply.type('text/plain; charset=utf-8').send(tokenDatafile(t, names));
      return tokenJson(auth, t, names);
    });

    app.put<TokenRoute>('/v0/tokens/:token', onToken('APITokenHandler', "Change a token's name, description or scopes"), async (req) => {
      const auth = await authenticate(s, req);
      const t = await managed(auth, req.params.token, 'change');
      const args = await readArgs(req, false);
      // Scopes given (also an empty `scope=`) replace all the token's scopes; a request that sends
      // none changes only what it sends (a new name keeps the scopes).
      const scopes = args.scopes === null ? t.scopes : grantable(auth, await toScopes(auth, args.scopes, 'update'));
      await keepsAnAdmin(auth, t, scopes);
      const name = args.values.name || t.name;
      if (name !== t.name) await checkNameFree(auth, name, t.id);
      const updated = await s.access.updateToken({ ...t, name, description: args.values.description ?? t.description, scopes });
      return tokenJson(auth, updated, await namesById(auth));
    });

    app.delete<TokenRoute>('/v0/tokens/:token', onToken('APITokenHandler', 'Delete a token'), async (req) => {
      const auth = await authenticate(s, req);
      const t = await managed(auth, req.params.token, 'delete');
      await keepsAnAdmin(auth, t, null);
      await s.access.deleteToken(t);
      followLocal(t.token, '');
      return { ok: true };
    });

    app.post<TokenRoute>('/v0/tokens/:token/refresh', onToken('APITokenRefreshHandler', 'Give a token a new value'), async (req) => {
      const auth = await authenticate(s, req);
      const t = await managed(auth, req.params.token, 'refresh');
      const refreshed = await s.access.refreshToken(t);
      followLocal(t.token, refreshed.token);
      return tokenJson(auth, refreshed, await namesById(auth));
    });

    app.get<TokenRoute>('/v0/tokens/:token/refresh', onToken('APITokenRefreshHandler', 'Refresh needs POST'), async (_req, reply) =>
      reply.code(405).type('application/json').send({ error: 'refresh must be done with POST' }),
    );
  };
