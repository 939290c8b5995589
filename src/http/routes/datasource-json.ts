/**
 * Data Source JSON exactly as Tinybird shapes it: the object of `GET /v0/datasources/:name`, the
 * list item of `GET /v0/datasources`, and the `attrs` filter.
 */
import type { DatasourceRecord } from '../../catalog/catalog.js';
import type { DatasourceStats } from '../../domain/datasource-service.js';
import { columnToJson, engineToJson, engineToListJson, printSchema } from '../../schema/index.js';
import { tbTime } from '../../basics/time.js';

/** A pipe that reads a data source (`used_by`). */
export interface PipeRef {
  id: string;
  name: string;
}

function base(ds: DatasourceRecord, usedBy: readonly PipeRef[], stats: DatasourceStats | undefined): Record<string, unknown> {
  return {
    id: ds.id,
    name: ds.name,
    cluster: null,
    tags: {},
    created_at: tbTime(ds.createdAt),
    updated_at: tbTime(ds.updatedAt),
    replicated: false,
    version: 0,
    project: null,
    headers: ds.headers,
    shared_with: [],
    description: ds.description,
    used_by: usedBy.map((p) => ({ id: p.id, name: p.name })),
    last_commit: { content_sha: '', status: 'ok', path: '' },
    errors_discarded_at: null,
    type: ds.format,
    // Seed 003's DataSource schema has these flat beside Tinybird's nested `statistics`.
    row_count: stats?.rowCount ?? null,
    disk_bytes: stats?.bytes ?? null,
    ttl_expression: ds.engine.params.ttl ?? '',
  };
}

const indexJson = (ds: DatasourceRecord) => ds.indexes.map((i) => ({ name: i.name, expr: i.expr, type: i.type, granularity: i.granularity }));

/** The full object (single-resource responses, and `datasource` in import responses). */
export function datasourceJson(ds: DatasourceRecord, stats?: DatasourceStats, usedBy: readonly PipeRef[] = []): Record<string, unknown> {
  return {
    ...base(ds, usedBy, stats),
    engine: engineToJson(ds.engine, ds.columns),
    statistics: { bytes: stats?.bytes ?? null, row_count: stats?.rowCount ?? null },
    indexes: indexJson(ds),
    schema: { columns: ds.columns.map(columnToJson), sql_schema: printSchema(ds.columns) },
    new_columns_detected: false,
  };
}

/** A list item of `GET /v0/datasources`. */
export function datasourceListJson(
  ds: DatasourceRecord,
  stats?: DatasourceStats,
  quarantineRows?: number,
  usedBy: readonly PipeRef[] = [],
): Record<string, unknown> {
  return {
    ...base(ds, usedBy, stats),
    engine: engineToListJson(ds.engine),
    columns: ds.columns.map(columnToJson),
    statistics: { bytes: stats?.bytes ?? null, row_count: stats?.rowCount ?? null },
    indexes: indexJson(ds),
    new_columns_detected: {},
    quarantine_rows: quarantineRows ?? 0,
  };
}

/** Keeps only the requested keys (falsy values are dropped, as Tinybird does). */
export function pickAttrs(obj: Record<string, unknown>, attrs: string[] | null): Record<string, unknown> {
  if (!attrs) return obj;
  const out: Record<string, unknown> = {};
  for (const a of attrs) if (obj[a] !== undefined && obj[a] !== null && obj[a] !== false && obj[a] !== '') out[a] = obj[a];
  return out;
}
