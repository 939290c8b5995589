/**
 * Sink Pipes: a node whose result is exported to object storage (or a local directory) through a
 * connection, on demand (`POST /v0/pipes/:p/sink`, with overrides and file-template variables) or
 * on a cron schedule (UTC) run by the server's scheduler.
 *
 * The export is one engine statement built by the server:
 * `INSERT INTO FUNCTION s3(<url>, <key>, <secret>, <format>, 'auto', <compression>)
 *  [PARTITION BY <expr>] SELECT * FROM (<checked node SQL>) SETTINGS <server settings>`, with the
 * URL and credentials bound as query parameters (in no SQL text) and the partition expression
 * built from quoted literals and identifiers (sink-template.ts). Local directories are written the
 * same way with `file()` into a staging directory inside the root, then moved into place.
 * The files a job wrote are found by listing the prefix before and after it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { JobRecord, NodeRecord, PipeRecord, SinkData, SinkNode, Workspace } from '../catalog/catalog.js';
import { patchData, retype } from '../catalog/records.js';
import { EngineError, markerTag } from '../engine/engine.js';
import { sql, trusted } from '../engine/sql.js';
import { scheduleOf } from '../jobs/cron.js';
import { ScheduledNodes } from './schedules.js';
import type { PreparedQuery } from './query-service.js';
import { templateParams, type ParamValue } from '../template/index.js';
import type { Auth } from './access.js';
import { jobNode, killedOnAbort, type NodeJobServices, type RunPayload, pipeJobPayload } from './pipe-jobs.js';
import { storageError, type ConnectionService, type SinkLocation } from './connection-service.js';
import type { ConnectionRecord } from '../catalog/catalog.js';
import { badRequest, forbidden, PipitError } from '../basics/errors.js';
import { newResourceId } from '../basics/ids.js';
import { pipeType } from './pipe-service.js';
import {
  checkCompression,
  checkFormat,
  checkWriteStrategy,
  columnPlaceholders,
  FORMATS,
  JOB_TIMESTAMP,
  parseFileTemplate,
  resolveTemplate,
  type ResolvedTemplate,
  type SinkCompression,
  type SinkFormat,
  type TemplatePart,
  type WriteStrategy,
} from './sink-template.js';

/** Most files one job may write (a column placeholder with more distinct values fails the job). */
export const MAX_SINK_FILES = 1000;

/** Request arguments of the sink routes that are settings, not file-template variables. */
export const SINK_ARGS = new Set(['connection', 'path', 'file_template', 'format', 'compression', 'schedule_cron', 'write_strategy', 'token']);

export interface SinkSettings {
  connection?: string;
  path?: string;
  fileTemplate?: string;
  format?: string;
  compression?: string;
  writeStrategy?: string;
  /** A cron expression; `None`/empty/`@on-demand` means none. */
  cron?: string;
}

/** What a sink node keeps in its `data`. */

const SINK_KEYS: Array<keyof SinkData> = [
  'sink_connection',
  'sink_connection_name',
  'sink_service',
  'sink_path',
  'sink_file_template',
  'sink_format',
  'sink_compression',
  'sink_write_strategy',
  'cron',
  'schedule_status',
  'last_tick',
];

/** What a sink job needs besides its pipe and node: the run's settings (the connection by id, no credentials), variables, parameters and timestamp. */
interface SinkPayload extends RunPayload {
  settings: SinkSettings;
  variables: Record<string, string>;
}

interface WrittenFile {
  path: string;
  size: number;
}

/** A checked export: where, how, and the template. */
interface Plan {
  connection: ConnectionRecord;
  location: SinkLocation;
  parts: TemplatePart[];
  format: SinkFormat;
  compression: SinkCompression;
  writeStrategy: WriteStrategy;
}

/** A run's export, checked: the plan, the node's query and the resolved file template. */
interface SinkRun {
  plan: Plan;
  prepared: PreparedQuery;
  resolved: ResolvedTemplate;
}

const S3_JOB_SETTINGS = trusted('s3_retry_attempts = 10, s3_connect_timeout_ms = 5000');

/**
 * A job's statements carry this always-true condition so Engine.kill(jobId) finds them: the
 * engine shows a statement with bound parameters re-formatted, without a marker comment.
 */
const marked = (jobId: string) => sql`${markerTag(jobId)} != ''`;

export class SinkService extends ScheduledNodes<NodeJobServices & { connections: ConnectionService }, SinkPayload> {
  constructor(s: NodeJobServices & { connections: ConnectionService }, now: () => Date = () => new Date()) {
    super('sink', s, now);
  }

  /** Output columns (name → type) of the node; null when its template does not run in test mode. */
  private async columns(auth: Auth, pipe: PipeRecord, node: NodeRecord, prepared: PreparedQuery | null, queryId: string): Promise<Map<string, string> | null> {
    let p = prepared;
    if (!p) {
      const index = pipe.nodes.findIndex((n) => n.id === node.id);
      p = await this.s.queries.prepare(auth, node.sql, { testMode: true, params: {}, pipe, nodeLimit: index, savedNode: true });
    }
    try {
      const meta = await this.s.queries.describe(p, queryId);
      return new Map(meta.map((m) => [m.name, m.type]));
    } catch (err) {
      if (err instanceof EngineError && !prepared) return null;
      throw err;
    }
  }

  private async plan(auth: Auth, s: SinkSettings): Promise<Plan> {
    if (!s.connection) throw badRequest('The "connection" parameter is required');
    const connection = await this.s.connections.get(auth.workspace, s.connection);
    const parts = parseFileTemplate(s.fileTemplate);
    const format = checkFormat(s.format);
    const compression = checkCompression(s.compression);
    const writeStrategy = checkWriteStrategy(s.writeStrategy);
    const location = this.s.connections.location(auth.workspace, connection, s.path);
    return { connection, location, parts, format, compression, writeStrategy };
  }

  /**
   * File-template values from the defaults of the pipe's template parameters (the sink node's
   * first, then the nodes before it), for placeholders that are not output columns: a
   * `{country}` placeholder takes `{{ String(country, 'ES') }}`'s default when the request (or a
   * scheduled run) sends no `country`.
   */
  private paramDefaults(pipe: PipeRecord, node: NodeRecord, columns: Map<string, string> | null): Record<string, string> {
    const out: Record<string, string> = {};
    const index = pipe.nodes.findIndex((n) => n.id === node.id);
    for (const n of [node, ...pipe.nodes.slice(0, index).reverse()]) {
      let params: ReturnType<typeof templateParams>;
      try {
        params = templateParams(n.sql);
      } catch {
        continue;
      }
      for (const p of params) {
        if (p.name in out || columns?.has(p.name) || p.default === null || p.default === undefined) continue;
        out[p.name] = Array.isArray(p.default) ? p.default.map(String).join(',') : String(p.default);
      }
    }
    return out;
  }

  async set(auth: Auth, pipe: PipeRecord, node: NodeRecord, s: SinkSettings, reqId: string): Promise<PipeRecord> {
    const role = pipeType(pipe);
    if (role === 'sink') throw forbidden(`The pipe '${pipe.name}' is already a Sink pipe`);
    if (role === 'materialized') throw forbidden(`The pipe '${pipe.name}' is materializing: unlink the Materialized View before setting it as a Sink pipe`);
    if (role === 'endpoint') throw forbidden(`The pipe '${pipe.name}' is an API Endpoint: unpublish it before setting it as a Sink pipe`);
    if (role === 'copy') throw forbidden(`The pipe '${pipe.name}' is a Copy pipe: unset the copy before setting it as a Sink pipe`);
    const cron = scheduleOf(s.cron);
    const plan = await this.plan(auth, s);
    const columns = await this.columns(auth, pipe, node, null, reqId);
    if (columns) {
      const defaults = this.paramDefaults(pipe, node, columns);
      const unknown = columnPlaceholders(plan.parts, defaults).filter((c) => !columns.has(c));
      // A scheduled run has no request variables: every placeholder must be known now.
      if (unknown.length && cron) {
        throw badRequest(
          `The file_template placeholder {${unknown[0]}} is not a column of the node's result (${[...columns.keys()].join(', ')}), a parameter with a default or ${JOB_TIMESTAMP}; scheduled sinks get no request variables`,
        );
      }
      resolveTemplate(plan.parts, {
        variables: { ...defaults, ...Object.fromEntries(unknown.map((u) => [u, 'x'])) },
        jobTime: this.now(),
        columns,
        format: plan.format,
        compression: plan.compression,
      });
    }
    await this.s.connections.check(plan.location);
    const data: SinkData = {
      sink_connection: plan.connection.id,
      sink_connection_name: plan.connection.name,
      sink_service: plan.connection.service,
      sink_path: plan.location.display,
      sink_file_template: s.fileTemplate!,
      sink_format: plan.format,
      sink_compression: plan.compression,
      sink_write_strategy: plan.writeStrategy,
      cron,
      schedule_status: 'running',
      last_tick: cron ? this.now().toISOString() : null,
    };
    return this.s.pipes.save(auth.workspace, {
      ...pipe,
      nodes: pipe.nodes.map((n) => (n.id === node.id ? retype(n, 'sink', data) : n)),
    });
  }

  async unset(auth: Auth, pipe: PipeRecord, node: NodeRecord): Promise<PipeRecord> {
    if (node.nodeType !== 'sink') throw badRequest(`The pipe '${pipe.name}' is not a Sink pipe: node '${node.name}' is not a sink node`);
    return this.s.pipes.save(auth.workspace, { ...pipe, nodes: pipe.nodes.map((n) => (n.id === node.id ? retype(n, 'standard', SINK_KEYS) : n)) });
  }

  sinkNode(pipe: PipeRecord): SinkNode {
    const node = pipe.nodes.find((n): n is SinkNode => n.nodeType === 'sink');
    if (!node) throw badRequest(`The pipe '${pipe.name}' is not a Sink pipe`);
    return node;
  }

  /** Connection ids → pipes whose sink uses them (a connection in use is not deleted). */
  async usersOf(ws: Workspace, connectionId: string): Promise<PipeRecord[]> {
    return (await this.s.pipes.list(ws)).filter((p) => p.nodes.some((n) => n.nodeType === 'sink' && n.data.sink_connection === connectionId));
  }

  setStatus(auth: Auth, pipe: PipeRecord, status: 'running' | 'paused'): Promise<PipeRecord> {
    return this.schedules.setStatus(auth, pipe, this.sinkNode(pipe), status, 'sink');
  }

  /**
   * Sets, changes or removes (`None`, `@on-demand`, empty) the schedule of a sink pipe, keeping
   * its other settings (`POST /v0/sink_pipes {name, schedule}`). A scheduled run gets no request
   * variables, so every file_template placeholder must be known without them.
   */
  async reschedule(auth: Auth, pipe: PipeRecord, schedule: string, reqId: string): Promise<PipeRecord> {
    const node = this.sinkNode(pipe);
    const data = node.data;
    const cron = scheduleOf(schedule);
    if (cron) {
      const columns = await this.columns(auth, pipe, node, null, reqId);
      const unknown = columns
        ? columnPlaceholders(parseFileTemplate(data.sink_file_template), this.paramDefaults(pipe, node, columns)).filter((c) => !columns.has(c))
        : [];
      if (unknown.length) {
        throw badRequest(
          `The file_template placeholder {${unknown[0]}} is not a column of the node's result (${[...columns!.keys()].join(', ')}), a parameter with a default or ${JOB_TIMESTAMP}; scheduled sinks get no request variables`,
        );
      }
    }
    const patch: Partial<SinkData> = { cron, schedule_status: 'running', last_tick: cron ? this.now().toISOString() : null };
    return this.s.pipes.save(auth.workspace, { ...pipe, nodes: pipe.nodes.map((n) => (n.id === node.id ? patchData(node, patch) : n)) });
  }

  /** Cancels the pipe's waiting and working sink jobs and pauses its schedule. */
  cancelAll(auth: Auth, pipe: PipeRecord): Promise<{ pipe: PipeRecord; cancelled: JobRecord[] }> {
    return this.schedules.cancelAll(auth, pipe, this.sinkNode(pipe), 'sink', 'sink');
  }

  /**
   * Enqueues a sink job. `overrides` replace the node's settings for this run; `variables` fill
   * file-template placeholders and, with `params`, render the node's template. Everything is
   * checked now (a bad template is a 400 of the request, not a failed job) and again when the job
   * runs, on whichever copy claims it, from its payload.
   */
  async run(
    auth: Auth,
    pipe: PipeRecord,
    overrides: SinkSettings,
    variables: Record<string, string>,
    params: Record<string, ParamValue>,
    jobTimestamp?: Date,
  ): Promise<JobRecord> {
    const node = this.sinkNode(pipe);
    const data = node.data;
    const payload: SinkPayload = {
      ...pipeJobPayload(auth, pipe, node),
      settings: {
        connection: overrides.connection ?? data.sink_connection,
        path: overrides.path ?? data.sink_path,
        fileTemplate: overrides.fileTemplate ?? data.sink_file_template,
        format: overrides.format ?? data.sink_format,
        compression: overrides.compression ?? data.sink_compression,
        writeStrategy: overrides.writeStrategy ?? data.sink_write_strategy,
      },
      variables,
      params,
      jobTimestamp: (jobTimestamp ?? this.now()).toISOString(),
      queryId: newResourceId(),
    };
    const { plan, prepared } = await this.prepareRun(auth, pipe, node, payload);
    // The connection by id: a rename while the job waits is followed.
    payload.settings.connection = plan.connection.id;
    return this.enqueue(
      auth.workspace,
      {
        pipe_id: pipe.id,
        pipe_name: pipe.name,
        pipe: { id: pipe.id, name: pipe.name },
        query_id: payload.queryId,
        query_sql: prepared.userNames(prepared.sql),
        sink: {
          connection: plan.connection.name,
          service: plan.connection.service,
          path: plan.location.display,
          file_template: payload.settings.fileTemplate,
          format: plan.format,
          compression: plan.compression,
          write_strategy: plan.writeStrategy,
          job_timestamp: payload.jobTimestamp,
        },
        is_cancellable_while_working: true,
      },
      payload,
    );
  }

  /** The run's export, checked: where (the connection's credentials read now), the node's query and the resolved file template. */
  private async prepareRun(auth: Auth, pipe: PipeRecord, node: SinkNode, p: SinkPayload): Promise<SinkRun> {
    const plan = await this.plan(auth, p.settings);
    const started = new Date(p.jobTimestamp);
    const prepared = await this.prepareQuery(auth, pipe, node, p);
    let columns: Map<string, string>;
    try {
      columns = (await this.columns(auth, pipe, node, prepared, `${p.queryId}m`))!;
    } catch (err) {
      if (err instanceof EngineError) throw badRequest(prepared.userNames(err.message));
      throw err;
    }
    const resolved = resolveTemplate(plan.parts, {
      variables: { ...this.paramDefaults(pipe, node, columns), ...p.variables },
      jobTime: started,
      columns,
      format: plan.format,
      compression: plan.compression,
    });
    return { plan, prepared, resolved };
  }

  /** The sink job, on whichever copy of the server claims it: prepared again from its payload. */
  protected async execute(job: JobRecord, p: SinkPayload, signal: AbortSignal): Promise<Record<string, unknown>> {
    const { auth, pipe, node } = await jobNode(this.s.pipes, p, 'sink');
    let checked: SinkRun | undefined;
    try {
      const run = await this.prepareRun(auth, pipe, node, p);
      checked = run;
      const { plan, prepared, resolved } = run;
      const loc = plan.location;
      return await killedOnAbort(this.s.engine, job.id, signal, async () => {
        await this.guardFiles(prepared, resolved, job.id);
        const files = loc.kind === 's3' ? await this.exportS3(loc, run, job.id, signal) : await this.exportLocal(loc, run, job.id, signal);
        return { statistics: { rows: files.rows, bytes: files.files.reduce((a, f) => a + f.size, 0), files: files.files.length }, files: files.files };
      });
    } catch (err) {
      let e: PipitError;
      const loc = checked?.plan.location;
      if (err instanceof PipitError) e = err;
      else if (err instanceof EngineError)
        e =
          err.chType === 'S3_ERROR' && loc?.kind === 's3'
            ? storageError(err, loc)
            : badRequest(checked ? checked.prepared.userNames(err.message) : err.message);
      else throw err;
      // The job shows what it wrote before failing (nothing, if it failed first).
      throw new PipitError(e.code, e.message, { files: [], ...e.extra });
    }
  }

  /** Rows of a server-built statement with bound parameters (JSONEachRow). */
  private async rows<T>(sql: string, params: Record<string, string>, queryId: string): Promise<T[]> {
    const r = await this.s.engine.query(sql, { format: 'JSONEachRow', params, queryId });
    return r.bytes
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as T);
  }

  /** A column placeholder with too many distinct values would write too many files: refuse first. */
  private async guardFiles(prepared: PreparedQuery, resolved: ResolvedTemplate, jobId: string): Promise<void> {
    if (!resolved.partition) return;
    // DISTINCT with a LIMIT stops reading once it has one value too many.
    const r = await this.rows<{ n: string }>(
      sql`SELECT count() AS n FROM (SELECT DISTINCT ${trusted(resolved.partition)} FROM (${trusted(prepared.sql)}) WHERE ${marked(jobId)} LIMIT ${MAX_SINK_FILES + 1})`
        .text,
      prepared.queryParams,
      jobId,
    );
    if (Number(r[0]?.n ?? 0) > MAX_SINK_FILES) {
      throw badRequest(`The file_template would write more than ${MAX_SINK_FILES} files in one job: use fewer distinct values (e.g. {column, N} for N files)`);
    }
  }

  private insertSql(target: string, plan: Plan, resolved: ResolvedTemplate, prepared: PreparedQuery, settings: string[], jobId: string): string {
    const fmt = FORMATS[plan.format].engine;
    const comp = plan.format === 'parquet' ? 'none' : plan.compression === 'gz' ? 'gzip' : plan.compression;
    // Strings as Parquet's STRING (UTF8) type, not raw BYTE_ARRAY, on every server version (the default only since 24.x).
    if (plan.format === 'parquet')
      settings.push(
        sql`output_format_parquet_compression_method = ${plan.compression === 'gz' ? 'gzip' : plan.compression}, output_format_parquet_string_as_string = 1`
          .text,
      );
    const partition = resolved.partition ? sql` PARTITION BY ${trusted(resolved.partition)}` : sql``;
    // The comment keeps this statement out of the engine's insert gate: it writes no table.
    // `target` is the table function's head with bound parameters (`s3({pipit_url:String}, ...`).
    return sql`/* sink */ INSERT INTO FUNCTION ${trusted(target)}, ${fmt}, 'auto', ${comp})${partition} SELECT * FROM (${trusted(prepared.sql)}) WHERE ${marked(jobId)} SETTINGS ${trusted(settings.join(', '))}`
      .text;
  }

  private async exportS3(
    loc: Extract<SinkLocation, { kind: 's3' }>,
    { plan, resolved, prepared }: SinkRun,
    jobId: string,
    signal: AbortSignal,
  ): Promise<{ rows: number | null; files: WrittenFile[] }> {
    const dir = loc.prefix ? `${loc.prefix}/` : '';
    const name = `${resolved.prefix}${resolved.partition ? '{_partition_id}' : ''}${resolved.suffix}`;
    const listUrl = loc.url(`${dir}${resolved.prefix}**`);
    const creds = { pipit_key: loc.keyId, pipit_secret: loc.secret };
    const before = await this.listS3(listUrl, creds, jobId);
    const settings = [plan.writeStrategy === 'truncate' ? 's3_truncate_on_insert = 1' : 's3_create_new_file_on_insert = 1', S3_JOB_SETTINGS.text];
    let failure: unknown;
    try {
      if (signal.aborted) throw new Error('The job was cancelled');
      await this.s.engine.exec(this.insertSql('s3({pipit_url:String}, {pipit_key:String}, {pipit_secret:String}', plan, resolved, prepared, settings, jobId), {
        queryId: jobId,
        params: { ...prepared.queryParams, pipit_url: loc.url(`${dir}${name}`), ...creds },
      });
    } catch (err) {
      failure = err;
    }
    const after = await this.listS3(listUrl, creds, jobId).catch(() => new Map<string, ListedObject>());
    const written: WrittenFile[] = [];
    for (const [p, o] of after) {
      const b = before.get(p);
      if (!b || b.etag !== o.etag || b.size !== o.size || b.time !== o.time) written.push({ path: `${loc.display.split('://')[0]}://${p}`, size: o.size });
    }
    written.sort((a, b) => a.path.localeCompare(b.path));
    if (failure) throw withFiles(failure, written, loc);
    return { rows: await this.countS3(loc, written, plan.format, creds, jobId), files: written };
  }

  /** Rows in the written objects (read back: Parquet from its metadata); null when they can not be counted. */
  private async countS3(
    loc: Extract<SinkLocation, { kind: 's3' }>,
    files: WrittenFile[],
    format: SinkFormat,
    creds: Record<string, string>,
    jobId: string,
  ): Promise<number | null> {
    let total = 0;
    for (let i = 0; i < files.length; i += 50) {
      const batch = files.slice(i, i + 50);
      const params: Record<string, string> = { ...creds };
      const parts = batch.map((f, k) => {
        params[`pipit_u${k}`] = loc.objectUrl(f.path.slice(`${loc.display.split('://')[0]}://${loc.bucket}/`.length));
        return sql`SELECT count() AS c FROM s3({${trusted(`pipit_u${k}`)}:String}, {pipit_key:String}, {pipit_secret:String}, ${FORMATS[format].engine})`.text;
      });
      const r = await this.rows<{ c: string }>(
        sql`SELECT sum(c) AS c FROM (${trusted(parts.join(' UNION ALL '))}) WHERE ${marked(jobId)} SETTINGS ${S3_JOB_SETTINGS}`.text,
        params,
        jobId,
      ).catch(() => null);
      if (!r) return null;
      total += Number(r[0]?.c ?? 0);
    }
    return total;
  }

  private async listS3(url: string, creds: Record<string, string>, jobId: string): Promise<Map<string, ListedObject>> {
    const rows = await this.rows<{ p: string; s: string; e: string; t: string }>(
      sql`SELECT _path AS p, toString(_size) AS s, toString(_etag) AS e, toString(_time) AS t FROM s3({pipit_url:String}, {pipit_key:String}, {pipit_secret:String}, 'One') WHERE ${marked(jobId)} SETTINGS s3_throw_on_zero_files_match = 0, ${S3_JOB_SETTINGS}`
        .text,
      { pipit_url: url, ...creds },
      jobId,
    );
    return new Map(rows.map((r) => [r.p, { size: Number(r.s), etag: r.e, time: r.t }]));
  }

  private async exportLocal(
    loc: Extract<SinkLocation, { kind: 'local' }>,
    { plan, resolved, prepared }: SinkRun,
    jobId: string,
    signal: AbortSignal,
  ): Promise<{ rows: number | null; files: WrittenFile[] }> {
    const staging = loc.staging(jobId);
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging, { recursive: true });
    try {
      const name = `${resolved.prefix}${resolved.partition ? '{_partition_id}' : ''}${resolved.suffix}`;
      if (signal.aborted) throw new Error('The job was cancelled');
      await this.s.engine.exec(this.insertSql('file({pipit_path:String}', plan, resolved, prepared, ['engine_file_truncate_on_insert = 1'], jobId), {
        queryId: jobId,
        params: { ...prepared.queryParams, pipit_path: path.join(staging, name) },
      });
      const staged = (fs.readdirSync(staging, { recursive: true, withFileTypes: true }) as fs.Dirent[])
        .filter((d) => d.isFile())
        .map((d) => path.relative(staging, path.join(d.parentPath, d.name)))
        .sort();
      let rows: number | null = 0;
      if (staged.length) {
        const r = await this.rows<{ c: string }>(
          sql`SELECT count() AS c FROM file({pipit_path:String}, ${FORMATS[plan.format].engine}) WHERE ${marked(jobId)}`.text,
          { pipit_path: path.join(staging, '**') },
          jobId,
        ).catch(() => null);
        rows = r ? Number(r[0]?.c ?? 0) : null;
      }
      const files: WrittenFile[] = [];
      const relDir = path.relative(loc.root, loc.dir);
      for (const rel of staged) {
        const destDir = this.s.connections.localDir([relDir, path.dirname(rel) === '.' ? '' : path.dirname(rel)].filter(Boolean).join('/'), true);
        const src = path.join(staging, rel);
        const size = fs.statSync(src).size;
        const dest = placeFile(src, destDir, path.basename(rel), plan.writeStrategy);
        files.push({ path: `local://${path.relative(loc.root, dest)}`, size });
      }
      return { rows, files };
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  }

  /** The job of a scheduled tick (the scheduler's ScheduledKind for sinks). */
  runScheduled(auth: Auth, pipe: PipeRecord, due: Date): Promise<JobRecord> {
    return this.run(auth, pipe, {}, {}, {}, due);
  }
}

interface ListedObject {
  size: number;
  etag: string;
  time: string;
}

/** The error of a failed export, with the files it wrote before failing. */
function withFiles(err: unknown, files: WrittenFile[], loc: Extract<SinkLocation, { kind: 's3' }>): PipitError {
  const e =
    err instanceof EngineError && err.chType === 'S3_ERROR'
      ? storageError(err, loc)
      : err instanceof PipitError
        ? err
        : badRequest(err instanceof Error ? err.message : String(err));
  return new PipitError(e.code, e.message, { ...e.extra, files });
}

/**
 * Moves a staged file into `dir`: `truncate` replaces a file of the same name, `new` never
 * overwrites and takes the first free `name.N.ext` (as the engine names new S3 objects).
 */
function placeFile(src: string, dir: string, base: string, strategy: WriteStrategy): string {
  const dest = path.join(dir, base);
  if (strategy === 'truncate') {
    const st = fs.lstatSync(dest, { throwIfNoEntry: false });
    if (st && !st.isFile()) fs.rmSync(dest, { force: true });
    fs.renameSync(src, dest);
    return dest;
  }
  const dot = base.indexOf('.', 1);
  for (let n = 0; n < 100_000; n++) {
    const candidate = n === 0 ? dest : path.join(dir, dot > 0 ? `${base.slice(0, dot)}.${n}${base.slice(dot)}` : `${base}.${n}`);
    try {
      fs.linkSync(src, candidate);
      fs.unlinkSync(src);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw badRequest(`Too many files named like ${base} in the directory`);
}
