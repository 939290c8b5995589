/**
 * Sink file templates and object paths: parsing, validation and what the engine needs to write
 * them. Nothing a user sends reaches SQL text as text: literal parts are checked against a strict
 * character set and become quoted literals (quoteString), column names become quoted
 * identifiers, and column values are cleaned inside the engine before they name a file.
 *
 * A template is text with placeholders:
 * - `{name}` where `name` is a variable of the request (`{key}={val}` of `POST /v0/pipes/:p/sink`):
 *   its value (checked like literal text);
 * - `{job_timestamp}` / `{job_timestamp, '%Y-%m-%d'}`: the job's time (UTC), by default
 *   `%Y%m%d%H%M%S`, else with the strftime directives %Y %y %m %d %H %M %S %j;
 * - `{column}`: the column's value: one file per value (the engine's `PARTITION BY`);
 * - `{column, '%Y%m'}`: a Date/DateTime column formatted with the same directives;
 * - `{column, 8}`: one of 8 files by the column's value (integers modulo 8, others hashed).
 */
import { quoteIdent, quoteString } from '../engine/engine.js';
import { badRequest } from '../basics/errors.js';
import type { SinkCompression, SinkFormat, WriteStrategy } from '../catalog/catalog.js';

/** Characters a literal part of a path or file name may have. */
const SAFE_TEXT = /^[A-Za-z0-9_\-.=/]*$/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** strftime directives accepted in formats, and their formatDateTime equivalents. */
const DIRECTIVES: Record<string, string> = { Y: '%Y', y: '%y', m: '%m', d: '%d', H: '%H', M: '%i', S: '%S', j: '%j' };
export const JOB_TIMESTAMP = 'job_timestamp';
const DEFAULT_TS_FORMAT = '%Y%m%d%H%M%S';
export const MAX_TEMPLATE_LENGTH = 512;
export const MAX_BUCKETS = 1000;

export type TemplateArg = { format: string } | { buckets: number };
export type TemplatePart = { kind: 'text'; text: string } | { kind: 'var'; name: string; arg?: TemplateArg };

export type { SinkCompression, SinkFormat, WriteStrategy } from '../catalog/catalog.js';

export const FORMATS: Record<SinkFormat, { engine: string; ext: string }> = {
  csv: { engine: 'CSVWithNames', ext: 'csv' },
  ndjson: { engine: 'JSONEachRow', ext: 'ndjson' },
  parquet: { engine: 'Parquet', ext: 'parquet' },
};

export function checkFormat(v: string | undefined): SinkFormat {
  const f = (v ?? 'csv').trim().toLowerCase();
  if (f === 'json' || f === 'jsoneachrow') return 'ndjson';
  if (f in FORMATS) return f as SinkFormat;
  throw badRequest(`Invalid format "${v}". Valid formats are: csv, ndjson, parquet`);
}

export function checkCompression(v: string | undefined): SinkCompression {
  const c = (v ?? 'none').trim().toLowerCase();
  if (c === '' || c === 'none') return 'none';
  if (c === 'gz' || c === 'gzip') return 'gz';
  if (c === 'zstd' || c === 'zst') return 'zstd';
  throw badRequest(`Invalid compression "${v}". Valid values are: none, gz, zstd`);
}

export function checkWriteStrategy(v: string | undefined): WriteStrategy {
  const w = (v ?? 'new').trim().toLowerCase();
  if (w === 'new' || w === 'truncate') return w;
  throw badRequest(`Invalid write_strategy "${v}". Valid values are: new, truncate`);
}

function checkText(text: string, what: string): void {
  if (!SAFE_TEXT.test(text)) {
    throw badRequest(`Invalid ${what} "${text}": only letters, digits and _ - . = / are allowed`);
  }
}

/**
 * Checks a relative object path (prefix or rendered name): safe characters, no empty, `.` or
 * `..` segment. `placeholderSegments` marks segments that also hold a column value (those are
 * never only dots once written, see cleanValue).
 */
export function checkRelativePath(p: string, what: string, allowEmpty = false): void {
  if (p === '' && allowEmpty) return;
  checkText(p.replace(/\u0000/g, ''), what);
  const segments = p.split('/');
  for (const seg of segments) {
    if (seg.includes('\u0000')) continue;
    if (seg === '' || seg === '.' || seg === '..')
      throw badRequest(`Invalid ${what} "${p.replace(/\u0000/g, '{…}')}": empty, "." and ".." path segments are not allowed`);
  }
}

/** Parses a file template; throws 400 with what is wrong. */
export function parseFileTemplate(template: string | undefined): TemplatePart[] {
  if (template === undefined || template.trim() === '') throw badRequest('The "file_template" parameter is required');
  if (template.length > MAX_TEMPLATE_LENGTH) throw badRequest(`The file_template is longer than ${MAX_TEMPLATE_LENGTH} characters`);
  const parts: TemplatePart[] = [];
  let i = 0;
  let text = '';
  while (i < template.length) {
    const ch = template[i];
    if (ch === '}') throw badRequest(`Invalid file_template "${template}": unbalanced "}" at position ${i}`);
    if (ch !== '{') {
      text += ch;
      i++;
      continue;
    }
    const end = template.indexOf('}', i);
    if (end < 0) throw badRequest(`Invalid file_template "${template}": unclosed "{" at position ${i}`);
    const inner = template.slice(i + 1, end);
    if (inner.includes('{')) throw badRequest(`Invalid file_template "${template}": nested "{" at position ${i}`);
    if (text) parts.push({ kind: 'text', text });
    text = '';
    parts.push(placeholder(inner, template));
    i = end + 1;
  }
  if (text) parts.push({ kind: 'text', text });
  for (const p of parts) if (p.kind === 'text') checkText(p.text, 'file_template');
  // Segments made only of literal dots (or empty) are refused whatever the values.
  checkRelativePath(parts.map((p) => (p.kind === 'text' ? p.text : '\u0000')).join(''), 'file_template');
  if (
    parts.every((p) => p.kind === 'text') &&
    parts
      .map((p) => (p as { text: string }).text)
      .join('')
      .endsWith('/')
  ) {
    throw badRequest('Invalid file_template: it names a directory, not a file');
  }
  return parts;
}

function placeholder(inner: string, template: string): TemplatePart {
  const m = /^\s*([^,\s]+)\s*(?:,\s*(.+?)\s*)?$/.exec(inner);
  if (!m || !NAME.test(m[1])) throw badRequest(`Invalid placeholder "{${inner}}" in file_template "${template}": use {name}, {name, 'format'} or {name, N}`);
  const name = m[1];
  if (m[2] === undefined) return { kind: 'var', name };
  const arg = m[2];
  const q = /^'([^']*)'$|^"([^"]*)"$/.exec(arg);
  if (q) return { kind: 'var', name, arg: { format: checkDateFormat(q[1] ?? q[2], inner) } };
  if (/^\d+$/.test(arg)) {
    const n = Number(arg);
    if (n < 1 || n > MAX_BUCKETS) throw badRequest(`Invalid placeholder "{${inner}}": the number of files must be between 1 and ${MAX_BUCKETS}`);
    return { kind: 'var', name, arg: { buckets: n } };
  }
  throw badRequest(`Invalid placeholder "{${inner}}" in file_template "${template}": the second argument is a quoted date format or a number of files`);
}

function checkDateFormat(fmt: string, inner: string): string {
  for (let i = 0; i < fmt.length; i++) {
    if (fmt[i] === '%') {
      const d = fmt[i + 1];
      if (!d || !(d in DIRECTIVES))
        throw badRequest(
          `Invalid date format in "{${inner}}": supported directives are ${Object.keys(DIRECTIVES)
            .map((k) => `%${k}`)
            .join(' ')}`,
        );
      i++;
    } else if (!SAFE_TEXT.test(fmt[i])) {
      throw badRequest(`Invalid date format in "{${inner}}": only directives, letters, digits and _ - . = / are allowed`);
    }
  }
  if (!fmt) throw badRequest(`Invalid date format in "{${inner}}": it is empty`);
  return fmt;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** strftime (the supported directives) of a time in UTC. */
export function formatJobTime(d: Date, fmt = DEFAULT_TS_FORMAT): string {
  return fmt.replace(/%([A-Za-z])/g, (_, c: string) => {
    switch (c) {
      case 'Y':
        return String(d.getUTCFullYear());
      case 'y':
        return pad(d.getUTCFullYear() % 100);
      case 'm':
        return pad(d.getUTCMonth() + 1);
      case 'd':
        return pad(d.getUTCDate());
      case 'H':
        return pad(d.getUTCHours());
      case 'M':
        return pad(d.getUTCMinutes());
      case 'S':
        return pad(d.getUTCSeconds());
      case 'j':
        return pad(Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3);
      default:
        throw badRequest(`Unsupported date directive %${c}`);
    }
  });
}

/** Placeholders that are neither request variables nor job_timestamp: they must be columns. */
export function columnPlaceholders(parts: TemplatePart[], variables: Record<string, string>): string[] {
  return parts
    .filter((p): p is Extract<TemplatePart, { kind: 'var' }> => p.kind === 'var' && !(p.name in variables) && p.name !== JOB_TIMESTAMP)
    .map((p) => p.name);
}

export interface ResolvedTemplate {
  /** The name up to the first column placeholder (checked text). */
  prefix: string;
  /**
   * The rest of the name as a ClickHouse String expression (the `PARTITION BY` key, written where
   * `{_partition_id}` is), or null when no column is named: one file.
   */
  partition: string | null;
  /** The fixed text after the name: the extension(s). */
  suffix: string;
}

/** A column value made safe to name a file: no control characters, slashes, glob characters; never empty or only dots. */
function cleanValue(expr: string): string {
  const v = `ifNull(toString(${expr}), '')`;
  return `if(match(${v}, ${quoteString('^\\.*$')}), '_', replaceRegexpAll(${v}, ${quoteString('[\\x00-\\x1f/\\\\{}*?\\x7f]')}, '_'))`;
}

const INTEGER_TYPE = /^(Nullable\()?(LowCardinality\()?U?Int(8|16|32|64|128|256)\)?\)?$/;

/**
 * Renders a template for one job: variables and the job time become text, columns become the
 * partition expression. `columns` maps the node's output column names to their types.
 */
export function resolveTemplate(
  parts: TemplatePart[],
  opts: { variables: Record<string, string>; jobTime: Date; columns: Map<string, string>; format: SinkFormat; compression: SinkCompression },
): ResolvedTemplate {
  /** Text pieces and column expressions, adjacent texts merged. */
  const pieces: Array<{ text: string } | { expr: string }> = [];
  const addText = (text: string) => {
    const last = pieces[pieces.length - 1];
    if (last && 'text' in last) last.text += text;
    else pieces.push({ text });
  };
  for (const p of parts) {
    if (p.kind === 'text') addText(p.text);
    else if (p.name in opts.variables) {
      if (p.arg) throw badRequest(`The placeholder {${p.name}} is a request variable and takes no second argument`);
      const value = opts.variables[p.name];
      checkText(value, `value of the variable "${p.name}"`);
      addText(value);
    } else if (p.name === JOB_TIMESTAMP) {
      if (p.arg && 'buckets' in p.arg) throw badRequest(`The placeholder {${JOB_TIMESTAMP}} takes a date format, not a number of files`);
      addText(formatJobTime(opts.jobTime, p.arg && 'format' in p.arg ? p.arg.format : undefined));
    } else {
      const type = opts.columns.get(p.name);
      if (type === undefined) {
        throw badRequest(
          `The file_template placeholder {${p.name}} is not a column of the sink node's result (${[...opts.columns.keys()].join(', ')}), a variable of the request or ${JOB_TIMESTAMP}`,
        );
      }
      const col = quoteIdent(p.name);
      if (!p.arg) pieces.push({ expr: cleanValue(col) });
      else if ('format' in p.arg) {
        if (!/Date/.test(type))
          throw badRequest(`The file_template placeholder {${p.name}, '${p.arg.format}'} formats a date, but the column ${p.name} is ${type}`);
        const chFormat = p.arg.format.replace(/%([A-Za-z])/g, (_, c: string) => DIRECTIVES[c]);
        pieces.push({ expr: `formatDateTime(${col}, ${quoteString(chFormat)}, 'UTC')` });
      } else {
        pieces.push({
          expr: INTEGER_TYPE.test(type) ? `toString(positiveModulo(${col}, ${p.arg.buckets}))` : `toString(cityHash64(${col}) % ${p.arg.buckets})`,
        });
      }
    }
  }
  // A template that already ends with the extension (with or without the compression's) keeps one.
  const ext = `.${FORMATS[opts.format].ext}`;
  const comp = opts.format === 'parquet' ? '' : opts.compression === 'gz' ? '.gz' : opts.compression === 'zstd' ? '.zst' : '';
  const last = pieces[pieces.length - 1];
  if (last && 'text' in last) {
    for (const cand of [ext + comp, ext]) {
      if (last.text.endsWith(cand)) {
        last.text = last.text.slice(0, -cand.length);
        break;
      }
    }
    if (!last.text) pieces.pop();
  }
  const shape = pieces.map((p) => ('text' in p ? p.text : '\u0000')).join('');
  if (!shape || shape.endsWith('/')) throw badRequest('Invalid file_template: the file name is empty');
  if (shape.startsWith('/')) throw badRequest('Invalid file_template: it can not start with "/"');
  checkRelativePath(shape, 'file name');
  const first = pieces[0];
  const prefix = 'text' in first ? first.text : '';
  const rest = ('text' in first ? pieces.slice(1) : pieces).map((p) => ('text' in p ? quoteString(p.text) : p.expr));
  const partition = rest.length ? (rest.length === 1 ? rest[0] : `concat(${rest.join(', ')})`) : null;
  return { prefix, partition, suffix: ext + comp };
}

/** `s3://bucket/prefix` (also `gs://`): the bucket and the checked prefix (no leading or trailing slash). */
export function parseBucketUri(uri: string | undefined, schemes: string[]): { bucket: string; prefix: string } {
  if (!uri?.trim()) throw badRequest('The "path" parameter is required');
  const m = /^([a-z0-9]+):\/\/([^/]*)(?:\/(.*))?$/.exec(uri.trim());
  if (!m || !schemes.includes(m[1])) throw badRequest(`Invalid path "${uri}": it must look like ${schemes[0]}://bucket/prefix`);
  const bucket = m[2];
  if (!/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..')) {
    throw badRequest(`Invalid bucket name "${bucket}": 3 to 63 lowercase letters, digits, dots and hyphens`);
  }
  const prefix = (m[3] ?? '').replace(/\/+$/, '');
  checkRelativePath(prefix, 'path', true);
  return { bucket, prefix };
}

/** A local path (relative, optionally `local://` or `file://` prefixed): checked, no leading or trailing slash. */
export function parseLocalPath(p: string | undefined): string {
  const raw = (p ?? '')
    .trim()
    .replace(/^(local|file):\/\//, '')
    .replace(/\/+$/, '');
  if (raw.startsWith('/')) throw badRequest(`Invalid path "${p}": a local path is relative to the connection's directory`);
  checkRelativePath(raw, 'path', true);
  return raw;
}
