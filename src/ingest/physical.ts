/**
 * The engine objects behind one Data Source, all named by its stable id so renames touch only the
 * catalog: the table, its quarantine table, and two ingest stages (NDJSON lines, CSV fields), each
 * a Null table with two materialized views that route every row to the table or to quarantine.
 */
import type { DatasourceRecord } from '../catalog/catalog.js';
import type { Column } from '../basics/types.js';
import { engineClause, indexClause, isMergeTreeFamily } from '../schema/index.js';
import { ident, name, type Sql, sql, trusted } from '../engine/sql.js';
import { convert, emptyValue, unwrap } from './convert.js';
import { parseJsonPath } from './jsonpath.js';

/** Block-level deduplication window: a replayed write-ahead-log batch carrying the same token is written once. */
export const DEDUP_WINDOW = 1000;

export interface PhysicalNames {
  db: string;
  table: string;
  quarantine: string;
  jsonStage: string;
  csvStage: string;
}

export function physicalNames(database: string, dsId: string): PhysicalNames {
  // Database names and ids are [a-z0-9_] by construction: no quoting needed (chDB's insert API wants them bare).
  const q = (t: string) => `${database}.${t}`;
  return {
    db: database,
    table: q(dsId),
    quarantine: q(`${dsId}_quarantine`),
    jsonStage: q(`${dsId}_sj`),
    csvStage: q(`${dsId}_sc`),
  };
}

/** Columns the ingest writes (MATERIALIZED and ALIAS ones are computed by the engine). */
export function writableColumns(columns: Column[]): Column[] {
  return columns.filter((c) => !/^(MATERIALIZED|ALIAS|EPHEMERAL)\b/i.test(c.defaultValue ?? ''));
}

export function columnDdl(c: Column): string {
  return [ident(c.name).text, c.type, c.defaultValue ?? '', c.codec ?? ''].filter(Boolean).join(' ');
}

export function createTableSql(ds: DatasourceRecord, database: string, tableName = ds.id): string {
  const defs = ds.columns.map(columnDdl);
  for (const i of ds.indexes) defs.push(indexClause(i));
  let clause = engineClause(ds.engine, ds.columns);
  if (isMergeTreeFamily(ds.engine.engine)) clause = withDedupSetting(clause);
  return sql`CREATE TABLE ${ident(database)}.${ident(tableName)} (${defs.map(trusted)}) ${trusted(clause)}`.text;
}

function withDedupSetting(clause: string): string {
  if (/non_replicated_deduplication_window/.test(clause)) return clause;
  return /\bSETTINGS\b/.test(clause)
    ? clause.replace(/\bSETTINGS\b/, `SETTINGS non_replicated_deduplication_window = ${DEDUP_WINDOW},`)
    : `${clause} SETTINGS non_replicated_deduplication_window = ${DEDUP_WINDOW}`;
}

export function createQuarantineSql(ds: DatasourceRecord, database: string): string {
  const n = physicalNames(database, ds.id);
  const cols = ds.columns.map((c) => sql`${ident(c.name)} Nullable(String)`);
  return sql`CREATE TABLE IF NOT EXISTS ${name(n.quarantine)} (${cols}, c__error_column Array(String), c__error Array(String), c__import_id Nullable(String), insertion_date DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY insertion_date SETTINGS non_replicated_deduplication_window = ${DEDUP_WINDOW}`
    .text;
}

/** DDL (in order) creating every engine object of a data source. */
export function createAllSql(ds: DatasourceRecord, database: string): string[] {
  return [createTableSql(ds, database), createQuarantineSql(ds, database), ...createStagesSql(ds, database)];
}

/** DDL dropping the ingest stages (before re-creating them for a changed schema). */
export function dropStagesSql(ds: DatasourceRecord, database: string): string[] {
  const q = (t: string) => sql`${ident(database)}.${ident(t)}`;
  return ['sj_ok', 'sj_bad', 'sc_ok', 'sc_bad']
    .map((s) => sql`DROP VIEW IF EXISTS ${q(`${ds.id}_${s}`)}`.text)
    .concat(['sj', 'sc'].map((s) => sql`DROP TABLE IF EXISTS ${q(`${ds.id}_${s}`)}`.text));
}

export function dropAllSql(ds: DatasourceRecord, database: string): string[] {
  const n = physicalNames(database, ds.id);
  return [...dropStagesSql(ds, database), sql`DROP TABLE IF EXISTS ${name(n.table)} SYNC`.text, sql`DROP TABLE IF EXISTS ${name(n.quarantine)} SYNC`.text];
}

/** Per column: the raw text expression, and how to finish it into the typed value and its error. */
interface ColumnPlan {
  col: Column;
  raw: string;
}

export function createStagesSql(ds: DatasourceRecord, database: string): string[] {
  const n = physicalNames(database, ds.id);
  const q = (t: string) => sql`${ident(database)}.${ident(t)}`;
  const cols = writableColumns(ds.columns);
  const out: string[] = [];
  const importId = `__import_id String DEFAULT getSetting('log_comment')`;

  // NDJSON stage: one row per line. Only for schemas whose columns all have JSONPaths.
  if (cols.length > 0 && cols.every((c) => c.jsonpath)) {
    out.push(sql`CREATE TABLE ${name(n.jsonStage)} (__line String, ${trusted(importId)}) ENGINE = Null`.text);
    const { select, plans } = jsonExtraction(cols);
    const parsed = parsedSelect(
      plans,
      'json',
      `${select}, JSONType(__line) = 'Object' AS __ok_line`,
      n.jsonStage,
      `match(__line, '^\\\\s*$') = 0`,
      `concat('invalid JSON line: ', __line)`,
    );
    out.push(goodView(q(`${ds.id}_sj_ok`), n.table, plans, parsed));
    out.push(badView(q(`${ds.id}_sj_bad`), n.quarantine, plans, parsed));
  }

  // CSV stage: one Nullable(String) per column, in schema order; __err set for malformed rows.
  if (cols.length > 0) {
    const stageCols = cols.map((_, i) => `__c${i} Nullable(String)`).join(', ');
    out.push(sql`CREATE TABLE ${name(n.csvStage)} (${trusted(stageCols)}, __err String DEFAULT '', ${trusted(importId)}) ENGINE = Null`.text);
    // An empty field is a missing value (NULL or the DEFAULT), except for a plain String without DEFAULT, where it is ''.
    const plans: ColumnPlan[] = cols.map((col, i) => {
      const u = unwrap(col.type);
      const keepEmpty = !u.nullable && u.inner === 'String' && !/^DEFAULT\s/i.test(col.defaultValue ?? '');
      return { col, raw: keepEmpty ? `__c${i}` : `nullIf(__c${i}, '')` };
    });
    const parsed = parsedSelect(plans, 'csv', `__err = '' AS __ok_line`, n.csvStage, '1', `__err`);
    out.push(goodView(q(`${ds.id}_sc_ok`), n.table, plans, parsed));
    out.push(badView(q(`${ds.id}_sc_bad`), n.quarantine, plans, parsed));
  }
  return out;
}

/** Extraction of every column's raw text from `__line`: one JSONExtract for top-level keys, one per nested path. */
function jsonExtraction(cols: Column[]): { select: string; plans: ColumnPlan[] } {
  const top: string[] = [];
  const exprs: string[] = [];
  const plans: ColumnPlan[] = [];
  cols.forEach((col, i) => {
    const path = parseJsonPath(col.jsonpath!);
    const keys = path.keys;
    let raw: string;
    if (path.whole) raw = `__line`;
    else if (keys.length === 1 && !path.array) {
      top.push(sql`${ident(keys[0])} Nullable(String)`.text);
      raw = `tupleElement(__top, ${top.length})`;
    } else {
      raw = sql`JSONExtract(__line, ${keys}, 'Nullable(String)')`.text;
      if (path.array && path.rest.length) {
        // `$.a[:].b` — the array of the field `b` of every element of `a`, as JSON text.
        const inner = trusted(raw);
        raw =
          sql`if(JSONType(${inner}) = 'Array', toJSONString(arrayMap(_x -> JSONExtract(_x, ${path.rest}, 'Nullable(String)'), JSONExtractArrayRaw(${inner}))), NULL)`
            .text;
      }
    }
    exprs.push(`${raw} AS __r${i}`);
    plans.push({ col, raw: `__r${i}` });
  });
  const topExpr = top.length ? `JSONExtract(__line, 'Tuple(${top.join(', ').replace(/'/g, "\\'")})') AS __top, ` : '';
  return { select: topExpr + exprs.join(', '), plans };
}

/** The shared inner SELECT: typed values `__v<i>`, bad flags, error columns and messages. */
function parsedSelect(plans: ColumnPlan[], mode: 'json' | 'csv', extract: string, stage: string, where: string, lineError: string): string {
  const parts: string[] = [extract];
  const errCols: string[] = [];
  const errMsgs: string[] = [];
  plans.forEach(({ col, raw }, i) => {
    const { nullable, inner } = unwrap(col.type);
    const def = col.defaultValue && /^DEFAULT\s/i.test(col.defaultValue) ? col.defaultValue.replace(/^DEFAULT\s+/i, '') : null;
    const empty = emptyValue(col.type);
    const missing = def ?? (nullable ? 'NULL' : empty);
    const conv = convert(raw, col.type, mode);
    parts.push(`${conv.value} AS __t${i}`);
    parts.push(`if(${raw} IS NULL, ${missing ?? `__t${i}`}, __t${i}) AS __v${i}`);
    const bad = `if(${raw} IS NULL, ${missing === null ? '1' : '0'}, ${conv.invalid(`__t${i}`)})`;
    parts.push(`${bad} AS __b${i}`);
    errCols.push(sql`if(__b${i}, ${col.name}, '')`.text);
    const missingMessage = sql`${`value is missing on column '${col.name}', which is not Nullable and has no DEFAULT`}`;
    errMsgs.push(
      `if(__b${i}, if(${raw} IS NULL, ${missingMessage}, ` +
        `concat('value ''', ${raw}, ''' on column ''${col.name.replace(/'/g, "''")}'' is not ${inner.replace(/'/g, "''")}')), '')`,
    );
  });
  // Every typed value also under its column name, so a DEFAULT that refers to other columns
  // (`day Date DEFAULT toDate(ts)`) computes from their typed values, not the raw text.
  plans.forEach(({ col }, i) => parts.push(sql`${trusted(`__v${i}`)} AS ${ident(col.name)}`.text));
  parts.push(`arrayFilter(_s -> _s != '', [${errCols.join(', ')}]) AS __errcols`);
  parts.push(`arrayFilter(_s -> _s != '', [${errMsgs.join(', ')}]) AS __errs`);
  parts.push(`${lineError} AS __line_error`);
  return `SELECT *, ${parts.join(', ')} FROM ${stage} WHERE ${where}`;
}

function goodView(view: Sql, table: string, plans: ColumnPlan[], parsed: string): string {
  const cols = plans.map(({ col }, i) => {
    const v = trusted(unwrap(col.type).nullable ? `__v${i}` : `assumeNotNull(__v${i})`);
    return sql`CAST(${v}, ${col.type}) AS ${ident(col.name)}`;
  });
  return sql`CREATE MATERIALIZED VIEW ${view} TO ${name(table)} AS SELECT ${cols} FROM (${trusted(parsed)}) WHERE __ok_line AND empty(__errcols)`.text;
}

function badView(view: Sql, quarantine: string, plans: ColumnPlan[], parsed: string): string {
  const cols = plans.map(({ col, raw }) => sql`${trusted(raw)} AS ${ident(col.name)}`);
  return sql`CREATE MATERIALIZED VIEW ${view} TO ${name(quarantine)} AS SELECT ${cols}, if(__ok_line, __errcols, []) AS c__error_column, if(__ok_line, __errs, [__line_error]) AS c__error, __import_id AS c__import_id FROM (${trusted(parsed)}) WHERE NOT __ok_line OR notEmpty(__errcols)`
    .text;
}

/** What an internal object nobody can name (a shadow table of a replace, a dropped table) shows as. */
export const INTERNAL_TABLE = '<internal table>';

/** `IN ('all_1_1_0', ...)` of a populate's snapshot of parts (part names have no quotes). */
const PARTS = String.raw`_part IN \((?:'[^'\\]*'(?:, ?)?)*\)`;
const PART_LIST = `(?:\\(${PARTS}\\)|${PARTS})`;

/**
 * Removes what Pipit's own rewrites add to a statement from an engine message: the marker
 * comment (`/* pipit:<id> *\/`), the marker condition of statements with bound parameters
 * (`SELECT * FROM (q) WHERE 'pipit:<id>' != ''`), the `SELECT * FROM (q) LIMIT 0` probe of a
 * query's columns, a populate's snapshot of parts (`_part IN (...)`) and the sandbox database.
 */
export function withoutRewrites(message: string): string {
  return message
    .replace(/\/\* pipit:[0-9A-Za-z]+ \*\/ ?/g, '')
    .replace(/SELECT \* FROM \(([\s\S]*)\) WHERE 'pipit:[0-9A-Za-z]+' != ''/g, '$1')
    .replace(/ WHERE 'pipit:[0-9A-Za-z]+' != ''/g, '')
    .replace(/'pipit:[0-9A-Za-z]+'/g, "''")
    .replace(/pipit:[0-9A-Za-z]+/g, '')
    .replace(/SELECT \* FROM \(([\s\S]*)\) LIMIT 0(?![0-9])/g, '$1')
    .replace(new RegExp(` WHERE ${PART_LIST}( AND)?`, 'g'), (_m, and?: string) => (and ? ' WHERE' : ''))
    .replace(new RegExp(` AND ${PART_LIST}`, 'g'), '')
    .replace(new RegExp(PART_LIST, 'g'), '1')
    .replace(/`?pipit_sandbox`?\.?/g, ''); // SANDBOX_DATABASE, the current database of user queries
}

/**
 * Rewrites what an engine message says about Pipit's internals into what the user knows: the
 * rewrites of withoutRewrites, physical names (`w_<hex>.t_<id>`, with the quarantine, ingest
 * stage and materialized-view suffixes) to the names `nameOf` gives (data sources; pipes and
 * nodes where the caller knows them), and workspace databases removed. A workspace-qualified or
 * suffixed id nobody can name becomes INTERNAL_TABLE; a bare unknown `t_<hex>` is left as it is
 * (it may be an id the user sent).
 */
export function userFacingNames(message: string, nameOf: (id: string) => string | undefined): string {
  return withoutRewrites(message)
    .replace(
      /`?(w_[0-9a-f]{32}`?\.`?)?(t_[0-9a-f]{32})(_quarantine|_sj_ok|_sj_bad|_sc_ok|_sc_bad|_sj|_sc|_mv)?`?/g,
      (m, db: string | undefined, id: string, suffix?: string) => {
        const name = nameOf(id);
        if (!name) return db || suffix ? INTERNAL_TABLE : m;
        return suffix === '_quarantine' ? `${name}_quarantine` : name;
      },
    )
    .replace(/`?w_[0-9a-f]{32}`?\.?/g, '');
}
