import { describe, expect, it } from 'vitest';
import type { Column } from '../../basics/types.js';
import {
  dedupeNames,
  defaultSortingKey,
  guessColumnType,
  guessCsvSchema,
  inferJsonColumns,
  isNullToken,
  jsonColumnsToColumns,
  jsonColumnsToSchema,
  jsonPathSegment,
  matchTemporal,
  normalizeColumnName,
  parseNdjsonSample,
  positionalColumnName,
} from './guess.js';

const t = (...values: (string | null)[]) => guessColumnType(values).type;

describe('guessColumnType: integers', () => {
  it('picks the narrowest signed type', () => {
    expect(t('0', '1', '-1')).toBe('Int16');
    expect(t('32767', '-32768')).toBe('Int16');
    expect(t('32768')).toBe('Int32');
    expect(t('-32769')).toBe('Int32');
    expect(t('2147483647', '-2147483648')).toBe('Int32');
    expect(t('2147483648')).toBe('Int64');
    expect(t('9223372036854775807', '-9223372036854775808')).toBe('Int64');
    expect(t('123456789012345678')).toBe('Int64');
  });

  it('falls back to String beyond Int64', () => {
    expect(t('9223372036854775808')).toBe('String');
    expect(t('-9223372036854775809')).toBe('String');
    expect(t('123456789012345678901')).toBe('String');
  });

  it('keeps leading zeros and plus signs as text', () => {
    expect(t('007', '1')).toBe('String');
    expect(t('+5')).toBe('String');
    expect(t('-0')).toBe('Int16');
  });

  it('guesses epoch seconds and milliseconds as integers, not DateTime', () => {
    expect(t('1704413030', '1704413031')).toBe('Int32');
    expect(t('1704413030123')).toBe('Int64');
  });
});

describe('guessColumnType: floats', () => {
  it('uses Float32 up to 7 significant digits, Float64 beyond', () => {
    expect(t('1.5', '-0.25', '.5', '3.')).toBe('Float32');
    expect(t('1234.567')).toBe('Float32');
    expect(t('40.712776')).toBe('Float64');
    expect(t('0.000001234')).toBe('Float32');
    expect(t('1.50000000')).toBe('Float32');
  });

  it('handles exponents and range', () => {
    expect(t('1e5', '2.5E-3')).toBe('Float32');
    expect(t('1e300')).toBe('Float64');
    expect(t('1e-40')).toBe('Float64');
  });

  it('widens integers mixed with decimals', () => {
    expect(t('1', '2.5')).toBe('Float32');
    expect(t('16777217', '0.5')).toBe('Float64');
    expect(t('3000000000', '0.5')).toBe('Float64');
  });

  it('treats NaN, inf and localized numbers as text', () => {
    expect(t('NaN')).toBe('String');
    expect(t('inf')).toBe('String');
    expect(t('1,5')).toBe('String');
    expect(t('1.2.3')).toBe('String');
  });
});

describe('guessColumnType: dates and times', () => {
  it('recognises Date and DateTime', () => {
    expect(t('2024-01-23', '2023-12-31')).toBe('Date');
    expect(t('2024-01-23 10:30:00')).toBe('DateTime');
    expect(t('2024-01-23T10:30:00')).toBe('DateTime');
    expect(t('2024-01-23T10:30:00Z')).toBe('DateTime');
    expect(t('2024-01-23T10:30:00+02:00', '2024-01-23T10:30:00-0530')).toBe('DateTime');
  });

  it('uses DateTime64 for fractional seconds by the longest fraction', () => {
    expect(t('2024-01-23T10:30:00.123Z')).toBe('DateTime64(3)');
    expect(t('2024-01-23 10:30:00.1')).toBe('DateTime64(3)');
    expect(t('2024-01-23T10:30:00.123456')).toBe('DateTime64(6)');
    expect(t('2024-01-23T10:30:00.123456789Z')).toBe('DateTime64(9)');
    expect(t('2024-01-23 10:30:00', '2024-01-23T10:30:00.123Z')).toBe('DateTime64(3)');
  });

  it('widens dates mixed with date-times', () => {
    expect(t('2024-01-23', '2024-01-23 10:30:00')).toBe('DateTime');
  });

  it('validates calendar fields', () => {
    expect(t('2024-02-30')).toBe('String');
    expect(t('2023-02-29')).toBe('String');
    expect(t('2024-02-29')).toBe('Date');
    expect(t('2024-13-01')).toBe('String');
    expect(t('2024-01-23 24:00:00')).toBe('String');
    expect(t('2024-01-23 10:60:00')).toBe('String');
    expect(t('2024/01/23')).toBe('String');
    expect(t('2024-01-23 10:30')).toBe('String');
  });

  it('widens out-of-range years and gives up outside 1900..2299', () => {
    expect(t('1965-03-02')).toBe('Date32');
    expect(t('2200-01-01')).toBe('Date32');
    expect(t('1969-12-31 23:59:59')).toBe('DateTime64(0)');
    expect(t('1969-12-31 23:59:59.5')).toBe('DateTime64(3)');
    expect(t('1899-12-31')).toBe('String');
  });

  it('exposes the matcher', () => {
    expect(matchTemporal('2024-01-23')).toEqual({ kind: 'date', year: 2024 });
    expect(matchTemporal('2024-01-23T10:30:00.12Z')).toEqual({ kind: 'datetime', year: 2024, precision: 2 });
    expect(matchTemporal('hello world')).toBeNull();
  });
});

describe('guessColumnType: mixes and nulls', () => {
  it('gives String for incompatible mixes', () => {
    expect(t('1', 'a')).toBe('String');
    expect(t('1', '2024-01-01')).toBe('String');
    expect(t('2024-01-01', 'tomorrow')).toBe('String');
    expect(t('true', 'false')).toBe('String');
  });

  it('marks empty, \\N and null as nullable', () => {
    expect(guessColumnType(['1', '', '70000'])).toEqual({ type: 'Nullable(Int32)', nullable: true });
    expect(t('\\N', '2024-01-01')).toBe('Nullable(Date)');
    expect(t(null, 'x')).toBe('Nullable(String)');
    expect(guessColumnType(['1', '2'])).toEqual({ type: 'Int16', nullable: false });
  });

  it('gives Nullable(String) when there are no values', () => {
    expect(guessColumnType(['', '\\N', null])).toEqual({ type: 'Nullable(String)', nullable: true });
    expect(guessColumnType([])).toEqual({ type: 'Nullable(String)', nullable: true });
  });

  it('does not treat NULL words or spaces as null', () => {
    expect(isNullToken('NULL')).toBe(false);
    expect(t(' 1')).toBe('String');
    expect(t('NULL', '1')).toBe('String');
  });
});

describe('column names', () => {
  it('normalises to identifiers', () => {
    expect(normalizeColumnName('user_id')).toBe('user_id');
    expect(normalizeColumnName('Price (USD)')).toBe('Price_USD');
    expect(normalizeColumnName(' my key ')).toBe('my_key');
    expect(normalizeColumnName('año')).toBe('ano');
    expect(normalizeColumnName('1st')).toBe('_1st');
    expect(normalizeColumnName('_id')).toBe('_id');
    expect(normalizeColumnName('a.b-c')).toBe('a_b_c');
    expect(normalizeColumnName('index')).toBe('index_');
    expect(normalizeColumnName('€')).toBe('');
  });

  it('deduplicates', () => {
    expect(dedupeNames(['a', 'b', 'a', 'a'])).toEqual(['a', 'b', 'a_1', 'a_2']);
    expect(dedupeNames(['a', 'a', 'a_1'])).toEqual(['a', 'a_2', 'a_1']);
  });

  it('names positional columns column_00, column_01, …', () => {
    expect(positionalColumnName(0)).toBe('column_00');
    expect(positionalColumnName(7)).toBe('column_07');
    expect(positionalColumnName(123)).toBe('column_123');
  });
});

describe('guessCsvSchema', () => {
  it('types columns and names them from the header', () => {
    const cols = guessCsvSchema(
      ['id', 'Created At', 'amount', 'note', 'id'],
      [
        ['1', '2024-01-01 10:00:00', '1.5', 'x', '9'],
        ['2', '2024-01-02 10:00:00', '', 'y', '10'],
      ],
    );
    expect(cols.map((c) => [c.name, c.type, c.nullable])).toEqual([
      ['id', 'Int16', false],
      ['Created_At', 'DateTime', false],
      ['amount', 'Nullable(Float32)', true],
      ['note', 'String', false],
      ['id_1', 'Int16', false],
    ]);
    expect(cols[0]).toEqual({ name: 'id', type: 'Int16', nullable: false, defaultValue: null, codec: null, jsonpath: null });
  });

  it('uses positional names without a header and for empty header cells', () => {
    expect(
      guessCsvSchema(null, [
        ['a', '1'],
        ['b', '2'],
      ]).map((c) => c.name),
    ).toEqual(['column_00', 'column_01']);
    expect(guessCsvSchema(['', '$$'], [['a', '1']]).map((c) => c.name)).toEqual(['column_00', 'column_01']);
  });

  it('types only rows of the expected width', () => {
    const cols = guessCsvSchema(null, [['1', '2'], ['3', '4'], ['x'], ['5', '6', '7']]);
    expect(cols.map((c) => c.type)).toEqual(['Int16', 'Int16']);
  });

  it('makes every column String without type guessing', () => {
    const cols = guessCsvSchema(['a'], [['1']], { typeGuessing: false });
    expect(cols.map((c) => [c.type, c.nullable])).toEqual([['String', false]]);
  });
});

const col = (name: string, type: string): Column => ({
  name,
  type,
  nullable: type.startsWith('Nullable('),
  defaultValue: null,
  codec: null,
  jsonpath: null,
});

describe('defaultSortingKey', () => {
  it('partitions by year of the first date column and sorts by it plus 3 String/Int columns', () => {
    const cols = [
      col('v', 'Float32'),
      col('user', 'String'),
      col('ts', 'DateTime'),
      col('n', 'Int32'),
      col('opt', 'Nullable(String)'),
      col('a', 'String'),
      col('b', 'String'),
      col('d2', 'Date'),
    ];
    expect(defaultSortingKey(cols)).toEqual({ partition_key: 'toYear(ts)', sorting_key: 'ts, user, n, a' });
  });

  it('accepts Date, Date32, DateTime64 but not Nullable dates', () => {
    expect(defaultSortingKey([col('d', 'Nullable(Date)'), col('e', 'DateTime64(3)')])).toEqual({
      partition_key: 'toYear(e)',
      sorting_key: 'e',
    });
    expect(defaultSortingKey([col('d', 'Date32')]).partition_key).toBe('toYear(d)');
  });

  it('sorts by tuple() without a usable date column', () => {
    expect(defaultSortingKey([col('a', 'String'), col('n', 'Int16')])).toEqual({ sorting_key: 'tuple()' });
    expect(defaultSortingKey([])).toEqual({ sorting_key: 'tuple()' });
  });

  it('quotes names that are not identifiers', () => {
    expect(defaultSortingKey([col('my date', 'Date')])).toEqual({ partition_key: 'toYear(`my date`)', sorting_key: '`my date`' });
  });
});

const byPath = (objs: unknown[]) => Object.fromEntries(inferJsonColumns(objs).map((c) => [c.path, c]));

describe('inferJsonColumns', () => {
  it('infers flat scalar columns in first-seen order', () => {
    const cols = inferJsonColumns([
      { id: 1, name: 'a', price: 1.5, ok: true, ts: '2024-01-23T10:30:00.123Z' },
      { id: 70000, name: 'b', price: 2, ok: false, ts: '2024-01-23T10:30:01Z' },
    ]);
    expect(cols).toEqual([
      { path: '$.id', name: 'id', recommended_type: 'Int32', present_pct: 1 },
      { path: '$.name', name: 'name', recommended_type: 'String', present_pct: 1 },
      { path: '$.price', name: 'price', recommended_type: 'Float32', present_pct: 1 },
      { path: '$.ok', name: 'ok', recommended_type: 'UInt8', present_pct: 1 },
      { path: '$.ts', name: 'ts', recommended_type: 'DateTime64(3)', present_pct: 1 },
    ]);
  });

  it('flattens nested objects', () => {
    const cols = inferJsonColumns([{ a: { b: 1, c: { d: 'x' } } }, { a: { b: 2 } }]);
    expect(cols).toEqual([
      { path: '$.a.b', name: 'a_b', recommended_type: 'Int16', present_pct: 1 },
      { path: '$.a.c.d', name: 'a_c_d', recommended_type: 'Nullable(String)', present_pct: 0.5 },
    ]);
  });

  it('makes missing and null values Nullable with present_pct < 1', () => {
    const c = byPath([{ a: 1, b: 'x' }, { a: null }, {}, { a: 3, b: 'y' }]);
    expect(c['$.a']).toMatchObject({ recommended_type: 'Nullable(Int16)', present_pct: 0.5 });
    expect(c['$.b']).toMatchObject({ recommended_type: 'Nullable(String)', present_pct: 0.5 });
    expect(byPath([{ z: null }])['$.z']).toMatchObject({ recommended_type: 'Nullable(String)', present_pct: 0 });
  });

  it('infers arrays of scalars as Array(T) with [:] paths, never Nullable', () => {
    const c = byPath([
      { tags: ['a', 'b'], n: [1, 2], f: [1.5], d: ['2024-01-01'] },
      { tags: [], n: [40000] },
    ]);
    expect(c['$.tags[:]']).toEqual({ path: '$.tags[:]', name: 'tags', recommended_type: 'Array(String)', present_pct: 1 });
    expect(c['$.n[:]']).toMatchObject({ recommended_type: 'Array(Int32)' });
    expect(c['$.f[:]']).toMatchObject({ recommended_type: 'Array(Float32)', present_pct: 0.5 });
    expect(c['$.d[:]']).toMatchObject({ recommended_type: 'Array(Date)' });
  });

  it('handles empty arrays, null elements and nested array paths', () => {
    const c = byPath([{ e: [], x: [1, null], o: { arr: [true] } }]);
    expect(c['$.e[:]']).toMatchObject({ recommended_type: 'Array(String)' });
    expect(c['$.x[:]']).toMatchObject({ recommended_type: 'Array(Nullable(Int16))' });
    expect(c['$.o.arr[:]']).toMatchObject({ name: 'o_arr', recommended_type: 'Array(UInt8)' });
  });

  it('keeps arrays of objects, nested arrays and mixed arrays as JSON String', () => {
    const c = byPath([{ items: [{ id: 1 }], m: [[1, 2]], mix: [1, 'a'] }, { mix: [true] }]);
    expect(c['$.items']).toEqual({ path: '$.items', name: 'items', recommended_type: 'Nullable(String)', present_pct: 0.5 });
    expect(c['$.m']).toMatchObject({ recommended_type: 'Nullable(String)' });
    expect(c['$.mix']).toMatchObject({ recommended_type: 'String', present_pct: 1 });
  });

  it('resolves conflicting types to String', () => {
    const c = byPath([
      { a: 1, b: 'x', c: true, d: '2024-01-01', e: 1, f: { g: 1 }, h: [1] },
      { a: 'one', b: 2, c: 1, d: 'soon', e: 2.5, f: 'flat', h: 2 },
    ]);
    expect(c['$.a'].recommended_type).toBe('String');
    expect(c['$.b'].recommended_type).toBe('String');
    expect(c['$.c'].recommended_type).toBe('String');
    expect(c['$.d'].recommended_type).toBe('String');
    expect(c['$.e'].recommended_type).toBe('Float32');
    expect(c['$.f'].recommended_type).toBe('String');
    expect(c['$.f.g']).toBeUndefined();
    expect(c['$.h'].recommended_type).toBe('String');
  });

  it('keeps numeric-looking strings as String and sizes numbers', () => {
    const c = byPath([{ s: '1704413030', i: 2 ** 40, big: 2 ** 64, f: 40.712776, neg: -32769 }]);
    expect(c['$.s'].recommended_type).toBe('String');
    expect(c['$.i'].recommended_type).toBe('Int64');
    expect(c['$.big'].recommended_type).toBe('Float64');
    expect(c['$.f'].recommended_type).toBe('Float64');
    expect(c['$.neg'].recommended_type).toBe('Int32');
  });

  it('keeps exact odd keys in the path and normalises names', () => {
    const cols = inferJsonColumns([{ 'my key': 1, 'a.b': 2, a: { b: 3 }, "it's": 'x', '1x': 'y', nested: { 'k-1': true } }]);
    expect(cols.map((c) => [c.path, c.name])).toEqual([
      ["$.['my key']", 'my_key'],
      ["$.['a.b']", 'a_b'],
      ['$.a.b', 'a_b_1'],
      ["$.['it\\'s']", 'it_s'],
      ["$.['1x']", '_1x'],
      ["$.nested.['k-1']", 'nested_k_1'],
    ]);
    expect(jsonPathSegment('ok_key')).toBe('.ok_key');
  });

  it('ignores non-object rows and handles empty input', () => {
    expect(inferJsonColumns([])).toEqual([]);
    expect(inferJsonColumns([1, 'x', null, [1]])).toEqual([]);
    expect(inferJsonColumns([{ a: 1 }, 5]).map((c) => c.present_pct)).toEqual([1]);
    expect(inferJsonColumns([{ e: {} }])).toEqual([]);
  });
});

describe('jsonColumnsToSchema / jsonColumnsToColumns', () => {
  const cols = inferJsonColumns([{ a: { b: 1 }, tags: ['x'], 'my key': 's' }, { tags: [] }]);

  it('renders a Tinybird schema', () => {
    expect(jsonColumnsToSchema(cols)).toBe(
      "a_b Nullable(Int16) `json:$.a.b`, tags Array(String) `json:$.tags[:]`, my_key Nullable(String) `json:$.['my key']`",
    );
  });

  it('builds domain columns', () => {
    expect(jsonColumnsToColumns(cols)).toEqual([
      { name: 'a_b', type: 'Nullable(Int16)', nullable: true, defaultValue: null, codec: null, jsonpath: '$.a.b' },
      { name: 'tags', type: 'Array(String)', nullable: false, defaultValue: null, codec: null, jsonpath: '$.tags[:]' },
      { name: 'my_key', type: 'Nullable(String)', nullable: true, defaultValue: null, codec: null, jsonpath: "$.['my key']" },
    ]);
  });
});

describe('parseNdjsonSample', () => {
  it('parses lines, counts invalid ones, skips a cut last line', () => {
    expect(parseNdjsonSample('{"a":1}\nnope\n\n{"a":2}\r\n{"a":')).toEqual({ objects: [{ a: 1 }, { a: 2 }], invalid: 1 });
  });

  it('keeps a complete last line without newline (a single-object body)', () => {
    expect(parseNdjsonSample('{"a":1}')).toEqual({ objects: [{ a: 1 }], invalid: 0 });
    expect(parseNdjsonSample('\uFEFF{"a":1}\n')).toEqual({ objects: [{ a: 1 }], invalid: 0 });
  });

  it('counts non-object JSON as invalid and stops at maxRows', () => {
    expect(parseNdjsonSample('[1]\n"x"\n{"a":1}\n')).toEqual({ objects: [{ a: 1 }], invalid: 2 });
    const text = Array.from({ length: 50 }, (_, i) => `{"i":${i}}`).join('\n');
    expect(parseNdjsonSample(text, 10).objects).toHaveLength(10);
    expect(parseNdjsonSample('')).toEqual({ objects: [], invalid: 0 });
  });
});
