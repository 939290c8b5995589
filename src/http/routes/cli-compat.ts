/**
 * Auxiliary routes the classic `tb` CLI calls (reference clients.md §3.4), so `tb` works against
 * Pipit: `/v0/sql_tables` (tables a query reads, without resolving them: `tb push` asks before the
 * resources exist), `/v0/sql_replace`, `/v0/sql_format`, `/v0/dependencies`, `/v0/regions`,
 * `/v0/environments` (Pipit has no branches: an empty list) and `/examples/query.http`.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { bodyLimit, named } from '../route-docs.js';
import { badRequest, notFound, PipitError } from '../../basics/errors.js';
import { parseUserJson } from '../../basics/input-limits.js';
import { readsDatasource } from '../../domain/pipe-service.js';
import { analyzeQuery, type ResolvedTable } from '../../sql/analyzer.js';
import { renameTableInSql } from '../../sql/rename.js';
import { isTemplate, render, templateTables } from '../../template/index.js';
import { authenticate } from '../auth.js';
import { hasBody, queryParams, readBody } from '../body.js';

/** Query string and form body, one value per key. */
async function args(req: FastifyRequest): Promise<Record<string, string>> {
  const out: Record<string, string> = { ...queryParams(req) };
  if (hasBody(req)) {
    const text = (await readBody(req)).toString('utf8');
    if (/json/i.test(req.headers['content-type'] ?? '')) {
      const obj = parseUserJson(text || '{}', 'The request body should be a JSON object');
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw badRequest('The request body should be a JSON object');
      for (const [k, v] of Object.entries(obj)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
    } else for (const [k, v] of new URLSearchParams(text)) out[k] = v;
  }
  return out;
}

/** `[database, table]` of every table the SQL reads, unresolved (`''` for workspace resources). */
export function sqlTables(sql: string, withTableFunctions: boolean): Array<[string, string]> {
  let text = sql;
  const extra: string[] = [];
  if (isTemplate(sql)) {
    text = render(sql, {}, { testMode: true }).sql;
    extra.push(...templateTables(sql));
  }
  const seen: Array<[string, string]> = [];
  const add = (db: string, name: string) => {
    if (!seen.some(([d, n]) => d === db && n === name)) seen.push([db, name]);
  };
  const any = (name: string): ResolvedTable => ({ name, kind: 'datasource', id: '', sql: '`x`' });
  const analyzed = analyzeQuery(text, {
    resolve: any,
    resolveQualified: (db, name) => ({ name: `${db}.${name}`, kind: 'service', id: '', sql: '`x`' }),
    databases: new Set(),
  });
  for (const t of analyzed.tables) {
    const dot = t.kind === 'service' ? t.name.indexOf('.') : -1;
    if (dot > 0) add(t.name.slice(0, dot), t.name.slice(dot + 1));
    else if (t.kind === 'system') add('system', t.name);
    else add('', t.name);
  }
  for (const t of extra) add('', t);
  if (withTableFunctions) {
    for (const m of text.matchAll(/\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(/gi)) add('', m[1]);
  }
  return seen;
}

export function cliCompatRoutes(s: Services): FastifyPluginAsync {
  return async (app) => {
    // Form, JSON and SQL bodies of these routes (readBody).
    bodyLimit(app, 1024 * 1024);
    app.post('/v0/sql_tables', named('APIQueryHandler'), async (req) => {
      await authenticate(s, req);
      const a = await args(req);
      if (!a.q) throw badRequest('The "q" parameter is required');
      try {
        return { tables: sqlTables(a.q, a.table_functions === 'true') };
      } catch (e) {
        // raising=false (tb's default): an unparsable query reads nothing as far as tb cares.
        if (a.raising === 'true') throw e instanceof PipitError ? e : badRequest((e as Error).message);
        return { tables: [] };
      }
    });

    app.post('/v0/sql_replace', named('APIQueryHandler'), async (req) => {
      await authenticate(s, req);
      const a = await args(req);
      if (!a.q) throw badRequest('The "q" parameter is required');
      let pairs: unknown;
      try {
        pairs = a.replacements ? JSON.parse(a.replacements) : [];
      } catch {
        throw badRequest('"replacements" must be a JSON list of [[database, table], [database, table]] pairs');
      }
      if (!Array.isArray(pairs)) throw badRequest('"replacements" must be a JSON list');
      let q = a.q;
      for (const p of pairs) {
        if (!Array.isArray(p) || p.length !== 2) throw badRequest('Each replacement is a pair: [[database, table], [database, table]]');
        const name = (x: unknown) => (Array.isArray(x) ? String(x[x.length - 1]) : String(x));
        const next = renameTableInSql(q, name(p[0]), name(p[1]));
        if (next === null) throw badRequest(`Can not replace "${name(p[0])}" in this query`);
        q = next;
      }
      return { query: q };
    });

    // Pipit does not reformat SQL: the query comes back as sent (so `tb fmt` leaves it as written).
    const format = async (req: FastifyRequest) => {
      await authenticate(s, req);
      const a = await args(req);
      if (a.q === undefined) throw badRequest('The "q" parameter is required');
      return { q: a.q };
    };
    app.get('/v0/sql_format', named('APIQueryHandler'), format);
    app.post('/v0/sql_format', named('APIQueryHandler'), format);

    app.get('/v0/dependencies', async (req) => {
      const auth = await authenticate(s, req);
      const a = queryParams(req);
      const [datasources, pipes] = await Promise.all([s.datasources.list(auth.workspace), s.pipes.list(auth.workspace)]);
      const visible = datasources.filter((d) => auth.seesDatasource(d, pipes));
      const dependencies: Record<string, string[]> = {};
      const match = a.match ? new RegExp(a.match.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')) : null;
      for (const ds of visible) {
        if (a.datasource && ds.name !== a.datasource) continue;
        if (match && !match.test(ds.name)) continue;
        const users = pipes.filter((p) => readsDatasource(p, ds.name) && auth.canReadPipe(p.id)).map((p) => p.name);
        if (a.pipe && !users.includes(a.pipe)) continue;
        if (a.no_deps === 'true' && users.length) continue;
        dependencies[ds.name] = users;
      }
      return { dependencies, incompatible_datasources: {} };
    });

    app.get('/v0/regions', async (req) => {
      await authenticate(s, req);
      const host = s.config.apiHost;
      return { regions: [{ name: 'pipit', provider: 'pipit', api_host: host, host, default_password: '' }] };
    });

    // Branches (environments) do not exist in Pipit: none are listed; `/v0/environments/*` answers
    // that branches are not supported (FORWARD_ONLY in local.ts).
    app.get('/v0/environments', async (req) => {
      await authenticate(s, req);
      return { environments: [] };
    });

    /** The request `tb` prints after a push: how to call the pipe (or a query) over HTTP. */
    app.get('/examples/query.http', async (req, reply) => {
      const auth = await authenticate(s, req);
      const a = queryParams(req);
      const fmt = (a.format || 'json').toLowerCase();
      if (!['json', 'csv', 'ndjson', 'parquet'].includes(fmt)) throw badRequest(`Format '${fmt}' not supported`);
      const host = s.config.apiHost;
      let url: string;
      if (a.pipe) {
        const pipe = await s.pipes.find(auth.workspace, a.pipe);
        if (!pipe || !auth.canReadPipe(pipe.id)) throw notFound(`The pipe '${a.pipe}' does not exist`);
        const q = a.q ? `&q=${encodeURIComponent(a.q)}` : '';
        url = `${host}/v0/pipes/${encodeURIComponent(pipe.name)}.${fmt}?token=${encodeURIComponent(a.token ?? '<token>')}${q}`;
      } else {
        if (!a.q) throw badRequest('Either "pipe" or "q" is required');
        url = `${host}/v0/sql?q=${encodeURIComponent(a.q)}&token=${encodeURIComponent(a.token ?? '<token>')}`;
      }
      return reply.type('text/plain; charset=utf-8').send(`GET ${url}\n`);
    });
  };
}
