import { describe, expect, it } from 'vitest';
import { escapeIdentifier, escapeStringExpression } from './escape.js';
import { render, TemplateError } from './index.js';
import { custom, err, r, SYN } from './test-helpers.js';

/** Length of the ClickHouse string literal starting at s[i] (which must be a quote), or -1 if unterminated. */
function literalEnd(s: string, i: number, quote = "'"): number {
  if (s[i] !== quote) return -1;
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '\\') {
      j++;
      continue;
    }
    if (s[j] === quote) {
      if (s[j + 1] === quote) {
        j++;
        continue;
      }
      return j + 1;
    }
  }
  return -1;
}

/** True when `sql` is exactly one literal. */
function isOneLiteral(sql: string, quote = "'"): boolean {
  return literalEnd(sql, 0, quote) === sql.length;
}

/** Removes every string literal; what remains must only be structure. */
function stripLiterals(sql: string): string {
  let out = '';
  for (let i = 0; i < sql.length; i++) {
    if (sql[i] === "'") {
      const end = literalEnd(sql, i);
      if (end === -1) return out + '<UNTERMINATED>';
      i = end - 1;
      out += 'S';
    } else out += sql[i];
  }
  return out;
}

const HOSTILE = [
  "'",
  "';drop table users;",
  "\\'",
  '\\',
  'a\\',
  "\\\\'",
  "''",
  '"',
  '`',
  '%',
  '_',
  '\n',
  '\r\n',
  '\t',
  '\b',
  '\0',
  '\x1a',
  "x' OR '1'='1",
  "x\\' OR 1=1 --",
  "') UNION SELECT * FROM system.users --",
  '{{ 1 }}',
  '{% import os %}',
  'ümlaut ✓ 😀 日本',
  '\u2028\u2029',
  "\u0000'\u0000",
];

function randomString(seed: number): string {
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  const alphabet = ["'", '"', '\\', '`', '%', '\n', '\r', '\t', '\b', '\0', '\x1a', 'a', ' ', ',', ';', '-', '(', ')', 'é', '😀'];
  let s = '';
  const n = Math.floor(rnd() * 12);
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
  return s;
}

const VALUES = [...HOSTILE, ...Array.from({ length: 300 }, (_, i) => randomString(i + 1))];

describe('escaping rules (§6.5)', () => {
  it('maps every special character', () => {
    expect(escapeStringExpression('\0\r\b\t\x1a\n"\'\\%`')).toBe('\\0\\r\\b\\t\\z\\n\\"\\\'\\\\\\%\\`');
    expect(escapeIdentifier('\0\r\b\t\x1a\n"\'\\%`')).toBe("\\0\\r\\b\\t\\z\\n\\'\\\\\\%\\`");
  });

  it('renders the reference example', () => {
    expect(r('{{ x }}', { x: "';drop table users;" })).toBe("'\\';drop table users;'");
    expect(r('{{ String(x) }}', { x: 'action."test run"' })).toBe('\'action.\\"test run\\"\'');
  });

  it.each(HOSTILE.map((v) => [JSON.stringify(v), v]))('a hostile value %s stays one literal', (_n, v) => {
    for (const tpl of ['{{ x }}', '{{ String(x) }}', "{{ String(x, 'd') }}", "{{ sql_unescape(String(x), '%') }}", '{{ x + "" }}']) {
      const out = r(tpl, { x: v });
      expect(isOneLiteral(out), `${tpl} with ${JSON.stringify(v)} gave ${JSON.stringify(out)}`).toBe(true);
    }
  });

  it('no value (fixed or random) can end a literal early, in any construct', () => {
    for (const v of VALUES) {
      const params = { x: v, xs: [v, v], j: JSON.stringify({ k: v, l: [v] }) };
      for (const tpl of [
        '{{ x }}',
        '{{ String(x) }}',
        '{{ Array(xs) }}',
        '{{ Array(x) }}',
        "{{ Array(xs, 'String') }}",
        '{{ xs }}',
        '{{ split_to_array(x) }}',
      ]) {
        const out = r(tpl, params);
        const structure = stripLiterals(out);
        expect(structure, `${tpl} with ${JSON.stringify(v)} gave ${JSON.stringify(out)}`).toMatch(/^[S[\], ]*$/);
      }
      const dict = stripLiterals(r('{{ JSON(j) }}', params));
      expect(dict, JSON.stringify(v)).toMatch(/^[S[\]{}:, ]*$/);
      const and = stripLiterals(r('{{ sql_and(a=x, b__in=Array(xs)) }}', params));
      expect(and, JSON.stringify(v)).toMatch(/^a = S and b in \[S(,S)*\]$/);
      const dt = r('{{ DateTime(d) }}', { d: '2024-01-01 00:00:00' + v });
      expect(isOneLiteral(dt), JSON.stringify(dt)).toBe(true);
    }
  });

  it('identifiers from values stay one quoted identifier', () => {
    for (const v of VALUES) {
      if (v === '') continue;
      const col = r('{{ column(x) }}', { x: v.replace(/\./g, '') });
      expect(isOneLiteral(col, '`'), JSON.stringify(col)).toBe(true);
      const sym = r('{{ symbol(x) }}', { x: v });
      expect(isOneLiteral(sym, '`'), JSON.stringify(sym)).toBe(true);
      const dq = r(`{{ symbol(x, '"') }}`, { x: v });
      expect(isOneLiteral(dq, '"'), JSON.stringify(dq)).toBe(true);
      const cols = r('{{ columns(x) }}', { x: v.replace(/[.,]/g, '') || 'a' });
      expect(isOneLiteral(cols, '`'), JSON.stringify(cols)).toBe(true);
    }
  });

  it('table() accepts only plain names', () => {
    for (const v of VALUES) {
      try {
        const out = r('{{ table(x) }}', { x: v });
        expect(out).toMatch(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/);
      } catch (e) {
        expect(e).toBeInstanceOf(TemplateError);
      }
    }
  });

  it('comments from max_threads/backend_hint never span lines', () => {
    for (const v of VALUES) {
      const out = r('{{ max_threads(x) }}{{ backend_hint(x) }}', { x: v });
      expect(
        out
          .split('\n')
          .filter(Boolean)
          .every((l) => l.startsWith('-- ')),
      ).toBe(true);
    }
  });

  it('exception messages written into SQL are literals', () => {
    for (const v of HOSTILE) {
      const out = r('{% try %}{{ Int32(x) }}{% except Exception as e %}{{ e }}{% end %}', { x: v });
      expect(isOneLiteral(out), JSON.stringify(out)).toBe(true);
    }
  });

  it('sql_unescape refuses to unescape quotes or backslashes', () => {
    for (const v of VALUES) {
      for (const what of ['', "'", '\\']) {
        try {
          const out = render(`%{{ sql_unescape(String(x), ${JSON.stringify(what)}) }}`, { x: v }).sql;
          expect(isOneLiteral(out), JSON.stringify({ v, what, out })).toBe(true);
        } catch (e) {
          expect((e as Error).message).toContain('sql_unescape() cannot unescape');
        }
      }
    }
  });

  it('template syntax inside values is never interpreted', () => {
    expect(r('{{ x }}', { x: '{{ eval(1) }}{% import os %}' })).toBe("'{{ eval(1) }}{\\% import os \\%}'");
  });

  it('parameter names cannot reach functions', () => {
    expect(r("{{ String('x') }}", { String: 'hacked' })).toBe("'x'");
    expect(r('{{ defined(a) }}', { defined: 'hacked', a: '1' })).toBe('True');
    expect(err("{{ eval('x') }}", { eval: 'x' })).toBe(`${SYN}Invalid function name: eval`);
  });
});

describe('resource limits', () => {
  it('caps loop iterations', () => {
    expect(err('{% for i in range(200000) %}{% end %}')).toBe(`${SYN}the template exceeded the limit of 100000 loop iterations`);
    expect(err('{% while True %}{% end %}')).toBe(`${SYN}the template exceeded the limit of 100000 loop iterations`);
    expect(err('{% for i in range(1000) %}{% for j in range(1000) %}{% end %}{% end %}')).toBe(
      `${SYN}the template exceeded the limit of 100000 loop iterations`,
    );
    expect(err('{% set x = [i for i in range(10**9)] %}')).toBe(`${SYN}the template exceeded the limit of 100000 loop iterations`);
  });

  it('caps the output size', () => {
    expect(err("{% set s = 'x' * 1000000 %}{% for i in range(20) %}{{ s }}{% end %}")).toBe(`${SYN}the rendered SQL is larger than 10 MB`);
  });

  it('caps strings, sequences and integers built by expressions', () => {
    expect(err("{{ 'x' * 100000000 }}")).toBe(`${SYN}the template built a string larger than 10 MB`);
    expect(err('{{ [1] * 100000000 }}')).toBe(`${SYN}the template built a sequence of more than 1000000 items`);
    expect(err('{% set x = list(range(10**8)) %}')).toBe(`${SYN}the template built a sequence of more than 1000000 items`);
    expect(err('{% set x = 10 ** 100000 %}')).toBe(`${SYN}integer too large (more than 4096 bits)`);
    expect(err('{% set x = 1 << 100000 %}')).toBe(`${SYN}integer too large (more than 4096 bits)`);
    expect(err('{% set b = 2 ** 4000 %}{% set x = b ** 4000 %}')).toBe(`${SYN}integer too large (more than 4096 bits)`);
    expect(err("{% set s = 'a' * 5000 %}{% set t = s.replace('a', s) %}")).toBe(`${SYN}the template built a string larger than 10 MB`);
  });

  it('bounds date parsing work', () => {
    const fmt = '%m'.repeat(40);
    expect(
      r(
        `{% set d = date_diff_in_days('1'.repeat(80), '1', '${fmt}', none_if_error=True) %}{{ d is None }}`
          .replace("'1'.repeat(80)", `'${'1'.repeat(80)}'`)
          .replace('{{ d is None }}', '{% if d is None %}none{% end %}'),
      ),
    ).toBe('none');
  });

  it('custom_error bodies are plain data', () => {
    const e = custom("{{ custom_error({'__proto__': {'polluted': 1}, 'error': 'x'}, 400) }}");
    expect(Object.getPrototypeOf(e.body)).toBe(Object.prototype);
    expect((e.body as Record<string, unknown>).error).toBe('x');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('caps nesting depth', () => {
    expect(err('{{ ' + '('.repeat(150) + '1' + ')'.repeat(150) + ' }}')).toBe(`${SYN}too many nested parentheses`);
    expect(err('{% if 1 %}'.repeat(150) + '{% end %}'.repeat(150))).toBe(`${SYN}too many nested blocks`);
    expect(err('{{ ' + '-'.repeat(300) + '1 }}')).toBe(`${SYN}too many nested parentheses`);
  });

  it('limit errors cannot be swallowed by try/except', () => {
    expect(err('{% try %}{% for i in range(200000) %}{% end %}{% except %}caught{% end %}')).toBe(
      `${SYN}the template exceeded the limit of 100000 loop iterations`,
    );
  });

  it('each render gets a fresh budget', () => {
    for (let i = 0; i < 3; i++) expect(r('{% for i in range(90000) %}{% end %}ok')).toBe('ok');
  });
});
