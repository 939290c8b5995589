import { describe, expect, it } from 'vitest';
import { SchemaError } from './errors.js';
import { checkExpression, splitTopLevel, stripOuterParens, tokenizeSql } from './sql.js';

describe('splitTopLevel', () => {
  it('splits on top-level commas only', () => {
    expect(splitTopLevel("a, f(b, c), 'x,y', `q,r`, [1, 2], {'k': 1}")).toEqual(['a', 'f(b, c)', "'x,y'", '`q,r`', '[1, 2]', "{'k': 1}"]);
    expect(splitTopLevel('')).toEqual(['']);
    expect(splitTopLevel("'it\\'s, fine', b")).toEqual(["'it\\'s, fine'", 'b']);
  });
});

describe('stripOuterParens', () => {
  it('strips only a pair wrapping everything', () => {
    expect(stripOuterParens('(a, b)')).toBe('a, b');
    expect(stripOuterParens(' ( a ) ')).toBe('a');
    expect(stripOuterParens('(a), (b)')).toBe('(a), (b)');
    expect(stripOuterParens('f(a)')).toBe('f(a)');
    expect(stripOuterParens("(')')")).toBe("')'");
  });
});

describe('tokenizeSql', () => {
  it('recognises quotes, comments and numbers', () => {
    expect(
      tokenizeSql("a1 'x''y' `b` 1.5e3 -- c")
        .filter((t) => t.kind !== 'space')
        .map((t) => t.kind),
    ).toEqual(['ident', 'string', 'quoted', 'number', 'comment']);
    expect(() => tokenizeSql("'open")).toThrow(SchemaError);
  });
});

describe('checkExpression', () => {
  it('accepts ordinary expressions', () => {
    for (const e of [
      'a',
      'toYYYYMM(ts)',
      'ts + toIntervalDay(60)',
      "if(a = 'x;y', 1, 2)",
      'cityHash64(a, b) % 8',
      '(a, b)',
      "m['k']",
      'ts + INTERVAL 1 DAY DELETE WHERE a > 1',
      'settings',
      'intHash32(urlHash)',
      'fileSize',
    ])
      expect(checkExpression(` ${e} `, 'x'), e).toBe(e);
  });
  it('rejects dangerous or malformed expressions', () => {
    const cases: [string, RegExp][] = [
      ['', /empty expression/],
      ['a -- c', /comments are not allowed/],
      ['a /* c */', /comments are not allowed/],
      ['a; DROP TABLE t', /character ';' is not allowed/],
      ['$$x$$', /character '\$' is not allowed/],
      ['(SELECT 1)', /subqueries are not allowed/],
      ["a SETTINGS disk = 'x'", /SETTINGS are not allowed here/],
      ["file('/etc/passwd')", /function 'file' is not allowed/],
      ["FILE ('/etc/passwd')", /function 'FILE' is not allowed/],
      ["s3('http://x')", /function 's3' is not allowed/],
      ["remoteSecure('h', db.t)", /function 'remoteSecure' is not allowed/],
      ["joinGet('j', 'v', 1)", /function 'joinGet' is not allowed/],
      ['f(a', /unbalanced parentheses/],
      ['f(a))', /unbalanced parentheses/],
    ];
    for (const [e, re] of cases) expect(() => checkExpression(e, 'engine_ttl'), e).toThrow(re);
  });
});

describe('checkExpression shares the SQL policy', () => {
  it('refuses the reviewed deny-list and foreign databases', () => {
    for (const e of [
      "arrayStringConcat(arrayMap(file, ['/etc/passwd']))",
      "arrayMap(`file`, ['/x'])",
      '(SELECT 1 FROM w_x.t)',
      'x IN late_db.t',
      "getSetting('readonly')",
      'currentDatabase()',
      "hasColumnInTable('system', 'one', 'dummy')",
      'x IN system.one',
      'w_0123abcd.t.col = 1',
      '__getScalar(1)',
    ])
      expect(() => checkExpression(e, 'delete_condition'), e).toThrow(SchemaError);
    expect(checkExpression('t.col = 1 AND s.x > 0', 'delete_condition')).toBe('t.col = 1 AND s.x > 0');
  });
});
