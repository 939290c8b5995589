/**
 * The engine objects behind one Data Source, all named by its stable id so renames touch only the
 * catalog: the table and its quarantine table in the workspace database, and two ingest stages
 * (NDJSON lines, CSV fields) in STAGES_DATABASE, each a Null table with two materialized views that
 * route every row to the table or to quarantine. The stages hold no data: they are made when a
 * process first inserts into the data source (DatasourceService.ensureStage), not at its creation.
 */
import crypto from 'node:crypto';
import type { DatasourceRecord } from '../catalog/catalog.js';
import type { Column } from '../basics/types.js';
import { engineClause, indexClause, isMergeTreeFamily } from '../schema/index.js';
import { ident, name, type Sql, sql, trusted } from '../engine/sql.js';
import { quoteString } from '../engine/engine.js';
import { convert, emptyValue, unwrap } from './convert.js';
import { parseJsonPath } from './jsonpath.js';

/** Block-level deduplication window: a replayed write-ahead-log batch carrying the same token is written once. */
export const DEDUP_WINDOW = 1000;

/**
 * The database of every workspace's ingest stages. On an engine that lives in Pipit's process it
 * is a Memory database: its objects are not persisted, so a start does not load them (the engine
 * loads every persisted table and view before its first Session answers).
 */
export const STAGES_DATABASE = 'pipit_stages';

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
    jsonStage: `${STAGES_DATABASE}.${dsId}_sj`,
    csvStage: `${STAGES_DATABASE}.${dsId}_sc`,
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

/** DDL (in order) creating the tables of a data source (its stages are made at first insert, see stagesDdl). */
export function createTablesSql(ds: DatasourceRecord, database: string): string[] {
  return [createTableSql(ds, database), createQuarantineSql(ds, database)];
}

/** The two ingest stages: `json` takes NDJSON lines (`_sj`), `csv` CSV fields (`_sc`). */
export type StageKind = 'json' | 'csv';
const STAGE_SUFFIX: Record<StageKind, string> = { json: '_sj', csv: '_sc' };

/** Names (in STAGES_DATABASE) of one stage's objects: its table, then its two views. */
export function stageObjectNames(dsId: string, kind: StageKind): string[] {
  const t = dsId + STAGE_SUFFIX[kind];
  return [t, `${t}_ok`, `${t}_bad`];
}

/** DDL dropping the objects of one stage of a data source (views first), whichever exist; both stages without `kind`. */
export function dropStagesSql(dsId: string, kind?: StageKind): string[] {
  const q = (t: string) => sql`${ident(STAGES_DATABASE)}.${ident(t)}`;
  return (kind ? [kind] : (['json', 'csv'] as const)).flatMap((k) => {
    const [table, ...views] = stageObjectNames(dsId, k);
    return [...views.map((v) => sql`DROP VIEW IF EXISTS ${q(v)}`.text), sql`DROP TABLE IF EXISTS ${q(table)}`.text];
  });
}

export function dropAllSql(ds: DatasourceRecord, database: string): string[] {
  const n = physicalNames(database, ds.id);
  return [...dropStagesSql(ds.id), sql`DROP TABLE IF EXISTS ${name(n.table)} SYNC`.text, sql`DROP TABLE IF EXISTS ${name(n.quarantine)} SYNC`.text];
}

/** One ingest stage of a data source, made or checked as a unit (DatasourceService.ensureStage). */
export interface StageDdl {
  kind: StageKind;
  /**
   * Digest of the stage's definition, kept as its table's comment: a stage made from another
   * definition (an older Pipit, the schema before an alter) is made again.
   */
  version: string;
  /** Its objects in STAGES_DATABASE (stageObjectNames). */
  names: string[];
  /** `CREATE ... IF NOT EXISTS` statements, the table first (so they also complete a stage made in part). */
  statements: string[];
}

/** The stages of a data source (createStagesSql): the CSV one always, the NDJSON one when every column has a JSONPath. */
export function stagesDdl(ds: DatasourceRecord, database: string): StageDdl[] {
  return createStagesSql(ds, database).map(({ kind, statements: created }) => {
    const version = crypto.createHash('sha256').update(created.join('\n')).digest('hex').slice(0, 32);
    const statements = created.map((s) => {
      const m = /^CREATE (TABLE|MATERIALIZED VIEW) /.exec(s)!;
      const withIf = `${m[0]}IF NOT EXISTS ${s.slice(m[0].length)}`;
      return m[1] === 'TABLE' ? `${withIf} COMMENT ${quoteString(version)}` : withIf;
    });
    return { kind, version, names: stageObjectNames(ds.id, kind), statements };
  });
}

/** Per column: the stage column holding its raw text (`__r<i>`, NULL when missing). */
interface ColumnPlan {
  col: Column;
  raw: string;
}

/** How one stage's rows are read: where the raw texts come from and what makes a whole line bad. */
interface StagePlan {
  plans: ColumnPlan[];
  mode: 'json' | 'csv';
  /** Stage columns (DEFAULT expressions) computing `__r<i>` from what is inserted. */
  raws: string[];
  /** True when the line itself could be read (a JSON object, a well-formed CSV record). */
  okLine: string;
  /** False for lines that are skipped altogether (blank NDJSON lines). */
  keep: string;
  /** The quarantine message of a line that could not be read. */
  lineError: string;
}

/**
 * The ingest stages. Each is a Null table whose DEFAULT columns parse every inserted line once
 * (computed on insert, before the views see the block): raw texts `__r<i>`, typed values `__v<i>`,
 * bad flags `__b<i>` and `__good`. Two views then only filter and copy: `_ok` into the table,
 * `_bad` into quarantine (building the error columns for its few rows). Materialized views each
 * run their own SELECT over the inserted block, so a parse in the views would run twice.
 */
function createStagesSql(ds: DatasourceRecord, database: string): Array<{ kind: StageKind; statements: string[] }> {
  const n = physicalNames(database, ds.id);
  const q = (t: string) => sql`${ident(STAGES_DATABASE)}.${ident(t)}`;
  const cols = writableColumns(ds.columns);
  const out: Array<{ kind: StageKind; statements: string[] }> = [];
  if (cols.length === 0) return out;
  const importId = `__import_id String DEFAULT getSetting('log_comment')`;
  const emit = (kind: StageKind, stage: string, inserted: string, plan: StagePlan) => {
    const defs = [inserted, importId, ...plan.raws, ...parsedColumns(plan)];
    const [, ok, bad] = stageObjectNames(ds.id, kind);
    out.push({
      kind,
      statements: [
        sql`CREATE TABLE ${name(stage)} (${defs.map(trusted)}) ENGINE = Null`.text,
        goodView(q(ok), n.table, stage, plan),
        badView(q(bad), n.quarantine, stage, plan),
      ],
    });
  };

  // NDJSON stage: one row per line. Only for schemas whose columns all have JSONPaths.
  if (cols.every((c) => c.jsonpath)) {
    const { raws, plans, parsed } = jsonExtraction(cols);
    // A line is a JSON object: a value extracted from it means it parsed (an invalid line yields
    // none), so one starting with `{` needs no second parse; JSONType decides the others.
    const isObject = `JSONType(__line) = 'Object'`;
    const okLine = parsed.length ? `if((${parsed.map((r) => `${r} IS NOT NULL`).join(' OR ')}) AND match(__line, '^\\\\s*\\\\{'), 1, ${isObject})` : isObject;
    emit('json', n.jsonStage, '__line String', {
      plans,
      mode: 'json',
      raws,
      okLine,
      keep: `match(__line, '^\\\\s*$') = 0`,
      lineError: `concat('invalid JSON line: ', __line)`,
    });
  }

  // CSV stage: one Nullable(String) per column, in schema order; __err set for malformed rows.
  // An empty field is a missing value (NULL or the DEFAULT), except for a plain String without DEFAULT, where it is ''.
  const raws: string[] = [];
  const plans: ColumnPlan[] = cols.map((col, i) => {
    const u = unwrap(col.type);
    const keepEmpty = !u.nullable && u.inner === 'String' && !/^DEFAULT\s/i.test(col.defaultValue ?? '');
    raws.push(`__r${i} Nullable(String) DEFAULT ${keepEmpty ? `__c${i}` : `nullIf(__c${i}, '')`}`);
    return { col, raw: `__r${i}` };
  });
  const inserted = `${cols.map((_, i) => `__c${i} Nullable(String)`).join(', ')}, __err String DEFAULT ''`;
  emit('csv', n.csvStage, inserted, { plans, mode: 'csv', raws, okLine: `__err = ''`, keep: '1', lineError: '__err' });
  return out;
}

/** Stage columns extracting every column's raw text from `__line`: one JSONExtract for top-level keys, one per nested path. */
function jsonExtraction(cols: Column[]): { raws: string[]; plans: ColumnPlan[]; parsed: string[] } {
  const top: string[] = [];
  const raws: string[] = [];
  const plans: ColumnPlan[] = [];
  /** The raw texts parsed out of the line (not the whole line itself). */
  const parsed: string[] = [];
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
        // `$.a[:].b` — the array of the field `b` of every element of `a`, as JSON text. The array
        // is read from a non-Nullable text: JSONExtractArrayRaw of a Nullable(String) would be a
        // Nullable(Array), which the engine refuses (the stage could not be made at all). A value
        // that is not an array stays as it is, so it fails conversion (quarantine, as under `$.a[:]`).
        const inner = trusted(raw);
        raw =
          sql`if(JSONType(${inner}) = 'Array', toJSONString(arrayMap(_x -> JSONExtract(_x, ${path.rest}, 'Nullable(String)'), JSONExtractArrayRaw(ifNull(${inner}, '')))), ${inner})`
            .text;
      }
    }
    raws.push(`__r${i} Nullable(String) DEFAULT ${raw}`);
    plans.push({ col, raw: `__r${i}` });
    if (!path.whole) parsed.push(`__r${i}`);
  });
  if (top.length) {
    const tuple = `Tuple(${top.join(', ')})`;
    raws.unshift(`__top ${tuple} DEFAULT JSONExtract(__line, ${quoteString(tuple)})`);
  }
  return { raws, plans, parsed };
}

/** The stage's parsed columns: typed values `__v<i>` (also under the column's name), bad flags `__b<i>`, `__ok_line`, `__keep`, `__good`. */
function parsedColumns({ plans, mode, okLine, keep }: StagePlan): string[] {
  const defs: string[] = [];
  plans.forEach(({ col, raw }, i) => {
    const { nullable } = unwrap(col.type);
    const def = col.defaultValue && /^DEFAULT\s/i.test(col.defaultValue) ? col.defaultValue.replace(/^DEFAULT\s+/i, '') : null;
    const empty = emptyValue(col.type);
    const missing = def ?? (nullable ? 'NULL' : empty);
    const conv = convert(raw, col.type, mode);
    defs.push(`__t${i} DEFAULT ${conv.value}`);
    // Plainly `__t` when it already is the value of a missing one (an `if` would copy the column).
    const same = missing === null || (missing === 'NULL' && conv.value === raw);
    defs.push(`__v${i} DEFAULT ${same ? `__t${i}` : `if(${raw} IS NULL, ${missing}, __t${i})`}`);
    defs.push(`__b${i} UInt8 DEFAULT if(${raw} IS NULL, ${missing === null ? '1' : '0'}, ${conv.invalid(`__t${i}`)})`);
  });
  // Every typed value also under its column name, so a DEFAULT that refers to other columns
  // (`day Date DEFAULT toDate(ts)`) computes from their typed values, not the raw text.
  plans.forEach(({ col }, i) => {
    if (!col.name.startsWith('__')) defs.push(sql`${ident(col.name)} DEFAULT ${trusted(`__v${i}`)}`.text);
  });
  defs.push(`__ok_line UInt8 DEFAULT ${okLine}`);
  defs.push(`__keep UInt8 DEFAULT ${keep}`);
  defs.push(`__good UInt8 DEFAULT __ok_line AND NOT (${plans.map((_, i) => `__b${i}`).join(' OR ')})`);
  return defs;
}

function goodView(view: Sql, table: string, stage: string, { plans }: StagePlan): string {
  const cols = plans.map(({ col }, i) => {
    const v = trusted(unwrap(col.type).nullable ? `__v${i}` : `assumeNotNull(__v${i})`);
    return sql`CAST(${v}, ${col.type}) AS ${ident(col.name)}`;
  });
  return sql`CREATE MATERIALIZED VIEW ${view} TO ${name(table)} AS SELECT ${cols} FROM ${name(stage)} WHERE __keep AND __good`.text;
}

/**
 * The quarantine view: raw texts, the columns whose values did not fit and why, built for bad
 * rows only, from constant arrays (the view is planned on every insert, so its expressions are
 * kept short).
 */
function badView(view: Sql, quarantine: string, stage: string, { plans, lineError }: StagePlan): string {
  const cols = plans.map(({ col, raw }) => sql`${trusted(raw)} AS ${ident(col.name)}`);
  const flags = trusted(plans.map((_, i) => `__b${i}`).join(', '));
  const raws = trusted(plans.map(({ raw }) => raw).join(', '));
  const names = plans.map(({ col }) => col.name);
  const types = plans.map(({ col }) => unwrap(col.type).inner);
  // (flag, raw text, column, type) of each column whose value did not fit.
  const bad = sql`arrayFilter(_x -> _x.1 = 1, arrayZip([${flags}], [${raws}], [${names}], [${types}]))`;
  const errcols = sql`arrayMap(_x -> _x.3, ${bad})`;
  const errs = sql`arrayMap(_x -> if(_x.2 IS NULL, concat('value is missing on column ''', _x.3, ''', which is not Nullable and has no DEFAULT'), concat('value ''', _x.2, ''' on column ''', _x.3, ''' is not ', _x.4)), ${bad})`;
  return sql`CREATE MATERIALIZED VIEW ${view} TO ${name(quarantine)} AS SELECT ${cols}, if(__ok_line, ${errcols}, []) AS c__error_column, if(__ok_line, ${errs}, [${trusted(lineError)}]) AS c__error, __import_id AS c__import_id FROM ${name(stage)} WHERE __keep AND NOT __good`
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
      /`?((?:w_[0-9a-f]{32}|pipit_stages)`?\.`?)?(t_[0-9a-f]{32})(_quarantine|_sj_ok|_sj_bad|_sc_ok|_sc_bad|_sj|_sc|_mv)?`?/g,
      (m, db: string | undefined, id: string, suffix?: string) => {
        const name = nameOf(id);
        if (!name) return db || suffix ? INTERNAL_TABLE : m;
        return suffix === '_quarantine' ? `${name}_quarantine` : name;
      },
    )
    .replace(/`?(?:w_[0-9a-f]{32}|pipit_stages)`?\.?/g, '');
}
