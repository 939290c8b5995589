// Prints a Data Source as a `.datasource` datafile (reference §11.2), the text served by
// `GET /v0/datasources/:name.datasource`. Pure formatting: it never rejects; inputs are assumed
// to be already validated by the schema/engine parsers.

import type { Column, EngineSpec, IndexSpec } from '../types.js';
import { ENGINE_PARAM_ORDER, formatIndex, takesSortingKey } from './engine.js';
import { printColumn } from './schema.js';

export interface DatasourceFileInput {
  description?: string | null;
  columns: readonly Column[];
  engine: EngineSpec;
  indexes?: readonly IndexSpec[];
}

const INDENT = '    ';

/** Datafile value in double quotes (newlines folded, `\` and `"` escaped for the shell-like reader). */
function quoted(value: string): string {
  return `"${value.replace(/\s*\r?\n\s*/g, ' ').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function printDatasourceFile({ description, columns, engine, indexes }: DatasourceFileInput): string {
  const blocks: string[] = [];
  const desc = description?.trim();
  if (desc) blocks.push(`DESCRIPTION >\n${desc.split(/\r?\n/).map((l) => (l.trim() ? INDENT + l : '')).join('\n')}`);
  blocks.push(`SCHEMA >\n${columns.map((c) => INDENT + printColumn(c)).join(',\n')}`);
  if (indexes?.length) blocks.push(`INDEXES >\n${indexes.map((i) => INDENT + formatIndex(i)).join('\n')}`);
  const engineLines = [`ENGINE ${quoted(engine.engine)}`];
  for (const key of ENGINE_PARAM_ORDER) {
    // Like Tinybird's pulled files: a MergeTree without a sorting key says so (`tuple()`).
    const value = engine.params[key] || (key === 'sorting_key' && takesSortingKey(engine.engine) ? 'tuple()' : '');
    if (value) engineLines.push(`ENGINE_${key.toUpperCase()} ${quoted(value)}`);
  }
  blocks.push(engineLines.join('\n'));
  return `${blocks.join('\n\n')}\n`;
}
