/**
 * The service data sources (`tinybird.*`, reference §10) as engine tables: one Pipit-owned database
 * (`pipit_service`) for every workspace, each row tagged with its `workspace_id`. Users never name
 * these tables: the SQL layer rewrites `tinybird.<name>` into a subquery of the public columns
 * filtered to the caller's workspace (`serviceTableSql`), so a workspace reads only its rows and no
 * path can write them. In scale-out mode the database lives in the shared engine, so the requests of
 * every server copy land in one place.
 */
import type { Engine } from '../engine/engine.js';
import { quoteString } from '../engine/engine.js';

/** The engine database holding every workspace's service rows. */
export const SERVICE_DATABASE = 'pipit_service';

interface ServiceTable {
  /** Public columns (`name Type`), in the order `SELECT *` shows them. */
  columns: string[];
  /** Engine clause (ENGINE, ORDER BY, TTL). */
  engine: string;
  /** Read with FINAL (a ReplacingMergeTree whose latest version is the row). */
  final?: boolean;
  /** workspace_id is a public column too (jobs_log, sinks_ops_log have it in Tinybird). */
  publicWorkspace?: boolean;
}

const TABLES: Record<string, ServiceTable> = {
  pipe_stats_rt: {
    columns: [
      'start_datetime DateTime',
      'request_id String',
      'url Nullable(String)',
      'pipe_id String',
      'pipe_name String',
      'status_code Int32',
      'error UInt8',
      'token String',
      'token_name String',
      'duration Float32',
      'read_bytes UInt64',
      'read_rows UInt64',
      'result_rows UInt64',
      'parameters Map(String, String)',
      'method LowCardinality(String)',
      'release String',
      'user_agent Nullable(String)',
      'resource_tags Array(String)',
      'cpu_time Float64',
    ],
    engine: 'ENGINE = MergeTree PARTITION BY toYYYYMMDD(start_datetime) ORDER BY (workspace_id, pipe_id, start_datetime) TTL start_datetime + INTERVAL 7 DAY',
  },
  pipe_stats: {
    columns: [
      'date Date',
      'pipe_id String',
      'pipe_name String',
      'view_count UInt64',
      'error_count UInt64',
      'avg_duration_state AggregateFunction(avg, Float32)',
      'quantile_timing_state AggregateFunction(quantilesTiming(0.9, 0.95, 0.99), Float64)',
      'read_bytes_sum UInt64',
      'read_rows_sum UInt64',
      'resource_tags Array(String)',
    ],
    // Sums the counters and merges the aggregate states of rows with the same key.
    engine: 'ENGINE = SummingMergeTree ORDER BY (workspace_id, date, pipe_id, pipe_name)',
  },
  datasources_ops_log: {
    columns: [
      'timestamp DateTime',
      'event_type LowCardinality(String)',
      'datasource_id String',
      'datasource_name String',
      'result LowCardinality(String)',
      'elapsed_time Float32',
      'error Nullable(String)',
      'request_id String',
      'import_id Nullable(String)',
      'job_id Nullable(String)',
      'rows Nullable(UInt64)',
      'rows_quarantine Nullable(UInt64)',
      'blocks_ids Array(String)',
      '`Options.Names` Array(String)',
      '`Options.Values` Array(String)',
      'operation_id String',
      'read_rows UInt64',
      'read_bytes UInt64',
      'written_rows UInt64',
      'written_bytes UInt64',
      'written_rows_quarantine UInt64',
      'written_bytes_quarantine UInt64',
      'pipe_id String',
      'pipe_name String',
      'release String',
      'cpu_time Float32',
      'resource_tags Array(String)',
    ],
    engine: 'ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (workspace_id, timestamp) TTL timestamp + INTERVAL 6 MONTH',
  },
  block_log: {
    columns: [
      'timestamp DateTime',
      'request_id String',
      'import_id String',
      'job_id Nullable(String)',
      'source String',
      'token_id String',
      'block_id String',
      'status String',
      'datasource_id String',
      'datasource_name String',
      'start_offset Nullable(Int64)',
      'end_offset Nullable(Int64)',
      'rows Nullable(Int32)',
      'parser Nullable(String)',
      'quarantine_lines Nullable(UInt32)',
      'empty_lines Nullable(UInt32)',
      'bytes Nullable(UInt32)',
      'processing_time Nullable(Float32)',
      'processing_error Nullable(String)',
    ],
    engine: 'ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (workspace_id, timestamp) TTL timestamp + INTERVAL 30 DAY',
  },
  endpoint_errors: {
    columns: [
      'start_datetime DateTime',
      'request_id String',
      'pipe_id String',
      'pipe_name String',
      'params Nullable(String)',
      'url Nullable(String)',
      'status_code Nullable(Int32)',
      'error Nullable(String)',
      'resource_tags Array(String)',
    ],
    engine: 'ENGINE = MergeTree PARTITION BY toYYYYMMDD(start_datetime) ORDER BY (workspace_id, start_datetime) TTL start_datetime + INTERVAL 30 DAY',
  },
  jobs_log: {
    columns: [
      'job_id String',
      'job_type LowCardinality(String)',
      'status LowCardinality(String)',
      'error Nullable(String)',
      'workspace_id String',
      'request_id Nullable(String)',
      'pipe_id Nullable(String)',
      'datasource_id Nullable(String)',
      'created_at DateTime64(3)',
      'started_at Nullable(DateTime64(3))',
      'last_updated_at DateTime64(3)',
      'job_metadata String',
    ],
    engine: 'ENGINE = ReplacingMergeTree(last_updated_at) ORDER BY (workspace_id, job_id) TTL toDateTime(created_at) + INTERVAL 6 MONTH',
    final: true,
    publicWorkspace: true,
  },
  sinks_ops_log: {
    columns: [
      'timestamp DateTime',
      'workspace_id String',
      'workspace_name String',
      'service LowCardinality(String)',
      'pipe_id String',
      'pipe_name String',
      'result LowCardinality(String)',
      'error Nullable(String)',
      'elapsed_time Float64',
      'job_id Nullable(String)',
      'read_rows UInt64',
      'written_rows UInt64',
      'read_bytes UInt64',
      'written_bytes UInt64',
      'output Array(String)',
      'parameters Map(String, String)',
      'options Map(String, String)',
      'token_name String',
      'cpu_time Float32',
      'resource_tags Array(String)',
    ],
    engine: 'ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (workspace_id, timestamp) TTL timestamp + INTERVAL 14 MONTH',
    publicWorkspace: true,
  },
  datasources_storage: {
    columns: [
      'timestamp DateTime',
      'datasource_id String',
      'datasource_name String',
      'bytes UInt64',
      'rows UInt64',
      'bytes_quarantine UInt64',
      'rows_quarantine UInt64',
    ],
    engine: 'ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (workspace_id, timestamp) TTL timestamp + INTERVAL 6 MONTH',
  },
};

export type ServiceTableName = keyof typeof TABLES;

/** Names users may read as `tinybird.<name>`. */
export const SERVICE_TABLES: readonly string[] = Object.keys(TABLES);

export function isServiceTable(name: string): name is ServiceTableName {
  return Object.hasOwn(TABLES, name);
}

const columnName = (def: string) => def.slice(0, def.lastIndexOf('`') > 0 ? def.lastIndexOf('`') + 1 : def.indexOf(' '));

/** Public column names of a service table (as written in SQL: `Options.Names` backquoted). */
export function serviceColumns(name: ServiceTableName): string[] {
  return TABLES[name].columns.map(columnName);
}

/** The stored columns (`workspace_id` first unless it is public). */
function storedColumns(t: ServiceTable): string[] {
  return t.publicWorkspace ? t.columns : ['workspace_id String', ...t.columns];
}

/**
 * What `tinybird.<name>` is rewritten to for a workspace: its public columns, its rows only.
 *
 * @example serviceTableSql('endpoint_errors', 'ws1')
 * // (SELECT start_datetime, request_id, ... FROM pipit_service.endpoint_errors WHERE workspace_id = 'ws1')
 */
export function serviceTableSql(name: ServiceTableName, workspaceId: string): string {
  const t = TABLES[name];
  return `(SELECT ${serviceColumns(name).join(', ')} FROM ${SERVICE_DATABASE}.${name}${t.final ? ' FINAL' : ''} WHERE workspace_id = ${quoteString(workspaceId)})`;
}

/** The daily aggregate, kept current by the engine on every insert into pipe_stats_rt. */
const PIPE_STATS_VIEW = `CREATE MATERIALIZED VIEW IF NOT EXISTS ${SERVICE_DATABASE}.pipe_stats_mv TO ${SERVICE_DATABASE}.pipe_stats AS
SELECT workspace_id, toDate(start_datetime) AS date, pipe_id, pipe_name, count() AS view_count, countIf(error = 1) AS error_count,
  avgState(duration) AS avg_duration_state, quantilesTimingState(0.9, 0.95, 0.99)(toFloat64(duration) * 1000) AS quantile_timing_state,
  sum(read_bytes) AS read_bytes_sum, sum(read_rows) AS read_rows_sum, any(resource_tags) AS resource_tags
FROM ${SERVICE_DATABASE}.pipe_stats_rt GROUP BY workspace_id, date, pipe_id, pipe_name`;

/** Creates the database, its tables and the pipe_stats view when missing (idempotent; every server copy runs it). */
export async function ensureServiceTables(engine: Engine): Promise<void> {
  await engine.exec(`CREATE DATABASE IF NOT EXISTS ${SERVICE_DATABASE}`);
  for (const [name, t] of Object.entries(TABLES)) {
    await engine.exec(`CREATE TABLE IF NOT EXISTS ${SERVICE_DATABASE}.${name} (${storedColumns(t).join(', ')}) ${t.engine}`);
  }
  await engine.exec(PIPE_STATS_VIEW);
}
