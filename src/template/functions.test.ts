import { describe, expect, it } from 'vitest';
import { render } from './index.js';
import { custom, err, errObj, r, SYN, t } from './test-helpers.js';

const RANGES: [string, bigint, bigint][] = [
  ['Int8', -(2n ** 7n), 2n ** 7n - 1n],
  ['Int16', -(2n ** 15n), 2n ** 15n - 1n],
  ['Int32', -(2n ** 31n), 2n ** 31n - 1n],
  ['Int64', -(2n ** 63n), 2n ** 63n - 1n],
  ['Int128', -(2n ** 127n), 2n ** 127n - 1n],
  ['Int256', -(2n ** 255n), 2n ** 255n - 1n],
  ['UInt8', 0n, 2n ** 8n - 1n],
  ['UInt16', 0n, 2n ** 16n - 1n],
  ['UInt32', 0n, 2n ** 32n - 1n],
  ['UInt64', 0n, 2n ** 64n - 1n],
  ['UInt128', 0n, 2n ** 128n - 1n],
  ['UInt256', 0n, 2n ** 256n - 1n],
];

describe('integer type functions', () => {
  it.each(RANGES)('%s accepts its whole range and rejects one past each end', (type, lo, hi) => {
    expect(r(`{{ ${type}(x) }}`, { x: String(lo) })).toBe(`to${type}('${lo}')`);
    expect(r(`{{ ${type}(x) }}`, { x: String(hi) })).toBe(`to${type}('${hi}')`);
    expect(err(`{{ ${type}(x) }}`, { x: String(hi + 1n) })).toBe(`${SYN}Error validating '${hi + 1n}' to type ${type}`);
    expect(err(`{{ ${type}(x) }}`, { x: String(lo - 1n) })).toBe(`${SYN}Error validating '${lo - 1n}' to type ${type}`);
  });

  it('validates the digits: sign allowed on signed types only (and UInt128/256, as Tinybird)', () => {
    expect(r('{{ Int32(x) }}', { x: '+42' })).toBe("toInt32('42')");
    expect(r('{{ Int32(x) }}', { x: '007' })).toBe("toInt32('7')");
    expect(err('{{ UInt32(x) }}', { x: '+1' })).toBe(`${SYN}Error validating '+1' to type UInt32`);
    expect(r('{{ UInt128(x) }}', { x: '+1' })).toBe("toUInt128('1')");
    expect(err('{{ Int32(x) }}', { x: '1.5' })).toBe(`${SYN}Error validating '1.5' to type Int32`);
    expect(err('{{ Int32(x) }}', { x: ' 1' })).toBe(`${SYN}Error validating ' 1' to type Int32`);
    expect(err('{{ Int32(x) }}', { x: '' })).toBe(`${SYN}Error validating '' to type Int32`);
    expect(err('{{ Int32(x) }}', { x: 'abc' })).toBe(`${SYN}Error validating 'abc' to type Int32`);
    expect(err('{{ Int8(x) }}', { x: '1e2' })).toBe(`${SYN}Error validating '1e2' to type Int8`);
  });

  it('accepts JSON numbers and uses defaults', () => {
    expect(r('{{ Int64(x) }}', { x: 12 })).toBe("toInt64('12')");
    expect(r('{{ Int32(x, 5) }}')).toBe("toInt32('5')");
    expect(r('{{ Int32(x, default=-3) }}')).toBe("toInt32('-3')");
    expect(err('{{ Int32(x, 1.5) }}')).toBe(`${SYN}Error validating '1.5' to type Int32`);
  });

  it('Int and Integer render a plain integer validated as Int32', () => {
    expect(r('{{ Int(x) }}', { x: '42' })).toBe('42');
    expect(r('{{ Integer(x, 3) }}')).toBe('3');
    expect(err('{{ Int(x) }}', { x: '2147483648' })).toBe(`${SYN}Error validating '2147483648' to type Int32`);
  });

  it('lets a typed integer take part in arithmetic as a plain int', () => {
    expect(r('{% set n = Int32(x) + 1 %}{{ n }}', { x: '4' })).toBe('5');
    expect(r('{% if Int32(x, 0) > 5 %}big{% end %}', { x: '6' })).toBe('big');
  });
});

describe('Float32 / Float64', () => {
  it.each([
    ['1', "toFloat32('1.0')"],
    ['-1', "toFloat32('-1.0')"],
    ['1.5', "toFloat32('1.5')"],
    ['.5', "toFloat32('0.5')"],
    ['1e3', "toFloat32('1000.0')"],
    ['1e16', "toFloat32('1e+16')"],
    ['0.0001', "toFloat32('0.0001')"],
    ['0.00001', "toFloat32('1e-05')"],
    ['inf', "toFloat32('inf')"],
    ['-Infinity', "toFloat32('-inf')"],
    ['nan', "toFloat32('nan')"],
  ])('Float32(%s) → %s', (v, expected) => {
    expect(r('{{ Float32(x) }}', { x: v })).toBe(expected);
  });

  it('prints Python floats for numbers and rejects underscores and words', () => {
    expect(r('{{ Float64(x) }}', { x: 0.1 })).toBe("toFloat64('0.1')");
    expect(r('{{ Float64(x) }}', { x: 3 })).toBe("toFloat64('3.0')");
    expect(r('{{ Float64(x, 0.25) }}')).toBe("toFloat64('0.25')");
    expect(err('{{ Float64(x) }}', { x: '1_000' })).toBe(`${SYN}Error validating '1_000' to type Float64`);
    expect(err('{{ Float32(x) }}', { x: 'abc' })).toBe(`${SYN}Error validating 'abc' to type Float32`);
  });
});

describe('Boolean', () => {
  it.each([
    ['1', '1'],
    ['true', '1'],
    ['TRUE', '1'],
    ['yes', '1'],
    ['anything', '1'],
    ['0', '0'],
    ['false', '0'],
    ['False', '0'],
    ['FALSE', '0'],
    ['', '0'],
  ])('Boolean(%j) → %s', (v, expected) => {
    expect(r('{{ Boolean(x) }}', { x: v })).toBe(expected);
  });

  it('handles JSON booleans, missing values and defaults; bool() is Boolean', () => {
    expect(r('{{ Boolean(x) }}', { x: true })).toBe('1');
    expect(r('{{ Boolean(x) }}', { x: false })).toBe('0');
    expect(r('{{ Boolean(x) }}')).toBe('0');
    expect(r('{{ Boolean(x, True) }}')).toBe('1');
    expect(r("{{ Boolean(x, 'TRUE') }}")).toBe('1');
    expect(r("{{ Boolean(x, 'FALSE') }}")).toBe('0');
    expect(t('{{ Boolean(x, True) }}')).toBe('1');
    expect(r("{% if bool('false') %}t{% else %}f{% end %}")).toBe('f');
    expect(r("{{ Boolean(x, False, description='flag') }}", { x: '1' })).toBe('1');
  });
});

describe('String, Date, DateTime, DateTime64', () => {
  it('String quotes and escapes; default and required', () => {
    expect(r('{{ String(x) }}', { x: "it's" })).toBe("'it\\'s'");
    expect(r("{{ String(x, 'd') }}")).toBe("'d'");
    expect(r('{{ String(x) }}', { x: ['a', 'b'] })).toBe("'[\\'a\\', \\'b\\']'");
    expect(err('{{ String(x) }}')).toBe(
      `${SYN}Required parameter is not defined. Check the parameters x. Please provide a value or set a default value in the pipe code.`,
    );
  });

  it('Date accepts YYYY-MM-DD only', () => {
    expect(r('{{ Date(d) }}', { d: '2024-01-31' })).toBe("'2024-01-31'");
    expect(r("{{ Date(d, '2024-01-01') }}")).toBe("'2024-01-01'");
    for (const bad of ['2024-1-01', '2024/01/01', '2024-01-01 00:00:00', 'x', ''])
      expect(err('{{ Date(d) }}', { d: bad })).toBe(`${SYN}Error validating '${bad}' to type Date`);
  });

  it('DateTime accepts both layouts and anything after the seconds', () => {
    expect(r('{{ DateTime(d) }}', { d: '2024-01-31 10:20:30' })).toBe("'2024-01-31 10:20:30'");
    expect(r('{{ DateTime(d) }}', { d: '2024-01-31T10:20:30Z' })).toBe("'2024-01-31T10:20:30Z'");
    expect(r('{{ DateTime(d) }}', { d: '31/01/2024 1:2:3' })).toBe("'31/01/2024 1:2:3'");
    expect(r('{{ DateTime(d) }}', { d: "2024-01-31 10:20:30' OR 1=1" })).toBe("'2024-01-31 10:20:30\\' OR 1=1'");
    for (const bad of ['2024-01-31', '2024-01-31 10:20', 'now()'])
      expect(err('{{ DateTime(d) }}', { d: bad })).toBe(`${SYN}Error validating '${bad}' to type DateTime`);
  });

  it('DateTime64 needs the milliseconds', () => {
    expect(r('{{ DateTime64(d) }}', { d: '2024-01-31 10:20:30.123' })).toBe("'2024-01-31 10:20:30.123'");
    expect(r("{{ DateTime64(d, '2020-09-09 10:10:10.000') }}")).toBe("'2020-09-09 10:10:10.000'");
    expect(err('{{ DateTime64(d) }}', { d: '2024-01-31 10:20:30' })).toBe(`${SYN}Error validating '2024-01-31 10:20:30' to type DateTime64`);
  });
});

describe('defined=False and missing values', () => {
  it('returns None with defined=False, which sql_and skips', () => {
    expect(r('{{ sql_and(a=String(a, defined=False), b=Int32(b, defined=False)) }}', { b: '2' })).toBe("b = toInt32('2')");
  });

  it('lists every parameter without a default in the required error', () => {
    expect(err("{{ String(test) }} {{ String(category, 'shirts') }} {{ Int32(color) }}")).toBe(
      `${SYN}Required parameter is not defined. Check the parameters test and color. Please provide a value or set a default value in the pipe code.`,
    );
    expect(err('{{ String(a) }}{{ Int8(b) }}{{ Date(c) }}')).toBe(
      `${SYN}Required parameter is not defined. Check the parameters a, b and c. Please provide a value or set a default value in the pipe code.`,
    );
    expect(errObj('{{ String(a) }}').documentation).toBe('https://docs.tinybird.co/cli/advanced-templates.html');
  });

  it('reports a bare missing variable by its expression text', () => {
    expect(err('{{ test }}')).toBe(`${SYN}expression "test" evaluated to null`);
    expect(err('{{ testisasuperlongthingandwedontwanttoreturnthefullthing }}')).toBe(`${SYN}expression "testisasuperlongthin..." evaluated to null`);
  });
});

describe('Array', () => {
  it('splits comma lists, string[] and JSON lists', () => {
    expect(r('{{ Array(x) }}', { x: 'a,b,c' })).toBe("['a','b','c']");
    expect(r("{{ Array(x, 'String') }}", { x: ['a', "b'c"] })).toBe("['a','b\\'c']");
    expect(r("{{ Array(x, 'Int32') }}", { x: '1,2,3' })).toBe('[1,2,3]');
    expect(r("{{ Array(x, 'Int32') }}", { x: ['1', '2'] })).toBe('[1,2]');
    expect(r("{{ Array(x, 'Int32') }}", { x: [1, 2] })).toBe('[1,2]');
    expect(r("{{ Array(x, 'UInt8') }}", { x: '255' })).toBe('[255]');
    expect(r("{{ Array(x, 'Float32') }}", { x: '1,2.5' })).toBe('[1.0,2.5]');
    expect(r("{{ Array(x, 'Date') }}", { x: '2024-01-01,2024-01-02' })).toBe("['2024-01-01','2024-01-02']");
    expect(r("{{ Array(x, 'DateTime') }}", { x: '2024-01-01 00:00:00' })).toBe("['2024-01-01 00:00:00']");
    expect(r("{{ Array(x, 'Boolean') }}", { x: 'true,0,false' })).toBe('[1,0,0]');
    expect(r("{{ Array(x, 'Int') }}", { x: '4' })).toBe('[4]');
  });

  it('uses the default (string or list) and honours defined=False', () => {
    expect(r("{{ Array(x, 'String', 'pre,pro') }}")).toBe("['pre','pro']");
    expect(r("{{ Array(x, 'Int32', default=[1, 2]) }}")).toBe('[1,2]');
    expect(r("{{ Array(x, 'String', '') }}")).toBe("['']");
    expect(r("{% if Array(x, 'Int32', defined=False) is None %}none{% end %}")).toBe('none');
    expect(err("{{ Array(x, 'Int32') }}")).toBe(
      `${SYN}Required parameter is not defined. Check the parameters x. Please provide a value or set a default value in the pipe code.`,
    );
  });

  it('validates each element and names it', () => {
    expect(err("{{ Array(x, 'Int32') }}", { x: '1,2,x' })).toBe(`${SYN}Error validating [1,2,x][2] (x) to type Int32`);
    expect(err("{{ Array(x, 'Int32') }}", { x: '1,,3' })).toBe(`${SYN}Error validating [1,,3][1] (empty string) to type Int32`);
    expect(err("{{ Array(x, 'Int32', '') }}")).toBe(`${SYN}Error validating [][0] (empty string) to type Int32`);
    expect(err("{{ Array(x, 'Float32') }}", { x: '1,2,3,4, null' })).toBe(`${SYN}Error validating [1,2,3,4, null][4] ( null) to type Float32`);
    expect(err("{{ Array(x, 'UInt8') }}", { x: '256' })).toBe(`${SYN}Error validating [256][0] (256) to type UInt8`);
    expect(err("{{ Array(x, 'Int32') }}", { x: ['1', 'x'] })).toBe(`${SYN}Error validating [['1', 'x']][1] (x) to type Int32`);
    expect(err("{{ Array(x, 'Date') }}", { x: '2024-13' })).toBe(`${SYN}Error validating [2024-13][0] (2024-13) to type Date`);
  });

  it('turns Array-typed parameters into lists for the rest of the template', () => {
    expect(r("{{ Array(ids, 'Int32') }} {% for i in ids %}<{{i}}>{% end %}", { ids: '1,2' })).toBe('[1,2] <1><2>');
    expect(r("{% set s = ','.join(test) %}{{ Array(test, 'String') }} {{ s }}", { test: '1,2' })).toBe("['1','2'] '1,2'");
    expect(err("{{ Array(ids, 'Int32') }} {{ ids }}", { ids: '1,x' })).toBe(`${SYN}Error validating [1,x][1] (x) to type Int32`);
  });

  it('rejects a non-list value', () => {
    expect(err('{{ Array(x) }}', { x: 5 })).toBe(`${SYN}transform type function Array is not well defined`);
  });
});

describe('JSON', () => {
  it('parses strings, accepts parsed values, and iterates', () => {
    expect(r("{% for kv in JSON(p) %} OR d = {{kv['dp']}}{% end %}", { p: '[{"dp":"Design"},{"dp":"Marketing"}]' })).toBe(
      " OR d = 'Design' OR d = 'Marketing'",
    );
    expect(r("{% for kv in JSON(p) %}{{kv['dp']}}{% end %}", { p: [{ dp: 'x' }] })).toBe("'x'");
    expect(r("{{ JSON(p)['a'] }}", { p: { a: 5 } })).toBe('5');
    expect(r("{{ JSON(p, '[1]') }}")).toBe('[1]');
    expect(r('{{ JSON(p) }}')).toBe('{}');
    expect(r('{{ JSON(p) }}', { p: '{"n": 12345678901234567890, "f": 1.0, "t": true, "z": null}' })).toBe(
      "{'n': 12345678901234567890, 'f': 1.0, 't': True, 'z': None}",
    );
  });

  it('reports parse errors like Python', () => {
    expect(err('{{ JSON(p) }}', { p: '{"a": }' })).toBe(`${SYN}Error parsing JSON: '{"a": }' - Expecting value: line 1 column 7 (char 6)`);
    expect(err('{{ JSON(p) }}', { p: '{"aaaaaaaaaaaaaaaa": 1' })).toBe(
      `${SYN}Error parsing JSON: '{"aaaaaaaaaaaaaa...' - Expecting ',' delimiter: line 1 column 23 (char 22)`,
    );
    expect(err("{{ JSON(p, '') }}")).toBe(`${SYN}Error parsing JSON: '' - Expecting value: line 1 column 1 (char 0)`);
    expect(err('{{ JSON(p) }}', { p: '{a: 1}' })).toBe(
      `${SYN}Error parsing JSON: '{a: 1}' - Expecting property name enclosed in double quotes: line 1 column 2 (char 1)`,
    );
    expect(err('{{ JSON(p) }}', { p: '[1] x' })).toBe(`${SYN}Error parsing JSON: '[1] x' - Extra data: line 1 column 5 (char 4)`);
    expect(err('{% for kv in JSON(p) %}{% end %}', {}, { testMode: true })).toBe(
      `${SYN}Error parsing JSON: '__no_value__' - Expecting value: line 1 column 1 (char 0)`,
    );
  });
});

describe('column, columns, symbol, table', () => {
  it('column backquotes and splits on dots', () => {
    expect(r('{{ column(c) }}', { c: 'foo' })).toBe('`foo`');
    expect(r('{{ column(c) }}', { c: '"foo"' })).toBe('`foo`');
    expect(r('{{ column(c) }}', { c: 'json.a.b' })).toBe('`json`.`a`.`b`');
    expect(r("{{ column(c, 'dflt') }}")).toBe('`dflt`');
    expect(r('{{ column(c) }}', { c: 'a`) OR (1' })).toBe('`a\\`) OR (1`');
    expect(err('{{ column(c) }}')).toBe(`${SYN}Missing column() default value, use \`column(column_name, 'default_column_name')\``);
    expect(errObj('{{ column(c) }}').documentation).toBe('https://docs.tinybird.co/cli/advanced-templates.html#column');
  });

  it('columns takes a comma list, an optional aggregate, and refuses arrays', () => {
    expect(r("{{ columns(c, 'a,b,c') }}")).toBe('`a`,`b`,`c`');
    expect(r("{{ columns(c, 'a,b,c') }}", { c: 'foo' })).toBe('`foo`');
    expect(r("{{ columns('a, b') }}")).toBe('`a`,`b`');
    expect(r("{{ columns(c, 'a', 'sum') }}", { c: 'x,y' })).toBe('sum(`x`) as x,sum(`y`) as y');
    expect(r("{{ columns(c, 'a', 'sum') }}", { c: 'x) FROM t --' })).toBe('sum(`x) FROM t --`) as `x) FROM t --`');
    expect(err('{{ columns(c) }}')).toBe(`${SYN}Missing columns() default value, use \`columns(column_names, 'default_column_name')\``);
    expect(err("{{ columns(c, 'a') }}", { c: ['a', 'b'] })).toBe(`${SYN}The 'columns' function expects a String not an Array`);
    expect(err("{{ columns(c, 'a', f) }}", { c: 'x', f: 'sum(1)) --' })).toBe(`${SYN}Invalid function name in columns(): 'sum(1)) --'`);
  });

  it('symbol quotes an identifier (Symbol and Column too)', () => {
    expect(r('{{ symbol(x) }}', { x: 'table-name' })).toBe('`table-name`');
    expect(r('{{ symbol(x) }}', { x: '"table-name"' })).toBe('`table-name`');
    expect(r(`{{ symbol(x, '"') }}`, { x: 'a"b' })).toBe('"ab"');
    expect(r('{% set a = Symbol(x) %}{% set b = Column(x) %}{{ a }} {{ b }}', { x: 'c' })).toBe('`c` `c`');
    expect(err('{{ Symbol(x) }}', { x: 'c' })).toBe(`${SYN}Invalid function name: Symbol`);
    expect(r("{{ symbol(split_to_array(attr, 'amount_net')[0] + '_intermediate') }}")).toBe('`amount_net_intermediate`');
    expect(err("{{ symbol(x, ')') }}", { x: 'c' })).toBe(`${SYN}symbol() quote must be '\`' or '"', got ')'`);
  });

  it('table writes a bare name and records it', () => {
    const res = render("%SELECT * FROM {{ table(t) }} JOIN {{ TABLE('other') }} JOIN {{ table(t) }}", { t: 'events' });
    expect(res.sql).toBe('SELECT * FROM events JOIN other JOIN events');
    expect(res.tables).toEqual(['events', 'other']);
    expect(r('{{ table(t) }}', { t: '"events"' })).toBe('events');
    expect(r('{{ table(t) }}', { t: 'db.events' })).toBe('db.events');
    expect(err('{{ table(t) }}', { t: 'events WHERE 1' })).toBe(`${SYN}Invalid table name: 'events WHERE 1'`);
    expect(err('{{ table(t) }}', { t: 'events--' })).toBe(`${SYN}Invalid table name: 'events--'`);
  });
});

describe('defined, sql_and, split_to_array, enumerate_with_last', () => {
  it('defined is true for any provided value', () => {
    expect(r('{{ defined(x) }}', { x: '' })).toBe('True');
    expect(r('{{ defined(x) }}', { x: '0' })).toBe('True');
    expect(r('{{ defined(x) }}')).toBe('False');
    expect(r('{{ defined() }}')).toBe('False');
  });

  it.each([
    ['a', '=', "a = 'x'"],
    ['a__in', 'in', "a in ['x']"],
    ['a__not_in', 'not in', "a not in ['x']"],
    ['a__gt', '>', "a > 'x'"],
    ['a__lt', '<', "a < 'x'"],
    ['a__gte', '>=', "a >= 'x'"],
    ['a__lte', '<=', "a <= 'x'"],
  ])('sql_and(%s=...) uses %s', (key, _op, expected) => {
    const value = key.endsWith('in') ? 'Array(v)' : 'v';
    expect(r(`{{ sql_and(${key}=${value}) }}`, { v: 'x' })).toBe(expected);
  });

  it('sql_and joins with and, skips None, and refuses unknown suffixes', () => {
    expect(r('{{ sql_and(a=a, b=b) }}', { a: '1', b: '2' })).toBe("a = '1' and b = '2'");
    expect(r('{{ sql_and(a=a, b=b) }}', { b: '2' })).toBe("b = '2'");
    expect(r('{{ sql_and(a=a) }}')).toBe('');
    expect(r("{{ sql_and(a__in=Array(a, 'Int32', defined=False), d__gte=Date(d, defined=False)) }}", { a: '1,2', d: '2024-01-01' })).toBe(
      "a in [1,2] and d >= '2024-01-01'",
    );
    expect(r('{{ sql_and(tbl.col=1) }}'.replace('tbl.col', 'col'))).toBe('col = 1');
    expect(err('{{ sql_and(a__foo=1) }}')).toBe(`${SYN}operand foo not supported`);
    expect(errObj('{{ sql_and(a__foo=1) }}').documentation).toBe('https://docs.tinybird.co/cli/advanced-templates.html#sql_and');
    expect(err('{% set f = JSON(j) %}{{ sql_and(**f) }}', { j: '{"a = 1 or 1": 1}' })).toBe(`${SYN}Invalid column name in sql_and(): 'a = 1 or 1'`);
  });

  it('split_to_array strips items and takes a default and separator', () => {
    expect(r('{{ split_to_array(x) }}', { x: ' a, b ,c' })).toBe("['a', 'b', 'c']");
    expect(r("{{ split_to_array(x, '', '|') }}", { x: 'a|b' })).toBe("['a', 'b']");
    expect(r("{{ split_to_array(x, 'd1,d2') }}")).toBe("['d1', 'd2']");
    expect(r('{{ split_to_array(x) }}')).toBe("['']");
    expect(r('{{ split_to_array(x) }}', { x: ['a ', ' b'] })).toBe("['a', 'b']");
  });

  it('enumerate_with_last marks the last item', () => {
    expect(r('{% for last, x in enumerate_with_last(split_to_array(v)) %}{{x}}{% if not last %},{% end %}{% end %}', { v: 'a,b,c' })).toBe("'a','b','c'");
    expect(r('{% set l = [1, 2] %}{{ enumerate_with_last(l) }}')).toBe('[(False, 1), (True, 2)]');
    expect(r('{% set l = [] %}{{ enumerate_with_last(l) }}')).toBe('[]');
    // as in Tinybird, a literal list where a parameter name is expected is refused
    expect(err('{{ enumerate_with_last([1, 2]) }}')).toBe('"[1, 2]" can not be used as a variable name');
  });
});

describe('dates', () => {
  it.each([
    ["day_diff('2019-01-01', '2019-01-01')", '0'],
    ["day_diff('2019-01-02', '2019-01-01')", '1'],
    ["day_diff('2019-01-02', '2019-02-01')", '30'],
    ["date_diff_in_days('2019-02-01 20:00:00', '2019-01-02 20:00:00', date_format='%Y-%m-%d %H:%M:%S')", '30'],
    ["date_diff_in_days('2019-01-01', '2019/01/04', backup_date_format='%Y/%m/%d')", '3'],
    ["date_diff_in_days('2019-02-01T20:00:00z', '2019-02-15', '%Y-%m-%dT%H:%M:%Sz', backup_date_format='%Y-%m-%d')", '13'],
    ["date_diff_in_hours('2022-12-19T20:43:22Z', '2022-12-19T18:42:23Z', '%Y-%m-%dT%H:%M:%Sz')", '2'],
    ["date_diff_in_hours('2022-12-14 18:42:22', '2022-12-19 18:42:22')", '120'],
    ["date_diff_in_hours('2022-12-19T03:22:12.102Z', '2022-12-19', date_format='%Y-%m-%dT%H:%M:%S.%fz', backup_date_format='%Y-%m-%d')", '3'],
    ["date_diff_in_minutes('2022-12-14 18:42:22', '2022-12-19 18:42:22')", '7200'],
    ["date_diff_in_minutes('2022-12-19', '2022-12-19 00:01:00', backup_date_format='%Y-%m-%d')", '1'],
    ["date_diff_in_seconds('2022-12-19 18:42:22', '2022-12-19 18:43:22')", '60'],
    ["date_diff_in_seconds('2022-12-19T18:42:23.521Z', '2022-12-19T18:44:23.531Z', '%Y-%m-%dT%H:%M:%S.%fz')", '120'],
    ["date_diff_in_seconds('2022-12-19 18:42:23.521', '2022-12-19 18:42:24.521', '%Y-%m-%d %H:%M:%S.%f')", '1'],
  ])('%s = %s', (expr, expected) => {
    expect(r(`{{ ${expr} }}`)).toBe(expected);
  });

  it('returns None on error when asked, 0 (or the default) for placeholders', () => {
    expect(r("{% if date_diff_in_days('2019-01-01', '2019-00-02', none_if_error=True) is None %}none{% end %}")).toBe('none');
    expect(r("{% if date_diff_in_hours('2022-12-32 18:42:22', '2022-12-19 18:42:22', none_if_error=True) is None %}none{% end %}")).toBe('none');
    expect(t('{{ date_diff_in_seconds(a, b) }}')).toBe('0');
    expect(t('{{ date_diff_in_days(a, b, default=7) }}')).toBe('7');
  });

  it('reports invalid dates with the function name', () => {
    expect(err("{{ day_diff('2019-01-01', 'x') }}")).toBe(
      `${SYN}invalid date format in function \`day_diff\`, it must be ISO format date YYYY-MM-DD, e.g. 2018-09-26. For other fotmats, try \`date_diff_in_days\``,
    );
    expect(err("{{ date_diff_in_days('2019-01-01', '2019-02-30') }}")).toBe(
      `${SYN}invalid date format in function \`date_diff_in_days\`, it must be ISO format date YYYY-MM-DD, e.g. 2018-09-26`,
    );
    const dt = (f: string) =>
      `${SYN}invalid date_format in function \`${f}\`, defaults to YYYY-MM-DD hh:mm:ss. Or %Y-%m-%d %H:%M:%S [.ssssss]Z, e.g. ms: 2022-12-19T18:42:22.591Z s:2022-12-19T18:42:22Z`;
    expect(err("{{ date_diff_in_hours('x', 'y') }}")).toBe(dt('date_diff_in_hours'));
    expect(err("{{ date_diff_in_minutes('x', 'y') }}")).toBe(dt('date_diff_in_seconds'));
    expect(err("{{ date_diff_in_seconds('x', 'y') }}")).toBe(dt('date_diff_in_seconds'));
  });
});

describe('sql_unescape', () => {
  it('re-allows an escaped character', () => {
    expect(r("{{ sql_unescape(String(p), '%') }}", { p: 'raul_el_bueno_is_the_best_%' })).toBe("'raul_el_bueno_is_the_best_%'");
    expect(r("{{ sql_unescape(String(p), '$') }}", { p: 'testing%' })).toBe("'testing\\%'");
    expect(r('{{ sql_unescape(String(p)) }}', { p: 'testing"' })).toBe("'testing\"'");
    expect(r("{{ sql_unescape(String(p), '%') }}", { p: "50%'" })).toBe("'50%\\''");
  });

  it('never lets the value end its literal', () => {
    expect(err('{{ sql_unescape(String(p)) }}', { p: "a'b" })).toBe(`${SYN}sql_unescape() cannot unescape '': the value would break out of its string literal`);
    expect(err(`{{ sql_unescape(String(p), "'") }}`, { p: "a' OR 1=1 --" })).toBe(
      `${SYN}sql_unescape() cannot unescape "'": the value would break out of its string literal`,
    );
    expect(err("{{ sql_unescape(String(p), '\\\\') }}", { p: "\\'" })).toContain('cannot unescape');
  });
});

describe('error and custom_error', () => {
  it('error() answers 400 with the message (the code is ignored)', () => {
    const e = custom("{% if not defined(x) %}{{ error('x is required', 404) }}{% end %}");
    expect(e.status).toBe(400);
    expect(e.body).toEqual({ error: 'x is required' });
  });

  it('custom_error() answers with its code and body', () => {
    const e = custom("{{ custom_error({'error': 'nope', 'code': 7}, 403) }}");
    expect(e.status).toBe(403);
    expect(e.body).toEqual({ error: 'nope', code: 7 });
    expect(custom("{{ custom_error('plain') }}").body).toBe('plain');
    expect(custom("{{ custom_error('plain') }}").status).toBe(400);
  });

  it('text that only looks like a call is plain SQL', () => {
    expect(r('{% if not defined(test) %}error("This is an error"){% end %}')).toBe('error("This is an error")');
  });
});

describe('max_threads, cache_ttl, backend_hint, activate, disable', () => {
  it('max_threads sets the setting and renders a comment', () => {
    const res = render('%{{ max_threads(2) }} SELECT 1', {});
    expect(res.sql).toBe('-- max_threads 2\n SELECT 1');
    expect(res.maxThreads).toBe(2);
    expect(render('%{{ max_threads(n) }}', { n: '4' }).maxThreads).toBe(4);
    const bad = render('%{{ max_threads(n) }}', { n: 'x\nUNION SELECT 1' });
    expect(bad.sql).toBe('-- max_threads: wrong argument x UNION SELECT 1\n');
    expect(bad.maxThreads).toBeUndefined();
  });

  it.each([
    ['5s', 5],
    ['1m', 60],
    ['5m', 300],
    ['30m', 1800],
    ['1h', 3600],
  ])('cache_ttl(%s) = %i seconds', (ttl, seconds) => {
    const res = render(`%{{ cache_ttl('${ttl}') }}SELECT 1`, {});
    expect(res.cacheTtl).toBe(seconds);
    expect(res.sql).toBe(`-- cache_ttl ${ttl}\nSELECT 1`);
  });

  it('cache_ttl refuses other values', () => {
    expect(err("{{ cache_ttl('2m') }}")).toBe(`${SYN}Invalid TTL cache expression, valid expressions are ('5s', '1m', '5m', '30m', '1h')`);
  });

  it('backend_hint, activate and disable render comments', () => {
    expect(r("{{ backend_hint('x') }}")).toBe('-- backend_hint x\n');
    expect(r("{{ activate('analyzer') }}{{ activate('parallel_replicas') }}{{ disable('analyzer') }}")).toBe(
      '-- activate analyzer\n-- activate parallel_replicas\n-- disable analyzer\n',
    );
    expect(err("{{ activate('x') }}")).toBe(`${SYN}'x' is not a valid 'activate' argument`);
    expect(err("{{ disable('parallel_replicas') }}")).toBe(`${SYN}'parallel_replicas' is not a valid 'disable' argument`);
  });
});

describe('tb_secret and tb_var', () => {
  const variables = { pg_password: "s3cr'et", n: '5' };
  it('renders the variable as an engine query parameter; the value travels apart from the SQL', () => {
    expect(r("{{ tb_secret('pg_password') }}", {}, { variables })).toBe('{tb_secret_pg_password:String}');
    expect(r("toUInt8({{ tb_var('n') }})", {}, { variables })).toBe('toUInt8({tb_secret_n:String})');
    expect(render("% SELECT {{ tb_secret('pg_password') }}, {{ tb_var('n') }}", {}, { variables }).queryParams).toEqual({
      tb_secret_pg_password: "s3cr'et",
      tb_secret_n: '5',
    });
    expect(render("% SELECT {{ tb_secret('missing', 'x') }}", {}, { variables }).queryParams).toEqual({});
  });

  it('falls back to the default, fails without one (except in test mode)', () => {
    expect(r("{{ tb_secret('missing', 'dflt') }}")).toBe("'dflt'");
    expect(r("{{ tb_secret('missing', '') }}")).toBe("''");
    expect(r("{{ tb_secret('missing', 0) }}")).toBe('0');
    expect(err("{{ tb_secret('missing') }}")).toBe(
      `${SYN}Cannot access secret 'missing'. Check the secret exists in the Workspace and the token has the required scope.`,
    );
    expect(err("{{ tb_var('missing') }}")).toBe(
      `${SYN}Cannot access secret 'missing'. Check the secret exists in the Workspace and the token has the required scope.`,
    );
    expect(t("{{ tb_secret('missing') }}")).toBe("''");
    expect(t("{{ tb_secret('pg_password') }}", {}, { variables })).toBe('{tb_secret_pg_password:String}');
  });
});

describe('builtins in {{ }}', () => {
  it('len, list, min, max, int, float', () => {
    expect(r('{{ len(split_to_array(x)) }}', { x: 'a,b' })).toBe('2');
    expect(r('{{ list(x) }}', { x: 'ab' })).toBe("['a', 'b']");
    expect(r('{{ min(Int32(a), Int32(b)) }}', { a: '3', b: '2' })).toBe("toInt32('2')");
    expect(r('{{ max(int(a), 10) }}', { a: '30' })).toBe('30');
    expect(r('{{ int(a) * 2 }}', { a: '21' })).toBe('42');
    expect(r('{{ float(a) }}', { a: '1e2' })).toBe('100.0');
    expect(err('{{ int(a) }}', { a: 'x' })).toBe(`${SYN}invalid literal for int() with base 10: 'x'`);
    expect(err('{{ float(a) }}', { a: 'x' })).toBe(`${SYN}could not convert string to float: 'x'`);
  });

  it('.split, .get, .join, .replace', () => {
    expect(r("{{ x.split('|')[1] }}", { x: 'a|b' })).toBe("'b'");
    expect(r('{{ x.split() }}', { x: ' a  b ' })).toBe("['a', 'b']");
    expect(r("{{ x.split(',', 1) }}", { x: 'a,b,c' })).toBe("['a', 'b,c']");
    expect(r("{{ JSON(j).get('k', 'none') }}", { j: '{}' })).toBe("'none'");
    expect(r("{{ ','.join(split_to_array(x)) }}", { x: 'a , b' })).toBe("'a,b'");
    expect(r("{{ x.replace('a', 'b', 1) }}", { x: 'aaa' })).toBe("'baa'");
    expect(err("{% for item in JSON(f, '[\"test\"]') %}{{ item.get('op') }}{% end %}")).toBe(
      `${SYN}'str' object has no attribute 'get'. Make sure you're using an object/dictionary where trying to use .get()`,
    );
  });
});
