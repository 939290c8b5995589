import { describe, expect, it } from 'vitest';
import { isTemplate, render } from './index.js';
import { err, r, SYN, t } from './test-helpers.js';

describe('activation', () => {
  it('recognises templates by a leading % after trimming', () => {
    expect(isTemplate('%\nSELECT 1')).toBe(true);
    expect(isTemplate('  \n %SELECT 1')).toBe(true);
    expect(isTemplate('SELECT 1 %')).toBe(false);
    expect(isTemplate('')).toBe(false);
  });

  it('returns non-template SQL untouched, braces included', () => {
    const sql = "SELECT '{{ x }}', '{% if %}' FROM t";
    expect(render(sql, { x: 'y' })).toEqual({ sql, tables: [], warnings: [], queryParams: {} });
  });

  it('drops the % (and whitespace before it) and keeps the rest', () => {
    expect(render('%\nSELECT {{ 1 }}', {}).sql).toBe('\nSELECT 1');
    expect(render('  %SELECT 2', {}).sql).toBe('SELECT 2');
  });
});

describe('{{ expressions }}', () => {
  it.each([
    ['{{ 1 }}', '1'],
    ['{{ -5 }}', '-5'],
    ['{{ 1.5 }}', '1.5'],
    ['{{ 1.0 }}', '1.0'],
    ['{{ 1e20 }}', '1e+20'],
    ['{{ 0.00001 }}', '1e-05'],
    ['{{ 1 + 2 * 3 }}', '7'],
    ['{{ 10 - 4 - 3 }}', '3'],
    ["{{ 'a' + 'b' }}", "'ab'"],
    ["{{ 'ab' * 2 }}", "'abab'"],
    ['{{ "dq" }}', "'dq'"],
    ["{{ 'x' 'y' }}", "'xy'"],
    ['{{ None if 0 else 2 }}', '2'],
    ['{{ not 0 }}', 'True'],
    ['{{ -(-3) }}', '3'],
    ['{{ [1, 2] }}', '[1, 2]'],
    ["{{ ['a', 'b'] }}", "['a', 'b']"],
    ['{{ (1, 2) }}', '(1, 2)'],
    ['{{ (1,) }}', '(1,)'],
    ["{{ {'k': 1} }}", "{'k': 1}"],
    ['{{ {1, 1, 2} }}', '{1, 2}'],
    ['{{ [1, 2, 3][1] }}', '2'],
    ['{{ [1, 2, 3][1:] }}', '[2, 3]'],
    ["{{ 'hello'[1:3] }}", "'el'"],
    ["{{ {'a': {'b': 7} }['a']['b'] }}", '7'],
    ["{{ 'a,b'.split(',') }}", "['a', 'b']"],
    ["{{ '-'.join(['a', 'b']) }}", "'a-b'"],
    ["{{ 'aXbX'.replace('X', '.') }}", "'a.b.'"],
    ["{{ {'a': 1}.get('a') }}", '1'],
    ["{{ {'a': 1}.get('z', 'dflt') }}", "'dflt'"],
    ['{{ len([1, 2, 3]) }}', '3'],
    ["{{ len('héllo') }}", '5'],
    ["{{ list('ab') }}", "['a', 'b']"],
    ['{{ min(3, 1, 2) }}', '1'],
    ['{{ max([3, 1, 2]) }}', '3'],
    ["{{ int('42') }}", '42'],
    ["{{ float('2') }}", '2.0'],
    ['{{ int(2.9) }}', '2'],
    ["{{ f'v={1 + 1}' }}", "'v=2'"],
    ['{{ f\'{3:03d}|{2.5:.2f}|{"x":>3}\' }}', "'003|2.50|  x'"],
  ])('%s → %s', (expr, expected) => {
    expect(r(expr)).toBe(expected);
  });

  it('reads parameters and writes strings as escaped literals', () => {
    expect(r('{{ x }}', { x: 'abc' })).toBe("'abc'");
    expect(r('{{ x }}', { x: 7 })).toBe('7');
    expect(r('{{ x }}', { x: 2.5 })).toBe('2.5');
    expect(r('{{ x }}', { x: true })).toBe('True');
    expect(r('{{ x }}', { x: ['a', 'b'] })).toBe("['a', 'b']");
    expect(r('{{ x }}', { x: { k: 'v' } })).toBe("{'k': 'v'}");
  });

  it('uses the innermost braces when more than two are in a row', () => {
    expect(r('{{{ 1 }}}')).toBe('{1}');
  });

  it('leaves a lone brace alone', () => {
    expect(r("SELECT map('a', 1){ x }")).toBe("SELECT map('a', 1){ x }");
    expect(r('ends with {')).toBe('ends with {');
  });

  it('ends an expression at the first }} (as Tornado does)', () => {
    expect(err("{{ {'a': {'b': 7}}['a'] }}")).toBe(`${SYN}invalid syntax`);
  });

  it('supports expressions across lines', () => {
    expect(r('{{ String(\n  x,\n  "d"\n) }}')).toBe("'d'");
  });
});

describe('comments and escapes', () => {
  it('drops {# #} comments and {% comment %} blocks', () => {
    expect(r('a{# anything {{ x }} #}b{% comment whatever here %}c')).toBe('abc');
  });

  it('outputs literal braces for {{! {%! {#!', () => {
    expect(r('{{! x }}|{%! y %}|{#! z #}')).toBe('{{ x }}|{% y %}|{# z #}');
  });
});

describe('{% if %}', () => {
  it.each([
    [{}, 'c'],
    [{ x: '1' }, 'a'],
    [{ y: '1' }, 'b'],
    [{ x: '', y: '' }, 'c'],
  ])('if/elif/else with %j', (params, expected) => {
    expect(r('{% if x %}a{% elif y %}b{% else %}c{% end %}', params)).toBe(expected);
  });

  it('accepts comparisons, and/or/not, in, is', () => {
    const tpl = "{% if Int32(n, 0) > 5 and defined(y) or x in ['p', 'q'] and x is not None %}yes{% else %}no{% end %}";
    expect(r(tpl, { n: '6', y: '1' })).toBe('yes');
    expect(r(tpl, { n: '4', y: '1' })).toBe('no');
    expect(r(tpl, { x: 'q' })).toBe('yes');
    expect(r('{% if not defined(x) %}missing{% end %}')).toBe('missing');
    expect(r('{% if 1 < 2 < 3 %}chained{% end %}')).toBe('chained');
    expect(r('{% if 3 < 2 < 4 %}chained{% else %}no{% end %}')).toBe('no');
  });

  it('nests', () => {
    expect(r('{% if a %}{% if b %}ab{% else %}a{% end %}{% end %}', { a: '1' })).toBe('a');
  });
});

describe('{% for %} and {% while %}', () => {
  it('iterates lists, strings, dicts, ranges and tuples with unpacking', () => {
    expect(r('{% for x in [1, 2, 3] %}{{x}},{% end %}')).toBe('1,2,3,');
    expect(r("{% for c in 'ab' %}[{{c}}]{% end %}")).toBe("['a']['b']");
    expect(r("{% for k in {'a': 1, 'b': 2} %}{{k}}{% end %}")).toBe("'a''b'");
    expect(r('{% for i in range(2, 8, 3) %}{{i}} {% end %}')).toBe('2 5 ');
    expect(r("{% for k, v in {'a': 1}.items() %}{{k}}={{v}}{% end %}")).toBe("'a'=1");
    expect(r('{% for i, (a, b) in enumerate([(1, 2)]) %}{{i}}{{a}}{{b}}{% end %}')).toBe('012');
  });

  it('supports break, continue and else', () => {
    expect(r('{% for i in range(5) %}{% if i == 3 %}{% break %}{% end %}{{i}}{% else %}E{% end %}')).toBe('012');
    expect(r('{% for i in range(4) %}{% if i % 2 %}{% continue %}{% end %}{{i}}{% else %}E{% end %}')).toBe('02E');
  });

  it('loops with while and set', () => {
    expect(r('{% set i = 0 %}{% while i < 3 %}{{i}}{% set i += 1 %}{% end %}')).toBe('012');
    expect(r('{% set i = 0 %}{% while True %}{% set i = i + 1 %}{% if i > 2 %}{% break %}{% end %}{% end %}{{i}}')).toBe('3');
    expect(r('{% while False %}x{% else %}done{% end %}')).toBe('done');
  });

  it('iterates comma lists split with split_to_array', () => {
    expect(r("{% for v in split_to_array(vals, '') %}{{v}} {% end %}", { vals: 'a, b' })).toBe("'a' 'b' ");
  });
});

describe('{% set %}', () => {
  it('assigns locals, tuples, subscripts and augmented values', () => {
    expect(r("{% set a, b = 1, 'x' %}{{a}}{{b}}")).toBe("1'x'");
    expect(r("{% set d = {} %}{% set d['k'] = 5 %}{{d['k']}}")).toBe('5');
    expect(r('{% set l = [] %}{% set l.append(1) %}{% set _ = l.append(2) %}{{l}}')).toBe('[1, 2]');
    expect(r('{% set s = "a" %}{% set s += "b" %}{{s}}')).toBe("'ab'");
    expect(r('{% set a = b = 2 %}{{a + b}}')).toBe('4');
  });

  it('makes the name local to the whole template (Tornado semantics)', () => {
    expect(err('{% set limit = Int32(limit, 10) %}{{limit}}', { limit: '5' })).toBe(
      `${SYN}cannot access local variable 'limit' where it is not associated with a value`,
    );
  });

  it('supports comprehensions and builtins in control code', () => {
    expect(r("{% set xs = [int(v) * 2 for v in vals.split(',') if v] %}{{xs}}", { vals: '1,,3' })).toBe('[2, 6]');
    expect(r('{% set s = sum([1, 2, 3]) %}{{s}}')).toBe('6');
    expect(r("{% set s = sorted(['b', 'a']) %}{{s}}")).toBe("['a', 'b']");
    expect(r("{% set s = ','.join(map(str, range(3))) %}{{s}}")).toBe("'0,1,2'");
    expect(r("{% set d = {k: len(k) for k in ['ab', 'c']} %}{{d}}")).toBe("{'ab': 2, 'c': 1}");
    expect(r('{% set x = 7 // 2 %}{{x}}{% set y = 7 / 2 %}{{y}}{% set z = 2 ** 10 %}{{z}}{% set m = -7 % 3 %}{{m}}')).toBe('33.510242');
    expect(r("{% set s = 'Ab'.lower().upper().strip() %}{{s}}")).toBe("'AB'");
    expect(r('{% set a = abs(-2) + round(2.5) + round(3.5) %}{{a}}')).toBe('8');
    expect(r('{% set ok = any([0, 1]) and all([1, 1]) %}{{ok}}')).toBe('True');
    expect(r("{% set z = list(zip([1, 2], 'ab')) %}{{z}}")).toBe("[(1, 'a'), (2, 'b')]");
  });

  it('formats strings with %', () => {
    expect(r("{% set s = '%s_%s' % (a, b) %}{{s}}", { a: 'x', b: 'y' })).toBe("'x_y'");
    expect(r("{% set s = '%05.1f|%-4d|%x|%r|%%' % (3.14159, 7, 255, 'q') %}{{s}}")).toBe("'003.1|7   |ff|\\'q\\'|\\%'");
    expect(r("{% set s = '%(k)s!' % {'k': 1} %}{{s}}")).toBe("'1!'");
    expect(err("{% set s = '%s %s' % (1,) %}")).toBe(`${SYN}not enough arguments for format string`);
    expect(err("{% set s = '%s' % (1, 2) %}")).toBe(`${SYN}not all arguments converted during string formatting`);
  });
});

describe('{% try %}', () => {
  it('catches errors by class, binds them, runs else and finally', () => {
    expect(r('{% try %}{{Int32(x)}}{% except ValueError as e %}caught{% finally %} fin{% end %}', { x: 'abc' })).toBe('caught fin');
    expect(r('{% try %}ok{% except %}no{% else %} else{% finally %} fin{% end %}')).toBe('ok else fin');
    expect(r("{% try %}{{ {'a': 1}['b'] }}{% except (KeyError, IndexError) %}missing{% end %}")).toBe('missing');
    expect(r('{% try %}{% set x = 1 / 0 %}{% except ZeroDivisionError %}zero{% end %}')).toBe('zero');
  });

  it('writes a bound exception as a quoted message', () => {
    expect(r('{% try %}{{Int32(x)}}{% except Exception as e %}{{e}}{% end %}', { x: "'; DROP" })).toBe(
      `'Template Syntax Error: Error validating \\'\\'; DROP\\' to type Int32'`,
    );
  });

  it('lets unmatched errors through', () => {
    expect(err('{% try %}{{Int32(x)}}{% except TypeError %}no{% end %}', { x: 'abc' })).toBe(`${SYN}Error validating 'abc' to type Int32`);
  });
});

describe('whitespace', () => {
  it('keeps all whitespace by default', () => {
    expect(r('a  \n\n  b')).toBe('a  \n\n  b');
  });

  it('single collapses runs but keeps newlines, oneline removes them', () => {
    expect(r('{% whitespace single %}a   b\n\n  c')).toBe('a b\nc');
    expect(r('{% whitespace oneline %}a \n\n  b')).toBe('a b');
    expect(r('{% whitespace oneline %}a  b{% whitespace all %}c  d')).toBe('a bc  d');
  });

  it('leaves text containing <pre> untouched', () => {
    expect(r('{% whitespace oneline %}<pre>a  b</pre>')).toBe('<pre>a  b</pre>');
  });
});

describe('test mode', () => {
  it('gives placeholders for missing parameters', () => {
    expect(t('{{ x }}')).toBe("'__no_value__'");
    expect(t('{{ String(x) }}')).toBe("'__no_value__'");
    expect(t("{{ String(x, 'd') }}")).toBe("'d'");
    expect(t('{{ Int32(x) }}')).toBe("toInt32('0')");
    expect(t('{{ UInt64(x, 5) }}')).toBe("toUInt64('5')");
    expect(t('{{ Int(x) }}')).toBe('0');
    expect(t('{{ Float32(x) }}')).toBe("toFloat32('0.0')");
    expect(t('{{ Date(x) }}')).toBe("'2019-01-01'");
    expect(t('{{ DateTime(x) }}')).toBe("'2019-01-01 00:00:00'");
    expect(t('{{ DateTime64(x) }}')).toBe("'2019-01-01 00:00:00.000'");
    expect(t('{{ Boolean(x) }}')).toBe('0');
    expect(t("{{ Array(x, 'Int32') }}")).toBe('[0,0]');
    expect(t("{{ Array(x, 'Date') }}")).toBe("['2019-01-01','2019-01-01']");
    expect(t('{{ Array(x) }}')).toBe("['']");
    expect(t("{{ Array(x, 'String', 'a,b') }}")).toBe("['a','b']");
    expect(t('{{ symbol(x) }}')).toBe('`placeholder`');
    expect(t('{{ column(x, "c") }}')).toBe('`c`');
    expect(t('{{ table(x) }}')).toBe('placeholder');
    expect(t('{{ split_to_array(x) }}')).toBe("['']");
    expect(t('{{ day_diff(a, b) }}')).toBe('0');
  });

  it('makes defined() false and iterates a placeholder three times', () => {
    expect(t('{% if defined(x) %}yes{% else %}no{% end %}')).toBe('no');
    expect(t('{% for v in vs %}[{{v}}]{% end %}')).toBe("['__no_value__']['__no_value__']['__no_value__']");
  });

  it('does not abort on error() or custom_error()', () => {
    expect(t("{% if not defined(x) %}{{ error('need x') }}{% end %}SELECT 1")).toBe('-- {x} \nSELECT 1');
    expect(t("{{ custom_error({'error': 'no'}, 404) }}SELECT 1")).toBe('-- {x} \nSELECT 1');
  });

  it('uses provided parameters and renders no required-parameter error', () => {
    expect(t('{{ Int32(a) }} {{ String(b) }}', { a: '3' })).toBe("toInt32('3') '__no_value__'");
  });

  it('calling a placeholder names it', () => {
    expect(err('{% if whatever(x) %}{% end %}', {}, { testMode: true })).toBe(`${SYN}'whatever' is not a valid function, line 1`);
    expect(err('\n\n{% if whatever(x) %}{% end %}', {}, { testMode: true })).toBe(`${SYN}'whatever' is not a valid function, line 3`);
  });
});
