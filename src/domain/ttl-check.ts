/**
 * A TTL must not delete a row the moment it is written. The case that bites: `ts + toIntervalYear(100)`
 * on a `DateTime` column passes 2106-02-07, where DateTime wraps around to the past, so every appended
 * row is acknowledged and then deleted by the engine (neither in the table nor in quarantine). Each
 * rule's time expression is evaluated in the engine for one row whose date and time columns hold
 * now() (the others their type's default); a rule that is already past for that row is refused.
 */
import { quoteIdent, quoteString, type Engine } from '../engine/engine.js';
import { badRequest } from '../basics/errors.js';
import { splitTopLevel } from '../schema/sql.js';
import type { Column } from '../basics/types.js';

/** Words that end a TTL rule's time expression (`expr [DELETE|RECOMPRESS|TO DISK|GROUP BY|SET ...] [WHERE ...]`). */
const RULE_TAIL = /^(DELETE|RECOMPRESS|TO|GROUP|WHERE|SET)\b/i;

/** The time expression of one TTL rule: its text up to the first top-level clause keyword. */
export function ttlTimeExpression(rule: string): string {
  let depth = 0;
  for (let i = 0; i < rule.length; i++) {
    const c = rule[i];
    if (c === "'" || c === '"' || c === '`') {
      const close = rule.indexOf(c, i + 1);
      if (close < 0) break;
      i = close;
    } else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (depth === 0 && /\s/.test(c) && RULE_TAIL.test(rule.slice(i + 1))) return rule.slice(0, i).trim();
  }
  return rule.trim();
}

const isTimeType = (type: string) => /^(?:Nullable\(|LowCardinality\()*(?:Date|DateTime)/.test(type);

/** Refuses (400) a TTL one of whose rules is already past for a row written now. */
export async function checkTtlKeepsNewRows(engine: Engine, columns: readonly Column[], ttl: string): Promise<void> {
  const exprs = splitTopLevel(ttl).map(ttlTimeExpression).filter(Boolean);
  if (!exprs.length || !columns.length) return;
  const row = columns.map(
    (c) => `CAST(${isTimeType(c.type) ? 'now()' : `defaultValueOfTypeName(${quoteString(c.type)})`} AS ${c.type}) AS ${quoteIdent(c.name)}`,
  );
  // Through DateTime64 (ms): a Date or DateTime64 result beyond 2106 stays what it is; a DateTime that wrapped stays wrapped.
  const sql = `SELECT ${exprs.map((e, i) => `toUnixTimestamp64Milli(toDateTime64(${e}, 3)) AS t${i}`).join(', ')}, toUnixTimestamp64Milli(now64(3)) AS now FROM (SELECT ${row.join(', ')})`;
  let values: Record<string, number | string>;
  try {
    [values] = await engine.rows<Record<string, number | string>>(sql);
  } catch {
    return; // an expression the engine can not evaluate this way: the DDL itself judges it
  }
  if (!values) return;
  const now = Number(values.now);
  exprs.forEach((e, i) => {
    const t = Number(values[`t${i}`]);
    if (Number.isFinite(t) && t < now) {
      throw badRequest(
        `The TTL "${e}" would delete every row as soon as it is written: for a row written now it is ${new Date(t).toISOString().replace('.000Z', 'Z')}, already past. A DateTime can not go beyond 2106-02-07 (it wraps around): use a DateTime64 column or a shorter interval`,
      );
    }
  });
}
