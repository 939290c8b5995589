/**
 * Records what the server does into the service data sources (src/observability/service-tables.ts)
 * and keeps the Prometheus metrics. Recording is off the request path: a record is an object pushed
 * onto an in-memory buffer (microseconds), and a timer inserts each table's buffer as one engine
 * insert every `flushMs` (internal work, never queued behind user queries). A crash loses at most the
 * records of the last interval, never user data; a buffer that can not be inserted (a full disk) is
 * kept and retried, up to a bound beyond which the oldest records are dropped and counted.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { DatasourceRecord, JobRecord, Workspace } from '../catalog/catalog.js';
import type { Engine } from '../engine/engine.js';
import { quoteString } from '../engine/engine.js';
import { runAsInternalWork } from '../engine/lanes.js';
import { currentRequest, type RequestInfo } from './context.js';
import { Registry } from './metrics.js';
import { RecordLines } from './record-lines.js';
import { ensureServiceTables, SERVICE_DATABASE, type ServiceTableName } from './service-tables.js';

/** One operation on a data source, as domain code reports it (datasources_ops_log). */
export interface OpRecord {
  eventType: string;
  datasource: { id: string; name: string } | null;
  result: 'ok' | 'error';
  /** Seconds the operation took. */
  elapsed: number;
  error?: string | null;
  importId?: string | null;
  jobId?: string | null;
  /** Rows written to the table, and to its quarantine. */
  rows?: number | null;
  rowsQuarantine?: number | null;
  /** Bytes read from the source (imports). */
  bytes?: number;
  /** Bytes the engine reported written (InsertSummary: ingest stage, table and quarantine together). */
  writtenBytes?: number;
  pipe?: { id: string; name: string } | null;
  readRows?: number;
  readBytes?: number;
  options?: Record<string, string>;
  operationId?: string;
  requestId?: string;
  timestamp?: Date;
}

/** Where domain code reports its operations (the Observability service, or nothing). */
export interface OpsLog {
  op(workspaceId: string, rec: OpRecord): void;
}

export const NO_OPS_LOG: OpsLog = { op() {} };

export interface ObservabilityOptions {
  /** Record the service data sources (PIPIT_SERVICE_DATASOURCES; metrics are kept either way). */
  enabled: boolean;
  /** Milliseconds between inserts of the buffered records. */
  flushMs: number;
  /** Milliseconds between datasources_storage snapshots. */
  storageMs?: number;
  /** Records kept per table while the engine refuses them; older ones are dropped beyond this. */
  maxBuffered?: number;
}

/** What the periodic and grouped records read from the rest of the server (given at start). */
export interface ObservedSources {
  workspaces(): Promise<Workspace[]>;
  datasources(ws: Workspace): Promise<DatasourceRecord[]>;
  nameOfDatasource(id: string): string | undefined;
  /** Bytes acknowledged by the Events API and not yet in the engine. */
  walBacklog?(): number;
  /** Engine slots in use and waited for, per lane. */
  engineLanes?(): { busy: Record<string, number>; queued: Record<string, number> } | undefined;
  /** Admission control: queries running and waiting, and totals of waits. */
  admission?(): { running: number; waiting: number; waited?: number; waitSeconds?: number; refused?: number };
}

/** Events API inserts of one data source within one flush interval (one `append-hfi` row). */
interface HfiGroup {
  workspaceId: string;
  database: string;
  datasourceId: string;
  rows: number;
  bytes: number;
  /** Bytes the engine reported written (OpRecord.writtenBytes). */
  writtenBytes: number;
  elapsed: number;
  requestIds: Set<string>;
  first: number;
}

const iso = (d: Date | number) => new Date(d).toISOString();

/**
 * How often the event-loop lag is sampled, in ms. Each sample is a timer that wakes the loop: at
 * Node's default of 10 ms an idle server woke 100 times a second (~14 ms of main-thread CPU a
 * second on the benchmark VM), and an endpoint request waiting ~10 ms for the engine was woken
 * once more in the middle (docs/benchmarks.md, session 7). A stall at least this long is seen
 * (but in the first interval after a scrape, which the histogram's reset drops, as at 10 ms); a
 * shorter one in proportion to its length.
 */
const LOOP_SAMPLE_MS = 50;
/** Lag in seconds from a sampled interval in ns: how much later than due the sample ran. */
const lagOf = (intervalNs: number) => Math.max(0, intervalNs / 1e6 - LOOP_SAMPLE_MS) / 1000;
const TERMINAL = new Set(['done', 'error', 'cancelled']);
const MAX_HFI_IDS = 5000;
const MAX_JOB_REQUESTS = 10_000;

export class Observability implements OpsLog {
  readonly metrics = new Registry();
  private readonly buffers = new Map<ServiceTableName, RecordLines>();
  private readonly hfi = new Map<string, HfiGroup>();
  private timer: NodeJS.Timeout | null = null;
  private storageTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private sources: ObservedSources | null = null;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS });
  private warned = false;
  /** Jobs this copy saw created by a request, until they end: job id → request id. */
  private readonly jobRequests = new Map<string, string>();

  readonly httpRequests = this.metrics.counter('pipit_http_requests_total', 'HTTP requests by route family, method and status code', [
    'family',
    'method',
    'status',
  ]);
  readonly httpDuration = this.metrics.histogram('pipit_http_request_duration_seconds', 'HTTP request duration by route family', ['family']);
  readonly endpointRequests = this.metrics.counter('pipit_endpoint_requests_total', 'API Endpoint and Query API requests by pipe and status code', [
    'workspace_id',
    'pipe',
    'status',
  ]);
  readonly endpointDuration = this.metrics.histogram('pipit_endpoint_duration_seconds', 'API Endpoint and Query API request duration by pipe', [
    'workspace_id',
    'pipe',
  ]);
  private readonly ingestedRows = this.metrics.counter('pipit_ingested_rows_total', 'Rows written into data sources by ingestion', [
    'workspace_id',
    'datasource',
    'event_type',
  ]);
  private readonly ingestedBytes = this.metrics.counter('pipit_ingested_bytes_total', 'Bytes of ingested input', ['workspace_id', 'datasource', 'event_type']);
  private readonly quarantinedRows = this.metrics.counter('pipit_quarantined_rows_total', 'Rows written into quarantine', [
    'workspace_id',
    'datasource',
    'event_type',
  ]);
  private readonly operations = this.metrics.counter('pipit_datasource_operations_total', 'Operations on data sources by type and result', [
    'event_type',
    'result',
  ]);
  private readonly jobs = this.metrics.counter('pipit_jobs_total', 'Jobs reaching a status, by kind', ['kind', 'status']);
  private readonly jobsWorking = this.metrics.gauge('pipit_jobs_working', 'Jobs running now, by kind', ['kind']);
  private readonly working = new Map<string, string>();
  private readonly walBacklog = this.metrics.gauge('pipit_events_wal_backlog_bytes', 'Events API bytes acknowledged and not yet in the engine');
  private readonly laneBusy = this.metrics.gauge('pipit_engine_slots_busy', 'Engine calls running, per lane', ['lane']);
  private readonly laneQueued = this.metrics.gauge('pipit_engine_slots_queued', 'Engine calls waiting for a slot, per lane', ['lane']);
  private readonly admissionRunning = this.metrics.gauge('pipit_query_admission_running', 'User queries admitted and running');
  private readonly admissionWaiting = this.metrics.gauge('pipit_query_admission_waiting', 'User queries waiting for admission');
  private readonly admissionWaits = this.metrics.gauge('pipit_query_admission_waits_total', 'User queries that waited for admission (counter)');
  private readonly admissionWaitSeconds = this.metrics.gauge(
    'pipit_query_admission_wait_seconds_total',
    'Seconds user queries spent waiting for admission (counter)',
  );
  private readonly admissionRefused = this.metrics.gauge('pipit_query_admission_refused_total', 'User queries refused with 429 by admission control (counter)');
  private readonly memory = this.metrics.gauge('pipit_process_memory_bytes', 'Memory of the server process', ['kind']);
  private readonly loopLag = this.metrics.gauge('pipit_event_loop_lag_seconds', `Event-loop lag since the last scrape (sampled every ${LOOP_SAMPLE_MS} ms)`, [
    'quantile',
  ]);
  private readonly buffered = this.metrics.gauge('pipit_service_records_buffered', 'Service data source records waiting for their insert', ['table']);
  private readonly dropped = this.metrics.counter(
    'pipit_service_records_dropped_total',
    'Service data source records dropped (the engine refused them too long)',
    ['table'],
  );
  private readonly flushFailures = this.metrics.counter('pipit_service_flush_failures_total', 'Failed inserts of service data source records', ['table']);

  constructor(
    private readonly engine: Engine,
    readonly options: ObservabilityOptions,
    private readonly log: (msg: string, extra?: Record<string, unknown>) => void = () => undefined,
  ) {
    this.loopDelay.enable();
    this.metrics.onCollect(() => this.collect());
  }

  /** Creates the service tables (before the SQL layer learns the engine's databases). */
  async init(): Promise<void> {
    await ensureServiceTables(this.engine);
  }

  /** Starts the flush and storage timers. */
  start(sources: ObservedSources): void {
    this.sources = sources;
    this.timer = setInterval(() => void this.flush(), this.options.flushMs);
    this.timer.unref();
    const storageMs = this.options.storageMs ?? 15 * 60_000;
    if (this.options.enabled && storageMs > 0) {
      this.storageTimer = setInterval(() => void this.snapshotStorage().catch((err) => this.log('storage snapshot failed', { error: String(err) })), storageMs);
      this.storageTimer.unref();
    }
  }

  private push(table: ServiceTableName, row: object): void {
    let b = this.buffers.get(table);
    if (!b) this.buffers.set(table, (b = new RecordLines()));
    try {
      b.push(row);
    } catch {
      // Not JSON (a record the code built wrongly): counted, never in the way of the request.
      this.dropped.inc({ table });
      return;
    }
    const max = this.options.maxBuffered ?? 100_000;
    if (b.count > max) {
      const n = b.count - max;
      b.dropOldest(n);
      this.dropped.inc({ table }, n);
    }
  }

  // ---- records -------------------------------------------------------------------------------

  op(workspaceId: string, r: OpRecord): void {
    this.operations.inc({ event_type: r.eventType, result: r.result });
    if (r.datasource && r.result === 'ok') {
      const labels = { workspace_id: workspaceId, datasource: r.datasource.name, event_type: r.eventType };
      if (r.rows) this.ingestedRows.inc(labels, r.rows);
      if (r.bytes) this.ingestedBytes.inc(labels, r.bytes);
      if (r.rowsQuarantine) this.quarantinedRows.inc(labels, r.rowsQuarantine);
    }
    if (!this.options.enabled) return;
    const req = currentRequest();
    const requestId = r.requestId ?? req?.id ?? this.jobRequests.get(r.jobId ?? r.importId ?? '') ?? '';
    const opts = r.options ?? {};
    this.push('datasources_ops_log', {
      workspace_id: workspaceId,
      timestamp: iso(r.timestamp ?? Date.now()),
      event_type: r.eventType,
      datasource_id: r.datasource?.id ?? '',
      datasource_name: r.datasource?.name ?? '',
      result: r.result,
      elapsed_time: r.elapsed,
      error: r.error ?? null,
      request_id: requestId,
      import_id: r.importId ?? null,
      job_id: r.jobId ?? null,
      rows: r.rows ?? null,
      rows_quarantine: r.rowsQuarantine ?? null,
      blocks_ids: [],
      'Options.Names': Object.keys(opts),
      'Options.Values': Object.values(opts),
      operation_id: r.operationId ?? r.jobId ?? (requestId || r.importId) ?? '',
      read_rows: r.readRows ?? 0,
      read_bytes: r.readBytes ?? 0,
      written_rows: r.rows ?? 0,
      written_bytes: r.writtenBytes ?? 0,
      written_rows_quarantine: r.rowsQuarantine ?? 0,
      written_bytes_quarantine: 0,
      pipe_id: r.pipe?.id ?? '',
      pipe_name: r.pipe?.name ?? '',
      release: '',
      cpu_time: 0,
      resource_tags: [],
    });
    // An import's block (one per request or job: Pipit ingests a body as one stream).
    if (r.datasource && (r.eventType === 'append' || r.eventType === 'replace') && r.importId) {
      this.push('block_log', {
        workspace_id: workspaceId,
        timestamp: iso(r.timestamp ?? Date.now()),
        request_id: requestId,
        import_id: r.importId,
        job_id: r.jobId ?? null,
        source: r.options?.source ?? 'body',
        token_id: req?.token?.id ?? '',
        block_id: r.importId,
        status: r.result === 'ok' ? 'done' : 'error',
        datasource_id: r.datasource.id,
        datasource_name: r.datasource.name,
        start_offset: 0,
        end_offset: r.bytes ?? null,
        rows: r.rows ?? null,
        parser: r.options?.format ?? null,
        quarantine_lines: r.rowsQuarantine ?? null,
        empty_lines: 0,
        bytes: r.bytes ?? null,
        processing_time: r.elapsed,
        processing_error: r.error ?? null,
      });
    }
  }

  /**
   * One request has ended (HTTP hooks): pipe_stats_rt for endpoint and Query API calls, and
   * endpoint_errors for failed endpoint calls.
   */
  request(info: RequestInfo, r: { status: number; durationSec: number; method: string; url: string; userAgent?: string }): void {
    if (!info.pipe || !info.workspaceId) return;
    this.endpointRequests.inc({ workspace_id: info.workspaceId, pipe: info.pipe.name, status: String(r.status) });
    this.endpointDuration.observe({ workspace_id: info.workspaceId, pipe: info.pipe.name }, r.durationSec);
    if (!this.options.enabled || info.serviceOnly) return;
    const start = iso(Date.now() - r.durationSec * 1000);
    const failed = r.status >= 400;
    this.push('pipe_stats_rt', {
      workspace_id: info.workspaceId,
      start_datetime: start,
      request_id: info.id,
      url: r.url,
      pipe_id: info.pipe.id,
      pipe_name: info.pipe.name,
      status_code: r.status,
      error: failed ? 1 : 0,
      token: info.token?.id ?? '',
      token_name: info.token?.name ?? '',
      duration: r.durationSec,
      read_bytes: info.readBytes ?? 0,
      read_rows: info.readRows ?? 0,
      result_rows: info.resultRows ?? 0,
      parameters: info.parameters ?? {},
      method: r.method,
      release: '',
      user_agent: r.userAgent ?? null,
      resource_tags: [],
      cpu_time: 0,
    });
    if (failed && info.pipe.id !== 'query_api') {
      this.push('endpoint_errors', {
        workspace_id: info.workspaceId,
        start_datetime: start,
        request_id: info.id,
        pipe_id: info.pipe.id,
        pipe_name: info.pipe.name,
        params: info.parameters ? JSON.stringify(info.parameters) : null,
        url: r.url,
        status_code: r.status,
        error: info.error ?? null,
        resource_tags: [],
      });
    }
  }

  /** This copy created a job (JobService): the request creating it, for the job's rows. */
  jobCreated(job: JobRecord): void {
    const requestId = currentRequest()?.id;
    if (!requestId) return;
    // Jobs another copy ends are never seen ending here: the oldest go first.
    if (this.jobRequests.size >= MAX_JOB_REQUESTS) this.jobRequests.delete(this.jobRequests.keys().next().value!);
    this.jobRequests.set(job.id, requestId);
  }

  /** A job changed status (JobService listener): jobs_log, and the operation it was for. */
  job(job: JobRecord): void {
    this.jobs.inc({ kind: job.kind, status: job.status });
    if (job.status === 'working') this.working.set(job.id, job.kind);
    else this.working.delete(job.id);
    if (!this.options.enabled) return;
    const d = job.data as Record<string, unknown>;
    const ds = d.datasource as { id?: string; name?: string } | undefined;
    const pipe = typeof d.pipe_id === 'string' ? { id: d.pipe_id, name: String(d.pipe_name ?? '') } : null;
    // The request that created the job (when this copy created it), for every row of the job:
    // the job itself runs after that request has ended.
    const req = currentRequest();
    const requestId = req?.id ?? this.jobRequests.get(job.id);
    const { is_cancellable_while_working: _c, ...metadata } = d;
    this.push('jobs_log', {
      job_id: job.id,
      job_type: job.kind,
      status: job.status,
      error: job.error,
      workspace_id: job.workspaceId,
      request_id: requestId ?? null,
      pipe_id: pipe?.id ?? null,
      datasource_id: ds?.id ?? null,
      created_at: job.createdAt,
      started_at: job.startedAt,
      last_updated_at: job.updatedAt,
      job_metadata: JSON.stringify(metadata),
    });
    const datasource = ds?.id ? { id: ds.id, name: ds.name ?? '' } : null;
    if (job.kind === 'populateview' && job.status === 'working') {
      this.op(job.workspaceId, {
        eventType: 'populateview-queued',
        datasource,
        pipe,
        result: 'ok',
        elapsed: (Date.parse(job.startedAt ?? job.updatedAt) - Date.parse(job.createdAt)) / 1000,
        jobId: job.id,
        timestamp: new Date(job.createdAt),
      });
    }
    if (!TERMINAL.has(job.status)) return;
    this.jobRequests.delete(job.id);
    const eventType = ({ populateview: 'populateview', copy: 'copy', sink: 'sink', delete_data: 'delete_data' } as Partial<Record<string, string>>)[job.kind];
    if (!eventType) return;
    const stats = (d.statistics ?? {}) as Record<string, unknown>;
    const rows = job.kind === 'delete_data' ? Number(d.rows_affected ?? 0) : typeof stats.rows === 'number' ? stats.rows : null;
    const elapsed = job.startedAt ? (Date.parse(job.updatedAt) - Date.parse(job.startedAt)) / 1000 : 0;
    const result = job.status === 'done' ? 'ok' : 'error';
    const error = job.status === 'cancelled' ? 'The job was cancelled' : job.error;
    this.op(job.workspaceId, { eventType, datasource: job.kind === 'sink' ? null : datasource, pipe, result, elapsed, jobId: job.id, rows, error, requestId });
    if (job.kind === 'sink') {
      const files = Array.isArray(d.files) ? (d.files as Array<{ name?: string; path?: string }>).map((f) => String(f.path ?? f.name ?? '')) : [];
      this.push('sinks_ops_log', {
        timestamp: iso(Date.now()),
        workspace_id: job.workspaceId,
        workspace_name: '',
        service: String(d.service ?? (d.connection as { service?: string } | undefined)?.service ?? ''),
        pipe_id: pipe?.id ?? '',
        pipe_name: pipe?.name ?? '',
        result,
        error,
        elapsed_time: elapsed,
        job_id: job.id,
        read_rows: 0,
        written_rows: typeof stats.rows === 'number' ? stats.rows : 0,
        read_bytes: 0,
        written_bytes: typeof stats.bytes === 'number' ? stats.bytes : 0,
        output: files,
        parameters: {},
        options: {},
        token_name: req?.token?.name ?? '',
        cpu_time: 0,
        resource_tags: [],
      });
    }
  }

  /**
   * The Events API inserted a segment (its requests' rows are in the table or quarantine): grouped
   * per data source and flush interval into one `append-hfi` operation, as Tinybird groups them.
   */
  eventsInserted(
    target: { workspaceId: string; database: string; datasourceId: string },
    requestIds: readonly string[],
    rows: number,
    bytes: number,
    elapsedSec: number,
    writtenBytes: number,
  ): void {
    const key = `${target.workspaceId}__${target.datasourceId}`;
    let g = this.hfi.get(key);
    if (!g) {
      g = {
        workspaceId: target.workspaceId,
        database: target.database,
        datasourceId: target.datasourceId,
        rows: 0,
        bytes: 0,
        writtenBytes: 0,
        elapsed: 0,
        requestIds: new Set(),
        first: Date.now(),
      };
      this.hfi.set(key, g);
    }
    g.rows += rows;
    g.bytes += bytes;
    g.writtenBytes += writtenBytes;
    g.elapsed += elapsedSec;
    for (const id of requestIds) if (g.requestIds.size < MAX_HFI_IDS) g.requestIds.add(id);
  }

  /** Turns the grouped Events API inserts into operations, with their quarantined rows counted once per group. */
  private async drainHfi(): Promise<void> {
    const groups = [...this.hfi.values()];
    this.hfi.clear();
    for (const g of groups) {
      let quarantined = 0;
      try {
        const ids = [...g.requestIds].map(quoteString).join(', ');
        const r = await this.engine.rows<{ c: string }>(
          `SELECT count() AS c FROM ${g.database}.${g.datasourceId}_quarantine WHERE insertion_date >= toDateTime(${Math.floor(g.first / 1000) - 5}) AND c__import_id IN (${ids})`,
        );
        quarantined = Number(r[0]?.c ?? 0);
      } catch {
        // The data source was dropped meanwhile: its rows are counted as written.
      }
      const name = this.sources?.nameOfDatasource(g.datasourceId) ?? '';
      this.op(g.workspaceId, {
        eventType: 'append-hfi',
        datasource: { id: g.datasourceId, name },
        result: 'ok',
        elapsed: g.elapsed,
        rows: Math.max(0, g.rows - quarantined),
        rowsQuarantine: quarantined,
        bytes: g.bytes,
        writtenBytes: g.writtenBytes,
        requestId: '',
        operationId: '',
        timestamp: new Date(g.first),
      });
    }
  }

  /** One datasources_storage row per data source: rows and bytes of its table and quarantine. */
  async snapshotStorage(): Promise<void> {
    if (!this.options.enabled || !this.sources) return;
    const parts = await this.engine.rows<{ database: string; table: string; rows: string; bytes: string }>(
      "SELECT database, table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts WHERE active AND database LIKE 'w\\_%' GROUP BY database, table",
    );
    const sizes = new Map(parts.map((p) => [`${p.database}.${p.table}`, p]));
    const now = iso(Date.now());
    for (const ws of await this.sources.workspaces()) {
      for (const ds of await this.sources.datasources(ws)) {
        const t = sizes.get(`${ws.database}.${ds.id}`);
        const q = sizes.get(`${ws.database}.${ds.id}_quarantine`);
        this.push('datasources_storage', {
          workspace_id: ws.id,
          timestamp: now,
          datasource_id: ds.id,
          datasource_name: ds.name,
          bytes: Number(t?.bytes ?? 0),
          rows: Number(t?.rows ?? 0),
          bytes_quarantine: Number(q?.bytes ?? 0),
          rows_quarantine: Number(q?.rows ?? 0),
        });
      }
    }
  }

  /** The slowest requests of a pipe in the last day (GET /v0/pipes/:p/requests). */
  async topRequests(workspaceId: string, pipeId: string, limit = 20): Promise<Array<Record<string, unknown>>> {
    const rows = await runAsInternalWork(() =>
      this.engine.rows<Record<string, unknown>>(
        `SELECT start_datetime, request_id, url, status_code, duration, read_bytes, read_rows, result_rows, method
FROM ${SERVICE_DATABASE}.pipe_stats_rt WHERE workspace_id = ${quoteString(workspaceId)} AND pipe_id = ${quoteString(pipeId)}
AND start_datetime > now() - INTERVAL 1 DAY ORDER BY duration DESC LIMIT ${limit}`,
      ),
    );
    return rows.map((r) => ({ ...r, read_bytes: Number(r.read_bytes), read_rows: Number(r.read_rows), result_rows: Number(r.result_rows) }));
  }

  // ---- flushing ------------------------------------------------------------------------------

  /** Inserts every buffered record (one insert per table). Resolves when done; never rejects. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    this.flushing = runAsInternalWork(() => this.flushOnce()).finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (this.hfi.size) await this.drainHfi();
    for (const [table, rows] of this.buffers) {
      if (!rows.count) continue;
      const batch = rows.take();
      try {
        await this.engine.insert({
          table: `${SERVICE_DATABASE}.${table}`,
          format: 'JSONEachRow',
          data: batch.data,
          settings: { date_time_input_format: 'best_effort', input_format_skip_unknown_fields: 1 },
        });
        rows.recycle(batch);
        this.warned = false;
      } catch (err) {
        this.flushFailures.inc({ table });
        // Kept for the next flush (bounded by push()); logged once until a flush works again.
        rows.restore(batch);
        if (!this.warned) this.log('service data source records could not be inserted; kept for the next flush', { table, error: String(err) });
        this.warned = true;
      }
    }
  }

  private collect(): void {
    const s = this.sources;
    if (s?.walBacklog) this.walBacklog.set({}, s.walBacklog());
    const lanes = s?.engineLanes?.();
    if (lanes) {
      for (const [lane, v] of Object.entries(lanes.busy)) this.laneBusy.set({ lane }, v);
      for (const [lane, v] of Object.entries(lanes.queued)) this.laneQueued.set({ lane }, v);
    }
    const a = s?.admission?.();
    if (a) {
      this.admissionRunning.set({}, a.running);
      this.admissionWaiting.set({}, a.waiting);
      this.admissionWaits.set({}, a.waited ?? 0);
      this.admissionWaitSeconds.set({}, a.waitSeconds ?? 0);
      this.admissionRefused.set({}, a.refused ?? 0);
    }
    const kinds = new Map<string, number>();
    for (const k of this.working.values()) kinds.set(k, (kinds.get(k) ?? 0) + 1);
    for (const k of ['import', 'populateview', 'copy', 'sink', 'delete_data', ...kinds.keys()]) this.jobsWorking.set({ kind: k }, kinds.get(k) ?? 0);
    const m = process.memoryUsage();
    this.memory.set({ kind: 'rss' }, m.rss);
    this.memory.set({ kind: 'heap_used' }, m.heapUsed);
    this.memory.set({ kind: 'heap_total' }, m.heapTotal);
    this.memory.set({ kind: 'external' }, m.external);
    // The histogram holds whole intervals between samples (the sampling period plus the lag).
    for (const q of [50, 99]) this.loopLag.set({ quantile: String(q / 100) }, lagOf(this.loopDelay.percentile(q)));
    this.loopLag.set({ quantile: '1' }, lagOf(this.loopDelay.max));
    this.loopDelay.reset();
    for (const [table, rows] of this.buffers) this.buffered.set({ table }, rows.count);
  }

  /** Stops the timers and inserts what is buffered (at shutdown, before the engine closes). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.storageTimer) clearInterval(this.storageTimer);
    this.loopDelay.disable();
    await this.flush();
  }
}
