import { describe, expect, it } from 'vitest';
import type { Column } from '../basics/types.js';
import { schemaError } from './test-helpers.js';
import { columnToJson, isJsonSchema, parseSchema, parseSchemaWithIndexes, printSchema, validateJsonPath } from './schema.js';

const col = (name: string, type: string, extra: Partial<Column> = {}): Column => ({
  name,
  type,
  nullable: false,
  defaultValue: null,
  codec: null,
  jsonpath: null,
  ...extra,
});

const err = (text: string) => schemaError(() => parseSchema(text), `schema to be rejected: ${text}`);

describe('parseSchema', () => {
  it('parses plain columns', () => {
    expect(parseSchema('c Float32, b String')).toEqual([col('c', 'Float32'), col('b', 'String')]);
    expect(parseSchema('`date` Date,`timezone` String,`offset` Int32').map((c) => c.name)).toEqual(['date', 'timezone', 'offset']);
    expect(parseSchema('`foo.bar` UInt64')).toEqual([col('foo.bar', 'UInt64')]);
    expect(parseSchema('_x UInt8')).toEqual([col('_x', 'UInt8')]);
  });

  it('returns [] for empty or comment-only schemas', () => {
    expect(parseSchema('')).toEqual([]);
    expect(parseSchema('  \n\t ')).toEqual([]);
    expect(parseSchema('-- nothing here\n')).toEqual([]);
  });

  it('keeps the full type, canonicalised, and flags nullables', () => {
    expect(parseSchema('`c` Nullable(Float32)')).toEqual([col('c', 'Nullable(Float32)', { nullable: true })]);
    expect(parseSchema('c LowCardinality(Nullable(String))')).toEqual([col('c', 'LowCardinality(Nullable(String))', { nullable: true })]);
    expect(parseSchema('c Array(Nullable(String))')[0].nullable).toBe(false);
    expect(parseSchema('wadus INT UNSIGNED')).toEqual([col('wadus', 'UInt32')]);
    expect(parseSchema("d Decimal32(2), t DateTime64(3,'Europe/Madrid')").map((c) => c.type)).toEqual(['Decimal(9, 2)', "DateTime64(3, 'Europe/Madrid')"]);
  });

  it('parses every type family inside a schema', () => {
    const types = [
      'Nullable(String)',
      'LowCardinality(Nullable(String))',
      'Array(Array(Int8))',
      'Map(String, Array(UInt64))',
      'Tuple(a Int8, b String)',
      "DateTime64(3, 'Europe/Madrid')",
      'Decimal(18, 4)',
      'AggregateFunction(quantiles(0.5, 0.9), Float64)',
      'SimpleAggregateFunction(sum, UInt64)',
      "Enum8('a' = 1, 'b' = 2)",
      'FixedString(2)',
      'UUID',
      'Bool',
      'JSON',
      'IPv6',
    ];
    const schema = types.map((t, i) => `c${i} ${t} \`json:$.c${i}\``).join(',\n');
    const cols = parseSchema(schema);
    expect(cols.map((c) => c.type)).toEqual(types);
    expect(cols.map((c) => c.jsonpath)).toEqual(types.map((_, i) => `$.c${i}`));
  });

  it('parses DEFAULT, MATERIALIZED, ALIAS and CODEC', () => {
    expect(parseSchema("c String DEFAULT 'bla'")).toEqual([col('c', 'String', { defaultValue: "DEFAULT 'bla'" })]);
    expect(parseSchema('foo Float32 DEFAULT 13, bar UInt64')).toEqual([col('foo', 'Float32', { defaultValue: 'DEFAULT 13' }), col('bar', 'UInt64')]);
    expect(parseSchema('c Int32 Materialized b*2\n')).toEqual([col('c', 'Int32', { defaultValue: 'MATERIALIZED b*2' })]);
    expect(parseSchema('c Int32 ALIAS b + 1')).toEqual([col('c', 'Int32', { defaultValue: 'ALIAS b + 1' })]);
    expect(parseSchema('c Int32 Materialized b != 1 ? b*2: pow(b, 3)\n')[0].defaultValue).toBe('MATERIALIZED b != 1 ? b*2: pow(b, 3)');
    expect(parseSchema('double_value Float64 CODEC(LZ4HC(2))')).toEqual([col('double_value', 'Float64', { codec: 'CODEC(LZ4HC(2))' })]);
    expect(parseSchema('c Int32 CODEC(Delta, LZ4)\n')[0].codec).toBe('CODEC(Delta, LZ4)');
    expect(parseSchema('c Int32 Materialized ifNull(b*2, 0) CODEC(Delta, LZ4)\n')).toEqual([
      col('c', 'Int32', { defaultValue: 'MATERIALIZED ifNull(b*2, 0)', codec: 'CODEC(Delta, LZ4)' }),
    ]);
    expect(parseSchema('t Float32 MATERIALIZED temperature Codec(DoubleDelta)')[0].codec).toBe('CODEC(DoubleDelta)');
    expect(parseSchema('tt UInt8  MATERIALIZED t  CODEC(Delta(1), LZ4)')).toEqual([
      col('tt', 'UInt8', { defaultValue: 'MATERIALIZED t', codec: 'CODEC(Delta(1), LZ4)' }),
    ]);
  });

  it('handles complex default expressions: parens, commas, escaped quotes, arrays', () => {
    const ts = "timestamp DateTime MATERIALIZED toDateTime(JSONExtractInt(JSONExtractRaw(record, 'payload'), 'timestamp') / 1000)";
    expect(parseSchema(ts)[0].defaultValue).toBe("MATERIALIZED toDateTime(JSONExtractInt(JSONExtractRaw(record, 'payload'), 'timestamp') / 1000)");
    expect(parseSchema("`arr` Array(String) DEFAULT ['-']")[0].defaultValue).toBe("DEFAULT ['-']");
    expect(parseSchema("`arr` Array(String) DEFAULT array('-')")[0].defaultValue).toBe("DEFAULT array('-')");
    const cols = parseSchema("a String DEFAULT 'it\\'s, (ok', b String DEFAULT concat('x,', \"y\")");
    expect(cols.map((c) => c.defaultValue)).toEqual(["DEFAULT 'it\\'s, (ok'", 'DEFAULT concat(\'x,\', "y")']);
    expect(parseSchema("m Map(String, UInt8) DEFAULT map('a', 1)")[0].defaultValue).toBe("DEFAULT map('a', 1)");
    expect(parseSchema('c String DEFAULT upper(\n  b\n)')[0].defaultValue).toBe('DEFAULT upper( b )');
  });

  it('drops DEFAULT NULL on nullable columns (as Tinybird does)', () => {
    expect(parseSchema('c Nullable(Float32) DEFAULT NULL')).toEqual([col('c', 'Nullable(Float32)', { nullable: true })]);
  });

  it('accepts the jsonpath before or after DEFAULT and CODEC', () => {
    const expected = [col('symbol', 'String', { defaultValue: "DEFAULT '-'", jsonpath: '$.symbol' })];
    expect(parseSchema("symbol String `json:$.symbol` DEFAULT '-'")).toEqual(expected);
    expect(parseSchema("symbol String DEFAULT '-' `json:$.symbol`")).toEqual(expected);
    const withCodec = col('a2', 'Float32', { codec: 'CODEC(Delta, ZSTD(4))', jsonpath: '$.a2', defaultValue: 'DEFAULT 0' });
    expect(parseSchema('`a2` Float32 DEFAULT 0 CODEC(Delta, ZSTD(4)) `json:$.a2`')).toEqual([withCodec]);
    expect(parseSchema('`a2` Float32 `json:$.a2` DEFAULT 0 CODEC(Delta, ZSTD(4))')).toEqual([withCodec]);
    expect(parseSchema('`a2` Float32 DEFAULT 0 `json:$.a2` CODEC(Delta, ZSTD(4))')).toEqual([withCodec]);
    expect(parseSchema('`cpu_time` Float32 `json:$.cpu_time` DEFAULT 0')[0]).toEqual(
      col('cpu_time', 'Float32', { jsonpath: '$.cpu_time', defaultValue: 'DEFAULT 0' }),
    );
  });

  it('accepts every JSONPath form', () => {
    const cols = parseSchema(
      'a String `json:$`, b Array(String) `json:$.items[:]`, c String `json:$[\'a key\']`, d String `json:$["k"].x`, e String `json:$.a.b.c`, f Array(String) `json:$.a[:].b`, g String `json:$.a--2`',
    );
    expect(cols.map((c) => c.jsonpath)).toEqual(['$', '$.items[:]', "$['a key']", '$["k"].x', '$.a.b.c', '$.a[:].b', '$.a--2']);
  });

  it('strips -- comments anywhere, but not inside backticks or strings', () => {
    const expected = [col('c', 'Float32'), col('b', 'String')];
    expect(parseSchema('c Float32,--comment\nb String')).toEqual(expected);
    expect(parseSchema('c Float32 --first-comment\n,--comment\nb String --another-comment')).toEqual(expected);
    expect(parseSchema('--random comment here\nc Float32 --another comment\n,--another one\nb String --last one')).toEqual(expected);
    expect(parseSchema('--extra comment\nc--extra comment\nFloat32--extra comment\n,--extra comment\nb--extra comment\nString--extra comment')).toEqual(
      expected,
    );
    expect(parseSchema("a String DEFAULT '--not a comment' -- a comment")[0].defaultValue).toBe("DEFAULT '--not a comment'");
    expect(parseSchema('a String `json:$.a--b` -- comment, with comma')[0].jsonpath).toBe('$.a--b');
  });

  it('accepts newlines and indentation anywhere', () => {
    const schema = `
      \`timestamp\` DateTime \`json:$.timestamp\`,
      \`tags\`
          Array(String)
          \`json:$.tags[:]\`,
      \`payload\` String \`json:$.payload\` DEFAULT ''
    `;
    expect(parseSchema(schema)).toEqual([
      col('timestamp', 'DateTime', { jsonpath: '$.timestamp' }),
      col('tags', 'Array(String)', { jsonpath: '$.tags[:]' }),
      col('payload', 'String', { jsonpath: '$.payload', defaultValue: "DEFAULT ''" }),
    ]);
    expect(parseSchema('a Map(\n  String,\n  Array(UInt64)\n)')[0].type).toBe('Map(String, Array(UInt64))');
    expect(parseSchema('a String,\r\nb String\r\n').map((c) => c.name)).toEqual(['a', 'b']);
  });

  it('collects INDEX entries inside the schema apart from the columns', () => {
    const { columns, indexes } = parseSchemaWithIndexes('`a` String, INDEX idx a TYPE set(100, 1) GRANULARITY 100, b UInt8');
    expect(columns.map((c) => c.name)).toEqual(['a', 'b']);
    expect(indexes).toEqual([{ name: 'idx', expr: 'a', type: 'set(100, 1)', granularity: '100' }]);
    expect(parseSchema('`a` String, INDEX index_name a TYPE set(100) GRANULARITY 100')).toEqual([col('a', 'String')]);
  });
});

describe('parseSchema errors', () => {
  it('points at the offending character like Tinybird', () => {
    expect(err('doubl/e_value Float64 CODEC(LZ4HC(2))')).toBe(
      "wrong value, please check the schema syntax\ndoubl/e_value Float64 CODEC(LZ4HC(2))\n     ^--- found '/' at position 6",
    );
    expect(err('foo^bar Float32')).toBe("wrong value, please check the schema syntax\nfoo^bar Float32\n   ^--- found '^' at position 4");
    expect(err('foo Float#32')).toBe("wrong value, please check the schema syntax\nfoo Float#32\n         ^--- found '#' at position 10");
    expect(err('foo Float32 DEFAULT 1$$$3')).toBe(
      "wrong value, please check the schema syntax\nfoo Float32 DEFAULT 1$$$3\n                     ^--- found '$' at position 22",
    );
    expect(err('foo Float32 CODEC(Delta(4), LZ#4)')).toBe(
      "wrong value, please check the schema syntax\nfoo Float32 CODEC(Delta(4), LZ#4)\n                              ^--- found '#' at position 31",
    );
  });

  it('echoes the right line of a multi-line schema', () => {
    expect(err('a String,\n  b Int32 DEFAULT 1;\n')).toBe(
      "wrong value, please check the schema syntax\n  b Int32 DEFAULT 1;\n                   ^--- found ';' at position 20",
    );
    expect(err('a String,\n-- comment\n  b String,,')).toBe(
      "wrong value, please check the schema syntax\n  b String,,\n           ^--- found ',' at position 12",
    );
  });

  it('rejects other syntax problems', () => {
    const syntax = (s: string) => expect(err(s).startsWith('wrong value, please check the schema syntax\n'), s).toBe(true);
    syntax('a'); // no type
    syntax('a, b String');
    syntax('a String b');
    syntax('a String `json:$.a');
    syntax('`a String');
    syntax("a String DEFAULT 'x");
    syntax('a String DEFAULT (1');
    syntax('a String DEFAULT 1)');
    syntax('a String DEFAULT');
    syntax('c Int32 CODEC(Delta, LZ4) Materialized b*2\n'); // DEFAULT after CODEC
    syntax("a String DEFAULT 'x' DEFAULT 'y'");
    syntax('a String CODEC(LZ4) CODEC(LZ4)');
    syntax('a String `json:$.a` `json:$.b`');
    syntax('a String CODEC LZ4');
    syntax('a(b) String');
    expect(err('a String TTL now()')).toMatch(/^column TTL not supported\n/);
    expect(err('a String NOT NULL')).toMatch(/^NOT NULL column syntax not supported\n/);
    expect(err('a String NULL')).toMatch(/^NULL column syntax not supported\n/);
  });

  it('rejects unknown and invalid types with the ClickHouse message', () => {
    expect(err('a String,\n  b Strin')).toBe('Unknown data type family: Strin');
    expect(err('a Nullable(Array(String))')).toBe('Nested type Array(String) cannot be inside Nullable type');
    expect(err('c  SimpleAggregateFunction(sum, Int32),\np SimpleAggregateFunction(sum, Int32)')).toBe(
      "Incompatible data types between aggregate function 'sum' which returns Int64 and column storage type Int32",
    );
  });

  it('validates column names', () => {
    expect(err('`index` String')).toBe("Invalid column name 'index' at position 1, 'index' is a reserved keyword");
    expect(err('a String, index String')).toBe("Invalid column name 'index' at position 2, 'index' is a reserved keyword");
    expect(err('a String, `1a` String')).toMatch(/^Invalid column name '1a' at position 2\./);
    expect(err('`a-b` String')).toMatch(/^Invalid column name 'a-b' at position 1\./);
    expect(err('`a b` String')).toMatch(/^Invalid column name 'a b' at position 1\./);
    expect(err('c1 String, c1 Int32')).toBe("Column with name 'c1' is duplicated at positions 1 and 2");
    expect(err('a String, c1 String, b String, `c1` Int32')).toBe("Column with name 'c1' is duplicated at positions 2 and 4");
  });

  it('limits the number of columns to 500', () => {
    const ok = Array.from({ length: 500 }, (_, i) => `c${i} String`).join(', ');
    expect(parseSchema(ok)).toHaveLength(500);
    expect(err(`${ok}, extra String`)).toBe('The maximum number of columns allowed is 500.');
  });

  it('rejects invalid JSONPaths', () => {
    expect(err('a String `json:a.b`')).toBe("Invalid JSONPath: 'a.b'");
    expect(err('a String `json:$.a[0]`')).toBe("Invalid JSONPath: '$.a[0]'");
    expect(err('a String `json:$.`')).toBe("Invalid JSONPath: '$.'");
    expect(err('a String `json:$..a`')).toBe("Invalid JSONPath: '$..a'");
    expect(err('a String `json:$.a[*]`')).toBe("Invalid JSONPath: '$.a[*]'");
    expect(err('a String `json:`')).toBe("Invalid JSONPath: ''");
  });

  it('rejects host-reaching functions and subqueries in expressions', () => {
    expect(err("a String DEFAULT file('/etc/passwd')")).toBe(
      "Invalid DEFAULT expression of column 'a' \"file('/etc/passwd')\": function 'file' is not allowed",
    );
    expect(err("a String MATERIALIZED url('http://x', 'CSV')")).toMatch(/function 'url' is not allowed/);
    expect(err("a String DEFAULT dictGet('d', 'x', 1)")).toMatch(/function 'dictGet' is not allowed/);
    expect(err('a UInt64 DEFAULT (SELECT count() FROM t)')).toMatch(/subqueries are not allowed/);
  });
});

describe('validateJsonPath', () => {
  it('accepts supported paths and returns them', () => {
    for (const p of ['$', '$.a', '$.a.b', '$.a[:]', "$['a']", '$["a"]', "$['a'].b[:]", '$.a_b-c', '$[:]']) expect(validateJsonPath(p)).toBe(p);
  });
  it('rejects the rest', () => {
    for (const p of ['', 'a', '$a', '$.', '$.a.', '$.a[1]', "$['a]", '$.a b', '$.a[]'])
      expect(() => validateJsonPath(p), p).toThrow(`Invalid JSONPath: '${p}'`);
  });
});

describe('printSchema / columnToJson / isJsonSchema', () => {
  it('prints the sql_schema form with the jsonpath before DEFAULT', () => {
    expect(printSchema([col('a', 'String', { jsonpath: '$.a' }), col('b', 'Nullable(Int32)', { nullable: true, defaultValue: 'DEFAULT 1' })])).toBe(
      '`a` String `json:$.a`, `b` Nullable(Int32) DEFAULT 1',
    );
    expect(printSchema([col('c', 'Float32', { jsonpath: '$.c', defaultValue: 'DEFAULT 0', codec: 'CODEC(ZSTD(1))' })])).toBe(
      '`c` Float32 `json:$.c` DEFAULT 0 CODEC(ZSTD(1))',
    );
    expect(printSchema([])).toBe('');
  });

  it('round-trips through parseSchema', () => {
    const text =
      '`a` String `json:$.a`, `b` Nullable(Int32) `json:$.b` DEFAULT 1 CODEC(ZSTD(1)), `c` Array(String) `json:$.c[:]`, `d` String MATERIALIZED upper(a)';
    expect(printSchema(parseSchema(text))).toBe(text);
  });

  it('columnToJson normalises Nullable(T) to type T + nullable', () => {
    const [a, b, c] = parseSchema("a Nullable(String) `json:$.a` DEFAULT 'bla', b String CODEC(ZSTD(1)), c LowCardinality(Nullable(String))");
    expect(columnToJson(a)).toEqual({
      name: 'a',
      type: 'String',
      codec: null,
      default_value: "DEFAULT 'bla'",
      jsonpath: '$.a',
      nullable: true,
      normalized_name: 'a',
    });
    expect(columnToJson(b)).toEqual({
      name: 'b',
      type: 'String',
      codec: 'CODEC(ZSTD(1))',
      default_value: null,
      jsonpath: null,
      nullable: false,
      normalized_name: 'b',
    });
    expect(columnToJson(c)).toMatchObject({ type: 'LowCardinality(Nullable(String))', nullable: true });
    expect(Object.keys(columnToJson(a))).toEqual(['name', 'type', 'codec', 'default_value', 'jsonpath', 'nullable', 'normalized_name']);
  });

  it('isJsonSchema requires a jsonpath on every stored column', () => {
    expect(isJsonSchema(parseSchema('a String `json:$.a`, b Int8 `json:$.b`'))).toBe(true);
    expect(isJsonSchema(parseSchema('a String `json:$.a`, b Int8'))).toBe(false);
    expect(isJsonSchema(parseSchema('a String `json:$.a`, b String MATERIALIZED upper(a), c String ALIAS lower(a)'))).toBe(true);
    expect(isJsonSchema(parseSchema('a String `json:$.a`, b String DEFAULT upper(a)'))).toBe(false);
    expect(isJsonSchema([])).toBe(false);
  });
});
