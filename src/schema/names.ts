// Resource (Data Source / Pipe / node) and column naming rules of Tinybird (reference §1.5):
// `validateResourceName` rejects names that are not identifiers and reserved words; `normalizeName`
// turns arbitrary text (file names, urls, bad names) into a valid identifier for hints and defaults.

import { SchemaError } from './errors.js';
import { FUNCTION_LIST, PARAMETER_TYPES } from '../template/index.js';

const RESOURCE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The one length limit of every name a user gives: data sources, pipes, nodes, columns, tokens,
 * variables, connections, workspaces. Tinybird documents none; 255 characters keeps names
 * printable in messages and well inside the catalog's index entries.
 */
export const MAX_NAME_LENGTH = 255;

/** Throws SchemaError (400) when a `kind` name is longer than {@link MAX_NAME_LENGTH}; never echoes the name. */
export function checkNameLength(name: string, kind: string): void {
  if (name.length > MAX_NAME_LENGTH) {
    throw new SchemaError(`Invalid ${kind} name: it is ${name.length} characters long, the limit is ${MAX_NAME_LENGTH}.`);
  }
}
const COLUMN_NAME = /^[a-zA-Z_][.0-9a-zA-Z_]*$/;

const ints = (prefix: string) => [8, 16, 32, 64, 128, 256].map((n) => `${prefix}${n}`);

/** Lower-case names that cannot be used for resources (§1.5), minus the allowed exceptions. */
export const RESERVED_NAMES: ReadonlySet<string> = (() => {
  const words = [
    // table functions
    'generateRandom',
    'null',
    'numbers',
    'numbers_mt',
    'values',
    'zeros',
    'zeros_mt',
    // system tables
    'functions',
    'numbers',
    'numbers_mt',
    'one',
    // database names
    'tinybird',
    'system',
    'public',
    'default',
    'main',
    'origin',
    'live',
    'snapshot',
    '_temporary_and_external_tables',
    // SQL keywords
    'add',
    'after',
    'all',
    'and',
    'any',
    'array',
    'as',
    'asc',
    'between',
    'by',
    'case',
    'collate',
    'cross',
    'default',
    'desc',
    'distinct',
    'else',
    'end',
    'exists',
    'from',
    'full',
    'global',
    'group',
    'having',
    'if',
    'ilike',
    'in',
    'inner',
    'insert',
    'interval',
    'into',
    'join',
    'left',
    'like',
    'limit',
    'limits',
    'materialized',
    'not',
    'on',
    'or',
    'order',
    'outer',
    'prewhere',
    'right',
    'sample',
    'select',
    'then',
    'to',
    'totals',
    'union',
    'using',
    'where',
    'with',
    'anti',
    'asof',
    'cube',
    'max',
    'min',
    'null',
    'semi',
    // ClickHouse type names that can be wrapped in Nullable (interpretation of "nullable type names")
    ...ints('int'),
    ...ints('uint'),
    'float32',
    'float64',
    'decimal',
    'decimal32',
    'decimal64',
    'decimal128',
    'decimal256',
    'string',
    'fixedstring',
    'uuid',
    'date',
    'date32',
    'datetime',
    'datetime64',
    'enum8',
    'enum16',
    'ipv4',
    'ipv6',
    'bool',
    // template type and function names
    ...PARAMETER_TYPES,
    ...FUNCTION_LIST,
  ];
  const allowed = new Set(['numbers', 'values', 'zeros', 'materialized', 'totals']);
  return new Set(words.map((w) => w.toLowerCase()).filter((w) => !allowed.has(w)));
})();

export function isReservedName(name: string): boolean {
  return RESERVED_NAMES.has(name.toLowerCase());
}

export function isValidResourceName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && RESOURCE_NAME.test(name) && !isReservedName(name);
}

/** Column names: `^[a-zA-Z_][.0-9a-zA-Z_]*$` and not the reserved `index`. */
export function isValidColumnName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && COLUMN_NAME.test(name) && name.toLowerCase() !== 'index';
}

/**
 * Makes a valid identifier: invalid characters become `_`, a leading digit gets `prefix`
 * (`t_` for resources, `c_` for columns), reserved words get a trailing `_`.
 */
export function normalizeName(s: string, prefix = 't_'): string {
  let out = s
    .trim()
    .slice(0, MAX_NAME_LENGTH - prefix.length - 1)
    .replace(/[^A-Za-z0-9_]/g, '_');
  if (!out) return prefix.replace(/_+$/, '') || '_';
  if (/^[0-9]/.test(out)) out = prefix + out;
  return isReservedName(out) ? `${out}_` : out;
}

const RULE = 'Name must start with a letter and contain only letters, numbers, and underscores.';

/** Throws SchemaError with Tinybird's message when `name` cannot name a resource of `kind`. */
export function validateResourceName(name: string, kind = 'Data Source'): void {
  checkNameLength(name, kind);
  if (!RESOURCE_NAME.test(name)) throw new SchemaError(`Invalid ${kind} name "${name}". ${RULE} Hint: use ${normalizeName(name)}.`);
  if (isReservedName(name)) throw new SchemaError(`Forbidden ${kind} name "${name}". ${name} is a reserved word. ${RULE} Hint: use ${name}_.`);
}
