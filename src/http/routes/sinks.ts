/**
 * Sink Pipes API: `POST|DELETE /v0/pipes/:p/nodes/:n/sink` (PIPES:CREATE) sets or removes a
 * node's sink, `POST /v0/pipes/:p/sink` (read access to the pipe) runs it as a `sink` job with
 * overrides and file-template variables, and `/v0/pipes/:p/sink/{pause,resume,cancel}` control
 * its schedule as for copy pipes.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { type NodeRoute, nodeAction, pipeAction, type PipeRoute } from './pipe-schemas.js';
import { bodyLimit, named } from '../route-docs.js';
import type { PipeRecord } from '../../catalog/catalog.js';
import { Auth } from '../../domain/access.js';
import { badRequest, forbidden } from '../../basics/errors.js';
import { pipeNotFound } from '../../domain/pipe-service.js';
import { SINK_ARGS, type SinkSettings } from '../../domain/sink-service.js';
import { tbTime } from '../../basics/time.js';
import type { ParamValue } from '../../template/index.js';
import { authenticate } from '../auth.js';
import { hasBody, isJson, queryArgs, readBody } from '../body.js';
import { jobJson } from './jobs.js';
import { nodeJson, pipeJson } from './pipe-json.js';
import { parseUserJson } from '../../basics/input-limits.js';

const str = (v: unknown): string | undefined => {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.length ? String(v[v.length - 1]) : undefined;
  return String(v);
};

/** Arguments from the query string and a form (or JSON) body. */
async function formArgs(req: FastifyRequest): Promise<Record<string, ParamValue>> {
  const a: Record<string, ParamValue> = { ...queryArgs(req) };
  if (!hasBody(req)) return a;
  const b = await readBody(req);
  if (!b.length) return a;
  if (isJson(req)) {
    const j = parseUserJson(b.toString('utf8'), 'The request body should be a JSON object');
    if (!j || typeof j !== 'object' || Array.isArray(j)) throw badRequest('The request body should be a JSON object');
    Object.assign(a, j);
  } else {
    for (const [k, v] of new URLSearchParams(b.toString('utf8'))) a[k] = v;
  }
  return a;
}

/** Sink settings from request arguments (`tb push` JSON nodes use the EXPORT_* names). */
export function sinkSettings(a: Record<string, unknown>): SinkSettings {
  return {
    connection: str(a.connection ?? a.export_connection_name),
    path: str(a.path ?? a.export_bucket_uri),
    fileTemplate: str(a.file_template ?? a.export_file_template),
    format: str(a.format ?? a.export_format),
    compression: str(a.compression ?? a.export_compression),
    writeStrategy: str(a.write_strategy ?? a.export_write_strategy),
    cron: str(a.schedule_cron ?? a.export_schedule),
  };
}

export function sinkRoutes(s: Services): FastifyPluginAsync {
  const json = (auth: Auth, p: PipeRecord) => pipeJson(p, auth, { apiHost: s.config.apiHost });

  async function writablePipe(auth: Auth, nameOrId: string): Promise<PipeRecord> {
    auth.requirePipesCreate();
    const pipe = await s.pipes.find(auth.workspace, nameOrId);
    if (!pipe) throw pipeNotFound(nameOrId);
    return pipe;
  }

  async function workspaceAdmin(auth: Auth): Promise<Auth> {
    const admin = (await s.catalog.listTokens(auth.workspace.id)).find((t) => t.scopes.some((sc) => sc.type === 'ADMIN'));
    if (!admin) throw forbidden('The workspace has no admin token to run the sink with');
    return new Auth(admin, auth.workspace);
  }

  return async (app) => {
    // Form, JSON and SQL bodies of these routes (readBody).

    bodyLimit(app, 1024 * 1024);
    app.post<NodeRoute>('/v0/pipes/:pipe/nodes/:node/sink', named('APIPipeNodeHandler', nodeAction('Make a node the sink node')), async (req) => {
      const auth = await authenticate(s, req);
      const { pipe: pipeName, node: nodeName } = req.params;
      const pipe = await writablePipe(auth, pipeName);
      const node = s.pipes.node(pipe, nodeName);
      return json(auth, await s.sinks.set(auth, pipe, node, sinkSettings(await formArgs(req)), req.id));
    });

    app.delete<NodeRoute>('/v0/pipes/:pipe/nodes/:node/sink', named('APIPipeNodeHandler', nodeAction('Stop a node being the sink node')), async (req) => {
      const auth = await authenticate(s, req);
      const { pipe: pipeName, node: nodeName } = req.params;
      const pipe = await writablePipe(auth, pipeName);
      return json(auth, await s.sinks.unset(auth, pipe, s.pipes.node(pipe, nodeName)));
    });

    app.post<PipeRoute>('/v0/pipes/:pipe/sink', named(null, pipeAction('Run the sink now; other arguments are file-template variables')), async (req) => {
      const auth = await authenticate(s, req);
      const name = req.params.pipe;
      const pipe = await s.pipes.find(auth.workspace, name);
      if (!pipe) throw pipeNotFound(name);
      if (!auth.canReadPipe(pipe.id)) throw forbidden('The token needs PIPES:READ on the pipe to run its sink');
      const node = s.sinks.sinkNode(pipe);
      const a = await formArgs(req);
      const { cron: _ignored, ...overrides } = sinkSettings({
        connection: a.connection,
        path: a.path,
        file_template: a.file_template,
        format: a.format,
        compression: a.compression,
        write_strategy: a.write_strategy,
      });
      if (a.schedule_cron !== undefined)
        throw badRequest('schedule_cron can not be overridden in a sink run; set it with POST /v0/pipes/:pipe/nodes/:node/sink');
      // Where and how a sink writes is its configuration (PIPES:CREATE); PIPES:READ runs it as configured.
      const overridden = Object.entries(overrides)
        .filter(([, v]) => v !== undefined)
        .map(([k]) => k);
      if (overridden.length && !auth.canCreatePipes) {
        throw forbidden(
          'A PIPES:READ token runs the sink as configured: changing where or how it writes (connection, path, file_template, format, compression, write_strategy) needs PIPES:CREATE',
        );
      }
      const variables: Record<string, string> = {};
      const params: Record<string, ParamValue> = {};
      for (const [k, v] of Object.entries(a)) {
        if (SINK_ARGS.has(k)) continue;
        params[k] = v;
        const sv = str(v);
        if (sv !== undefined) variables[k] = sv;
      }
      // Reading the pipe is what running its sink needs: a PIPES:READ token exports the pipe's
      // result as an endpoint would serve it, so the export reads with the workspace's authority.
      const runAs = auth.canCreatePipes ? auth : await workspaceAdmin(auth);
      const job = await s.sinks.run(runAs, pipe, overrides, variables, params);
      // The job as created (waiting): a copy may claim it at once.
      const j = job;
      return {
        ...nodeJson(s.pipes.node(pipe, node.id)),
        job: {
          id: j.id,
          job_id: j.id,
          kind: j.kind,
          status: j.status,
          created_at: tbTime(j.createdAt),
          updated_at: tbTime(j.updatedAt),
          started_at: null,
          is_cancellable: true,
          job_url: `${s.config.apiHost}/v0/jobs/${j.id}`,
          pipe: { id: pipe.id, name: pipe.name },
        },
      };
    });

    for (const action of ['pause', 'resume'] as const) {
      app.post<PipeRoute>(
        `/v0/pipes/:pipe/sink/${action}`,
        named(null, pipeAction(`${action === 'pause' ? 'Pause' : 'Resume'} the sink schedule`)),
        async (req) => {
          const auth = await authenticate(s, req);
          const pipe = await writablePipe(auth, req.params.pipe);
          return json(auth, await s.sinks.setStatus(auth, pipe, action === 'pause' ? 'paused' : 'running'));
        },
      );
    }

    // Seed 003's terse `/v0/sink_pipes`: GET lists the sink pipes the token can read (as
    // `/v0/pipes` lists pipes); POST `{name, schedule}` sets, changes or removes (`None`,
    // `@on-demand`, empty) the cron schedule of the existing sink pipe `name`, keeping its other
    // settings. A sink is created with POST /v0/pipes/:p/nodes/:n/sink (it needs a node,
    // a connection and a path, which this body does not carry).
    app.get('/v0/sink_pipes', async (req) => {
      const auth = await authenticate(s, req);
      const pipes = (await s.pipes.list(auth.workspace)).filter((p) => p.nodes.some((n) => n.nodeType === 'sink') && auth.canReadPipe(p.id));
      return { pipes: pipes.map((p) => json(auth, p)) };
    });

    app.post('/v0/sink_pipes', async (req) => {
      const auth = await authenticate(s, req);
      const a = await formArgs(req);
      const name = str(a.name);
      if (!name) throw badRequest('The "name" parameter is required: the name of a sink pipe');
      const schedule = a.schedule ?? a.schedule_cron;
      if (schedule === undefined || schedule === null || typeof schedule === 'object')
        throw badRequest('The "schedule" parameter is required: a cron expression (UTC), or "@on-demand" to remove the schedule');
      const pipe = await writablePipe(auth, name);
      return json(auth, await s.sinks.reschedule(auth, pipe, String(schedule), req.id));
    });

    app.post<PipeRoute>('/v0/pipes/:pipe/sink/cancel', named(null, pipeAction("Cancel the pipe's waiting and working sink jobs")), async (req) => {
      const auth = await authenticate(s, req);
      const pipe = await writablePipe(auth, req.params.pipe);
      const r = await s.sinks.cancelAll(auth, pipe);
      return { ...json(auth, r.pipe), cancelled_jobs: r.cancelled.map((j) => jobJson(s, j)) };
    });
  };
}
