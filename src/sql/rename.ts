/**
 * Renaming a data source rewrites the SQL of the nodes that read it (ids stay stable, names are
 * what users write). The analyzer finds exactly where table names sit, so only real references
 * change — not columns, aliases, CTEs or string literals that happen to spell the same word.
 */
import { isTemplate } from '../template/index.js';
import { analyzeQuery, type SqlScope } from './analyzer.js';

/** Every name resolves: the walk only needs to know where table names are. */
const ANY: SqlScope = { resolve: (name) => ({ name, kind: 'datasource', id: '', sql: 'x' }), databases: new Set() };

/**
 * The SQL with references to `from` (and `from_quarantine`) renamed to `to`; null when it can
 * not be rewritten safely (templates, whose SQL only exists once rendered).
 */
export function renameTableInSql(sql: string, from: string, to: string): string | null {
  if (isTemplate(sql)) return null;
  const { refs } = analyzeQuery(sql, ANY);
  const hits = refs.filter((r) => r.name === from || r.name === `${from}_quarantine`).sort((a, b) => b.start - a.start);
  let out = sql;
  for (const h of hits) {
    const renamed = h.name === from ? to : `${to}_quarantine`;
    // Columns qualified by the old name (`events.x`) keep working through an alias.
    const qualified = new RegExp(`(^|[^A-Za-z0-9_])\`?${h.name}\`?\\s*\\.`).test(sql);
    out = out.slice(0, h.start) + (h.unaliased && qualified ? `${renamed} AS ${h.name}` : renamed) + out.slice(h.end);
  }
  return out;
}
