/**
 * Plain data types shared by the domain, the catalog and the ingest pipeline.
 * Wire JSON (snake_case, Tinybird's shape) is produced from these by the http layer.
 */

/** One column of a Data Source, as parsed from a Tinybird schema string. */
export interface Column {
  /** Column name as the user wrote it (without backticks). */
  name: string;
  /** Full ClickHouse type as stored in the engine, e.g. `Nullable(String)`, `LowCardinality(String)`. */
  type: string;
  /** True when `type` is `Nullable(...)` at the top level. */
  nullable: boolean;
  /** Default clause with its keyword kept: `DEFAULT 'x'`, `MATERIALIZED a*2`, `ALIAS b`; null if none. */
  defaultValue: string | null;
  /** Full codec clause, e.g. `CODEC(ZSTD(1))`; null if none. */
  codec: string | null;
  /** JSONPath such as `$.a.b`, `$.items[:]`, `$`; null when not set. */
  jsonpath: string | null;
}

/** A table engine with its `engine_*` options (keys without the `engine_` prefix). */
export interface EngineSpec {
  /** Canonical engine name, e.g. `MergeTree`, `ReplacingMergeTree`, `Null`, `Join`. */
  engine: string;
  /** e.g. { sorting_key: "a, b", partition_key: "toYYYYMM(ts)", ttl: "...", settings: "index_granularity=2048", ver: "v" } */
  params: Record<string, string>;
}

/** A data-skipping index: `name expr TYPE type(args) GRANULARITY n`. */
export interface IndexSpec {
  name: string;
  expr: string;
  type: string;
  granularity: string;
}
