import { describe, expect, it } from 'vitest';
import { CustomTemplateError, render, TemplateError, templateParams } from './index.js';
import { err, errObj, r, SYN } from './test-helpers.js';

describe('reader errors (Tornado)', () => {
  it.each([
    ['SELECT {% if defined(x) %} x, 1', 'Missing {% end %} block for if at line 1'],
    ['SELECT\n{% for x in y %}\n x', 'Missing {% end %} block for if at line 2'],
    ['{% end %}', 'Extra {% end %} block'],
    ['{% if x %}{% end %}{% end %}', 'Extra {% end %} block'],
    ['SELECT {{ x', 'Missing end expression }}'],
    ['SELECT {% if x', 'Missing end block %}'],
    ['SELECT {# x', 'Missing end comment #}'],
    ['SELECT {{ }}', 'Empty expression'],
    ['SELECT {{}}', 'Empty expression'],
    ['SELECT {% %}', 'Empty block tag ({% %})'],
    ['{% else %}', "else outside {'if', 'for', 'while', 'try'} block"],
    ['{% elif x %}', "elif outside {'if'} block"],
    ['{% except %}', "except outside {'try'} block"],
    ['{% finally %}', "finally outside {'try'} block"],
    ['{% for x in y %}{% elif z %}{% end %}', 'elif block cannot be attached to for block'],
    ['{% while x %}{% except %}{% end %}', 'except block cannot be attached to while block'],
    ['{% break %}', "break outside {'for', 'while'} block"],
    ['{% if x %}{% continue %}{% end %}', "continue outside {'for', 'while'} block"],
    ['{% import os %}', 'import is forbidden'],
    ['{% from os import path %}', 'import is forbidden'],
    ["{% extends 'base' %}", 'extends is forbidden'],
    ["{% include 'x' %}", 'include is forbidden'],
    ['{% autoescape None %}', 'autoescape is forbidden'],
    ['{% raw x %}', 'raw is forbidden'],
    ['{% module x %}', 'module is forbidden'],
    ['{% apply f %}x{% end %}', 'apply is forbidden'],
    ['{% block b %}x{% end %}', 'block is forbidden'],
    ['{% set %}', 'set missing statement'],
    ['{% whitespace tabs %}', 'invalid whitespace mode tabs'],
    ['{% foo %}', "unknown operator: 'foo'"],
    ['{% endif %}', "unknown operator: 'endif'"],
    ["{% it's %}", `unknown operator: "it's"`],
  ])('%s → %s', (body, message) => {
    expect(err(body)).toBe(SYN + message);
  });

  it('reports the forbidden import before anything runs', () => {
    expect(err('SELECT * FROM {% import os %}{{ os.popen("whoami").read() }}')).toBe(`${SYN}import is forbidden`);
  });
});

describe('security whitelist of {{ }}', () => {
  it.each([
    ["{{ eval('1+1') }}", 'Invalid function name: eval'],
    ['{{ globals() }}', 'Invalid function name: globals'],
    ['{{ dir(x) }}', 'Invalid function name: dir'],
    ['{{ __import__("os") }}', 'Invalid function name: __import__'],
    ['{{ open("/etc/passwd") }}', 'Invalid function name: open'],
    ['{{ str(x) }}', 'Invalid function name: str'],
    ['{{ range(10) }}', 'Invalid function name: range'],
    ['{{ x.read() }}', 'Invalid method name: read'],
    ['{{ x.upper() }}', 'Invalid method name: upper'],
    ['{{ x.__class__() }}', 'Invalid method name: __class__'],
    ['{{ 888**99 / 888**999998 }}', 'Invalid BinOp: Div()'],
    ['{{ len([1] * 10**7) }}', 'Invalid BinOp: Pow()'],
    ['{{ 7 // 2 }}', 'Invalid BinOp: FloorDiv()'],
    ['{{ 7 % 2 }}', 'Invalid BinOp: Mod()'],
    ['{{ 1 << 2 }}', 'Invalid BinOp: LShift()'],
    ['{{ 1 | 2 }}', 'Invalid BinOp: BitOr()'],
    ['{{ ~1 }}', 'Invalid UnaryOp: Invert()'],
    ['{{ +1 }}', 'Invalid UnaryOp: UAdd()'],
    ['{{ x.y }}', "Invalid expression type: Attribute(value=Name(id='x', ctx=Load()), attr='y', ctx=Load())"],
    ['{{ globals.__self__ }}', "Invalid expression type: Attribute(value=Name(id='globals', ctx=Load()), attr='__self__', ctx=Load())"],
    ['{{ len.__self__ }}', "Invalid expression type: Attribute(value=Name(id='len', ctx=Load()), attr='__self__', ctx=Load())"],
    ['{{ a == 1 }}', "Invalid expression type: Compare(left=Name(id='a', ctx=Load()), ops=[Eq()], comparators=[Constant(value=1)])"],
    ['{{ a or b }}', "Invalid expression type: BoolOp(op=Or(), values=[Name(id='a', ctx=Load()), Name(id='b', ctx=Load())])"],
    ['{{ x[i] }}', "Invalid Slice expression: Name(id='i', ctx=Load())"],
    ['{{ x[-1] }}', 'Invalid Slice expression: UnaryOp(op=USub(), operand=Constant(value=1))'],
    ["{{ globals()['__builtins__'] }}", 'Invalid function name: globals'],
    ['{{ x[0]() }}', "Invalid function: Call(func=Subscript(value=Name(id='x', ctx=Load()), slice=Constant(value=0), ctx=Load()), args=[], keywords=[])"],
    ["{{ b'x' }}", "Invalid Constant: Constant(value=b'x')"],
    [
      '{{ [c for c in x] }}',
      "Invalid expression type: ListComp(elt=Name(id='c', ctx=Load()), generators=[comprehension(target=Name(id='c', ctx=Store()), iter=Name(id='x', ctx=Load()), ifs=[], is_async=0)])",
    ],
    ['{{ *x }}', "can't use starred expression here"],
  ])('%s → %s', (body, message) => {
    expect(err(body)).toBe(SYN + message);
  });

  it('checks expressions even in branches that never run', () => {
    expect(err("{% if False %}{{ eval('x') }}{% end %}")).toBe(`${SYN}Invalid function name: eval`);
  });

  it('allows the whitelisted constructs', () => {
    expect(r("{{ String(x, 'a') if defined(x) else 'b' }}")).toBe("'b'");
    expect(r('{{ [1, 2][0:1] }}')).toBe('[1]');
    expect(r("{{ {'a': [1]}['a'][0] }}")).toBe('1');
    expect(r('{{ not defined(x) }}')).toBe('True');
  });

  it('control blocks are compiled more freely, but only with known names and methods', () => {
    expect(r("{% if x.startswith('a') and len(x) >= 2 %}yes{% end %}", { x: 'ab' })).toBe('yes');
    expect(err('{% if x.read() %}{% end %}', { x: 'ab' })).toBe(`${SYN}'str' object has no attribute 'read'`);
    expect(err('{% if x.__class__ %}{% end %}', { x: 'ab' })).toBe(`${SYN}'str' object has no attribute '__class__'`);
    expect(err("{% set y = eval('1') %}")).toBe(`${SYN}name 'eval' is not defined`);
    expect(err("{% set y = __import__('os') %}")).toBe(`${SYN}name '__import__' is not defined`);
    expect(err("{% set y = open('/etc/passwd') %}")).toBe(`${SYN}wrong syntax, you might be using a not valid function inside a control block`);
    expect(err("{% set y = getattr(x, 'y') %}")).toBe(`${SYN}name 'getattr' is not defined`);
  });
});

describe('syntax errors in Python code', () => {
  it.each([
    '{{ x + }}',
    '{{ (x }}',
    '{{ x y }}',
    '{{ lambda: 1 }}',
    '{{ x = 1 }}',
    '{% if x + %}{% end %}',
    '{% if %}{% end %}',
    '{% for x %}{% end %}',
    '{% for x in %}{% end %}',
    '{% set x = %}',
    '{% if x %}{% else %}{% else %}{% end %}',
    '{% if x %}{% else %}{% elif y %}{% end %}',
    '{% try %}x{% end %}',
    '{% try %}{% except %}{% except ValueError %}{% end %}',
    '{% for x in y %}{% else %}{% else %}{% end %}',
  ])('%s → invalid syntax', (body) => {
    expect(err(body)).toMatch(new RegExp('^' + SYN.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  });

  it('says "from" is forbidden in expressions', () => {
    expect(err('{{ from x }}')).toBe(`${SYN}"from" is a forbidden word`);
  });
});

describe('runtime errors', () => {
  it('names that cannot be parameters', () => {
    expect(err('{{ String(format) }}', { format: 'x' })).toBe('"format" can not be used as a variable name, line 1');
    expect(err('SELECT\n{{ q }}', { q: 'x' })).toBe('"q" can not be used as a variable name, line 2');
    expect(err('{% if defined(format) %}{% end %}')).toBe('"format" can not be used as a variable name, line 1');
  });

  it('missing required parameters', () => {
    expect(err('{{ Int32(a) }}')).toBe(
      `${SYN}Required parameter is not defined. Check the parameters a. Please provide a value or set a default value in the pipe code.`,
    );
    expect(err("SELECT {{ columns(cols, 'salary') }} WHERE s = {{ String(test) }}")).toBe(
      `${SYN}Required parameter is not defined. Check the parameters test. Please provide a value or set a default value in the pipe code.`,
    );
    expect(errObj('{{ Int32(a) }}')).toBeInstanceOf(TemplateError);
  });

  it('null expressions', () => {
    expect(err('{{ param }}')).toBe(`${SYN}expression "param" evaluated to null`);
    expect(err("{% for item in JSON(f, '[{}]') %}{{ item.get('operand') }}{% end %}")).toBe(`${SYN}expression "item.get('operand')" evaluated to null`);
  });

  it('validation errors', () => {
    expect(err('{{ Int32(x) }}', { x: 'abc' })).toBe(`${SYN}Error validating 'abc' to type Int32`);
    expect(err("{{ Array(x, 'Int32') }}", { x: '1,2,x' })).toBe(`${SYN}Error validating [1,2,x][2] (x) to type Int32`);
  });

  it('Python-level errors', () => {
    expect(err('{% set x = 1 / 0 %}')).toBe(`${SYN}division by zero`);
    expect(err("{% set x = {'a': 1}['b'] %}")).toBe(`${SYN}'b'`);
    expect(err('{% set x = [1][5] %}')).toBe(`${SYN}list index out of range`);
    expect(err('{{ x[3] }}', { x: 'ab' })).toBe(
      `${SYN}String index out of range. Check that string parameters have values before accessing specific characters (e.g., param[0]). Provide default values or add length checks in your template.`,
    );
    expect(err("{% set x = 'a' + 1 %}")).toBe(`${SYN}can only concatenate str (not "int") to str`);
    expect(err('{% for x in y %}{% end %}')).toBe(`${SYN}'NoneType' object is not iterable`);
    expect(err('{% if whatever(x) %}{% end %}')).toBe(`${SYN}wrong syntax, you might be using a not valid function inside a control block`);
    expect(err('{% set s = {[1]} %}')).toBe(`${SYN}wrong syntax, you might be using a not valid function inside a control block`);
    expect(err('{{ String() }}')).toBe(`${SYN}one of the transform type functions is missing an argument`);
    expect(err("{{ String(x, foo='bar') }}")).toBe(`${SYN}String() got an unexpected keyword argument 'foo'`);
    expect(err('{% if x > 1 %}{% end %}', {}, { testMode: true })).toBe(
      `${SYN}'>' not supported between instances of 'Placeholder' and 'int'. If you are using a dynamic parameter, you need to wrap it around a valid Data Type (e.g. Int8(placeholder))`,
    );
    expect(err('{% if x > 1 %}{% end %}')).toBe(`${SYN}'>' not supported between instances of 'NoneType' and 'int'`);
    expect(err('{% if length > 1 %}{% end %}')).toBe(`${SYN}length cannot be used as a variable name or as a function inside of a template`);
    expect(err('{% set x = y.foo %}', { y: '1' })).toBe(`${SYN}'str' object has no attribute 'foo'`);
  });

  it('error() and custom_error() are CustomTemplateErrors, not TemplateErrors', () => {
    expect(() => render("%{{ error('bad') }}", {})).toThrow(CustomTemplateError);
    expect(() => render("%{{ custom_error({'e': 1}, 418) }}", {})).toThrow(CustomTemplateError);
  });

  it('documentation links', () => {
    expect(errObj('{{ Int32(x) }}', { x: 'a' }).documentation).toBe('https://docs.tinybird.co/cli/advanced-templates.html');
    expect(errObj('{{ columns(x) }}').documentation).toBe('https://docs.tinybird.co/cli/advanced-templates.html#columns');
    expect(errObj('{{ split_to_array(x, 5) }}').documentation).toBe('https://docs.tinybird.co/cli/advanced-templates.html#split_to_array');
    expect(errObj('{% import os %}').documentation).toBe('https://docs.tinybird.co/cli/advanced-templates.html');
  });

  it('templateParams surfaces reader errors too', () => {
    expect(() => templateParams('% {% if x %}')).toThrow(TemplateError);
    expect(() => templateParams('% {{ eval(1) }}')).toThrow(`${SYN}Invalid function name: eval`);
  });
});
