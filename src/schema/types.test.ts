import { describe, expect, it } from 'vitest';
import { schemaError } from './test-helpers.js';
import { baseTypeName, isKnownType, isNullable, normalizeType, parseType, printType, unwrapNullable } from './types.js';

const err = (text: string) => schemaError(() => parseType(text), `${text} to be rejected`);

describe('parseType: AST', () => {
  it('parses simple and wrapped types', () => {
    expect(parseType('String')).toEqual({ kind: 'simple', name: 'String' });
    expect(parseType('Nullable(Int32)')).toEqual({ kind: 'nullable', inner: { kind: 'simple', name: 'Int32' } });
    expect(parseType('LowCardinality(Nullable(String))')).toEqual({
      kind: 'lowcardinality',
      inner: { kind: 'nullable', inner: { kind: 'simple', name: 'String' } },
    });
    expect(parseType('Array(Array(Int8))')).toEqual({
      kind: 'array',
      inner: { kind: 'array', inner: { kind: 'simple', name: 'Int8' } },
    });
    expect(parseType('Map(String, Array(UInt64))')).toEqual({
      kind: 'map',
      key: { kind: 'simple', name: 'String' },
      value: { kind: 'array', inner: { kind: 'simple', name: 'UInt64' } },
    });
  });

  it('parses tuples, named and unnamed', () => {
    expect(parseType('Tuple(a Int8, b String)')).toEqual({
      kind: 'tuple',
      elements: [
        { name: 'a', type: { kind: 'simple', name: 'Int8' } },
        { name: 'b', type: { kind: 'simple', name: 'String' } },
      ],
    });
    expect(parseType('Tuple(Int8, String)')).toEqual({
      kind: 'tuple',
      elements: [{ type: { kind: 'simple', name: 'Int8' } }, { type: { kind: 'simple', name: 'String' } }],
    });
    expect(parseType('Tuple(DOUBLE PRECISION, INT UNSIGNED)')).toEqual({
      kind: 'tuple',
      elements: [{ type: { kind: 'simple', name: 'Float64' } }, { type: { kind: 'simple', name: 'UInt32' } }],
    });
    expect(printType(parseType('Tuple(`a b` Int8, c Tuple(d String))'))).toBe('Tuple(`a b` Int8, c Tuple(d String))');
    expect(printType(parseType('Tuple()'))).toBe('Tuple()');
  });

  it('parses literal params', () => {
    expect(parseType("DateTime64(3, 'Europe/Madrid')")).toEqual({ kind: 'simple', name: 'DateTime64', args: [3, 'Europe/Madrid'] });
    expect(parseType('Decimal(18, 4)')).toEqual({ kind: 'simple', name: 'Decimal', args: [18, 4] });
    expect(parseType('FixedString(16)')).toEqual({ kind: 'simple', name: 'FixedString', args: [16] });
    expect(parseType("DateTime('UTC')")).toEqual({ kind: 'simple', name: 'DateTime', args: ['UTC'] });
  });

  it('parses aggregate function types', () => {
    expect(parseType('AggregateFunction(quantiles(0.5, 0.9), Float64)')).toEqual({
      kind: 'aggregate',
      simple: false,
      func: 'quantiles(0.5, 0.9)',
      args: [{ kind: 'simple', name: 'Float64' }],
    });
    expect(parseType('SimpleAggregateFunction(sum, UInt64)')).toEqual({
      kind: 'aggregate',
      simple: true,
      func: 'sum',
      args: [{ kind: 'simple', name: 'UInt64' }],
    });
    expect(parseType('AggregateFunction(1, sum, UInt64)')).toMatchObject({ version: 1, func: 'sum' });
    expect(parseType('AggregateFunction(count)')).toMatchObject({ func: 'count', args: [] });
  });

  it('parses enums', () => {
    expect(parseType("Enum8('a' = 1, 'b' = 2)")).toEqual({
      kind: 'enum',
      name: 'Enum8',
      values: [
        { name: 'a', value: 1 },
        { name: 'b', value: 2 },
      ],
    });
  });
});

describe('printType: canonical text (as ClickHouse toTypeName prints it)', () => {
  const cases: [string, string][] = [
    ['Nullable(String)', 'Nullable(String)'],
    ['LowCardinality(Nullable(String))', 'LowCardinality(Nullable(String))'],
    ['Array(Array(Int8))', 'Array(Array(Int8))'],
    ['Map(String,Array(UInt64))', 'Map(String, Array(UInt64))'],
    ['Tuple(a Int8,b String)', 'Tuple(a Int8, b String)'],
    ["DateTime64(3,'Europe/Madrid')", "DateTime64(3, 'Europe/Madrid')"],
    ['DateTime64', 'DateTime64(3)'],
    ['DateTime(3)', 'DateTime64(3)'],
    ['datetime64(6)', 'DateTime64(6)'],
    ['DateTime32', 'DateTime'],
    ['Decimal(18,4)', 'Decimal(18, 4)'],
    ['Decimal(10)', 'Decimal(10, 0)'],
    ['Decimal', 'Decimal(10, 0)'],
    ['Decimal32(2)', 'Decimal(9, 2)'],
    ['Decimal64(4)', 'Decimal(18, 4)'],
    ['Decimal128(4)', 'Decimal(38, 4)'],
    ['Decimal256(4)', 'Decimal(76, 4)'],
    ['DECIMAL(5,2)', 'Decimal(5, 2)'],
    ['AggregateFunction(quantiles(0.50,0.9),Float64)', 'AggregateFunction(quantiles(0.5, 0.9), Float64)'],
    ["AggregateFunction(sequenceMatch('(?1)(?2)'), DateTime, UInt8, UInt8)", "AggregateFunction(sequenceMatch('(?1)(?2)'), DateTime, UInt8, UInt8)"],
    ['AggregateFunction(uniq, String, UInt64)', 'AggregateFunction(uniq, String, UInt64)'],
    ['SimpleAggregateFunction(sum,UInt64)', 'SimpleAggregateFunction(sum, UInt64)'],
    ['SimpleAggregateFunction(sum, Nullable(Int64))', 'SimpleAggregateFunction(sum, Nullable(Int64))'],
    ['SimpleAggregateFunction(sum, Decimal(20,2))', 'SimpleAggregateFunction(sum, Decimal(20, 2))'],
    ['SimpleAggregateFunction(sum, LowCardinality(Int64))', 'SimpleAggregateFunction(sum, LowCardinality(Int64))'],
    ['SimpleAggregateFunction(max, Int32)', 'SimpleAggregateFunction(max, Int32)'],
    ["Enum8('a'=1,'b'=2)", "Enum8('a' = 1, 'b' = 2)"],
    ["Enum('a','b')", "Enum8('a' = 1, 'b' = 2)"],
    ["Enum8('a' = 1, 'b')", "Enum8('a' = 1, 'b' = 2)"],
    ["Enum('a' = 1, 'b' = 300)", "Enum16('a' = 1, 'b' = 300)"],
    ["Enum8('it\\'s' = -1)", "Enum8('it\\'s' = -1)"],
    ["Enum8('it''s' = 1)", "Enum8('it\\'s' = 1)"],
    ['Nested(a Int8, b String)', 'Nested(a Int8, b String)'],
    ['Variant(String, UInt64)', 'Variant(String, UInt64)'],
    ['Variant(UInt64, String, Array(UInt64), String)', 'Variant(Array(UInt64), String, UInt64)'],
    ['JSON', 'JSON'],
    ['JSON()', 'JSON'],
    ["JSON(max_dynamic_paths=10, a.b UInt32, SKIP a.c, SKIP REGEXP 'x.*')", "JSON(max_dynamic_paths=10, `a.b` UInt32, SKIP `a.c`, SKIP REGEXP 'x.*')"],
    ['JSON(a UInt32)', 'JSON(a UInt32)'],
    ['Dynamic', 'Dynamic'],
    ['Dynamic(max_types=10)', 'Dynamic(max_types=10)'],
    ['Nullable(Tuple(Int8))', 'Nullable(Tuple(Int8))'],
    ['Nullable(SimpleAggregateFunction(sum, Int64))', 'Nullable(SimpleAggregateFunction(sum, Int64))'],
    ['Time', 'Time'],
    ['Time64', 'Time64(3)'],
    ['Time64(6)', 'Time64(6)'],
    ['BFloat16', 'BFloat16'],
    ['Int256', 'Int256'],
    ['UInt128', 'UInt128'],
    ['UUID', 'UUID'],
    ['IPv4', 'IPv4'],
    ['IPv6', 'IPv6'],
    ['Date32', 'Date32'],
    ['Nothing', 'Nothing'],
    ['Point', 'Point'],
    ['MultiPolygon', 'MultiPolygon'],
    ['Bool', 'Bool'],
    ['bool', 'Bool'],
    ['BOOLEAN', 'Bool'],
    ['int', 'Int32'],
    ['INT UNSIGNED', 'UInt32'],
    ['INT(11)', 'Int32'],
    ['BIGINT', 'Int64'],
    ['double precision', 'Float64'],
    ['FLOAT(10,2)', 'Float32'],
    ['VARCHAR(255)', 'String'],
    ['String(10)', 'String'],
    ['TEXT', 'String'],
    ['national character varying', 'String'],
    ['TIMESTAMP', 'DateTime'],
    ['BINARY(4)', 'FixedString(4)'],
    ['INET6', 'IPv6'],
    ['Array(LowCardinality(Nullable(String)))', 'Array(LowCardinality(Nullable(String)))'],
    ['LowCardinality(FixedString(2))', 'LowCardinality(FixedString(2))'],
    ['Map(LowCardinality(String), String)', 'Map(LowCardinality(String), String)'],
    ['  Array( Nullable( UInt8 ) )  ', 'Array(Nullable(UInt8))'],
  ];
  it.each(cases)('%s → %s', (input, expected) => {
    expect(normalizeType(input)).toBe(expected);
    expect(normalizeType(expected)).toBe(expected);
  });
});

describe('type errors carry ClickHouse messages', () => {
  const cases: [string, string][] = [
    ['Foo', 'Unknown data type family: Foo'],
    ['Array(Foo)', 'Unknown data type family: Foo'],
    ['string', 'Unknown data type family: string'],
    ['INT8', 'Unknown data type family: INT8'],
    ["Object('json')", 'Unknown data type family: Object'],
    ['Nullable(Array(Int8))', 'Nested type Array(Int8) cannot be inside Nullable type'],
    ['Nullable(Nullable(Int8))', 'Nested type Nullable(Int8) cannot be inside Nullable type'],
    ['Nullable(LowCardinality(String))', 'Nested type LowCardinality(String) cannot be inside Nullable type'],
    ['Nullable(Map(String, String))', 'Nested type Map(String, String) cannot be inside Nullable type'],
    ['Nullable(Variant(Int8))', 'Nested type Variant(Int8) cannot be inside Nullable type'],
    ['Nullable(Dynamic)', 'Nested type Dynamic cannot be inside Nullable type'],
    ['Nullable(AggregateFunction(sum, UInt64))', 'Nested type AggregateFunction(sum, UInt64) cannot be inside Nullable type'],
    ['Nullable(String, Int8)', 'Nullable data type family must have exactly one argument - nested type'],
    ['LowCardinality(Decimal(9,2))', 'DataTypeLowCardinality is supported only for numbers, strings, Date or DateTime, but got Decimal(9, 2)'],
    ['LowCardinality(Array(String))', 'DataTypeLowCardinality is supported only for numbers, strings, Date or DateTime, but got Array(String)'],
    ['LowCardinality(DateTime64(3))', 'DataTypeLowCardinality is supported only for numbers, strings, Date or DateTime, but got DateTime64(3)'],
    ["LowCardinality(Enum8('a' = 1))", "DataTypeLowCardinality is supported only for numbers, strings, Date or DateTime, but got Enum8('a' = 1)"],
    ['Map(Nullable(String), String)', 'Map cannot have a key of type Nullable(String)'],
    ['Map(LowCardinality(Nullable(String)), String)', 'Map cannot have a key of type LowCardinality(Nullable(String))'],
    ['Map(String)', 'Map data type family must have two arguments: key and value types'],
    ['Array(Int8, Int8)', 'Array data type family must have exactly one argument - type of elements'],
    ['Tuple(a Int8, String)', 'Names are specified not for all elements of Tuple type'],
    ['Tuple(a Int8, a String)', 'Names of tuple elements must be unique. Duplicate name: a'],
    ['Nested()', 'Nested cannot be empty'],
    ['Variant()', 'Variant type should have at least one nested type'],
    ['Variant(Nullable(Int8))', 'Nullable/LowCardinality(Nullable) types are not allowed inside Variant type'],
    ['FixedString', 'FixedString data type family must have exactly one argument - size in bytes'],
    ['FixedString(0)', 'FixedString data type family must have a number (positive integer) as its argument'],
    ['DateTime64(10)', 'Scale 10 is too large for DateTime64. Maximum is up to nanoseconds (9)'],
    ['Time64(10)', 'DataTypeTime64 scale 10 is too large, maximum is 9'],
    ["DateTime('Foo/Bar')", 'Cannot load time zone Foo/Bar'],
    ['Decimal(77, 2)', 'Wrong precision: it must be between 1 and 76, got 77'],
    ['Decimal(0)', 'Wrong precision: it must be between 1 and 76, got 0'],
    ['Decimal(5, 6)', 'Negative scales and scales larger than precision are not supported'],
    ['Decimal32(10)', 'Negative scales and scales larger than precision are not supported'],
    ['Decimal(9,2,1)', 'Decimal data type family must have precision and optional scale arguments'],
    ['UUID(1)', 'Data type UUID cannot have arguments'],
    ['Bool(1)', 'Data type Bool cannot have arguments'],
    ['Enum8()', 'Enum data type cannot be empty'],
    ["Enum8('a' = 200)", "Value 200 for element 'a' exceeds range of Enum8"],
    ["Enum16('a' = 40000)", "Value 40000 for element 'a' exceeds range of Enum16"],
    ["Enum8('a' = 1, 'a' = 2)", "Duplicate names in enum: 'a' = 1 and 2"],
    ["Enum8('a' = 1, 'b' = 1)", "Duplicate values in enum: 'b' = 1 and 'a'"],
    ["Enum8('a', 'b' = 5)", "All elements of Enum data type must be of form: 'name' = number or 'name', where name is string literal and number is an integer"],
    ['SimpleAggregateFunction(sum, Int32)', "Incompatible data types between aggregate function 'sum' which returns Int64 and column storage type Int32"],
    ['SimpleAggregateFunction(sum, UInt32)', "Incompatible data types between aggregate function 'sum' which returns UInt64 and column storage type UInt32"],
    ['SimpleAggregateFunction(sum, Float32)', "Incompatible data types between aggregate function 'sum' which returns Float64 and column storage type Float32"],
    [
      'SimpleAggregateFunction(sum, Nullable(Int32))',
      "Incompatible data types between aggregate function 'sum' which returns Nullable(Int64) and column storage type Nullable(Int32)",
    ],
    [
      'SimpleAggregateFunction(sum, Decimal(9,2))',
      "Incompatible data types between aggregate function 'sum' which returns Decimal(38, 2) and column storage type Decimal(9, 2)",
    ],
    [
      'SimpleAggregateFunction(sum, LowCardinality(Int32))',
      "Incompatible data types between aggregate function 'sum' which returns Int64 and column storage type LowCardinality(Int32)",
    ],
    ['SimpleAggregateFunction(sum, String)', 'Illegal type String of argument for aggregate function sum'],
    ['SimpleAggregateFunction(sum)', 'Aggregate function sum requires single argument'],
    [
      'AggregateFunction()',
      'Data type AggregateFunction requires parameters: version(optionally), name of aggregate function and list of data types for arguments',
    ],
    ['Dynamic(max_types=300)', "'max_types' argument for Dynamic type should be a positive integer between 0 and 254"],
    ['JSON(foo=1)', "Unexpected parameter in JSON type arguments: foo. Expected 'max_dynamic_types' or `max_dynamic_paths`"],
  ];
  it.each(cases)('%s', (input, message) => expect(err(input)).toBe(message));

  it('rejects unsupported SimpleAggregateFunction functions', () => {
    expect(err('SimpleAggregateFunction(uniq, UInt64)')).toMatch(/^Unsupported aggregate function uniq, supported functions are any,/);
  });

  it('rejects syntax garbage', () => {
    for (const t of ['', 'Array(', 'Array(Int8))', 'String String', 'Int32(foo)', 'Float#32', 'Tuple(Int8,)', "Enum8('a)"])
      expect(isKnownType(t), t).toBe(false);
    expect(err('Array(Int8) x')).toBe("Syntax error in data type 'Array(Int8) x' at position 13");
  });
});

describe('helpers', () => {
  it('isKnownType', () => {
    expect(isKnownType('LowCardinality(Nullable(String))')).toBe(true);
    expect(isKnownType('Strin')).toBe(false);
  });

  it('isNullable / unwrapNullable', () => {
    expect(isNullable(parseType('Nullable(String)'))).toBe(true);
    expect(isNullable(parseType('LowCardinality(Nullable(String))'))).toBe(true);
    expect(isNullable(parseType('Array(Nullable(String))'))).toBe(false);
    expect(isNullable(parseType('String'))).toBe(false);
    expect(printType(unwrapNullable(parseType('Nullable(DateTime64(3))')))).toBe('DateTime64(3)');
    expect(printType(unwrapNullable(parseType('LowCardinality(Nullable(String))')))).toBe('LowCardinality(String)');
    expect(printType(unwrapNullable(parseType('Array(Nullable(String))')))).toBe('Array(Nullable(String))');
  });

  it('baseTypeName', () => {
    expect(baseTypeName(parseType('Nullable(DateTime64(3))'))).toBe('DateTime64');
    expect(baseTypeName(parseType('LowCardinality(Nullable(DateTime))'))).toBe('DateTime');
    // ClickHouse 26.7 refuses LowCardinality(DateTime64): so do we.
    expect(isKnownType('LowCardinality(Nullable(DateTime64(3)))')).toBe(false);
    expect(baseTypeName(parseType('Nullable(Decimal(9, 2))'))).toBe('Decimal');
    expect(baseTypeName(parseType("Enum16('a' = 1)"))).toBe('Enum16');
    expect(baseTypeName(parseType('Array(String)'))).toBe('Array');
    expect(baseTypeName(parseType('Map(String, String)'))).toBe('Map');
    expect(baseTypeName(parseType('Tuple(Int8)'))).toBe('Tuple');
    expect(baseTypeName(parseType('Nested(a Int8)'))).toBe('Nested');
    expect(baseTypeName(parseType('Variant(Int8)'))).toBe('Variant');
    expect(baseTypeName(parseType('JSON'))).toBe('JSON');
    expect(baseTypeName(parseType('SimpleAggregateFunction(max, Int8)'))).toBe('SimpleAggregateFunction');
    expect(baseTypeName(parseType('AggregateFunction(uniq, String)'))).toBe('AggregateFunction');
    expect(baseTypeName(parseType('int unsigned'))).toBe('UInt32');
  });

  it('returns immutable-shaped plain data (JSON round-trip)', () => {
    const node = parseType("Map(String, Tuple(a Array(Nullable(Decimal(9, 2))), b Enum8('x' = 1)))");
    expect(JSON.parse(JSON.stringify(node))).toEqual(node);
  });
});
