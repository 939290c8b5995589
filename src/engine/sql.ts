/**
 * Statements the server writes (DDL, inserts, system-table reads), built with one tagged template
 * so that safety does not depend on every caller remembering to quote. In sql`...` a plain string
 * becomes a quoted string literal, a number a numeric literal, an array a comma-separated list;
 * only `Sql` pieces (made here) are inserted as text. Refuses non-finite numbers, and names that
 * `name()` can not leave bare.
 *
 * @example
 * sql`ALTER TABLE ${name(db, table)} DELETE WHERE ${trusted(condition)} AND id = ${id}`.text
 * // → "ALTER TABLE w_1.t_2 DELETE WHERE <condition> AND id = 'x\'y'"
 * sql`SELECT ${[ident('a b'), ident('c')]} FROM t`.text // → 'SELECT `a b`, `c` FROM t'
 */
import { quoteIdent, quoteString } from './engine.js';

/** A piece of SQL text the server vouches for. */
export class Sql {
  constructor(readonly text: string) {}

  toString(): string {
    return this.text;
  }
}

export type SqlValue = Sql | string | number | bigint | boolean | null;

function piece(v: SqlValue | readonly SqlValue[]): string {
  if (Array.isArray(v)) return v.map((x) => piece(x)).join(', ');
  if (v instanceof Sql) return v.text;
  if (v === null) return 'NULL';
  if (typeof v === 'string') return quoteString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`not a finite number in SQL: ${v}`);
  return String(v);
}

/** Builds a statement: values become literals, `Sql` pieces text (see the module comment). */
export function sql(strings: TemplateStringsArray, ...values: Array<SqlValue | readonly SqlValue[]>): Sql {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1];
  return new Sql(out);
}

/** An identifier, always back-quoted: a column or any user-chosen name. */
export const ident = (name: string): Sql => new Sql(quoteIdent(name));

/**
 * A server-made name (`w_<ws>`, `t_<id>`, `db.table`) left bare, as chDB's insert API and the
 * engine's messages (translated back to user names) expect; refuses anything but [A-Za-z0-9_].
 */
export function name(...parts: string[]): Sql {
  for (const p of parts) if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(p)) throw new Error(`not a server-made name: ${JSON.stringify(p)}`);
  return new Sql(parts.join('.'));
}

/**
 * Text that was checked or built elsewhere and is SQL already: a node's analyzed and rewritten
 * SELECT, a checked condition, a parsed column type, a setting list. The call marks the trust.
 */
export const trusted = (text: string): Sql => new Sql(text);
