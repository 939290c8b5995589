import { describe, expect, it } from 'vitest';
import { ident, name, sql, trusted } from './sql.js';

describe('sql`` for statements the server writes', () => {
  it('makes values literals and only Sql pieces text', () => {
    const evil = "x' OR 1=1 --\\";
    expect(sql`SELECT * FROM t WHERE a = ${evil} AND n = ${3} AND b = ${true} AND c = ${null}`.text).toBe(
      "SELECT * FROM t WHERE a = 'x\\' OR 1=1 --\\\\' AND n = 3 AND b = true AND c = NULL",
    );
    expect(sql`SELECT ${[ident('a`b'), ident('c')]} FROM ${name('w_1', 't_2')} WHERE x IN (${['p', 'q']}) AND ${trusted('y > 1')}`.text).toBe(
      "SELECT `a\\`b`, `c` FROM w_1.t_2 WHERE x IN ('p', 'q') AND y > 1",
    );
    expect(sql`A ${sql`B ${'c'}`}`.text).toBe("A B 'c'");
  });

  it('refuses names it can not leave bare, and non-finite numbers', () => {
    expect(name('w_1.t_2').text).toBe('w_1.t_2');
    expect(() => name('t; DROP TABLE x')).toThrow(/not a server-made name/);
    expect(() => name('a.b.c')).toThrow(/not a server-made name/);
    expect(() => sql`LIMIT ${Number.NaN}`).toThrow(/finite/);
  });
});
