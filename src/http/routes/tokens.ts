/**
 * Tokens API (`/v0/tokens`, reference §7): static tokens (list, create, get — also as a `.token`
 * datafile —, change name/description/scopes, refresh, delete) and JWTs minted with
 * `expiration_time=`. Scopes name resources by name or id and are stored by id, so a rename
 * keeps them; the JSON shows names. ADMIN or TOKENS manage tokens; a token may not create, change,
 * refresh or delete a token that holds more than it does (Auth.holds: only ADMIN manages or grants
 * ADMIN), and ADMIN token values are not shown to TOKENS-only callers. The route parses a request
 * into a spec and shapes the JSON; TokenService (src/domain/token-service.ts) checks and applies.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { bodyLimit, named, pathParams, queryParams, type RouteSchema } from '../route-docs.js';
import type { TokenRecord } from '../../catalog/catalog.js';
import { type Auth, RESOURCE_SCOPES, TOKEN_HOST } from '../../domain/access.js';
import { READ_SCOPES, type ScopeSpec } from '../../domain/token-service.js';
import { badRequest, forbidden } from '../../basics/errors.js';
import { tbTime } from '../../basics/time.js';
import { authenticate } from '../auth.js';
import { hasBody, isJson, queryArgs, readBody } from '../body.js';
import { parseUserJson } from '../../basics/input-limits.js';
import { tokenDatafile } from '../../datafile/records.js';

const CANNOT_LIST = 'Token has not enough permissions to get information about Tokens';

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
  for (const [k, v] of Object.entries(queryArgs(req))) add(k, v);
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

/** `POST /v0/tokens`: a static token, or with `expiration_time` a JWT (its other arguments may be in the query, a form or JSON: readArgs). */
type CreateTokenRoute = { Querystring: { expiration_time?: string; name?: string; description?: string; scope?: string | string[] } };
const createToken: RouteSchema = {
  summary: 'Create a static token (scope=...) or a JWT (expiration_time=)',
  querystring: queryParams({
    expiration_time: 'Unix time at which the JWT expires: with it the answer is a signed JWT (not stored)',
    name: 'Token name',
    description: 'Token description',
    scope: {
      type: ['string', 'array'],
      items: { type: 'string' },
      description: 'A scope (repeated for several): `ADMIN`, `DATASOURCES:READ:<name>[:<filter>]`, ...',
    },
  }),
  consumes: ['application/x-www-form-urlencoded'],
};

export const tokenRoutes =
  (s: Services): FastifyPluginAsync =>
  async (app) => {
    const onToken = (handler: string, summary: string) => named(handler, { summary, params: pathParams('token') });
    // Form, JSON and SQL bodies of these routes (readBody).
    bodyLimit(app, 1024 * 1024);
    /** Token JSON (§7.3): scopes with resource names; the value only when the caller may see it (ADMIN sees every value but the user's admin token's; others do not see ADMIN tokens' values). */
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
      if (auth.seesValueOf(t)) json.token = t.token;
      json.scopes = scopes;
      json.name = t.name;
      json.description = t.description ?? '';
      json.origin = t.origin ? { type: t.origin.type, ...(t.origin.resourceId ? { resource_id: t.origin.resourceId } : {}) } : { type: 'C' };
      json.host = TOKEN_HOST;
      // Seed 003's Token has created_at (Tinybird's own JSON does not; clients ignore extra fields).
      json.created_at = tbTime(t.createdAt);
      return json;
    }

    app.get('/v0/tokens', named('APITokensHandler', { summary: "The workspace's tokens" }), async (req) => {
      const auth = await authenticate(s, req);
      if (!auth.canManageTokens) throw forbidden(CANNOT_LIST);
      const names = await s.tokens.resourceNames(auth.workspace);
      return { tokens: (await s.tokens.list(auth)).map((t) => tokenJson(auth, t, names)) };
    });

    app.post<CreateTokenRoute>('/v0/tokens', named('APITokensHandler', createToken), async (req) => {
      const auth = await authenticate(s, req);
      auth.requireTokens();
      const jwt = req.query.expiration_time !== undefined;
      const args = await readArgs(req, jwt);
      const { values } = args;
      if (jwt) {
        // `POST /v0/tokens?expiration_time=<unix>` with `{"name"?, "scopes": [...], "limits"?}`: a signed JWT, not stored.
        const body = args.json ?? {};
        const name = typeof body.name === 'string' && body.name ? body.name : values.name;
        return s.tokens.mintJwt(auth, { expirationTime: values.expiration_time, name, scopes: body.scopes, limits: body.limits });
      }
      const t = await s.tokens.create(auth, {
        name: values.name,
        description: values.description,
        scopes: args.scopes,
        origin: values.origin,
        resourceId: values.resource_id,
      });
      return tokenJson(auth, t, await s.tokens.resourceNames(auth.workspace));
    });

    app.get<TokenRoute>('/v0/tokens/:token', onToken('APITokenHandler', 'A token'), async (req, reply) => {
      const auth = await authenticate(s, req);
      const ref = req.params.token;
      // `<name>.token` is the token's datafile.
      const { token: t, viaFallback: asFile } = await s.tokens.readable(auth, ref, ref.endsWith('.token') ? ref.slice(0, -'.token'.length) : undefined);
      const names = await s.tokens.resourceNames(auth.workspace);
      if (asFile) return reply.type('text/plain; charset=utf-8').send(tokenDatafile(t, names));
      return tokenJson(auth, t, names);
    });

    app.put<TokenRoute>('/v0/tokens/:token', onToken('APITokenHandler', "Change a token's name, description or scopes"), async (req) => {
      const auth = await authenticate(s, req);
      const t = await s.tokens.managed(auth, req.params.token, 'change');
      const args = await readArgs(req, false);
      const updated = await s.tokens.update(auth, t, { name: args.values.name, description: args.values.description, scopes: args.scopes });
      return tokenJson(auth, updated, await s.tokens.resourceNames(auth.workspace));
    });

    app.delete<TokenRoute>('/v0/tokens/:token', onToken('APITokenHandler', 'Delete a token'), async (req) => {
      const auth = await authenticate(s, req);
      await s.tokens.delete(auth, req.params.token);
      return { ok: true };
    });

    app.post<TokenRoute>('/v0/tokens/:token/refresh', onToken('APITokenRefreshHandler', 'Give a token a new value'), async (req) => {
      const auth = await authenticate(s, req);
      const refreshed = await s.tokens.refresh(auth, req.params.token);
      return tokenJson(auth, refreshed, await s.tokens.resourceNames(auth.workspace));
    });

    app.get<TokenRoute>('/v0/tokens/:token/refresh', onToken('APITokenRefreshHandler', 'Refresh needs POST'), async (_req, reply) =>
      reply.code(405).type('application/json').send({ error: 'refresh must be done with POST' }),
    );
  };
