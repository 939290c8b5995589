// Tinybird schema strings (reference §2.3): `name Type [DEFAULT|MATERIALIZED|ALIAS expr] [CODEC(..)]
// [`json:$.path`], ...` ⇄ Column[], plus the column JSON of API responses. Rejects syntax errors
// (with Tinybird's echoed line + caret), bad/duplicated/reserved names, >500 columns, bad types and JSONPaths.

import type { Column, IndexSpec } from '../basics/types.js';
import { parseIndexes } from './engine.js';
import { SchemaError } from './errors.js';
import { isNullable, parseType, printType, TypeSyntaxError, type TypeNode } from './types.js';
import { checkExpression, skipQuoted } from './sql.js';
import { MAX_NAME_LENGTH } from './names.js';

export const MAX_COLUMNS = 500;
const COLUMN_NAME = /^[a-zA-Z_][.0-9a-zA-Z_]*$/;
const SYNTAX = 'wrong value, please check the schema syntax';

/** Words that end a column type (`INT UNSIGNED` is a type; `DEFAULT` starts the next clause). */
const TYPE_STOP = new Set(['DEFAULT', 'MATERIALIZED', 'ALIAS', 'EPHEMERAL', 'CODEC', 'TTL', 'NULL', 'NOT', 'COMMENT']);
/** Characters allowed outside quotes, per part (Tinybird rejects anything else with a caret). */
const TYPE_CHARS = /[A-Za-z0-9_\s(),.=+-]/;
const EXPR_CHARS = /[A-Za-z0-9_\s.*<>+\-[\](),=!?:/%{}|]/;
const CODEC_CHARS = /[A-Za-z0-9_\s(),.+-]/;

/** Parses a schema into columns; see `parseSchemaWithIndexes` for `INDEX` entries inside it. */
export function parseSchema(text: string): Column[] {
  return parseSchemaWithIndexes(text).columns;
}

/** Like `parseSchema`, also returning `INDEX name expr TYPE t GRANULARITY n` entries found in the schema. */
export function parseSchemaWithIndexes(text: string): { columns: Column[]; indexes: IndexSpec[] } {
  const parsed = new SchemaScanner(text).parse();
  const columns = parsed.columns;
  if (columns.length > MAX_COLUMNS) throw new SchemaError(`The maximum number of columns allowed is ${MAX_COLUMNS}.`);
  const seen = new Map<string, number>();
  columns.forEach((c, i) => {
    if (c.name.toLowerCase() === 'index') throw new SchemaError(`Invalid column name '${c.name}' at position ${i + 1}, 'index' is a reserved keyword`);
    if (c.name.length > MAX_NAME_LENGTH)
      throw new SchemaError(`Invalid column name at position ${i + 1}: it is ${c.name.length} characters long, the limit is ${MAX_NAME_LENGTH}.`);
    if (!COLUMN_NAME.test(c.name))
      throw new SchemaError(
        `Invalid column name '${c.name}' at position ${i + 1}. Column names must start with a letter or an underscore and contain only letters, numbers, underscores and dots.`,
      );
    const prev = seen.get(c.name);
    if (prev !== undefined) throw new SchemaError(`Column with name '${c.name}' is duplicated at positions ${prev + 1} and ${i + 1}`);
    seen.set(c.name, i);
  });
  return { columns, indexes: parseIndexes(parsed.indexes.join('\n')) };
}

class SchemaScanner {
  /** The text with `--` comments blanked out (same length, so positions match the original). */
  private readonly src: string;
  private pos = 0;

  constructor(private readonly original: string) {
    this.src = blankComments(original);
  }

  parse(): { columns: Column[]; indexes: string[] } {
    const columns: Column[] = [];
    const indexes: string[] = [];
    for (this.ws(); this.pos < this.src.length; this.ws()) {
      const index = this.indexEntry();
      if (index !== null) indexes.push(index);
      else columns.push(this.column());
      this.ws();
      if (this.pos < this.src.length) {
        if (this.src[this.pos] !== ',') throw this.error(this.pos);
        this.pos++;
      }
    }
    return { columns, indexes };
  }

  /** `INDEX name expr TYPE ...` inside the schema (upper-case INDEX, as Tinybird's parser). */
  private indexEntry(): string | null {
    const m = /^INDEX\s+[A-Za-z_]/.exec(this.src.slice(this.pos, this.pos + 8));
    if (!m) return null;
    const start = this.pos;
    const end = this.scan(this.pos, (i, depth) => depth === 0 && this.src[i] === ',', /[\s\S]/);
    if (!/\bTYPE\b/i.test(this.src.slice(start, end))) return null;
    this.pos = end;
    return this.src.slice(start, end).trim();
  }

  private column(): Column {
    const name = this.name();
    this.ws();
    const typeStart = this.pos;
    const typeEnd = this.scan(this.pos, (i, depth) => depth === 0 && this.atTypeStop(i, typeStart), TYPE_CHARS);
    const typeText = this.src.slice(typeStart, typeEnd).trim();
    if (!typeText) throw this.error(typeStart);
    let node: TypeNode;
    try {
      node = parseType(typeText);
    } catch (e) {
      throw e instanceof TypeSyntaxError ? this.error(typeStart + e.offset) : e;
    }
    const type = printType(node);
    this.pos = typeEnd;

    let defaultValue: string | null = null;
    let codec: string | null = null;
    let jsonpath: string | null = null;
    for (this.ws(); this.pos < this.src.length && this.src[this.pos] !== ','; this.ws()) {
      const at = this.pos;
      if (this.src.slice(at, at + 6).toLowerCase() === '`json:') {
        if (jsonpath !== null) throw this.error(at);
        const end = this.src.indexOf('`', at + 6);
        if (end < 0) throw this.error(this.src.length);
        jsonpath = validateJsonPath(this.src.slice(at + 6, end).trim());
        this.pos = end + 1;
        continue;
      }
      const word = /^[A-Za-z]+/.exec(this.src.slice(at, at + 20))?.[0].toUpperCase() ?? '';
      if (word === 'DEFAULT' || word === 'MATERIALIZED' || word === 'ALIAS') {
        if (defaultValue !== null || codec !== null) throw this.error(at);
        this.pos += word.length;
        this.ws();
        const start = this.pos;
        const end = this.scan(start, (i, depth) => depth === 0 && this.atExprStop(i), EXPR_CHARS);
        const expr = collapseSpaces(this.src.slice(start, end));
        if (!expr) throw this.error(end);
        checkExpression(expr, `${word} expression of column '${name}'`);
        defaultValue = `${word} ${expr}`;
        this.pos = end;
      } else if (word === 'CODEC') {
        if (codec !== null) throw this.error(at);
        this.pos += word.length;
        this.ws();
        if (this.src[this.pos] !== '(') throw this.error(this.pos);
        const open = this.pos;
        const end = this.scan(open, (i, depth) => i > open && depth === 0, CODEC_CHARS);
        codec = `CODEC${collapseSpaces(this.src.slice(this.pos, end))}`;
        this.pos = end;
      } else if (word === 'TTL') {
        throw this.error(at, 'column TTL not supported');
      } else if (word === 'NULL' || word === 'NOT') {
        throw this.error(at, `${word === 'NOT' ? 'NOT NULL' : 'NULL'} column syntax not supported`);
      } else {
        throw this.error(at);
      }
    }
    const nullable = isNullable(node);
    if (nullable && defaultValue?.toUpperCase() === 'DEFAULT NULL') defaultValue = null;
    return { name, type, nullable, defaultValue, codec, jsonpath };
  }

  private name(): string {
    const start = this.pos;
    if (this.src[start] === '`') {
      const end = this.src.indexOf('`', start + 1);
      if (end < 0) throw this.error(this.src.length);
      this.pos = end + 1;
      return this.src.slice(start + 1, end);
    }
    while (this.pos < this.src.length && !/[\s,]/.test(this.src[this.pos])) {
      if (!/[A-Za-z0-9_.]/.test(this.src[this.pos])) throw this.error(this.pos);
      this.pos++;
    }
    if (this.pos === start) throw this.error(start);
    return this.src.slice(start, this.pos);
  }

  /**
   * Scans from `start` over balanced parentheses/brackets and quoted literals until `stop(i, depth)`
   * holds (or the end). Characters outside quotes must match `allowed`. Returns the stop index.
   */
  private scan(start: number, stop: (i: number, depth: number) => boolean, allowed: RegExp): number {
    let depth = 0;
    let i = start;
    while (i < this.src.length) {
      if (stop(i, depth)) return i;
      const c = this.src[i];
      if (c === "'" || c === '"' || c === '`') {
        const end = skipQuoted(this.src, i);
        if (end < 0) throw this.error(i);
        i = end;
        continue;
      }
      if (c === '(' || c === '[' || c === '{') depth++;
      else if (c === ')' || c === ']' || c === '}') {
        if (--depth < 0) throw this.error(i);
      } else if (!allowed.test(c)) throw this.error(i);
      i++;
    }
    if (depth !== 0) throw this.error(i);
    return i;
  }

  private atTypeStop(i: number, typeStart: number): boolean {
    const c = this.src[i];
    if (c === ',' || c === '`') return true;
    if (i === typeStart || !/\s/.test(this.src[i - 1])) return false;
    const word = /^[A-Za-z]+(?![A-Za-z0-9_])/.exec(this.src.slice(i, i + 20))?.[0].toUpperCase();
    return word !== undefined && TYPE_STOP.has(word);
  }

  private atExprStop(i: number): boolean {
    const c = this.src[i];
    if (c === ',') return true;
    if (c === '`') return this.src.slice(i, i + 6).toLowerCase() === '`json:';
    if (!/\s/.test(this.src[i - 1] ?? ' ')) return false;
    return /^(CODEC\s*\(|(TTL|DEFAULT|MATERIALIZED|ALIAS)(?![A-Za-z0-9_]))/i.test(this.src.slice(i, i + 14));
  }

  private ws(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos])) this.pos++;
  }

  /** Tinybird's positioned error: hint, the offending line, and a caret under the character. */
  private error(at: number, hint = SYNTAX): SchemaError {
    const lineStart = this.original.lastIndexOf('\n', at - 1) + 1;
    let lineEnd = this.original.indexOf('\n', at);
    if (lineEnd < 0) lineEnd = this.original.length;
    const line = this.original.slice(lineStart, lineEnd).replace(/\r$/, '');
    const col = at - lineStart;
    const ch = this.original[at];
    const found = ch === undefined ? 'EOF' : ch === "'" ? `"'"` : `'${ch === '\n' ? '\\n' : ch === '\t' ? '\\t' : ch}'`;
    return new SchemaError(`${hint}\n${line}\n${' '.repeat(col)}^--- found ${found} at position ${col + 1}`);
  }
}

/**
 * `text` rebuilt: quoted runs copied as they are, and at each other position what `unquoted`
 * makes of it (the text to append, the characters consumed, at least one).
 */
function rewriteUnquoted(text: string, unquoted: (i: number, out: string) => [string, number]): string {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`') {
      const end = skipQuoted(text, i);
      const stop = end < 0 ? text.length : end;
      out += text.slice(i, stop);
      i = stop;
    } else {
      const [add, n] = unquoted(i, out);
      out += add;
      i += n;
    }
  }
  return out;
}

/** Replaces `--` comments (outside quotes) with spaces, keeping every position. */
function blankComments(text: string): string {
  return rewriteUnquoted(text, (i) => {
    if (text[i] !== '-' || text[i + 1] !== '-') return [text[i], 1];
    const nl = text.indexOf('\n', i);
    const n = (nl < 0 ? text.length : nl) - i;
    return [' '.repeat(n), n];
  });
}

/** Collapses whitespace runs outside quotes to one space and trims. */
function collapseSpaces(text: string): string {
  return rewriteUnquoted(text, (i, out) => [/\s/.test(text[i]) ? (out.endsWith(' ') ? '' : ' ') : text[i], 1]).trim();
}

/**
 * Validates a Tinybird JSONPath: `$` followed by `.key`, `['key']`, `["key"]` or `[:]` segments.
 * Returns it unchanged; throws `Invalid JSONPath: '<p>'`.
 */
export function validateJsonPath(path: string): string {
  const ok = /^\$(?:\.[^.[\]\s`'"]+|\['(?:[^'\\]|\\.)+'\]|\["(?:[^"\\]|\\.)+"\]|\[:\])*$/.test(path);
  if (!ok) throw new SchemaError(`Invalid JSONPath: '${path}'`);
  return path;
}

/** `Nullable(T)` → `T`; other types unchanged (Tinybird reports nullability separately). */
function stripNullable(type: string): string {
  const m = /^Nullable\(([\s\S]*)\)$/.exec(type);
  return m ? m[1] : type;
}

/** One column in the `sql_schema` form: `` `a` Nullable(Int32) `json:$.a` DEFAULT 1 CODEC(ZSTD(1)) ``. */
export function printColumn(c: Column): string {
  return [`\`${c.name}\``, c.type, c.jsonpath !== null ? `\`json:${c.jsonpath}\`` : null, c.defaultValue, c.codec].filter((p) => p !== null).join(' ');
}

/** The `sql_schema` string of a Data Source (jsonpath before DEFAULT, as Tinybird prints it). */
export function printSchema(columns: readonly Column[]): string {
  return columns.map(printColumn).join(', ');
}

export interface ColumnJson {
  name: string;
  type: string;
  codec: string | null;
  default_value: string | null;
  jsonpath: string | null;
  nullable: boolean;
  normalized_name: string;
}

/** Column object of API responses; `Nullable(T)` is reported as `type: T, nullable: true`. */
export function columnToJson(c: Column): ColumnJson {
  return {
    name: c.name,
    type: stripNullable(c.type),
    codec: c.codec,
    default_value: c.defaultValue,
    jsonpath: c.jsonpath,
    nullable: c.nullable,
    normalized_name: c.name,
  };
}

/** True when the schema can ingest NDJSON: every stored column (not MATERIALIZED/ALIAS) has a jsonpath. */
export function isJsonSchema(columns: readonly Column[]): boolean {
  return columns.length > 0 && columns.every((c) => c.jsonpath !== null || /^(MATERIALIZED|ALIAS)\b/i.test(c.defaultValue ?? ''));
}
