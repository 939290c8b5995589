// Minimal ClickHouse SQL lexing shared by the schema and engine modules: quote-aware splitting
// and `checkExpression`, the guard for user expressions that end up in DDL (DEFAULT, keys, TTL,
// index expressions). It rejects unbalanced input, comments, statement separators and host-reaching functions.

import { SchemaError } from './errors.js';
import { deniedFunction, looksLikeDatabase } from '../sql/policy.js';
import { analyzeQuery, type SqlScope } from '../sql/analyzer.js';
import { PipitError } from '../basics/errors.js';

export type SqlTokenKind = 'ident' | 'quoted' | 'string' | 'number' | 'punct' | 'space' | 'comment';
export interface SqlToken {
  kind: SqlTokenKind;
  text: string;
  start: number;
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /(?:0x[0-9A-Fa-f]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/y;
const SPACE = /\s+/y;

/** Index just past the quoted literal starting at `start` (`'`, `"` or backtick); -1 if unterminated. */
export function skipQuoted(text: string, start: number): number {
  const q = text[start];
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === q) {
      if (text[i + 1] === q) i++;
      else return i + 1;
    }
  }
  return -1;
}

/** Tokenizes ClickHouse SQL; throws SchemaError on an unterminated quote. */
export function tokenizeSql(text: string, what = 'expression'): SqlToken[] {
  const out: SqlToken[] = [];
  let i = 0;
  const sticky = (re: RegExp): string | null => {
    re.lastIndex = i;
    const m = re.exec(text);
    return m ? m[0] : null;
  };
  while (i < text.length) {
    const c = text[i];
    let kind: SqlTokenKind;
    let end: number;
    let m: string | null;
    if (c === "'" || c === '"' || c === '`') {
      end = skipQuoted(text, i);
      if (end < 0) throw new SchemaError(`Invalid ${what}: unterminated quote in "${text}"`);
      kind = c === "'" ? 'string' : 'quoted';
    } else if (text.startsWith('--', i) || text.startsWith('/*', i)) {
      kind = 'comment';
      end = text.length;
    } else if ((m = sticky(SPACE))) {
      kind = 'space';
      end = i + m.length;
    } else if ((m = sticky(IDENT))) {
      kind = 'ident';
      end = i + m.length;
    } else if ((m = sticky(NUMBER))) {
      kind = 'number';
      end = i + m.length;
    } else {
      kind = 'punct';
      end = i + 1;
    }
    out.push({ kind, text: text.slice(i, end), start: i });
    i = end;
  }
  return out;
}

/** Splits on `sep` at nesting depth 0, outside quotes. Parts are trimmed. */
export function splitTopLevel(text: string, sep = ','): string[] {
  const parts: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`') {
      const end = skipQuoted(text, i);
      if (end < 0) break;
      i = end - 1;
    } else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === sep && depth === 0) {
      parts.push(text.slice(from, i).trim());
      from = i + 1;
    }
  }
  parts.push(text.slice(from).trim());
  return parts;
}

/** Strips one pair of parentheses wrapping the whole text: `(a, b)` → `a, b`. */
export function stripOuterParens(text: string): string {
  const t = text.trim();
  if (!t.startsWith('(') || !t.endsWith(')')) return t;
  let depth = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (c === "'" || c === '"' || c === '`') {
      const end = skipQuoted(t, i);
      if (end < 0) return t;
      i = end - 1;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0 && i !== t.length - 1) return t;
  }
  return t.slice(1, -1).trim();
}

const NO_DATABASES: ReadonlySet<string> = new Set();

/**
 * Functions that read or write outside the engine (host files, network, other tables). chDB runs
 * in local mode, so e.g. `DEFAULT file('/etc/passwd')` really reads the host file.
 */
const DENIED_FUNCTION =
  /^(file|url|urlcluster|s3|s3cluster|s3queue|gcs|oss|cosn|hdfs|hdfscluster|azureblobstorage|azureblobstoragecluster|remote|remotesecure|cluster|clusterallreplicas|mysql|postgresql|sqlite|mongodb|redis|jdbc|odbc|executable|executablepool|input|dictionary|merge|loop|joinget|joingetornull|dictget\w*|dicthas|dictisin|filesystem\w*|iceberg\w*|deltalake\w*|hudi\w*|paimon\w*|ytsaurus|arrowflight|getsetting|getserversetting|getmacro|currentuser|hostname|fqdn)$/i;

/**
 * Validates a user SQL expression that will be pasted into DDL. `what` names it in messages
 * (e.g. `engine_sorting_key`). Throws SchemaError; returns the trimmed expression.
 */
export function checkExpression(expr: string, what: string): string {
  const text = expr.trim();
  if (!text) throw new SchemaError(`Invalid ${what}: empty expression`);
  const tokens = tokenizeSql(text, what).filter((t) => t.kind !== 'space');
  let depth = 0;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    if (t.kind === 'comment') throw new SchemaError(`Invalid ${what} "${text}": comments are not allowed`);
    if (t.kind === 'punct') {
      if ('([{'.includes(t.text)) depth++;
      else if (')]}'.includes(t.text) && --depth < 0) break;
      else if (';#$\\@'.includes(t.text)) throw new SchemaError(`Invalid ${what} "${text}": character '${t.text}' is not allowed`);
    }
    if (t.kind === 'ident') {
      const next = tokens[k + 1];
      const upper = t.text.toUpperCase();
      const prev = tokens[k - 1];
      if (next?.text === '.' && prev?.text !== '.' && looksLikeDatabase(t.text, NO_DATABASES))
        throw new SchemaError(`Invalid ${what} "${text}": the database '${t.text}' is not accessible`);
      if (upper === 'SELECT') throw new SchemaError(`Invalid ${what} "${text}": subqueries are not allowed`);
      if (upper === 'SETTINGS' && next?.kind === 'ident' && tokens[k + 2]?.text === '=')
        throw new SchemaError(`Invalid ${what} "${text}": SETTINGS are not allowed here`);
      if (next?.text === '(' && (DENIED_FUNCTION.test(t.text) || deniedFunction(t.text)))
        throw new SchemaError(`Invalid ${what} "${text}": function '${t.text}' is not allowed`);
    }
  }
  if (depth !== 0) throw new SchemaError(`Invalid ${what} "${text}": unbalanced parentheses`);
  // The same walk as user queries: denied functions also when passed by name (APPLY(file),
  // arrayMap(file, ...)), no other databases, no table functions, no subqueries that read tables.
  try {
    analyzeQuery(`SELECT ${text}`, NO_TABLES, { settingsAsName: true });
  } catch (err) {
    if (err instanceof PipitError) throw new SchemaError(`Invalid ${what} "${text}": ${err.message.replace(/^Syntax error: /, '')}`);
    throw err;
  }
  return text;
}

/** Expressions in DDL read no tables. */
const NO_TABLES: SqlScope = { resolve: () => undefined, databases: new Set() };
