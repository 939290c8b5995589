/**
 * The endpoint benches' two cases, shared by bench/endpoint.ts, bench/endpoint-ab.ts and
 * bench/floor.ts: the pipes' node SQL, the events data source and its rows, the parameter
 * combinations of each case and the SQL a user of chDB would write for them ("natural").
 */

export const TRIVIAL_SQL = '%\nSELECT {{ Int32(x, 1) }} AS x';
export const AGG_SQL =
  '%\nSELECT country, count() c, avg(value) v FROM events WHERE value > {{ Float64(min_value, 0.5) }} ' +
  '{% if defined(country) %} AND country = {{ String(country) }} {% end %} GROUP BY country';

/** The events data source's schema (JSONPaths, as `POST /v0/datasources` takes it). */
export const EVENTS_SCHEMA =
  'timestamp DateTime `json:$.timestamp`, user_id UInt32 `json:$.user_id`, country LowCardinality(String) `json:$.country`, value Float64 `json:$.value`';
/** The same columns as a plain CREATE TABLE body (raw chDB, the floor server). */
export const EVENTS_COLUMNS = 'timestamp DateTime, user_id UInt32, country LowCardinality(String), value Float64';

/** The rows of the events data source: 8 countries, values spread over [0, 1). */
export const rowsSql = (rows: number) =>
  `SELECT toDateTime('2024-01-01 00:00:00') + intDiv(number, 10) AS timestamp, toUInt32(number % 100000) AS user_id, ` +
  `['ES', 'US', 'FR', 'DE', 'GB', 'IT', 'JP', 'BR'][number % 8 + 1] AS country, ((number * 7919) % 1000000) / 1e6 AS value FROM numbers(${rows})`;

/** (a)'s parameters: x in 1..20. */
export const trivialCombos: Array<Record<string, string>> = Array.from({ length: 20 }, (_, i) => ({ x: String(i + 1) }));

/** (b)'s parameters: min_value in 5 values, country absent or one of 4 (20 combinations). */
export const aggCombos: Array<Record<string, string>> = [];
for (const min of ['0.1', '0.3', '0.5', '0.7', '0.9']) {
  for (const country of [undefined, 'ES', 'US', 'JP']) aggCombos.push(country ? { min_value: min, country } : { min_value: min });
}

/** What a user of chDB would write for (a)'s parameters. */
export const naturalTrivial = (p: Record<string, string>) => `SELECT toInt32(${Number(p.x)}) AS x`;
/** What a user of chDB would write for (b)'s parameters, on `table`. */
export const naturalAgg = (table: string, p: Record<string, string>) =>
  `SELECT country, count() c, avg(value) v FROM ${table} WHERE value > ${Number(p.min_value)}` +
  `${p.country ? ` AND country = '${p.country}'` : ''} GROUP BY country`;

/**
 * (s), not a bench case: (a) with a wait of `ms` inside the engine that touches no data (`sleep`),
 * for telling what a long engine wait costs the rest of the request from what a scan's work does.
 */
export const sleepSql = (ms: number) => `%\nSELECT {{ Int32(x, 1) }} AS x, sleep(${ms / 1000}) AS s`;
export const naturalSleep = (p: Record<string, string>, ms: number) => `SELECT toInt32(${Number(p.x)}) AS x, sleep(${ms / 1000}) AS s`;
