// ClickHouse data types: parse text into an immutable TypeNode AST, validate it the way ClickHouse
// 26.7 does (families, aliases, arities, Nullable/LowCardinality/Map/Variant rules, Enum values,
// SimpleAggregateFunction `sum` return types) and print it back in ClickHouse's canonical form.
// Rejects with SchemaError carrying ClickHouse's own message (e.g. `Unknown data type family: Foo`).

import { SchemaError } from './errors.js';

/** Literal argument of a simple type: number (precision, scale, length) or string (time zone). */
export type TypeArg = number | string;

export interface SimpleType {
  readonly kind: 'simple';
  /** Canonical family name: `Int32`, `String`, `Decimal`, `DateTime64`, `FixedString`, ... */
  readonly name: string;
  readonly args?: readonly TypeArg[];
}
export interface EnumType {
  readonly kind: 'enum';
  readonly name: 'Enum8' | 'Enum16';
  readonly values: readonly { readonly name: string; readonly value: number }[];
}
export interface NullableType {
  readonly kind: 'nullable';
  readonly inner: TypeNode;
}
export interface LowCardinalityType {
  readonly kind: 'lowcardinality';
  readonly inner: TypeNode;
}
export interface ArrayType {
  readonly kind: 'array';
  readonly inner: TypeNode;
}
export interface MapType {
  readonly kind: 'map';
  readonly key: TypeNode;
  readonly value: TypeNode;
}
export interface TupleElement {
  readonly name?: string;
  readonly type: TypeNode;
}
export interface TupleType {
  readonly kind: 'tuple';
  readonly elements: readonly TupleElement[];
}
export interface NestedType {
  readonly kind: 'nested';
  readonly fields: readonly { readonly name: string; readonly type: TypeNode }[];
}
export interface VariantType {
  readonly kind: 'variant';
  readonly elements: readonly TypeNode[];
}
export interface AggregateType {
  readonly kind: 'aggregate';
  /** true for SimpleAggregateFunction. */
  readonly simple: boolean;
  /** Function with its parameters, canonical: `sum`, `quantiles(0.5, 0.9)`. */
  readonly func: string;
  /** Optional state version (`AggregateFunction(1, sum, UInt64)`). */
  readonly version?: number;
  readonly args: readonly TypeNode[];
}
export type JsonParam =
  | { readonly kind: 'setting'; readonly name: string; readonly value: number }
  | { readonly kind: 'path'; readonly path: string; readonly type: TypeNode }
  | { readonly kind: 'skip'; readonly path: string }
  | { readonly kind: 'skipRegexp'; readonly pattern: string };
export interface JsonType {
  readonly kind: 'json';
  readonly name: 'JSON' | 'Dynamic';
  readonly params: readonly JsonParam[];
}

export type TypeNode =
  | SimpleType
  | EnumType
  | NullableType
  | LowCardinalityType
  | ArrayType
  | MapType
  | TupleType
  | NestedType
  | VariantType
  | AggregateType
  | JsonType;

// ---------------------------------------------------------------------------------------------
// Families and aliases (from system.data_type_families of ClickHouse 26.7)

const INTS = ['Int8', 'Int16', 'Int32', 'Int64', 'Int128', 'Int256'];
const UINTS = ['UInt8', 'UInt16', 'UInt32', 'UInt64', 'UInt128', 'UInt256'];
const FLOATS = ['Float32', 'Float64', 'BFloat16'];
/** Families that ignore any arguments (MySQL compatibility: `INT(11)`, `VARCHAR(255)`). */
const ARGS_IGNORED = new Set([...INTS, ...UINTS, ...FLOATS, 'String']);
/** Families that take no arguments at all. */
const NO_ARGS = new Set([
  'UUID',
  'IPv4',
  'IPv6',
  'Bool',
  'Date',
  'Date32',
  'Nothing',
  'Time',
  'Point',
  'Ring',
  'LineString',
  'MultiLineString',
  'Polygon',
  'MultiPolygon',
  'Geometry',
]);
/** The Decimal family: precision and scale, or scale with the width in the name. */
const DECIMALS = ['Decimal', 'Decimal32', 'Decimal64', 'Decimal128', 'Decimal256'];
const PARAMETRIC = [
  'FixedString',
  'DateTime',
  'DateTime64',
  'Time64',
  ...DECIMALS,
  'Enum',
  'Enum8',
  'Enum16',
  'Nullable',
  'LowCardinality',
  'Array',
  'Map',
  'Tuple',
  'Nested',
  'Variant',
  'AggregateFunction',
  'SimpleAggregateFunction',
  'JSON',
  'Dynamic',
];
const CASE_SENSITIVE = new Set([...ARGS_IGNORED, ...NO_ARGS, ...PARAMETRIC]);
/** Upper-cased name → canonical family, for case-insensitive families and SQL aliases. */
const CASE_INSENSITIVE = new Map<string, string>();
for (const f of ['Bool', 'Date', 'Date32', 'DateTime', 'DateTime64', ...DECIMALS, 'Enum', 'JSON', 'Time', 'Time64']) CASE_INSENSITIVE.set(f.toUpperCase(), f);
const ALIASES: Record<string, string[]> = {
  Bool: ['BOOL', 'BOOLEAN'],
  DateTime: ['DATETIME32', 'TIMESTAMP'],
  Decimal: ['DEC', 'FIXED', 'NUMERIC'],
  FixedString: ['BINARY'],
  Float32: ['FLOAT', 'REAL', 'SINGLE'],
  Float64: ['DOUBLE', 'DOUBLE PRECISION'],
  IPv4: ['INET4'],
  IPv6: ['INET6'],
  Int8: ['BYTE', 'INT1', 'INT1 SIGNED', 'TINYINT', 'TINYINT SIGNED'],
  Int16: ['SMALLINT', 'SMALLINT SIGNED'],
  Int32: ['INT', 'INT SIGNED', 'INTEGER', 'INTEGER SIGNED', 'MEDIUMINT', 'MEDIUMINT SIGNED'],
  Int64: ['BIGINT', 'BIGINT SIGNED', 'SIGNED'],
  UInt8: ['INT1 UNSIGNED', 'TINYINT UNSIGNED'],
  UInt16: ['SMALLINT UNSIGNED', 'YEAR'],
  UInt32: ['INT UNSIGNED', 'INTEGER UNSIGNED', 'MEDIUMINT UNSIGNED'],
  UInt64: ['BIGINT UNSIGNED', 'BIT', 'SET', 'UNSIGNED'],
  String: [
    'BINARY LARGE OBJECT',
    'BINARY VARYING',
    'BLOB',
    'BYTEA',
    'CHAR',
    'CHAR LARGE OBJECT',
    'CHAR VARYING',
    'CHARACTER',
    'CHARACTER LARGE OBJECT',
    'CHARACTER VARYING',
    'CLOB',
    'LONGBLOB',
    'LONGTEXT',
    'MEDIUMBLOB',
    'MEDIUMTEXT',
    'NATIONAL CHAR',
    'NATIONAL CHAR VARYING',
    'NATIONAL CHARACTER',
    'NATIONAL CHARACTER LARGE OBJECT',
    'NATIONAL CHARACTER VARYING',
    'NCHAR',
    'NCHAR LARGE OBJECT',
    'NCHAR VARYING',
    'NVARCHAR',
    'TEXT',
    'TINYBLOB',
    'TINYTEXT',
    'VARBINARY',
    'VARCHAR',
    'VARCHAR2',
  ],
};
for (const [canonical, names] of Object.entries(ALIASES)) for (const n of names) CASE_INSENSITIVE.set(n, canonical);
/** Every word-prefix of a multi-word alias (`DOUBLE`, `NATIONAL CHAR`, ...), to read `DOUBLE PRECISION`. */
const MULTIWORD_PREFIXES = new Set<string>();
for (const name of CASE_INSENSITIVE.keys()) {
  const words = name.split(' ');
  for (let i = 2; i <= words.length; i++) MULTIWORD_PREFIXES.add(words.slice(0, i).join(' '));
}

function resolveFamily(name: string): string | undefined {
  if (CASE_SENSITIVE.has(name)) return name;
  return CASE_INSENSITIVE.get(name.toUpperCase());
}

// ---------------------------------------------------------------------------------------------
// Lexer

type TokKind = 'id' | 'qid' | 'num' | 'str' | '(' | ')' | ',' | '=';
interface Tok {
  readonly t: TokKind;
  readonly v: string;
  readonly pos: number;
}

/** A syntax error inside a type; `offset` (0-based, into the trimmed text) lets callers point at it. */
export class TypeSyntaxError extends SchemaError {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

function syntaxError(text: string, pos: number): TypeSyntaxError {
  return new TypeSyntaxError(`Syntax error in data type '${text}' at position ${pos + 1}`, pos);
}

function lex(text: string): Tok[] {
  const toks: Tok[] = [];
  const re = /\s+|([A-Za-z_][A-Za-z0-9_.]*)|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([(),=])|(['`])/y;
  let i = 0;
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) throw syntaxError(text, i);
    if (m[1] !== undefined) toks.push({ t: 'id', v: m[1], pos: i });
    else if (m[2] !== undefined) toks.push({ t: 'num', v: m[2], pos: i });
    else if (m[3] !== undefined) toks.push({ t: m[3] as TokKind, v: m[3], pos: i });
    else if (m[4] !== undefined) {
      const [value, end] = readQuoted(text, i);
      toks.push({ t: m[4] === "'" ? 'str' : 'qid', v: value, pos: i });
      i = end;
      continue;
    }
    i = re.lastIndex;
  }
  return toks;
}

/** Reads a quoted literal at `start`; returns the unescaped value and the index after it. */
function readQuoted(text: string, start: number): [string, number] {
  const q = text[start];
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length) value += unescapeChar(text[++i]);
    else if (c === q && text[i + 1] === q) value += text[i++];
    else if (c === q) return [value, i + 1];
    else value += c;
  }
  throw syntaxError(text, start);
}

function unescapeChar(c: string): string {
  return ({ n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', f: '\f' } as Record<string, string>)[c] ?? c;
}

// ---------------------------------------------------------------------------------------------
// Parser

export function parseType(text: string): TypeNode {
  const src = text.trim();
  if (!src) throw new SchemaError('Empty data type');
  return parseTokens(lex(src), src);
}

/** True when `text` is a valid ClickHouse column type. */
export function isKnownType(text: string): boolean {
  try {
    parseType(text);
    return true;
  } catch {
    return false;
  }
}

/** `printType(parseType(text))`: the canonical spelling of a type. */
export function normalizeType(text: string): string {
  return printType(parseType(text));
}

function parseTokens(toks: readonly Tok[], src: string): TypeNode {
  const first = toks[0];
  if (!first) throw syntaxError(src, src.length);
  if (first.t !== 'id') throw syntaxError(src, first.pos);
  let words = first.v;
  let i = 1;
  while (toks[i]?.t === 'id' && MULTIWORD_PREFIXES.has(`${words} ${toks[i].v}`.toUpperCase())) words += ` ${toks[i++].v}`;
  const family = resolveFamily(words);
  if (!family) throw new SchemaError(`Unknown data type family: ${words}`);
  let args: Tok[][] | undefined;
  if (i < toks.length) {
    if (toks[i].t !== '(') throw syntaxError(src, toks[i].pos);
    const close = matchingParen(toks, i, src);
    if (close !== toks.length - 1) throw syntaxError(src, toks[close + 1].pos);
    args = splitArgs(toks.slice(i + 1, close), src);
  }
  return build(family, args, src);
}

function matchingParen(toks: readonly Tok[], open: number, src: string): number {
  let depth = 0;
  for (let i = open; i < toks.length; i++) {
    if (toks[i].t === '(') depth++;
    else if (toks[i].t === ')' && --depth === 0) return i;
  }
  throw syntaxError(src, src.length);
}

function splitArgs(toks: readonly Tok[], src: string): Tok[][] {
  if (!toks.length) return [];
  const out: Tok[][] = [[]];
  let depth = 0;
  for (const t of toks) {
    if (t.t === '(') depth++;
    else if (t.t === ')') depth--;
    if (t.t === ',' && depth === 0) out.push([]);
    else out[out.length - 1].push(t);
  }
  for (const a of out) if (!a.length) throw syntaxError(src, toks[toks.length - 1].pos);
  return out;
}

const isLiteral = (a: readonly Tok[]): boolean => a.length === 1 && (a[0].t === 'num' || a[0].t === 'str');

function intArg(a: readonly Tok[] | undefined): number | undefined {
  return a && a.length === 1 && a[0].t === 'num' && /^-?\d+$/.test(a[0].v) ? Number(a[0].v) : undefined;
}

function strArg(a: readonly Tok[] | undefined): string | undefined {
  return a && a.length === 1 && a[0].t === 'str' ? a[0].v : undefined;
}

function checkTimeZone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz;
  } catch {
    throw new SchemaError(`Cannot load time zone ${tz}`);
  }
}

function decimal(p: number | undefined, s: number | undefined): SimpleType {
  if (p === undefined || p < 1 || p > 76) throw new SchemaError(`Wrong precision: it must be between 1 and 76, got ${p ?? '?'}`);
  if (s === undefined || s < 0 || s > p) throw new SchemaError('Negative scales and scales larger than precision are not supported');
  return { kind: 'simple', name: 'Decimal', args: [p, s] };
}

const DECIMAL_PRECISION: Record<string, number> = { Decimal32: 9, Decimal64: 18, Decimal128: 38, Decimal256: 76 };

function build(family: string, args: Tok[][] | undefined, src: string): TypeNode {
  const n = args?.length ?? 0;
  const sub = (a: Tok[]) => parseTokens(a, src);
  const arity = (ok: boolean, msg: string) => {
    if (!ok) throw new SchemaError(msg);
  };
  if (ARGS_IGNORED.has(family)) {
    for (const a of args ?? []) if (!isLiteral(a)) throw syntaxError(src, a[0].pos);
    return { kind: 'simple', name: family };
  }
  if (NO_ARGS.has(family)) {
    arity(args === undefined || n === 0, `Data type ${family} cannot have arguments`);
    return { kind: 'simple', name: family };
  }
  switch (family) {
    case 'FixedString': {
      arity(n === 1, 'FixedString data type family must have exactly one argument - size in bytes');
      const size = intArg(args![0]);
      arity(size !== undefined && size > 0, 'FixedString data type family must have a number (positive integer) as its argument');
      return { kind: 'simple', name: 'FixedString', args: [size!] };
    }
    case 'DateTime': {
      // ClickHouse: DateTime('tz'); DateTime(p[, 'tz']) means DateTime64.
      if (n === 0) return { kind: 'simple', name: 'DateTime' };
      if (args![0][0].t === 'num') return build('DateTime64', args, src);
      const tz = strArg(args![0]);
      arity(tz !== undefined, 'DateTime data type can optionally have only one argument - time zone name');
      return { kind: 'simple', name: 'DateTime', args: [checkTimeZone(tz!)] };
    }
    case 'DateTime64':
    case 'Time64': {
      const max = family === 'Time64' ? 1 : 2;
      arity(
        n <= max,
        family === 'Time64'
          ? 'Time64 data type can have only one argument - scale'
          : 'DateTime64 data type can optionally have two argument - scale and time zone name',
      );
      const scale = n ? intArg(args![0]) : 3;
      if (scale === undefined) {
        if (family === 'Time64' && strArg(args![0]) !== undefined) throw new SchemaError('Specifying timezone for Time64 type is not allowed');
        throw new SchemaError(`Parameter #0 'scale' for ${family} has wrong type, expected UInt64 literal`);
      }
      if (scale < 0 || scale > 9)
        throw new SchemaError(
          family === 'Time64'
            ? `DataTypeTime64 scale ${scale} is too large, maximum is 9`
            : `Scale ${scale} is too large for DateTime64. Maximum is up to nanoseconds (9)`,
        );
      if (n < 2) return { kind: 'simple', name: family, args: [scale] };
      const tz = strArg(args![1]);
      arity(tz !== undefined, "Parameter #1 'timezone' for DateTime64 has wrong type, expected String literal");
      return { kind: 'simple', name: family, args: [scale, checkTimeZone(tz!)] };
    }
    case 'Decimal': {
      arity(n <= 2, 'Decimal data type family must have precision and optional scale arguments');
      if (n === 0) return decimal(10, 0);
      return decimal(intArg(args![0]), n === 2 ? intArg(args![1]) : 0);
    }
    case 'Decimal32':
    case 'Decimal64':
    case 'Decimal128':
    case 'Decimal256': {
      arity(n === 1, `${family} data type family must have exactly one argument: scale`);
      return decimal(DECIMAL_PRECISION[family], intArg(args![0]));
    }
    case 'Enum':
    case 'Enum8':
    case 'Enum16':
      return buildEnum(family, args ?? []);
    case 'Nullable': {
      arity(n === 1, 'Nullable data type family must have exactly one argument - nested type');
      const inner = sub(args![0]);
      if (
        !['simple', 'enum', 'tuple', 'json', 'aggregate'].includes(inner.kind) ||
        (inner.kind === 'json' && inner.name === 'Dynamic') ||
        (inner.kind === 'aggregate' && !inner.simple)
      )
        throw new SchemaError(`Nested type ${printType(inner)} cannot be inside Nullable type`);
      return { kind: 'nullable', inner };
    }
    case 'LowCardinality': {
      arity(n === 1, 'LowCardinality data type family must have single argument - type of elements');
      const inner = sub(args![0]);
      const base = inner.kind === 'nullable' ? inner.inner : inner;
      if (base.kind !== 'simple' || !LOW_CARDINALITY_OK.has(base.name))
        throw new SchemaError(`DataTypeLowCardinality is supported only for numbers, strings, Date or DateTime, but got ${printType(inner)}`);
      return { kind: 'lowcardinality', inner };
    }
    case 'Array':
      arity(n === 1, 'Array data type family must have exactly one argument - type of elements');
      return { kind: 'array', inner: sub(args![0]) };
    case 'Map': {
      arity(n === 2, 'Map data type family must have two arguments: key and value types');
      const key = sub(args![0]);
      if (isNullable(key)) throw new SchemaError(`Map cannot have a key of type ${printType(key)}`);
      return { kind: 'map', key, value: sub(args![1]) };
    }
    case 'Tuple':
    case 'Nested':
      return buildTuple(family, args ?? [], src);
    case 'Variant': {
      arity(n > 0, 'Variant type should have at least one nested type');
      const seen = new Map<string, TypeNode>();
      for (const a of args!) {
        const t = sub(a);
        if (isNullable(t)) throw new SchemaError('Nullable/LowCardinality(Nullable) types are not allowed inside Variant type');
        seen.set(printType(t), t);
      }
      const names = [...seen.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return { kind: 'variant', elements: names.map((k) => seen.get(k)!) };
    }
    case 'AggregateFunction':
    case 'SimpleAggregateFunction':
      return buildAggregate(family === 'SimpleAggregateFunction', args ?? [], src);
    case 'JSON':
    case 'Dynamic':
      return buildJson(family, args ?? [], src);
  }
  throw new SchemaError(`Unknown data type family: ${family}`);
}

const LOW_CARDINALITY_OK = new Set([
  ...INTS,
  ...UINTS,
  ...FLOATS,
  'Bool',
  'String',
  'FixedString',
  'Date',
  'Date32',
  'DateTime',
  'UUID',
  'IPv4',
  'IPv6',
  'Time',
]);

function buildEnum(family: string, args: Tok[][]): EnumType {
  if (!args.length) throw new SchemaError('Enum data type cannot be empty');
  const bad = () =>
    new SchemaError("All elements of Enum data type must be of form: 'name' = number or 'name', where name is string literal and number is an integer");
  const items = args.map((a) => {
    if (a[0].t !== 'str') throw bad();
    if (a.length === 1) return { name: a[0].v, value: undefined as number | undefined };
    const v = intArg(a.slice(2));
    if (a.length !== 3 || a[1].t !== '=' || v === undefined) throw bad();
    return { name: a[0].v, value: v };
  });
  if (items[0].value === undefined && items.some((it) => it.value !== undefined)) throw bad();
  let prev = 0;
  const values = items.map((it) => ({ name: it.name, value: (prev = it.value ?? prev + 1) }));
  const fits8 = values.every((v) => v.value >= -128 && v.value <= 127);
  const name = family === 'Enum' ? (fits8 ? 'Enum8' : 'Enum16') : (family as 'Enum8' | 'Enum16');
  const [lo, hi] = name === 'Enum8' ? [-128, 127] : [-32768, 32767];
  const names = new Map<string, number>();
  const nums = new Map<number, string>();
  for (const v of values) {
    if (v.value < lo || v.value > hi) throw new SchemaError(`Value ${v.value} for element '${v.name}' exceeds range of ${name}`);
    if (names.has(v.name)) throw new SchemaError(`Duplicate names in enum: '${v.name}' = ${names.get(v.name)} and ${v.value}`);
    if (nums.has(v.value)) throw new SchemaError(`Duplicate values in enum: '${v.name}' = ${v.value} and '${nums.get(v.value)}'`);
    names.set(v.name, v.value);
    nums.set(v.value, v.name);
  }
  return { kind: 'enum', name, values };
}

function buildTuple(family: 'Tuple' | 'Nested', args: Tok[][], src: string): TupleType | NestedType {
  const elements: TupleElement[] = args.map((a) => {
    const named = a.length > 1 && (a[0].t === 'qid' || (a[0].t === 'id' && a[1].t === 'id' && !MULTIWORD_PREFIXES.has(`${a[0].v} ${a[1].v}`.toUpperCase())));
    return named ? { name: a[0].v, type: parseTokens(a.slice(1), src) } : { type: parseTokens(a, src) };
  });
  const names = elements.filter((e) => e.name !== undefined).map((e) => e.name!);
  if (names.length && names.length !== elements.length) {
    if (family === 'Nested') throw new SchemaError('Elements of Nested data type must be pairs of name and type');
    throw new SchemaError('Names are specified not for all elements of Tuple type');
  }
  const dup = names.find((nm, i) => names.indexOf(nm) !== i);
  if (dup !== undefined) throw new SchemaError(`Names of tuple elements must be unique. Duplicate name: ${dup}`);
  if (family === 'Tuple') return { kind: 'tuple', elements };
  if (!elements.length) throw new SchemaError('Nested cannot be empty');
  if (!names.length) throw new SchemaError('Elements of Nested data type must be pairs of name and type');
  return { kind: 'nested', fields: elements.map((e) => ({ name: e.name!, type: e.type })) };
}

const SIMPLE_AGGREGATES = new Set([
  'any',
  'any_respect_nulls',
  'anyLast',
  'anyLast_respect_nulls',
  'min',
  'max',
  'sum',
  'sumWithOverflow',
  'groupBitAnd',
  'groupBitOr',
  'groupBitXor',
  'sumMap',
  'minMap',
  'maxMap',
  'groupArrayArray',
  'groupArrayLastArray',
  'groupUniqArrayArray',
  'groupUniqArrayArrayMap',
  'sumMappedArrays',
  'minMappedArrays',
  'maxMappedArrays',
]);

function formatNumber(v: string): string {
  const n = Number(v);
  return Number.isFinite(n) && (!Number.isInteger(n) || Number.isSafeInteger(n)) ? String(n) : v;
}

function buildAggregate(simple: boolean, args: Tok[][], src: string): AggregateType {
  const family = simple ? 'SimpleAggregateFunction' : 'AggregateFunction';
  if (!args.length)
    throw new SchemaError(`Data type ${family} requires parameters: version(optionally), name of aggregate function and list of data types for arguments`);
  let rest = args;
  let version: number | undefined;
  if (!simple && args.length > 1 && intArg(args[0]) !== undefined) {
    version = intArg(args[0]);
    rest = args.slice(1);
  }
  const f = rest[0];
  if (f[0].t !== 'id' || /\./.test(f[0].v)) throw syntaxError(src, f[0].pos);
  let func = f[0].v;
  if (f.length > 1) {
    if (f[1].t !== '(' || matchingParen(f, 1, src) !== f.length - 1) throw syntaxError(src, f[1].pos);
    const params = splitArgs(f.slice(2, -1), src).map((p) => {
      if (!isLiteral(p)) throw syntaxError(src, p[0].pos);
      return p[0].t === 'num' ? formatNumber(p[0].v) : quote(p[0].v);
    });
    func += `(${params.join(', ')})`;
  }
  const types = rest.slice(1).map((a) => parseTokens(a, src));
  const node: AggregateType = { kind: 'aggregate', simple, func, args: types, ...(version !== undefined ? { version } : {}) };
  if (simple) checkSimpleAggregate(f[0].v, types);
  return node;
}

function checkSimpleAggregate(name: string, types: readonly TypeNode[]): void {
  if (!SIMPLE_AGGREGATES.has(name))
    throw new SchemaError(`Unsupported aggregate function ${name}, supported functions are ${[...SIMPLE_AGGREGATES].join(',')}`);
  if (types.length !== 1) throw new SchemaError(`Aggregate function ${name} requires single argument`);
  if (name !== 'sum') return;
  const storage = types[0];
  const returns = sumReturnType(storage);
  const strip = (t: TypeNode): TypeNode => (t.kind === 'lowcardinality' ? t.inner : t);
  if (storageKey(returns) !== storageKey(strip(storage)))
    throw new SchemaError(
      `Incompatible data types between aggregate function 'sum' which returns ${printType(returns)} and column storage type ${printType(storage)}`,
    );
}

/** Return type of `sum(t)` (ClickHouse promotes to the widest type of the same kind). */
function sumReturnType(t: TypeNode): TypeNode {
  if (t.kind === 'nullable') return { kind: 'nullable', inner: sumReturnType(t.inner) };
  if (t.kind === 'lowcardinality') return sumReturnType(t.inner);
  if (t.kind === 'simple') {
    const simple = (name: string): SimpleType => ({ kind: 'simple', name });
    if (['Int8', 'Int16', 'Int32', 'Int64'].includes(t.name)) return simple('Int64');
    if (['UInt8', 'UInt16', 'UInt32', 'UInt64', 'Bool'].includes(t.name)) return simple('UInt64');
    if (['Int128', 'Int256', 'UInt128', 'UInt256'].includes(t.name)) return simple(t.name);
    if (FLOATS.includes(t.name)) return simple('Float64');
    if (t.name === 'Decimal') return decimal(Number(t.args![0]) > 38 ? 76 : 38, Number(t.args![1]));
  }
  throw new SchemaError(`Illegal type ${printType(t)} of argument for aggregate function sum`);
}

/** Print form with decimals reduced to their storage width, so Decimal(20, 2) ≡ Decimal(38, 2). */
function storageKey(t: TypeNode): string {
  if (t.kind === 'nullable') return `Nullable(${storageKey(t.inner)})`;
  if (t.kind === 'simple' && t.name === 'Decimal') {
    const p = Number(t.args![0]);
    return `Decimal${p <= 9 ? 32 : p <= 18 ? 64 : p <= 38 ? 128 : 256}(${t.args![1]})`;
  }
  return printType(t);
}

function buildJson(family: 'JSON' | 'Dynamic', args: Tok[][], src: string): JsonType {
  const params: JsonParam[] = args.map((a): JsonParam => {
    if (a.length === 3 && a[0].t === 'id' && a[1].t === '=' && intArg([a[2]]) !== undefined) {
      const value = intArg([a[2]])!;
      if (family === 'Dynamic') {
        if (a[0].v !== 'max_types') throw new SchemaError(`Unexpected parameter in Dynamic type arguments: ${a[0].v}. Expected 'max_types'`);
        if (value < 0 || value > 254) throw new SchemaError("'max_types' argument for Dynamic type should be a positive integer between 0 and 254");
      } else if (a[0].v !== 'max_dynamic_paths' && a[0].v !== 'max_dynamic_types') {
        throw new SchemaError(`Unexpected parameter in JSON type arguments: ${a[0].v}. Expected 'max_dynamic_types' or \`max_dynamic_paths\``);
      }
      return { kind: 'setting', name: a[0].v, value };
    }
    if (family === 'JSON' && a[0].t === 'id' && a[0].v.toUpperCase() === 'SKIP') {
      if (a.length === 3 && a[1].t === 'id' && a[1].v.toUpperCase() === 'REGEXP' && a[2].t === 'str') return { kind: 'skipRegexp', pattern: a[2].v };
      if (a.length === 2 && (a[1].t === 'id' || a[1].t === 'qid')) return { kind: 'skip', path: a[1].v };
    }
    if (family === 'JSON' && a.length > 1 && (a[0].t === 'id' || a[0].t === 'qid')) return { kind: 'path', path: a[0].v, type: parseTokens(a.slice(1), src) };
    throw syntaxError(src, a[0].pos);
  });
  return { kind: 'json', name: family, params };
}

// ---------------------------------------------------------------------------------------------
// Printing and helpers

function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function ident(s: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? s : `\`${s.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

/** Canonical ClickHouse spelling (what `toTypeName` prints, on one line). */
export function printType(node: TypeNode): string {
  switch (node.kind) {
    case 'simple':
      return node.args?.length ? `${node.name}(${node.args.map((a) => (typeof a === 'number' ? String(a) : quote(a))).join(', ')})` : node.name;
    case 'enum':
      return `${node.name}(${node.values.map((v) => `${quote(v.name)} = ${v.value}`).join(', ')})`;
    case 'nullable':
      return `Nullable(${printType(node.inner)})`;
    case 'lowcardinality':
      return `LowCardinality(${printType(node.inner)})`;
    case 'array':
      return `Array(${printType(node.inner)})`;
    case 'map':
      return `Map(${printType(node.key)}, ${printType(node.value)})`;
    case 'tuple':
      return `Tuple(${node.elements.map((e) => (e.name !== undefined ? `${ident(e.name)} ` : '') + printType(e.type)).join(', ')})`;
    case 'nested':
      return `Nested(${node.fields.map((f) => `${ident(f.name)} ${printType(f.type)}`).join(', ')})`;
    case 'variant':
      return `Variant(${node.elements.map(printType).join(', ')})`;
    case 'aggregate': {
      const name = node.simple ? 'SimpleAggregateFunction' : 'AggregateFunction';
      const parts = [...(node.version !== undefined ? [String(node.version)] : []), node.func, ...node.args.map(printType)];
      return `${name}(${parts.join(', ')})`;
    }
    case 'json': {
      if (!node.params.length) return node.name;
      const params = node.params.map((p) => {
        switch (p.kind) {
          case 'setting':
            return `${p.name}=${p.value}`;
          case 'path':
            return `${ident(p.path)} ${printType(p.type)}`;
          case 'skip':
            return `SKIP ${ident(p.path)}`;
          case 'skipRegexp':
            return `SKIP REGEXP ${quote(p.pattern)}`;
        }
      });
      return `${node.name}(${params.join(', ')})`;
    }
  }
}

/** True for `Nullable(T)` and `LowCardinality(Nullable(T))`. */
export function isNullable(node: TypeNode): boolean {
  return node.kind === 'nullable' || (node.kind === 'lowcardinality' && node.inner.kind === 'nullable');
}

/** `Nullable(T)` → `T`; `LowCardinality(Nullable(T))` → `LowCardinality(T)`; anything else unchanged. */
export function unwrapNullable(node: TypeNode): TypeNode {
  if (node.kind === 'nullable') return node.inner;
  if (node.kind === 'lowcardinality' && node.inner.kind === 'nullable') return { kind: 'lowcardinality', inner: node.inner.inner };
  return node;
}

/** Family name below Nullable/LowCardinality wrappers: `DateTime64` for `LowCardinality(Nullable(DateTime64(3)))`. */
export function baseTypeName(node: TypeNode): string {
  switch (node.kind) {
    case 'nullable':
    case 'lowcardinality':
      return baseTypeName(node.inner);
    case 'simple':
    case 'enum':
    case 'json':
      return node.name;
    case 'aggregate':
      return node.simple ? 'SimpleAggregateFunction' : 'AggregateFunction';
    default:
      return node.kind[0].toUpperCase() + node.kind.slice(1);
  }
}
