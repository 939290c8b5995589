/**
 * The Pipes API (`/v0/pipes`): pipes and nodes, publishing API Endpoints, endpoint data in every
 * format, explain, and the OpenAPI document. Node SQL is checked by the SQL safety layer when it
 * is saved (which also yields its dependencies) and again, rendered, on every request.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { bodyLimit, boolParam, named } from '../route-docs.js';
import * as S from './pipe-schemas.js';
import type { NodeRoute, PipeRoute } from './pipe-schemas.js';
import type { NodeRecord, NodeType, PipeRecord } from '../../catalog/catalog.js';
import type { Auth } from '../../domain/access.js';
import type { CopySettings } from '../../domain/copy-service.js';
import type { NodeRole, NodeSpec } from '../../domain/deploy-service.js';
import { badRequest, forbidden, notFound, PipitError } from '../../basics/errors.js';
import { NODE_TYPES, pipeNotFound } from '../../domain/pipe-service.js';
import type { MaterializeOptions } from '../../domain/materialize-service.js';
import { nowIso, tbTime } from '../../basics/time.js';
import { isTemplate, type ParamValue } from '../../template/index.js';
import { authenticate } from '../auth.js';
import { hasBody, isForm, isJson, jsonObject, jsonText, queryArgs, readBody } from '../body.js';
import { outputParams, sendQuery } from '../query-output.js';
import { routeNotFound } from '../errors.js';
import { limitEndpoint } from '../rate-limit.js';
import { nodeJson, nodeParams, pipeJson } from './pipe-json.js';
import { pipeDatafile } from '../../datafile/records.js';
import { jobJson } from './jobs.js';
import { sinkSettings } from './sinks.js';
import { parseUserJson } from '../../basics/input-limits.js';
import { notePipe } from '../../observability/context.js';

const Q_LIMIT = 8 * 1024;
const POST_Q_LIMIT = 1024 * 1024;

/** Endpoint formats and the engine format each one is. */
const ENDPOINT_FORMATS: Record<string, string> = { json: 'JSON', csv: 'CSVWithNames', ndjson: 'JSONEachRow', parquet: 'Parquet', prometheus: 'Prometheus' };

const EXPLAIN_FORBIDDEN = "Forbidden. Provided token doesn't have permissions to run the explain plan, it needs ADMIN or PIPE:READ and DATASOURCE:READ";

/** The node a pipe-level explain is about: the endpoint, materialized, copy or sink node, else the last. */
function relevantNode(pipe: PipeRecord): NodeRecord | undefined {
  return (
    pipe.nodes.find((n) => n.id === pipe.endpoint) ??
    pipe.nodes.find((n) => n.nodeType === 'materialized' || n.nodeType === 'copy' || n.nodeType === 'sink') ??
    pipe.nodes[pipe.nodes.length - 1]
  );
}

/** Arguments of the endpoint request itself, never template parameters. */
const ENDPOINT_ARGS = new Set(['token', 'q']);

/** An endpoint request's template parameters (what pipe_stats_rt records). */
function templateArgs(args: Record<string, ParamValue>): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const k in args) if (!ENDPOINT_ARGS.has(k)) out[k] = args[k];
  return out;
}

/**
 * The body as a JSON object, when it is one: Content-Type JSON (then it must be one object), or
 * a body that parses as a JSON object whatever its type says (`curl -d '{...}'` sends a form
 * type). Null for anything else: a form, raw SQL, a node id.
 */
function bodyJson(req: FastifyRequest, b: Buffer, message: string): Record<string, unknown> | null {
  const text = b.toString('utf8');
  if (isJson(req)) return text.trim() ? jsonObject(text, message) : null;
  if (!/^\s*\{/.test(text)) return null;
  let v: unknown;
  try {
    v = parseUserJson(text, message);
  } catch {
    return null;
  }
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

async function body(req: FastifyRequest): Promise<Buffer> {
  return hasBody(req) ? readBody(req) : Buffer.alloc(0);
}

function str(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.length ? String(v[v.length - 1]) : undefined;
  return String(v);
}

function boolArg(v: unknown, name: string): boolean | undefined {
  const s = str(v);
  if (s === undefined || s === '') return undefined;
  if (s === 'true') return true;
  if (s === 'false') return false;
  throw badRequest(`The parameter "${name}" value "${s}" is invalid. Valid values are: 'true', 'false'`);
}

/** Copy settings of a JSON node as `tb push` sends it. */
const pushedCopySettings = (raw: Record<string, unknown>): CopySettings => ({
  target: str(raw.target_datasource),
  cron: str(raw.copy_schedule ?? raw.schedule_cron),
  mode: str(raw.mode ?? raw.copy_mode),
});

function listArg(v: unknown): string[] | undefined {
  const s = str(v);
  return s
    ? s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : undefined;
}

export function pipeRoutes(services: Services): FastifyPluginAsync {
  const s = services;
  const apiHost = () => s.config.apiHost;

  function nodeTypeOf(t: unknown): NodeType {
    const type = (str(t) ?? 'standard').toLowerCase();
    if (type === 'default') return 'standard';
    if (!NODE_TYPES.includes(type as NodeType)) throw badRequest(`Invalid node type "${type}". Valid types are: ${NODE_TYPES.join(', ')}`);
    return type as NodeType;
  }

  /**
   * A node's role from its type and the arguments that go with it (a JSON node of `tb push`, or
   * the node request's arguments); `copy` reads the copy settings under their two spellings.
   */
  function roleOf(type: NodeType, a: Record<string, unknown>, copy: (a: Record<string, unknown>) => CopySettings): NodeRole {
    if (type === 'materialized') return { type, materialize: materializeOptions(a) };
    if (type === 'copy') return { type, copy: copy(a) };
    if (type === 'sink') return { type, sink: sinkSettings(a) };
    return { type };
  }

  /** Materialization options from request arguments (or a JSON node of `tb push`). */
  function materializeOptions(a: Record<string, unknown>): MaterializeOptions {
    const engineArgs: Record<string, string> = {};
    for (const [k, v] of Object.entries(a)) if (k.startsWith('engine_') && v !== undefined && v !== null) engineArgs[k] = String(v);
    const subset = str(a.populate_subset);
    if (subset !== undefined && !Number.isFinite(Number(subset))) throw badRequest('populate_subset must be a number');
    return {
      datasource: str(a.datasource) ?? '',
      override: boolArg(a.override_datasource, 'override_datasource') ?? false,
      engine: str(a.engine),
      engineArgs,
      populate: boolArg(a.populate, 'populate') ?? false,
      populateSubset: subset !== undefined ? Number(subset) : undefined,
      populateCondition: str(a.populate_condition),
      unlinkOnPopulateError: boolArg(a.unlink_on_populate_error, 'unlink_on_populate_error') ?? false,
    };
  }

  /** Node JSON plus what a materialization created. */
  async function materializedJson(
    auth: Auth,
    r: { pipe: PipeRecord; target: { id: string; name: string }; created: boolean; job?: { id: string } },
    nodeId: string,
  ) {
    const out: Record<string, unknown> = {
      ...nodeJson(s.pipes.node(r.pipe, nodeId)),
      datasource: { id: r.target.id, name: r.target.name },
      created_datasource: r.created,
    };
    if (r.job) {
      const job = await s.jobs.get(auth.workspace, r.job.id);
      out.job = { id: job.id, job_id: job.id, kind: job.kind, status: job.status, job_url: `${apiHost()}/v0/jobs/${job.id}` };
    }
    return out;
  }

  async function readablePipe(auth: Auth, nameOrId: string): Promise<PipeRecord> {
    const pipe = await s.pipes.find(auth.workspace, nameOrId);
    if (!pipe) throw pipeNotFound(nameOrId);
    if (!auth.canReadPipe(pipe.id)) throw forbidden(`token has no READ scope for ${nameOrId}`);
    return pipe;
  }

  async function writablePipe(auth: Auth, nameOrId: string): Promise<PipeRecord> {
    auth.requirePipesCreate();
    const pipe = await s.pipes.find(auth.workspace, nameOrId);
    if (!pipe) throw pipeNotFound(nameOrId);
    return pipe;
  }

  const json = (auth: Auth, p: PipeRecord) => pipeJson(p, auth, { apiHost: apiHost() });

  /**
   * A published pipe's JSON, with `token` when exactly one token reads the pipe (seed 001: to
   * share the endpoint) and the caller holds every scope of that token (the value grants no more
   * than the caller has).
   */
  async function publishedJson(auth: Auth, p: PipeRecord): Promise<Record<string, unknown>> {
    const out = json(auth, p);
    const readers = (await s.access.listTokens(auth.workspace)).filter((t) => t.scopes.some((sc) => sc.type === 'PIPES:READ' && sc.resource === p.id));
    if (readers.length === 1 && auth.holds(readers[0].scopes)) out.token = readers[0].token;
    return out;
  }

  /** Endpoint data: `GET|POST /v0/pipes/:name.:format`. */
  async function endpointData(req: FastifyRequest, reply: FastifyReply, name: string, ext: string): Promise<FastifyReply> {
    const format = ENDPOINT_FORMATS[ext.toLowerCase()];
    if (!format) throw badRequest(`Format '${ext}' not supported, it must be one of csv, json, ndjson, parquet, prometheus`);
    const auth = await authenticate(s, req, { jwt: true, reply });
    const pipe = await s.pipes.find(auth.workspace, name);
    if (!pipe) throw notFound(`The pipe '${name}' does not exist`);
    if (!auth.canReadPipe(pipe.id)) throw forbidden("The token you have provided doesn't have access to this resource");
    if (!pipe.endpoint) throw notFound(`The pipe '${pipe.name}' does not have an endpoint yet`);
    const args: Record<string, ParamValue> = queryArgs(req);
    let params = templateArgs(args);
    // pipe_stats_rt: POST calls do not record their parameters (seed 001).
    notePipe(req, pipe, req.method === 'GET' ? params : undefined);
    limitEndpoint(s, reply, auth.workspace.id, pipe.id);
    if (req.method === 'POST') {
      const b = await body(req);
      if (b.length && isJson(req)) {
        const parsed = parseUserJson(b.toString('utf8'), 'The request body should be a JSON object with the parameters');
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('The request body should be a JSON object with the parameters');
        Object.assign(args, parsed as Record<string, ParamValue>);
      } else if (b.length) {
        const form = new URLSearchParams(b.toString('utf8'));
        for (const k of new Set(form.keys())) {
          const all = form.getAll(k);
          args[k] = all.length > 1 ? all : all[0];
        }
      }
      params = templateArgs(args);
    }
    // A JWT's fixed_params for this pipe win over anything the request sends.
    params = auth.pinParams(params, pipe.id);
    const q = str(args.q);
    let sql = `SELECT * FROM \`${pipe.name}\``;
    if (q !== undefined && q.trim() !== '') {
      if (isTemplate(q)) throw badRequest("'q' parameter doesn't support templates");
      // 8 KB in a URL; POST is how a longer query is sent (1 MB, as /v0/sql).
      if (req.method !== 'POST' && Buffer.byteLength(q) > Q_LIMIT) throw badRequest('The maximum size for a SQL query is 8KB.');
      if (Buffer.byteLength(q) > POST_Q_LIMIT) throw badRequest('The maximum size for a SQL query is 1MB.');
      sql = q;
    }
    const { maxThreads, formatSettings } = outputParams(args);
    const prepared = await s.queries.prepare(auth, sql, { params, testMode: false, underscore: pipe });
    auth.checkPinned(prepared.tables, params);
    return sendQuery(s, req, reply, prepared, { format, workspaceId: auth.workspace.id, maxThreads, formatSettings });
  }

  /**
   * Explain a node; without a node name, the pipe's most relevant one (seed 001): its endpoint,
   * materialized, copy or sink node, else the last node. ADMIN and PIPES:CREATE explain any pipe;
   * otherwise the token needs PIPES:READ on the pipe and DATASOURCES:READ on every data source the
   * node reads (the plan shows the SQL and what it reads), so the node is checked as the token's
   * own query would be.
   */
  async function explain(req: FastifyRequest, reply: FastifyReply, pipeName: string, nodeName?: string): Promise<FastifyReply> {
    const auth = await authenticate(s, req);
    const pipe = await readablePipe(auth, pipeName);
    const node = nodeName ? s.pipes.node(pipe, nodeName) : relevantNode(pipe);
    if (!node) throw badRequest('Could not get a node to run the explain plan');
    const params: Record<string, ParamValue> = {};
    for (const [k, v] of Object.entries(queryArgs(req))) if (!ENDPOINT_ARGS.has(k)) params[k] = v;
    const index = pipe.nodes.findIndex((n) => n.id === node.id);
    let prepared;
    try {
      prepared = await s.queries.prepare(auth, node.sql, {
        params,
        testMode: Object.keys(params).length === 0,
        pipe,
        nodeLimit: index,
        savedNode: auth.canCreatePipes,
      });
    } catch (err) {
      if (err instanceof PipitError && err.code === 'forbidden' && !auth.canCreatePipes) throw forbidden(EXPLAIN_FORBIDDEN);
      throw err;
    }
    const text = (await s.queries.collect({ ...prepared, sql: `EXPLAIN ${prepared.sql}` }, 'TSVRaw', req.id)).toString('utf8');
    return reply.type('application/json').send({ debug_query: prepared.userNames(prepared.sql), query_explain: prepared.userNames(text) });
  }

  return async (app) => {
    // Form, JSON and SQL bodies of these routes (readBody).

    bodyLimit(app, 8 * 1024 * 1024);
    /** Arguments from the query string and a form body. */
    const formArgs = async (req: FastifyRequest): Promise<Record<string, unknown>> => {
      const b = await body(req);
      const a: Record<string, unknown> = { ...queryArgs(req) };
      if (b.length) for (const [k, v] of new URLSearchParams(b.toString('utf8'))) a[k] = v;
      return a;
    };

    /** The caller, the pipe it may change and the node named in the path. */
    const writableNode = async (req: FastifyRequest<NodeRoute>): Promise<{ auth: Auth; pipe: PipeRecord; node: NodeRecord }> => {
      const auth = await authenticate(s, req);
      const { pipe: pipeName, node: nodeName } = req.params;
      const pipe = await writablePipe(auth, pipeName);
      return { auth, pipe, node: s.pipes.node(pipe, nodeName) };
    };

    app.get('/v0/pipes/openapi.json', named('APIPipeOpenAPIHandler', { summary: "OpenAPI 3 description of the workspace's endpoints" }), async (req) => {
      const auth = await authenticate(s, req);
      const pipes = (await s.pipes.list(auth.workspace)).filter((p) => p.endpoint && auth.canReadPipe(p.id));
      return openApi(pipes, apiHost());
    });

    app.get('/v0/pipes', named('APIPipeListHandler', S.listPipes), async (req) => {
      const auth = await authenticate(s, req);
      const args = queryArgs(req);
      const dependencies = boolArg(args.dependencies, 'dependencies') ?? false;
      const pipes = (await s.pipes.list(auth.workspace)).filter((p) => auth.canReadPipe(p.id));
      return {
        pipes: pipes.map((p) => pipeJson(p, auth, { apiHost: apiHost(), dependencies, attrs: listArg(args.attrs), nodeAttrs: listArg(args.node_attrs) })),
      };
    });

    app.post('/v0/pipes', named('APIPipeListHandler', S.createPipe), async (req) => {
      const auth = await authenticate(s, req);
      auth.requirePipesCreate();
      const args = queryArgs(req);
      const b = await body(req);
      let name = str(args.name);
      let description = str(args.description) ?? null;
      let force = boolArg(args.force, 'force') ?? false;
      let from = str(args.from);
      let nodes: NodeSpec[] = [];
      const doc = bodyJson(req, b, 'The request body should be a JSON object with the pipe');
      if (doc) {
        name = jsonText(doc, 'name') ?? name;
        description = jsonText(doc, 'description') ?? description;
        if (doc.force !== undefined) force = boolArg(String(doc.force), 'force') ?? force;
        if (doc.nodes !== undefined && doc.nodes !== null && !Array.isArray(doc.nodes)) throw badRequest('nodes must be a list');
        nodes = ((doc.nodes as unknown[] | null | undefined) ?? []).map((n, i) => {
          if (!n || typeof n !== 'object' || Array.isArray(n)) throw badRequest(`Invalid "nodes[${i}]": every node must be a JSON object`);
          const o = n as Record<string, unknown>;
          const sql = jsonText(o, 'sql', `nodes[${i}].sql`);
          const type = nodeTypeOf(jsonText(o, 'type', `nodes[${i}].type`) ?? jsonText(o, 'node_type', `nodes[${i}].node_type`));
          if (typeof sql !== 'string') throw badRequest('Every node needs its sql');
          return {
            name: jsonText(o, 'name', `nodes[${i}].name`),
            sql,
            description: jsonText(o, 'description', `nodes[${i}].description`) ?? null,
            role: roleOf(type, o, pushedCopySettings),
          };
        });
      } else {
        const form = b.length && isForm(req) ? Object.fromEntries(new URLSearchParams(b.toString('utf8'))) : {};
        name = name ?? form.name;
        description = description ?? form.description ?? null;
        if (form.force !== undefined && args.force === undefined) force = boolArg(form.force, 'force') ?? false;
        const sql = str(args.sql) ?? form.sql;
        from = from ?? form.from;
        if (from) {
          const src = await readablePipe(auth, from);
          nodes = src.nodes.map((n) => ({ name: n.name, sql: n.sql, description: n.description, role: roleOf(n.nodeType, {}, pushedCopySettings) }));
        } else if (sql !== undefined) nodes = [{ sql, description: null, role: { type: 'standard' } }];
      }
      if (!name) throw badRequest('The pipe needs a name');
      const parent = from ? ((await s.pipes.find(auth.workspace, from))?.id ?? null) : null;
      // force=true overwrites a pipe of that name (`tb push --force`, seed 001's `from=`); `tb push`
      // sends materialized, copy and sink nodes with their settings: the deploy is whole or nothing.
      return json(auth, await s.deploy.deploy(auth, { name, description, nodes, force, parent }, req.id));
    });

    /**
     * A node request: the SQL is the raw body (seed 001) or the `sql` of a JSON body
     * `{name, sql, description, ...}` (seed 003), whose other fields count as arguments (over the
     * query string's). `sql` is undefined when none was sent.
     */
    const nodeRequest = async (req: FastifyRequest): Promise<{ args: Record<string, unknown>; sql?: string }> => {
      const args: Record<string, unknown> = queryArgs(req);
      const b = await body(req);
      const doc = bodyJson(req, b, 'The request body should be the SQL of the node, or a JSON object like {"name": "...", "sql": "...", "description": "..."}');
      if (!doc) {
        const text = b.toString('utf8');
        return { args, sql: text.trim() ? text : undefined };
      }
      for (const k of ['name', 'description', 'type']) jsonText(doc, k);
      const sql = jsonText(doc, 'sql');
      for (const [k, v] of Object.entries(doc)) if (k !== 'sql' && v !== undefined && v !== null) args[k] = v;
      return { args, sql: sql?.trim() ? sql : undefined };
    };

    // Append a node: the SQL is the request body (or its JSON's `sql`).
    app.post<PipeRoute>('/v0/pipes/:pipe/nodes', named('APIPipeNodeAppendHandler', S.appendNode), async (req) => {
      const auth = await authenticate(s, req);
      const pipe = await writablePipe(auth, req.params.pipe);
      const { args, sql } = await nodeRequest(req);
      if (sql === undefined) throw badRequest('The SQL of a node can not be empty');
      const role = roleOf(nodeTypeOf(args.type), args, (a) => ({
        target: str(a.target_datasource),
        cron: str(a.schedule_cron ?? a.copy_schedule),
        mode: str(a.mode),
      }));
      if (role.type === 'materialized' && !role.materialize.datasource)
        throw badRequest('The "datasource" parameter is required when the node type is materialized');
      const r = await s.deploy.appendNode(auth, pipe, { name: str(args.name), sql, description: str(args.description) ?? null, role }, req.id);
      return r.materialized ? materializedJson(auth, r.materialized, r.node.id) : nodeJson(r.node);
    });

    app.put<NodeRoute>('/v0/pipes/:pipe/nodes/:node', named('APIPipeNodeHandler', S.updateNode), async (req) => {
      const { auth, pipe, node } = await writableNode(req);
      const index = pipe.nodes.findIndex((n) => n.id === node.id);
      const req2 = await nodeRequest(req);
      const args = req2.args;
      const sql = req2.sql ?? node.sql;
      const newName = str(args.name);
      if (newName && newName !== node.name) {
        if (pipe.nodes.some((n) => n.name === newName))
          throw new PipitError('conflict', `Node name "${newName}" already exists in pipe. Node names must be unique within a given pipe.`);
        s.pipes.newNode({ name: pipe.name, nodes: [] }, { name: newName, sql, dependencies: [] });
      }
      if (sql !== node.sql || (newName && newName !== node.name)) await s.deploy.checkFeeds(auth, [pipe.name]);
      const dependencies = await s.deploy.checkNode(auth, pipe, index, sql, req.id, node.sql);
      const updated: NodeRecord = {
        ...node,
        name: newName || node.name,
        sql,
        description: str(args.description) ?? node.description,
        dependencies,
        updatedAt: nowIso(),
      };
      const saved = await s.pipes.save(auth.workspace, { ...pipe, nodes: pipe.nodes.map((n) => (n.id === node.id ? updated : n)) });
      return nodeJson(s.pipes.node(saved, node.id));
    });

    app.delete<NodeRoute>(
      '/v0/pipes/:pipe/nodes/:node',
      named('APIPipeNodeHandler', S.nodeAction('Remove a node (not the published one)')),
      async (req, reply) => {
        const { auth, pipe, node } = await writableNode(req);
        if (pipe.endpoint === node.id) throw badRequest("The node is published. Published nodes can't be removed");
        await s.pipes.save(auth.workspace, { ...pipe, nodes: pipe.nodes.filter((n) => n.id !== node.id) });
        return reply.code(204).send();
      },
    );

    app.post<NodeRoute>(
      '/v0/pipes/:pipe/nodes/:node/endpoint',
      named('APIPipeNodeEndpointHandler', S.nodeAction('Publish a node as the API Endpoint')),
      async (req) => {
        const auth = await authenticate(s, req);
        const { pipe: pipeName, node: ref } = req.params;
        const pipe = await writablePipe(auth, pipeName);
        const node = s.pipes.publishable(pipe, ref);
        await s.deploy.checkFeeds(auth, [pipe.name]);
        return publishedJson(auth, await s.pipes.publish(auth.workspace, pipe, node));
      },
    );

    app.delete<NodeRoute>(
      '/v0/pipes/:pipe/nodes/:node/endpoint',
      named('APIPipeNodeEndpointHandler', S.nodeAction('Unpublish the endpoint node')),
      async (req) => {
        const { auth, pipe, node } = await writableNode(req);
        await s.deploy.checkFeeds(auth, [pipe.name]);
        return json(auth, await s.pipes.unpublish(auth.workspace, pipe, node));
      },
    );

    // Legacy publish: the body is the node id (or name).
    app.put<PipeRoute>(
      '/v0/pipes/:pipe/endpoint',
      named('APIPipeEndpointHandler', { ...S.pipeAction('Publish a node (legacy): the body is its id or name'), consumes: ['text/plain'] }),
      async (req) => {
        const auth = await authenticate(s, req);
        const pipe = await writablePipe(auth, req.params.pipe);
        const ref = (await body(req)).toString('utf8').trim();
        if (!ref) throw badRequest('The body should contain the id of the node to publish');
        const node = s.pipes.publishable(pipe, ref);
        await s.deploy.checkFeeds(auth, [pipe.name]);
        return publishedJson(auth, await s.pipes.publish(auth.workspace, pipe, node));
      },
    );

    app.post<NodeRoute>('/v0/pipes/:pipe/nodes/:node/materialization', named('APIPipeNodeHandler', S.materialize), async (req) => {
      const { auth, pipe, node } = await writableNode(req);
      const r = await s.materializations.materialize(auth, pipe, node, materializeOptions(await formArgs(req)), req.id);
      return materializedJson(auth, r, node.id);
    });

    app.delete<NodeRoute>(
      '/v0/pipes/:pipe/nodes/:node/materialization',
      named('APIPipeNodeHandler', S.nodeAction('Unlink a materialized view (its target keeps its rows)')),
      async (req, reply) => {
        const { auth, pipe, node } = await writableNode(req);
        await s.materializations.unlink(auth, pipe.id, node.id);
        return reply.code(204).send();
      },
    );

    app.post<NodeRoute>(
      '/v0/pipes/:pipe/nodes/:node/population',
      named(
        'APIPipeNodeHandler',
        S.nodeAction('Populate a materialized view again', {
          populate_subset: 'Fraction of the rows',
          populate_condition: 'SQL condition the rows match',
          truncate: boolParam('Truncate the target first'),
          unlink_on_populate_error: boolParam('Unlink the view when the populate fails'),
        }),
      ),
      async (req) => {
        const { auth, pipe, node } = await writableNode(req);
        const args = await formArgs(req);
        const subset = str(args.populate_subset);
        const job = await s.materializations.populate(auth, pipe, node, {
          subset: subset !== undefined ? Number(subset) : undefined,
          condition: str(args.populate_condition),
          truncate: boolArg(args.truncate, 'truncate') ?? false,
          unlinkOnError: boolArg(args.unlink_on_populate_error, 'unlink_on_populate_error') ?? false,
        });
        const j = await s.jobs.get(auth.workspace, job.id);
        return {
          id: j.id,
          job_id: j.id,
          kind: j.kind,
          status: j.status,
          job_url: `${apiHost()}/v0/jobs/${j.id}`,
          job: { id: j.id, kind: j.kind, status: j.status },
        };
      },
    );

    const copySettings = (a: Record<string, unknown>) => ({ target: str(a.target_datasource), cron: str(a.schedule_cron), mode: str(a.mode) });

    // POST makes a node the copy node, PUT changes its settings.
    for (const method of ['post', 'put'] as const) {
      const summary = method === 'post' ? 'Make a node the copy node' : 'Change the copy settings';
      app[method]<NodeRoute>('/v0/pipes/:pipe/nodes/:node/copy', named('APIPipeNodeHandler', S.nodeAction(summary, S.copySettings)), async (req) => {
        const { auth, pipe, node } = await writableNode(req);
        const settings = copySettings(await formArgs(req));
        return json(
          auth,
          method === 'post' ? await s.copies.set(auth, pipe, node, settings, req.id) : await s.copies.update(auth, pipe, node, settings, req.id),
        );
      });
    }

    app.delete<NodeRoute>(
      '/v0/pipes/:pipe/nodes/:node/copy',
      named('APIPipeNodeHandler', S.nodeAction('Stop a node being the copy node')),
      async (req, reply) => {
        const { auth, pipe, node } = await writableNode(req);
        await s.copies.unset(auth, pipe, node);
        return reply.code(204).send();
      },
    );

    app.post<PipeRoute>(
      '/v0/pipes/:pipe/copy',
      named(null, S.pipeAction('Run the copy now; other arguments are template parameters', { _mode: 'append or replace, for this run' })),
      async (req) => {
        const auth = await authenticate(s, req);
        const name = req.params.pipe;
        const pipe = await s.pipes.find(auth.workspace, name);
        if (!pipe) throw pipeNotFound(name);
        const node = s.copies.copyNode(pipe);
        if (!auth.canReadPipe(pipe.id) || !auth.canAppend(node.data.copy_target)) {
          throw forbidden('The token needs PIPES:READ on the pipe and DATASOURCES:APPEND on the target Data Source to run a copy');
        }
        const a = await formArgs(req);
        const params: Record<string, ParamValue> = {};
        for (const [k, v] of Object.entries(a)) if (k !== 'token' && k !== '_mode') params[k] = v as ParamValue;
        // The job as created (waiting): a copy may claim it at once.
        const j = await s.copies.run(auth, pipe, params, str(a._mode));
        return {
          ...nodeJson(s.pipes.node(pipe, node.id), { workspaceId: pipe.workspaceId }),
          job: {
            ...j.data,
            kind: j.kind,
            id: j.id,
            job_id: j.id,
            status: j.status,
            created_at: tbTime(j.createdAt),
            updated_at: tbTime(j.updatedAt),
            started_at: null,
            is_cancellable: true,
            job_url: `${apiHost()}/v0/jobs/${j.id}`,
          },
        };
      },
    );

    for (const action of ['pause', 'resume'] as const) {
      app.post<PipeRoute>(
        `/v0/pipes/:pipe/copy/${action}`,
        named(null, S.pipeAction(`${action === 'pause' ? 'Pause' : 'Resume'} the copy schedule`)),
        async (req) => {
          const auth = await authenticate(s, req);
          const pipe = await writablePipe(auth, req.params.pipe);
          return json(auth, await s.copies.setStatus(auth, pipe, action === 'pause' ? 'paused' : 'running'));
        },
      );
    }

    app.post<PipeRoute>('/v0/pipes/:pipe/copy/cancel', named(null, S.pipeAction("Cancel the pipe's waiting and running copy jobs")), async (req) => {
      const auth = await authenticate(s, req);
      const pipe = await writablePipe(auth, req.params.pipe);
      const r = await s.copies.cancelAll(auth, pipe);
      return { ...json(auth, r.pipe), cancelled_jobs: r.cancelled.map((j) => jobJson(s, j)) };
    });

    app.get<PipeRoute>(
      '/v0/pipes/:pipe/explain',
      named('APIPipeExplainHandler', S.pipeAction("The plan of the pipe's most relevant node")),
      async (req, reply) => explain(req, reply, req.params.pipe),
    );
    app.get<NodeRoute>('/v0/pipes/:pipe/nodes/:node/explain', named('APIPipeNodeExplainHandler', S.nodeAction("A node's SQL and plan")), async (req, reply) => {
      const { pipe, node } = req.params;
      return explain(req, reply, pipe, node);
    });

    app.get<PipeRoute>('/v0/pipes/:pipe/last_update', named('APIPipeLastUpdateHandler', S.pipeAction('When a pipe last changed')), async (req) => {
      const auth = await authenticate(s, req);
      const pipe = await readablePipe(auth, req.params.pipe);
      return { id: pipe.id, name: pipe.name, edited_by: null, updated_at: tbTime(pipe.updatedAt) };
    });

    app.get<PipeRoute>('/v0/pipes/:pipe/requests', named('APIPipeRequestsHandler', S.pipeAction("A pipe's recent requests (none are kept)")), async (req) => {
      const auth = await authenticate(s, req);
      const pipe = await readablePipe(auth, req.params.pipe);
      // The slowest calls of the last day, from tinybird.pipe_stats_rt.
      return { requests: { top: await s.observability.topRequests(auth.workspace.id, pipe.id) } };
    });

    // `/v0/pipes/:p` is a pipe, its datafile (`.pipe`) or its endpoint data (`.json`, `.csv`, ...).
    const one = async (req: FastifyRequest<PipeRoute>, reply: FastifyReply) => {
      const p = req.params.pipe;
      const m = /^(.+)\.([A-Za-z0-9]+)$/.exec(p);
      if (m && !/^[0-9a-f]{32}$/.test(m[2])) {
        if (m[2] === 'pipe' && req.method === 'GET') {
          const auth = await authenticate(s, req);
          const pipe = await readablePipe(auth, m[1]);
          if (!auth.canCreatePipes) throw forbidden(`token needs at least CREATE scope to retrieve the pipefile representation ${m[1]}`);
          const names = new Map((await s.datasources.list(auth.workspace)).map((d) => [d.id, d.name]));
          return reply.type('text/plain; charset=utf-8').send(pipeDatafile(pipe, names));
        }
        if (m[2] !== 'pipe') return endpointData(req, reply, m[1], m[2]);
      }
      if (req.method === 'POST') throw notFound(routeNotFound('POST', req.url));
      const auth = await authenticate(s, req);
      return json(auth, await readablePipe(auth, p));
    };
    app.get<PipeRoute>('/v0/pipes/:pipe', named('APIPipeHandler', S.pipe), one);
    app.post<PipeRoute>('/v0/pipes/:pipe', named('APIPipeHandler', S.pipe), one);

    app.put<PipeRoute>('/v0/pipes/:pipe', named('APIPipeHandler', S.updatePipe), async (req) => {
      const auth = await authenticate(s, req);
      const pipe = await writablePipe(auth, req.params.pipe.replace(/\.pipe$/, ''));
      const args = queryArgs(req);
      const b = await body(req);
      // Seed 003's PipeUpdate is a JSON body {name, description}; a form or the query string too.
      const doc = bodyJson(req, b, 'The request body should be a JSON object like {"name": "...", "description": "..."}');
      const form: Record<string, string | undefined> = doc
        ? { name: jsonText(doc, 'name'), description: jsonText(doc, 'description') }
        : b.length && isForm(req)
          ? Object.fromEntries(new URLSearchParams(b.toString('utf8')))
          : {};
      const newName = str(args.name) ?? form.name;
      const description = str(args.description) ?? form.description;
      let updated = pipe;
      if (newName && newName !== pipe.name) {
        await s.pipes.checkNewName(auth.workspace, newName, pipe.id);
        await s.deploy.checkFeeds(auth, [pipe.name, newName]);
        updated = { ...updated, name: newName };
      }
      if (description !== undefined) updated = { ...updated, description };
      return json(auth, await s.pipes.save(auth.workspace, updated));
    });

    app.delete<PipeRoute>('/v0/pipes/:pipe', named('APIPipeHandler', S.dropPipe), async (req, reply) => {
      const auth = await authenticate(s, req);
      const name = req.params.pipe.replace(/\.pipe$/, '');
      const pipe = await s.pipes.find(auth.workspace, name);
      if (!pipe) throw pipeNotFound(name);
      if (!auth.canDropPipe(pipe.id)) throw forbidden(`token needs scope PIPES:DROP:${pipe.name}`);
      // A materialized node's engine view goes with the pipe: its target keeps its rows and
      // stops receiving new ones.
      for (const n of pipe.nodes) if (n.nodeType === 'materialized') await s.materializations.unlink(auth, pipe.id, n.id);
      await s.pipes.drop(auth.workspace, (await s.pipes.find(auth.workspace, pipe.id)) ?? pipe);
      return reply.code(204).send();
    });
  };
}

/** An OpenAPI 3 document of the endpoints: one GET path per pipe, parameters from its templates. */
function openApi(pipes: PipeRecord[], apiHost: string): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const p of pipes) {
    const seen = new Set<string>();
    const parameters: unknown[] = [];
    for (const n of p.nodes) {
      for (const raw of nodeParams(n.sql) as Array<Record<string, unknown>>) {
        const name = String(raw.name);
        if (seen.has(name)) continue;
        seen.add(name);
        const type = String(raw.type ?? 'String');
        const schema: Record<string, unknown> = openApiType(type);
        if (raw.default !== undefined && raw.default !== null) schema.default = raw.default;
        if (Array.isArray(raw.enum)) schema.enum = raw.enum;
        if (raw.format) schema.format = raw.format;
        const param: Record<string, unknown> = { in: 'query', name, required: raw.required === true, schema };
        if (raw.description) param.description = raw.description;
        if (raw.example !== undefined) param.example = raw.example;
        parameters.push(param);
      }
    }
    for (const fmt of ['json', 'csv', 'ndjson', 'parquet']) {
      paths[`/pipes/${p.name}.${fmt}`] = {
        get: {
          summary: p.description ?? `Data of the ${p.name} endpoint`,
          operationId: `${p.name}_${fmt}`,
          parameters,
          responses: { 200: { description: 'The endpoint result' }, 400: { description: 'A parameter is invalid' } },
        },
      };
    }
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Pipit API Endpoints', version: '1.0.0' },
    servers: [{ url: `${apiHost}/v0` }],
    paths,
    components: { securitySchemes: { TokenAuth: { type: 'http', scheme: 'bearer' } } },
    security: [{ TokenAuth: [] }],
  };
}

function openApiType(type: string): Record<string, unknown> {
  const m = /^Array\((.+)\)$/.exec(type);
  if (m) return { type: 'array', items: openApiType(m[1]) };
  if (/^U?Int(8|16|32|64|128|256)?$|^Integer$/.test(type)) return { type: 'integer' };
  if (/^Float(32|64)$/.test(type)) return { type: 'number' };
  if (type === 'Boolean') return { type: 'boolean' };
  if (type === 'Date') return { type: 'string', format: 'date' };
  if (/^DateTime/.test(type)) return { type: 'string', format: 'date-time' };
  return { type: 'string' };
}
