/**
 * The Query API, `GET|POST /v0/sql`: one user SELECT (or a template, when it starts with %)
 * through the SQL safety layer (src/sql), run on the engine's read-only Sessions and sent in the
 * format of its trailing FORMAT clause (else the `format` parameter, else JSON). A client that disconnects cancels its query.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { named } from '../route-docs.js';
import { badRequest, PipitError } from '../../basics/errors.js';
import { FORMAT_LIST, OUTPUT_FORMATS } from '../../sql/policy.js';
import type { ParamValue } from '../../template/index.js';
import { authenticate } from '../auth.js';
import { decoded, hasBody, isForm, isJson, queryArgs, rawStream, readAll } from '../body.js';
import { outputParams, sendQuery } from '../query-output.js';
import { parseUserJson } from '../../basics/input-limits.js';
import { notePipe } from '../../observability/context.js';

const GET_LIMIT = 8 * 1024;
const POST_LIMIT = 1024 * 1024;
/**
 * Without a FORMAT clause or `format` parameter the answer is seed 003's JSON QueryResponse (meta,
 * data, rows, statistics), which Tinybird's TypeScript SDK `sql()` parses.
 */
const DEFAULT_FORMAT = 'JSON';

/** Request arguments of the Query API itself, never template parameters (§4.2). */
const SQL_API_ARGS = new Set([
  'q',
  'format',
  'token',
  'from',
  'max_threads',
  'pipeline',
  'tag',
  'output_format_json_quote_64bit_integers',
  'output_format_parquet_string_as_string',
  'output_format_json_quote_denormals',
  'semver',
  'playground',
  'finalize_aggregations',
  'release_replacements',
  'time',
  'test',
  '__tb__semver',
  'explain',
  'debug',
  'template_parameters',
]);

const QUERY_API = { id: 'query_api', name: 'query_api' };

interface SqlRequest {
  q: string;
  /** Request arguments (query string and body), as sent. */
  params: Record<string, ParamValue>;
}

async function readRequest(req: FastifyRequest): Promise<SqlRequest> {
  const params: Record<string, ParamValue> = queryArgs(req);
  if (req.method === 'GET') {
    const q = params.q;
    if (typeof q !== 'string' || q.trim() === '') throw badRequest('missing q parameter. example q=select%201');
    if (Buffer.byteLength(q) > GET_LIMIT) throw badRequest('The maximum size for a SQL query is 8KB.');
    return { q, params };
  }
  const body = hasBody(req)
    ? await readAll(decoded(rawStream(req), req.headers['content-encoding']), POST_LIMIT).catch((err) => {
        if (err instanceof PipitError && err.code === 'payload_too_large') throw badRequest('The maximum size for a SQL query is 1MB.');
        throw err;
      })
    : Buffer.alloc(0);
  let q = typeof params.q === 'string' ? params.q : undefined;
  if (isJson(req) && body.length) {
    const json = parseUserJson(body.toString('utf8'), 'The request body should be a JSON object like {"q": "SELECT 1"}');
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw badRequest('The request body should be a JSON object like {"q": "SELECT 1"}');
    for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
      if (k === 'q') q = typeof v === 'string' ? v : undefined;
      else params[k] = v as ParamValue;
    }
  } else if (isForm(req) && /(?:^|&)q=/.test(body.toString('utf8'))) {
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) {
      if (k === 'q') q = v;
      else params[k] = v;
    }
  } else if (body.length) {
    // Raw SQL, whatever the Content-Type says (curl -d sends a form type).
    q = body.toString('utf8');
  }
  if (q === undefined || q.trim() === '') throw badRequest('The request body should contain a query');
  return { q, params };
}

/** The `format` parameter (seed 003: JSON, CSV, NDJSON, Parquet, ...), validated; undefined when absent. */
function formatParam(v: ParamValue | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  const f = typeof v === 'string' ? OUTPUT_FORMATS[v.toLowerCase()] : undefined;
  if (!f) throw badRequest(`Invalid format "${String(v)}", available ones: ${FORMAT_LIST}`);
  return f.name;
}

/** Template parameters: every argument that is not one of the API's own. */
export function templateParamsOf(params: Record<string, ParamValue>, reserved: ReadonlySet<string>): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const [k, v] of Object.entries(params)) if (!reserved.has(k)) out[k] = v;
  return out;
}

export function sqlRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      const auth = await authenticate(services, req, { jwt: true, reply });
      // Query API requests are recorded in pipe_stats_rt as the pipe `query_api` (Tinybird's convention).
      notePipe(req, QUERY_API);
      const { q, params } = await readRequest(req);
      let tplParams = templateParamsOf(params, SQL_API_ARGS);
      if (params.template_parameters !== undefined) {
        const extra = parseUserJson(String(params.template_parameters), 'template_parameters must be a well-formed JSON', 'template_parameters');
        if (extra && typeof extra === 'object' && !Array.isArray(extra)) tplParams = { ...tplParams, ...(extra as Record<string, ParamValue>) };
      }
      // A JWT's fixed_params win over the request's parameters (checkPinned refuses the rest).
      tplParams = auth.pinParams(tplParams);
      const { maxThreads, formatSettings } = outputParams(params);
      const requestedFormat = formatParam(params.format);
      let pipe;
      if (params.pipeline !== undefined) {
        pipe = await services.pipes.find(auth.workspace, String(params.pipeline));
        if (!pipe || !auth.canReadPipe(pipe.id)) throw new PipitError('forbidden', `Resource '${String(params.pipeline)}' not found`);
      }
      // Without parameters a template renders in test mode (placeholders), as Tinybird does.
      const prepared = await services.queries.prepare(auth, q, { params: tplParams, testMode: Object.keys(tplParams).length === 0, pipe, underscore: pipe });
      auth.checkPinned(prepared.tables, tplParams);

      if (params.explain === 'true') {
        const text = (await services.queries.collect({ ...prepared, sql: `EXPLAIN ${prepared.sql}` }, 'TSVRaw', req.id)).toString('utf8');
        return reply
          .type('application/json')
          .send({ debug_query: prepared.userNames(prepared.sql), query_explain: prepared.userNames(text), explain_error: '' });
      }
      return sendQuery(services, req, reply, prepared, {
        format: prepared.format ?? requestedFormat ?? DEFAULT_FORMAT,
        workspaceId: auth.workspace.id,
        maxThreads,
        formatSettings,
      });
    };
    app.get('/v0/sql', named('APIQueryHandler'), handler);
    app.post('/v0/sql', named('APIQueryHandler'), handler);
  };
}
