import { describe, expect, it } from 'vitest';
import { render, templateParams, templateTables } from './index.js';

const P = (body: string) => templateParams('%' + body);
/** JSON text, so the key order is checked too. */
const J = (body: string) => JSON.stringify(P(body));

describe('templateParams (§6.8)', () => {
  it('is empty for plain SQL and templates without parameters', () => {
    expect(templateParams('SELECT {{ x }}')).toEqual([]);
    expect(P('SELECT 1')).toEqual([]);
    expect(P("{{ custom_error('Not found', 404) }}")).toEqual([]);
  });

  it.each([
    ['{{Float32(with_value, 0.0)}}', [{ name: 'with_value', type: 'Float32', default: 0 }]],
    ['{{Float32(with_value, 0.1)}}', [{ name: 'with_value', type: 'Float32', default: 0.1 }]],
    ['{{Float32(with_value, -0.1)}}', [{ name: 'with_value', type: 'Float32', default: -0.1 }]],
    ['{{Int32(with_value, 0)}}', [{ name: 'with_value', type: 'Int32', default: 0 }]],
    ['{{Int32(with_value, -0)}}', [{ name: 'with_value', type: 'Int32', default: 0 }]],
    [
      "{{String(d, 'test_1')}} AND value = {{Int8(v, 3)}}",
      [
        { name: 'd', type: 'String', default: 'test_1' },
        { name: 'v', type: 'Int8', default: 3 },
      ],
    ],
    ['{% if defined(number_variable) %} where n = {{UInt64(number_variable)}} {% end %}', [{ name: 'number_variable', type: 'UInt64', default: null }]],
    ['{% if defined({{UInt64(number_variable)}}) %} where 1 {% end %}', [{ name: 'number_variable', type: 'UInt64', default: null }]],
    [
      '{% if defined(testing) and defined(testing2) %} where 1 {%end %}',
      [
        { name: 'testing', type: 'String', default: null, used_in: 'function_call' },
        { name: 'testing2', type: 'String', default: null, used_in: 'function_call' },
      ],
    ],
    [
      '{% if defined({{UInt64(x)}}) and defined(y) %} where 1 {% end %}',
      [
        { name: 'x', type: 'UInt64', default: null },
        { name: 'y', type: 'String', default: null, used_in: 'function_call' },
      ],
    ],
    [
      '{% if defined(y) and x > 0 %} where x = {{UInt64(x)}} {% end %}',
      [
        { name: 'x', type: 'UInt64', default: null },
        { name: 'y', type: 'String', default: null, used_in: 'function_call' },
      ],
    ],
    [
      "{% if '{{' in marker %}{{UInt64(x)}}{% end %}",
      [
        { name: 'x', type: 'UInt64', default: null },
        { name: 'marker', type: 'String', default: null },
      ],
    ],
    [
      '{% if a %}1{% elif defined(y) %}{{UInt64(x)}}{% end %}',
      [
        { name: 'y', type: 'String', default: null, used_in: 'function_call' },
        { name: 'x', type: 'UInt64', default: null },
        { name: 'a', type: 'String', default: null },
      ],
    ],
    [
      '{% for x in items %}{{Int32(x, 0)}}{% end %}',
      [
        { name: 'x', type: 'Int32', default: 0 },
        { name: 'items', type: 'String', default: null },
      ],
    ],
    [
      '{% while more %}{{UInt64(x)}}{% end %}',
      [
        { name: 'x', type: 'UInt64', default: null },
        { name: 'more', type: 'String', default: null },
      ],
    ],
    [
      '{% set a = Int32(x, 0) %}',
      [
        { name: 'a', type: 'String', default: null },
        { name: 'x', type: 'Int32', default: 0 },
      ],
    ],
    [
      '{% try %}{{UInt64(x)}}{% except E as e %}{{e}}{% end %}',
      [
        { name: 'x', type: 'UInt64', default: null },
        { name: 'E', type: 'String', default: null },
        { name: 'e', type: 'String', default: null },
      ],
    ],
    ["select {{Array(cod, 'Int16', defined=False)}}", [{ name: 'cod', type: 'Array(Int16)', defined: false, default: null }]],
    ['select {{Array(cod, defined=False)}}', [{ name: 'cod', type: 'Array(String)', defined: false, default: null }]],
    ["select {{Array(cod, 'Int16', default='1', defined=False)}}", [{ name: 'cod', type: 'Array(Int16)', default: '1', defined: false }]],
    ["select {{Array(cod, 'Int32', '1,2')}}", [{ name: 'cod', type: 'Array(Int32)', default: '1,2' }]],
    ['select {{cod}}', [{ name: 'cod', type: 'String', default: null }]],
    ["select {{String(cod, 'test')}}", [{ name: 'cod', type: 'String', default: 'test' }]],
    ['select {{split_to_array(test)}}', [{ name: 'test', type: 'String', default: null, used_in: 'function_call' }]],
    ["select {{String(test + 'abcd', 'default_value')}}", [{ name: 'test', type: 'String', default: null }]],
    [
      'select {{symbol(split_to_array(attr, "amount_net")[0] + "_intermediate" )}}',
      [{ name: 'attr', type: 'String', default: null, used_in: 'function_call' }],
    ],
    [
      '{{Float32(with_value, 0.1)}} {{Float32(zero, 0)}} {{Float32(no_default)}}',
      [
        { name: 'with_value', type: 'Float32', default: 0.1 },
        { name: 'zero', type: 'Float32', default: 0 },
        { name: 'no_default', type: 'Float32', default: null },
      ],
    ],
    [
      "{{Int128(symbol_id, 11111, description='Symbol Id', required=True)}} AND user = {{Int256(user_id, 3555, description='User Id')}}",
      [
        { name: 'symbol_id', type: 'Int128', description: 'Symbol Id', required: true, default: 11111 },
        { name: 'user_id', type: 'Int256', description: 'User Id', default: 3555 },
      ],
    ],
    ["SELECT now() > {{DateTime64(timestamp, '2020-09-09 10:10:10.000')}}", [{ name: 'timestamp', type: 'DateTime64', default: '2020-09-09 10:10:10.000' }]],
    [
      "select {{Int32(dup, 1)}} {{String(dup, 'last')}}",
      [
        { name: 'dup', type: 'Int32', default: 1 },
        { name: 'dup', type: 'String', default: 'last' },
      ],
    ],
    ['{{Int64(symbol_id, 9223372036854775807)}}', [{ name: 'symbol_id', type: 'Int64', default: '9223372036854775807' }]],
    ['{{Boolean(flag, False)}}', [{ name: 'flag', type: 'Boolean', default: false }]],
    ["{{JSON(payload, '[]')}}", [{ name: 'payload', type: 'JSON', default: '[]' }]],
    ["{{Date(d, enum=['2024-01-01', '2024-02-01'])}}", [{ name: 'd', type: 'Date', enum: ['2024-01-01', '2024-02-01'], default: null }]],
    [
      '{{ column(col, "c") }} {{ columns(cs, "a") }}',
      [
        { name: 'col', type: 'String', default: null, used_in: 'function_call' },
        { name: 'cs', type: 'String', default: null, used_in: 'function_call' },
      ],
    ],
    ['{{ day_diff(d0, d1) }}', [{ name: 'd0', type: 'String', default: null, used_in: 'function_call' }]],
    [
      '{{ sql_and(country=String(c, defined=False), id__in=Array(ids, "Int32", defined=False)) }}',
      [
        { name: 'c', type: 'String', defined: false, default: null },
        { name: 'ids', type: 'Array(Int32)', defined: false, default: null },
      ],
    ],
  ])('%s', (body, expected) => {
    expect(P(body)).toEqual(expected);
  });

  it('orders keys: name, type, keyword arguments in call order, positional default last', () => {
    expect(J("{{String(d, 'test_1', description='test', required=True)}}")).toBe(
      '[{"name":"d","type":"String","description":"test","required":true,"default":"test_1"}]',
    );
    expect(J("{{String(d, default='test_1', description='test')}}")).toBe('[{"name":"d","type":"String","default":"test_1","description":"test"}]');
    expect(J("{{Int8(v, 3, format='number', example='1')}}")).toBe('[{"name":"v","type":"Int8","format":"number","example":"1","default":3}]');
    expect(J("{{Array(c, 'Int16', defined=False)}}")).toBe('[{"name":"c","type":"Array(Int16)","defined":false,"default":null}]');
    expect(J('{% if defined(x) %}{% end %}')).toBe('[{"name":"x","type":"String","default":null,"used_in":"function_call"}]');
  });

  it('keeps the first definition of a function-call name within one expression, the typed one from the body', () => {
    expect(P("{% if defined(a) %}{{ String(a, 'x') }}{% end %}")).toEqual([{ name: 'a', type: 'String', default: 'x' }]);
    expect(P('{% if defined(a) %}{% end %}{% if defined(a) %}{% end %}')).toEqual([
      { name: 'a', type: 'String', default: null, used_in: 'function_call' },
      { name: 'a', type: 'String', default: null, used_in: 'function_call' },
    ]);
  });

  it('does not treat builtins and functions as parameters, but allows id', () => {
    // names passed straight to a call are the call's business (Tinybird lists neither len nor xs)
    expect(P('{% if len(xs) > max_n %}{{ id }}{% end %}')).toEqual([
      { name: 'id', type: 'String', default: null },
      { name: 'max_n', type: 'String', default: null },
    ]);
    expect(P('{{ Int(limit, 10) }}')).toEqual([]);
  });

  it('refuses a literal list where a parameter name goes', () => {
    expect(() => P("{{ defined(['a']) }}")).toThrow(`"['a']" can not be used as a variable name`);
  });

  it('returns fresh copies', () => {
    const a = P('{{ String(x) }}');
    a[0].name = 'changed';
    expect(P('{{ String(x) }}')[0].name).toBe('x');
  });

  it('an endpoint-like node', () => {
    const sql = `%
SELECT date, count() c
FROM events
WHERE 1
{% if defined(country) %} AND country = {{ String(country, description="ISO code", example="ES") }} {% end %}
AND date >= {{ Date(start, '2024-01-01', required=True) }}
{% if defined(ids) %} AND id IN {{ Array(ids, 'Int32', description='ids') }} {% end %}
GROUP BY date
ORDER BY {{ column(order_by, 'date') }}
LIMIT {{ Int32(limit, 100) }}`;
    expect(JSON.stringify(templateParams(sql))).toBe(
      JSON.stringify([
        { name: 'country', type: 'String', description: 'ISO code', example: 'ES', default: null },
        { name: 'start', type: 'Date', required: true, default: '2024-01-01' },
        { name: 'ids', type: 'Array(Int32)', description: 'ids', default: null },
        { name: 'order_by', type: 'String', default: null, used_in: 'function_call' },
        { name: 'limit', type: 'Int32', default: 100 },
      ]),
    );
  });
});

describe('warnings and tables', () => {
  it('warns once per reserved parameter name used', () => {
    const res = render('%{{ pipeline }} {{ String(token) }} {{ pipeline }}', { pipeline: 'p', token: 't' });
    expect(res.sql).toBe("'p' 't' 'p'");
    expect(res.warnings).toEqual([
      'The parameter name "pipeline" is a reserved word. Please, choose another name or the pipe will not work as expected.',
      'The parameter name "token" is a reserved word. Please, choose another name or the pipe will not work as expected.',
    ]);
    expect(render('%{{ String(x) }}', { x: '1' }).warnings).toEqual([]);
  });

  it('job_timestamp defaults to the current time', () => {
    const out = render('%{{ DateTime(job_timestamp) }}', {}).sql;
    expect(out).toMatch(/^'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d'$/);
    expect(render('%{{ DateTime(job_timestamp) }}', { job_timestamp: '2024-01-01 00:00:00' }).sql).toBe("'2024-01-01 00:00:00'");
  });

  it('templateTables lists literal table() names in every branch', () => {
    expect(templateTables("%select * from {%if x %}{{table('test')}}{%else%}{{TABLE('test2')}}{%end%}")).toEqual(['test', 'test2']);
    expect(templateTables("%select * from {{table('my.test')}}, another")).toEqual(['my.test']);
    expect(templateTables('select 1')).toEqual([]);
  });
});
