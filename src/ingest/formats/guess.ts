/**
 * Type guessing for ingest: the narrowest ClickHouse type for CSV text columns, guessed CSV
 * schemas with engine-key suggestions, and NDJSON schema inference with JSONPaths (the
 * `/v0/analyze` column shape). Pure and total: a value it cannot type makes the column String;
 * only a sampled NDJSON line nested deeper than MAX_JSON_DEPTH is refused (400).
 */
import type { Column } from '../../basics/types.js';
import { MAX_NAME_LENGTH } from '../../schema/names.js';
import { checkJsonDepth } from '../../basics/input-limits.js';

// ---------------------------------------------------------------------------------------------
// Decisions (kept in one place so they are easy to revisit)
// ---------------------------------------------------------------------------------------------

/**
 * ClickHouse type used for JSON booleans. Classic Tinybird stored booleans as `UInt8`; the
 * JSON input format accepts `true`/`false` for UInt8 columns, and results read back as 1/0.
 */
export const JSON_BOOLEAN_TYPE = 'UInt8';

/** CSV cells that mean NULL: the empty string and ClickHouse's `\N`. */
export function isNullToken(v: string | null | undefined): boolean {
  return v === null || v === undefined || v === '' || v === '\\N';
}

// ---------------------------------------------------------------------------------------------
// Scalar classification
// ---------------------------------------------------------------------------------------------

const INT_RE = /^-?(?:0|[1-9][0-9]*)$/;
/** `007`, `-01.5`: identifiers or codes, not numbers. */
const LEADING_ZERO_RE = /^-?0[0-9]/;
const FLOAT_RE = /^-?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?$/;
const DATE_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const DATETIME_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?$/;

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/** 16/32/64 for the narrowest signed integer type holding the decimal text; 0 if beyond Int64. */
function intRankOfText(text: string): 0 | 16 | 32 | 64 {
  const digits = text.charCodeAt(0) === 45 ? text.length - 1 : text.length;
  if (digits <= 15) return intRankOfNumber(Number(text));
  if (digits <= 18) return 64;
  if (digits > 19) return 0;
  const b = BigInt(text);
  return b <= INT64_MAX && b >= INT64_MIN ? 64 : 0;
}

function intRankOfNumber(n: number): 0 | 16 | 32 | 64 {
  if (n >= -32768 && n <= 32767) return 16;
  if (n >= -2147483648 && n <= 2147483647) return 32;
  // 2^63 is exactly representable; anything at or above it does not fit Int64.
  if (n >= -(2 ** 63) && n < 2 ** 63) return 64;
  return 0;
}

/**
 * True when a decimal number needs Float64: more than 7 significant digits (Float32 keeps about
 * 7) or a magnitude outside Float32's normal range.
 */
function needsFloat64(text: string, value: number): boolean {
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1.1754943508222875e-38 || abs > 3.4028234663852886e38)) return true;
  let s = text.charCodeAt(0) === 45 ? text.slice(1) : text;
  const e = s.search(/[eE]/);
  if (e >= 0) s = s.slice(0, e);
  s = s.replace('.', '');
  let a = 0;
  let b = s.length;
  while (a < b && s.charCodeAt(a) === 48) a++;
  while (b > a && s.charCodeAt(b - 1) === 48) b--;
  return b - a > 7;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

function validDate(y: number, m: number, d: number): boolean {
  return m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

/** A date or date-time recognised in a string; `precision` is the number of fraction digits. */
export type TemporalMatch = { kind: 'date'; year: number } | { kind: 'datetime'; year: number; precision: number };

/**
 * Recognises `YYYY-MM-DD` and `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|±HH[:MM]]` with valid
 * calendar fields. Epoch numbers are not dates here (see {@link guessColumnType}).
 */
export function matchTemporal(s: string): TemporalMatch | null {
  if (s.length < 10 || s.length > 35 || s.charCodeAt(4) !== 45) return null;
  if (s.length === 10) {
    const m = DATE_RE.exec(s);
    if (!m) return null;
    const y = +m[1];
    return validDate(y, +m[2], +m[3]) ? { kind: 'date', year: y } : null;
  }
  const m = DATETIME_RE.exec(s);
  if (!m) return null;
  const y = +m[1];
  if (!validDate(y, +m[2], +m[3]) || +m[4] > 23 || +m[5] > 59 || +m[6] > 59) return null;
  return { kind: 'datetime', year: y, precision: m[7] ? m[7].length : 0 };
}

// ---------------------------------------------------------------------------------------------
// Type accumulation
// ---------------------------------------------------------------------------------------------

/**
 * Folds values into the narrowest common type. Compatible mixes widen (Int16 → Int32 → Int64,
 * Int + Float → Float, Date + DateTime → DateTime); any other mix gives String.
 */
class TypeAccumulator {
  nulls = 0;
  values = 0;
  private str = false;
  private int = false;
  private float = false;
  private bool = false;
  private date = false;
  private dateTime = false;
  private intRank: 16 | 32 | 64 = 16;
  private float64 = false;
  /** Set when an integer would lose digits in Float32 (matters only if floats show up too). */
  private float64Candidate = false;
  private precision = 0;
  /** Year outside DateTime's 1970..2105 (needs DateTime64 / Date32). */
  private dtWide = false;
  /** Year outside Date's 1970..2148. */
  private dateWide = false;

  addNull(): void {
    this.nulls++;
  }

  addBool(): void {
    this.values++;
    this.bool = true;
  }

  addNumber(v: number): void {
    this.values++;
    if (!Number.isFinite(v)) {
      this.str = true;
      return;
    }
    if (Number.isInteger(v)) {
      const r = intRankOfNumber(v);
      if (r === 0) {
        // Beyond Int64: JSON.parse already rounded it, so keep it numeric as Float64.
        this.float = true;
        this.float64 = true;
        return;
      }
      this.addInt(r, Math.abs(v) > 16777216);
      return;
    }
    this.float = true;
    if (!this.float64 && needsFloat64(String(v), v)) this.float64 = true;
  }

  /** `numbers`: also try to read the text as a number (CSV); JSON strings stay non-numeric. */
  addString(s: string, numbers: boolean): void {
    this.values++;
    if (this.str) return;
    const c = s.charCodeAt(0);
    if (numbers && ((c >= 48 && c <= 57) || c === 45 || c === 46)) {
      if (INT_RE.test(s)) {
        const r = intRankOfText(s);
        if (r === 0) this.str = true;
        else this.addInt(r, r === 64 || Math.abs(Number(s)) > 16777216);
        return;
      }
      if (FLOAT_RE.test(s) && !LEADING_ZERO_RE.test(s)) {
        const v = Number(s);
        if (!Number.isFinite(v)) {
          this.str = true;
          return;
        }
        this.float = true;
        if (!this.float64 && needsFloat64(s, v)) this.float64 = true;
        return;
      }
    }
    const t = c >= 48 && c <= 57 ? matchTemporal(s) : null;
    if (!t) {
      this.str = true;
      return;
    }
    if (t.year < 1900 || t.year > 2299) {
      this.str = true;
      return;
    }
    if (t.year < 1970 || t.year > 2105) this.dtWide = true;
    if (t.kind === 'date') {
      this.date = true;
      if (t.year > 2148 || t.year < 1970) this.dateWide = true;
    } else {
      this.dateTime = true;
      if (t.precision > this.precision) this.precision = t.precision;
    }
  }

  private addInt(rank: 16 | 32 | 64, big: boolean): void {
    this.int = true;
    if (rank > this.intRank) this.intRank = rank;
    if (big) this.float64Candidate = true;
  }

  /** The base (non-Nullable) type; `String` when nothing but nulls was seen. */
  baseType(): string {
    const numeric = this.int || this.float;
    const temporal = this.date || this.dateTime;
    const kinds = (numeric ? 1 : 0) + (temporal ? 1 : 0) + (this.bool ? 1 : 0) + (this.str ? 1 : 0);
    if (kinds !== 1 || this.str) return 'String';
    if (this.bool) return JSON_BOOLEAN_TYPE;
    if (this.float) return this.float64 || this.float64Candidate ? 'Float64' : 'Float32';
    if (this.int) return `Int${this.intRank}`;
    if (this.dateTime) {
      if (this.precision === 0 && !this.dtWide) return 'DateTime';
      return `DateTime64(${this.precision === 0 ? 0 : this.precision <= 3 ? 3 : this.precision <= 6 ? 6 : 9})`;
    }
    return this.dateWide ? 'Date32' : 'Date';
  }
}

function wrapNullable(base: string, nullable: boolean): string {
  return nullable ? `Nullable(${base})` : base;
}

/**
 * Narrowest ClickHouse type for a CSV column given its cell texts.
 *
 * - Integers: Int16, Int32, Int64 (signed only; text beyond Int64 → String). Leading zeros
 *   (`007`) or a `+` sign make a value text. Epoch seconds such as `"1704413030"` are
 *   integers (Int32), never DateTime: a number column is the less surprising guess.
 * - Decimals (and integer/decimal mixes): Float32 when every value has at most 7 significant
 *   digits and fits Float32's range, else Float64.
 * - `YYYY-MM-DD` → Date (Date32 outside 1970..2148); `YYYY-MM-DD HH:MM:SS` and ISO 8601 with
 *   `T`/`Z`/offset → DateTime; fractional seconds → DateTime64(3|6|9) by the longest fraction
 *   (`2024-01-23T10:30:00.123Z` → DateTime64(3)); dates mixed with date-times → DateTime.
 *   Years outside 1970..2105 widen DateTime to DateTime64; outside 1900..2299 → String.
 * - Anything else, or incompatible mixes → String.
 * - `''`, `\N` or null cells make the type Nullable; a column with no values is Nullable(String).
 *
 * @example guessColumnType(['1', '', '70000']) // { type: 'Nullable(Int32)', nullable: true }
 */
export function guessColumnType(values: readonly (string | null)[]): { type: string; nullable: boolean } {
  const acc = new TypeAccumulator();
  for (const v of values) {
    if (isNullToken(v)) acc.addNull();
    else acc.addString(v as string, true);
  }
  const nullable = acc.nulls > 0 || acc.values === 0;
  return { type: wrapNullable(acc.baseType(), nullable), nullable };
}

// ---------------------------------------------------------------------------------------------
// Column names
// ---------------------------------------------------------------------------------------------

const IDENT_RE = /^[A-Za-z_][0-9A-Za-z_]*$/;
/** Column names the server refuses (§1.5): they get a `_` suffix. */
const RESERVED_COLUMN_NAMES = new Set(['index']);

/** `column_00`, `column_01`, … — the names Tinybird gives CSV columns without a header. */
export function positionalColumnName(i: number): string {
  return `column_${String(i).padStart(2, '0')}`;
}

/**
 * Turns any text into a valid column identifier `[a-zA-Z_][0-9a-zA-Z_]*`: accents are dropped
 * (`año` → `ano`), each run of other characters becomes one `_` between words
 * (`Price (USD)` → `Price_USD`), a leading digit gets a `_` prefix (`1st` → `_1st`), and the
 * reserved `index` becomes `index_`. Returns `''` when nothing usable is left. Long names are
 * cut so that they stay within the name length limit with room for a `_N` deduplication suffix.
 */
export function normalizeColumnName(raw: string): string {
  let s = identifierWords(raw.slice(0, 4 * MAX_NAME_LENGTH));
  if (s === '') return '';
  if (s.charCodeAt(0) >= 48 && s.charCodeAt(0) <= 57) s = `_${s}`;
  s = s.slice(0, MAX_NAME_LENGTH - 8);
  if (RESERVED_COLUMN_NAMES.has(s.toLowerCase())) s = `${s}_`;
  return s;
}

/** Accents dropped, runs of characters outside `[0-9A-Za-z_]` turned into single `_`s. */
function identifierWords(raw: string): string {
  if (/^[0-9A-Za-z_]*$/.test(raw)) return raw;
  return raw
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .split(/[^0-9A-Za-z_]+/)
    .filter((p) => p !== '')
    .join('_');
}

/**
 * Makes names unique: the first occurrence keeps its name, later duplicates get the smallest
 * `_N` suffix not used anywhere in the list (`a, a, a_1` → `a, a_2, a_1`).
 */
export function dedupeNames(names: readonly string[]): string[] {
  const used = new Set(names);
  const seen = new Set<string>();
  return names.map((n) => {
    if (!seen.has(n)) {
      seen.add(n);
      return n;
    }
    let k = 1;
    while (used.has(`${n}_${k}`)) k++;
    const v = `${n}_${k}`;
    used.add(v);
    seen.add(v);
    return v;
  });
}

// ---------------------------------------------------------------------------------------------
// CSV schema and engine keys
// ---------------------------------------------------------------------------------------------

function mostCommonLength(rows: readonly string[][]): number {
  const counts = new Map<number, number>();
  let best = 0;
  let bestCount = 0;
  for (const r of rows) {
    const c = (counts.get(r.length) ?? 0) + 1;
    counts.set(r.length, c);
    if (c > bestCount || (c === bestCount && r.length > best)) {
      best = r.length;
      bestCount = c;
    }
  }
  return best;
}

/**
 * Guessed columns for a CSV sample. Names come from the header (normalised, deduplicated;
 * an empty header cell falls back to its positional name) or are `column_00`, `column_01`, …
 * The column count is the header's, or the most common row width. Only rows of that width
 * are used for typing (ragged rows would be invalid lines at ingest anyway), unless none is.
 * `typeGuessing: false` (the `type_guessing` param) makes every column `String`.
 *
 * @example guessCsvSchema(['id', 'Created At'], [['1', '2024-01-01']])
 * // [{ name: 'id', type: 'Int16', ... }, { name: 'Created_At', type: 'Date', ... }]
 */
export function guessCsvSchema(header: readonly string[] | null, rows: readonly string[][], opts: { typeGuessing?: boolean } = {}): Column[] {
  const width = header ? header.length : mostCommonLength(rows);
  const names = dedupeNames(Array.from({ length: width }, (_, i) => (header ? normalizeColumnName(header[i]) : '') || positionalColumnName(i)));
  let sample = rows.filter((r) => r.length === width);
  if (sample.length === 0) sample = rows as string[][];
  const guessing = opts.typeGuessing ?? true;
  return names.map((name, i) => {
    const g = guessing ? guessColumnType(sample.map((r) => (i < r.length ? r[i] : null))) : { type: 'String', nullable: false };
    return { name, type: g.type, nullable: g.nullable, defaultValue: null, codec: null, jsonpath: null };
  });
}

function quoteIdent(name: string): string {
  return IDENT_RE.test(name) ? name : `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

/**
 * Engine keys Tinybird picks for guessed schemas (§2.3): partition by `toYear(d)` where `d`
 * is the first non-Nullable Date/Date32/DateTime/DateTime64 column, and sort by `d` plus the
 * first three non-Nullable String or integer columns. Without such a date column the sorting
 * key is `tuple()` and there is no partition key. (Nullable columns are skipped because
 * ClickHouse refuses them in keys by default; cardinality is unknown here, so column order
 * decides.)
 *
 * @example defaultSortingKey(cols) // { partition_key: 'toYear(ts)', sorting_key: 'ts, user_id' }
 */
export function defaultSortingKey(columns: readonly Column[]): { sorting_key?: string; partition_key?: string } {
  const date = columns.find((c) => !c.nullable && /^(Date|Date32|DateTime|DateTime64)(\(|$)/.test(c.type));
  if (!date) return { sorting_key: 'tuple()' };
  const extra = columns.filter((c) => c !== date && !c.nullable && /^(String|U?Int(8|16|32|64|128|256))$/.test(c.type)).slice(0, 3);
  const d = quoteIdent(date.name);
  return {
    partition_key: `toYear(${d})`,
    sorting_key: [d, ...extra.map((c) => quoteIdent(c.name))].join(', '),
  };
}

// ---------------------------------------------------------------------------------------------
// NDJSON inference
// ---------------------------------------------------------------------------------------------

/** One inferred column, as `/v0/analyze` reports it. */
export interface AnalyzedColumn {
  /** JSONPath, e.g. `$.a.b`, `$.tags[:]`, `$.['my key']`. */
  path: string;
  /** Normalised column name, e.g. `a_b`. */
  name: string;
  /** Full ClickHouse type, `Nullable(...)` when `present_pct < 1` (never for arrays). */
  recommended_type: string;
  /** Share of sampled objects (0..1) where the path holds a non-null value. */
  present_pct: number;
}

/** One path segment: `.key` for identifier keys, `.['any key']` otherwise (`'` and `\` escaped). */
export function jsonPathSegment(key: string): string {
  return IDENT_RE.test(key) ? `.${key}` : `.['${key.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
}

interface PathStat {
  path: string;
  keys: string[];
  parent: PathStat | null;
  present: number;
  object: boolean;
  array: boolean;
  scalar: boolean;
  /** Arrays holding objects or arrays, or mixing element kinds. */
  complexArray: boolean;
  arrayNulls: boolean;
  scalars: TypeAccumulator;
  elements: TypeAccumulator;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function addScalar(acc: TypeAccumulator, v: unknown): boolean {
  switch (typeof v) {
    case 'string':
      acc.addString(v, false);
      return true;
    case 'number':
      acc.addNumber(v);
      return true;
    case 'boolean':
      acc.addBool();
      return true;
    case 'bigint':
      acc.addString(v.toString(), true);
      return true;
    default:
      return false;
  }
}

/**
 * Infers columns from sampled NDJSON objects (non-objects are ignored), in first-seen order.
 *
 * - Nested objects are flattened: `{a: {b: 1}}` → path `$.a.b`, name `a_b`. Keys that are not
 *   identifiers keep their exact text in the path (`$.['my key']`) and get a normalised name
 *   (`my_key`); names are deduplicated with `_N` suffixes.
 * - Numbers: Int16/Int32/Int64 for integers (beyond Int64 → Float64, since JSON.parse already
 *   rounded them), Float32/Float64 for decimals (7-significant-digit rule of
 *   {@link guessColumnType}). Booleans → {@link JSON_BOOLEAN_TYPE}. Strings that are dates or
 *   date-times → Date/DateTime/DateTime64 as for CSV; other strings (numeric-looking ones
 *   too: the producer chose a string) → String.
 * - Arrays of scalars → `Array(T)` with path `$.a[:]` (`Array(Nullable(T))` if elements are
 *   null, `Array(String)` if always empty). Arrays of objects or arrays, or mixing element
 *   kinds → `String` at `$.a`, holding the array's JSON text.
 * - A path seen with different kinds (object vs scalar vs array) or incompatible scalar types
 *   → `String` (objects and arrays are kept as their JSON text; the object's own sub-paths
 *   are dropped).
 * - Missing or null in some objects → `Nullable(T)` and `present_pct < 1`; arrays are never
 *   Nullable (ClickHouse forbids it) and read as `[]` when missing. Only nulls → `Nullable(String)`.
 *   Objects that are always empty yield no column.
 *
 * @example inferJsonColumns([{ a: { b: 1 } }, {}])
 * // [{ path: '$.a.b', name: 'a_b', recommended_type: 'Nullable(Int16)', present_pct: 0.5 }]
 */
export function inferJsonColumns(objects: readonly unknown[]): AnalyzedColumn[] {
  const stats = new Map<string, PathStat>();
  const order: PathStat[] = [];
  let total = 0;

  const statFor = (parent: PathStat | null, key: string): PathStat => {
    const path = (parent ? parent.path : '$') + jsonPathSegment(key);
    let st = stats.get(path);
    if (!st) {
      st = {
        path,
        keys: parent ? [...parent.keys, key] : [key],
        parent,
        present: 0,
        object: false,
        array: false,
        scalar: false,
        complexArray: false,
        arrayNulls: false,
        scalars: new TypeAccumulator(),
        elements: new TypeAccumulator(),
      };
      stats.set(path, st);
      order.push(st);
    }
    return st;
  };

  const walk = (obj: Record<string, unknown>, parent: PathStat | null): void => {
    for (const key of Object.keys(obj)) {
      const v = obj[key];
      const st = statFor(parent, key);
      if (v === null || v === undefined) continue;
      st.present++;
      if (Array.isArray(v)) {
        st.array = true;
        let kind = '';
        for (const el of v) {
          if (el === null || el === undefined) {
            st.arrayNulls = true;
            continue;
          }
          const k = typeof el === 'object' ? 'complex' : typeof el;
          if (k === 'complex' || (kind !== '' && k !== kind)) st.complexArray = true;
          kind = k;
          if (!st.complexArray) addScalar(st.elements, el);
        }
      } else if (isPlainObject(v)) {
        st.object = true;
        walk(v, st);
      } else {
        st.scalar = true;
        if (!addScalar(st.scalars, v)) st.scalars.addString('', false);
      }
    }
  };

  for (const o of objects) {
    if (!isPlainObject(o)) continue;
    total++;
    walk(o, null);
  }
  if (total === 0) return [];

  // A path seen as an object and as something else is one String column; drop what is under it.
  const conflicted = (st: PathStat): boolean => st.object && (st.array || st.scalar);
  const underConflict = (st: PathStat): boolean => {
    for (let p = st.parent; p; p = p.parent) if (conflicted(p)) return true;
    return false;
  };

  const picked: { st: PathStat; path: string; type: string }[] = [];
  for (const st of order) {
    if (underConflict(st)) continue;
    const nullable = st.present < total;
    let path = st.path;
    let type: string;
    if (conflicted(st) || (st.array && st.scalar)) {
      type = wrapNullable('String', nullable);
    } else if (st.object) {
      continue; // its leaves are columns
    } else if (st.array) {
      if (st.complexArray) {
        type = wrapNullable('String', nullable);
      } else {
        const inner = st.elements.values === 0 ? 'String' : st.elements.baseType();
        type = `Array(${wrapNullable(inner, st.arrayNulls)})`;
        path = `${st.path}[:]`;
      }
    } else {
      type = wrapNullable(st.scalars.baseType(), nullable || st.scalars.values === 0);
    }
    picked.push({ st, path, type });
  }

  const names = dedupeNames(picked.map(({ st }) => normalizeColumnName(st.keys.map((k) => identifierWords(k) || '_').join('_'))));
  return picked.map(({ st, path, type }, i) => ({
    path,
    name: names[i],
    recommended_type: type,
    present_pct: st.present / total,
  }));
}

/**
 * Tinybird schema text for inferred columns.
 *
 * @example jsonColumnsToSchema(cols) // "a_b Nullable(Int16) `json:$.a.b`, tags Array(String) `json:$.tags[:]`"
 */
export function jsonColumnsToSchema(cols: readonly AnalyzedColumn[]): string {
  return cols.map((c) => `${quoteIdent(c.name)} ${c.recommended_type} \`json:${c.path}\``).join(', ');
}

/** Inferred columns as domain {@link Column}s (jsonpath set, no default or codec). */
export function jsonColumnsToColumns(cols: readonly AnalyzedColumn[]): Column[] {
  return cols.map((c) => ({
    name: c.name,
    type: c.recommended_type,
    nullable: c.recommended_type.startsWith('Nullable('),
    defaultValue: null,
    codec: null,
    jsonpath: c.path,
  }));
}

/**
 * Parses up to `maxRows` NDJSON lines of a sample. Blank lines are skipped; lines that are not
 * JSON, or not a JSON object, count as `invalid`. A last line without a terminating newline is
 * used if it parses and silently dropped if not (the sample may have cut it). A line nested
 * deeper than MAX_JSON_DEPTH is a 400: inference, previews and responses walk values recursively.
 *
 * @example parseNdjsonSample('{"a":1}\nnope\n{"a":') // { objects: [{ a: 1 }], invalid: 1 }
 */
export function parseNdjsonSample(text: string, maxRows = 10000): { objects: unknown[]; invalid: number } {
  const objects: unknown[] = [];
  let invalid = 0;
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let lineNo = 0;
  while (pos < text.length && objects.length + invalid < maxRows) {
    lineNo++;
    let end = text.indexOf('\n', pos);
    const partial = end < 0;
    if (partial) end = text.length;
    const line = text.slice(pos, end).trim();
    pos = end + 1;
    if (line === '') continue;
    let v: unknown;
    let ok = false;
    checkJsonDepth(line, `Line ${lineNo} of the NDJSON data`);
    try {
      v = JSON.parse(line);
      ok = isPlainObject(v);
    } catch {
      ok = false;
    }
    if (ok) objects.push(v);
    else if (!partial) invalid++;
  }
  return { objects, invalid };
}
