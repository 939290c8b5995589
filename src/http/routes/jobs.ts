/**
 * Jobs API: `GET /v0/jobs` (filters, newest first, 48 h, at most 100), `GET /v0/jobs/:id`,
 * `POST /v0/jobs/:id/cancel`. All job routes need DATASOURCES:CREATE or ADMIN.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.js';
import { named, pathParams } from '../route-docs.js';
import type { JobRecord, JobStatus, JobKind } from '../../catalog/catalog.js';
import { badRequest } from '../../basics/errors.js';
import { tbTime } from '../../basics/time.js';
import { userFacingNames } from '../../ingest/physical.js';
import { authenticate } from '../auth.js';
import { queryParams } from '../body.js';

const STATUSES: readonly JobStatus[] = ['waiting', 'working', 'done', 'error', 'cancelling', 'cancelled'];

/**
 * Seed 003's `progress` (a number): percent done. Jobs that report `progress_percentage` (populates)
 * give theirs; otherwise 100 once done, else 0.
 */
function progressOf(job: JobRecord): number {
  const p = job.data.progress_percentage;
  if (typeof p === 'number' && Number.isFinite(p)) return p;
  return job.status === 'done' ? 100 : 0;
}

export function jobJson(s: Services, job: JobRecord): Record<string, unknown> {
  const { is_cancellable_while_working: _c, ...data } = job.data;
  return {
    kind: job.kind,
    id: job.id,
    job_id: job.id,
    status: job.status,
    created_at: tbTime(job.createdAt),
    updated_at: tbTime(job.updatedAt),
    started_at: job.startedAt ? tbTime(job.startedAt) : null,
    is_cancellable: job.status === 'waiting' || (job.status === 'working' && Boolean(_c)),
    job_url: `${s.config.apiHost}/v0/jobs/${job.id}`,
    progress: progressOf(job),
    ...data,
    // A job's error may quote the engine (a populate, copy, sink or import): internal names hidden.
    ...(job.error ? { error: userFacingNames(job.error, (id) => s.datasources.nameOfId(id)) } : {}),
  };
}

function parseDate(v: string | undefined, name: string): string | undefined {
  if (v === undefined || v === '') return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw badRequest(`Invalid ${name}: "${v}". Use an ISO 8601 date, e.g. 2023-06-15T18:13:25.855Z`);
  return d.toISOString();
}

/** Routes on one job (`:id`). */
type JobRoute = { Params: { id: string } };

export const jobRoutes =
  (s: Services): FastifyPluginAsync =>
  async (app) => {
    const onJob = (handler: string, summary: string) => named(handler, { summary, params: pathParams('id') });
    app.get('/v0/jobs', named('APIJobsHandler', { summary: 'Recent jobs' }), async (req) => {
      const auth = await authenticate(s, req);
      auth.requireCreate();
      const p = queryParams(req);
      const dayAgo = new Date(Date.now() - 48 * 3600 * 1000).toISOString();
      const after = parseDate(p.created_after, 'created_after');
      if (p.status !== undefined && p.status !== '' && !STATUSES.includes(p.status as JobStatus)) {
        throw badRequest(`Invalid status: "${p.status}". Use one of: ${STATUSES.join(', ')}`);
      }
      const jobs = await s.jobs.list(auth.workspace, {
        kind: (p.kind || undefined) as JobKind | undefined,
        status: p.status || undefined,
        createdAfter: after && after > dayAgo ? after : dayAgo,
        createdBefore: parseDate(p.created_before, 'created_before'),
        pipeId: p.pipe_id,
        pipeName: p.pipe_name,
        limit: 100,
      });
      return {
        jobs: jobs.map((j) => {
          const full = jobJson(s, j);
          const ds = j.data.datasource as { id?: string; name?: string } | undefined;
          return {
            id: j.id,
            kind: j.kind,
            status: j.status,
            created_at: full.created_at,
            updated_at: full.updated_at,
            job_url: full.job_url,
            datasource: ds ? { id: ds.id, name: ds.name } : undefined,
            pipe_id: j.data.pipe_id,
            pipe_name: j.data.pipe_name,
            progress: full.progress,
            ...(j.error ? { error: j.error } : {}),
          };
        }),
      };
    });

    app.get<JobRoute>('/v0/jobs/:id', onJob('APIJobHandler', 'A job'), async (req) => {
      const auth = await authenticate(s, req);
      auth.requireCreate();
      return jobJson(s, await s.jobs.get(auth.workspace, req.params.id));
    });

    app.post<JobRoute>('/v0/jobs/:id/cancel', onJob('APIJobCancelHandler', 'Cancel a waiting or working job'), async (req) => {
      const auth = await authenticate(s, req);
      auth.requireCreate();
      return jobJson(s, await s.jobs.cancel(auth.workspace, req.params.id));
    });
  };
