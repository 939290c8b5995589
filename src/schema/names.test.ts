import { describe, expect, it } from 'vitest';
import { schemaError } from './test-helpers.js';
import { isReservedName, isValidColumnName, isValidResourceName, normalizeName, RESERVED_NAMES, validateResourceName } from './names.js';

const err = (name: string, kind?: string) => schemaError(() => validateResourceName(name, kind), `${name} to be rejected`);

describe('validateResourceName', () => {
  it('accepts identifiers', () => {
    for (const n of ['events', 'Events_2024', '_', '_tmp', 'a1', 'numbers', 'values', 'zeros', 'materialized', 'totals'])
      expect(() => validateResourceName(n), n).not.toThrow();
  });

  it('rejects invalid names with a normalized hint', () => {
    expect(err('my-ds')).toBe(
      'Invalid Data Source name "my-ds". Name must start with a letter and contain only letters, numbers, and underscores. Hint: use my_ds.',
    );
    expect(err('1events')).toBe(
      'Invalid Data Source name "1events". Name must start with a letter and contain only letters, numbers, and underscores. Hint: use t_1events.',
    );
    expect(err('a.b', 'Pipe')).toBe(
      'Invalid Pipe name "a.b". Name must start with a letter and contain only letters, numbers, and underscores. Hint: use a_b.',
    );
    expect(err('-x')).toMatch(/^Invalid Data Source name "-x"\./);
    expect(err('')).toMatch(/^Invalid Data Source name ""\./);
    expect(err('día')).toMatch(/Hint: use d_a\.$/);
  });

  it('rejects reserved words', () => {
    expect(err('from')).toBe(
      'Forbidden Data Source name "from". from is a reserved word. Name must start with a letter and contain only letters, numbers, and underscores. Hint: use from_.',
    );
    expect(err('SELECT')).toBe(
      'Forbidden Data Source name "SELECT". SELECT is a reserved word. Name must start with a letter and contain only letters, numbers, and underscores. Hint: use SELECT_.',
    );
    expect(err('system', 'Pipe')).toMatch(/^Forbidden Pipe name "system"\. system is a reserved word\./);
    for (const n of [
      'generateRandom',
      'null',
      'numbers_mt',
      'zeros_mt',
      'functions',
      'one',
      'tinybird',
      'default',
      'main',
      '_temporary_and_external_tables',
      'join',
      'semi',
      'max',
      'string',
      'Int32',
      'uint256',
      'datetime64',
      'boolean',
      'json',
      'array',
      'columns',
      'sql_and',
      'split_to_array',
      'date_diff_in_hours',
      'sql_unescape',
      'custom_error',
    ])
      expect(err(n), n).toMatch(/^Forbidden/);
  });
});

describe('reserved set', () => {
  it('is the lower-case union minus the allowed words', () => {
    expect(RESERVED_NAMES.has('generaterandom')).toBe(true);
    for (const w of ['numbers', 'values', 'zeros', 'materialized', 'totals']) expect(RESERVED_NAMES.has(w), w).toBe(false);
    expect(isReservedName('Where')).toBe(true);
    expect(isReservedName('events')).toBe(false);
  });
});

describe('normalizeName', () => {
  it('replaces invalid characters and prefixes leading digits', () => {
    expect(normalizeName('my file.csv')).toBe('my_file_csv');
    expect(normalizeName('2024-events')).toBe('t_2024_events');
    expect(normalizeName('1st', 'c_')).toBe('c_1st');
    expect(normalizeName('ok_name')).toBe('ok_name');
    expect(normalizeName('from')).toBe('from_');
    expect(normalizeName('')).toBe('t');
  });
  it('always yields a valid resource name', () => {
    for (const s of ['a b', '9', '-', 'select', 'ñandú', '..', 'x'.repeat(3)]) expect(isValidResourceName(normalizeName(s)), s).toBe(true);
  });
});

describe('isValidColumnName', () => {
  it('follows ^[a-zA-Z_][.0-9a-zA-Z_]*$ and reserves index', () => {
    for (const n of ['a', '_a', 'a.b', 'A1', 'nested.field_2']) expect(isValidColumnName(n), n).toBe(true);
    for (const n of ['1a', 'a-b', 'a b', '', '.a', 'index', 'INDEX']) expect(isValidColumnName(n), n).toBe(false);
  });
});
