import { describe, expect, it } from 'vitest';
import { PipitError } from '../basics/errors.js';
import {
  checkCompression,
  checkFormat,
  checkWriteStrategy,
  columnPlaceholders,
  formatJobTime,
  parseBucketUri,
  parseFileTemplate,
  parseLocalPath,
  resolveTemplate,
} from './sink-template.js';

const bad = (f: () => unknown, msg?: RegExp) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(PipitError);
    expect((err as PipitError).code).toBe('bad_request');
    if (msg) expect((err as Error).message).toMatch(msg);
    return;
  }
  throw new Error('expected a 400');
};

const cols = new Map([
  ['country', 'String'],
  ['n', 'Int32'],
  ['ts', "DateTime('UTC')"],
  ['d', 'Date'],
  ['u', 'Nullable(UInt64)'],
]);
const when = new Date('2024-03-05T07:08:09Z');
const resolve = (t: string, o: { variables?: Record<string, string>; format?: 'csv' | 'ndjson' | 'parquet'; compression?: 'none' | 'gz' | 'zstd' } = {}) =>
  resolveTemplate(parseFileTemplate(t), {
    variables: o.variables ?? {},
    jobTime: when,
    columns: cols,
    format: o.format ?? 'csv',
    compression: o.compression ?? 'none',
  });

describe('file templates', () => {
  it('parses text and placeholders', () => {
    expect(parseFileTemplate("a/{country}_{ts, '%Y%m'}_{n, 8}.x")).toEqual([
      { kind: 'text', text: 'a/' },
      { kind: 'var', name: 'country' },
      { kind: 'text', text: '_' },
      { kind: 'var', name: 'ts', arg: { format: '%Y%m' } },
      { kind: 'text', text: '_' },
      { kind: 'var', name: 'n', arg: { buckets: 8 } },
      { kind: 'text', text: '.x' },
    ]);
    expect(columnPlaceholders(parseFileTemplate('{a}{job_timestamp}{b}'), { b: '1' })).toEqual(['a']);
  });

  it('refuses what could break out of a literal, a path or a glob', () => {
    for (const t of [
      "a'b",
      'a"b',
      'a\\b',
      'a\nb',
      'a b',
      'a*b',
      'a?b',
      'a%b',
      'a#b',
      '{',
      '}',
      'a{b{c}}',
      '{a, 1000000}',
      '{a, x}',
      "{a, '%Q'}",
      "{a, 'x y'}",
      '{1a}',
    ]) {
      bad(() => parseFileTemplate(t));
    }
    for (const t of ['../x', 'a/../b', './x', 'a//b', '/abs', 'dir/', '', '   ']) bad(() => parseFileTemplate(t));
    bad(() => parseFileTemplate('x'.repeat(600)), /longer/);
  });

  it('renders variables and the job time as text, columns as a partition expression', () => {
    expect(resolve('plain')).toEqual({ prefix: 'plain', partition: null, suffix: '.csv' });
    expect(resolve('plain.csv', { compression: 'gz' })).toEqual({ prefix: 'plain', partition: null, suffix: '.csv.gz' });
    expect(resolve('plain.ndjson.zst', { format: 'ndjson', compression: 'zstd' })).toEqual({ prefix: 'plain', partition: null, suffix: '.ndjson.zst' });
    expect(resolve('p.parquet', { format: 'parquet', compression: 'gz' }).suffix).toBe('.parquet');
    expect(resolve("x_{job_timestamp}_{job_timestamp, '%Y-%m-%d_%H.%M.%S_%j_%y'}").prefix).toBe('x_20240305070809_2024-03-05_07.08.09_065_24');
    expect(resolve('c_{customer}/f', { variables: { customer: 'acme' } }).prefix).toBe('c_acme/f');
    const r = resolve("e/{country}/m_{ts, '%Y%M'}_{n, 4}_{u, 2}.csv");
    expect(r.prefix).toBe('e/');
    expect(r.suffix).toBe('.csv');
    expect(r.partition).toContain('concat(');
    expect(r.partition).toContain("formatDateTime(`ts`, '%Y%i', 'UTC')");
    expect(r.partition).toContain('positiveModulo(`n`, 4)');
    expect(r.partition).toContain('positiveModulo(`u`, 2)');
    expect(resolve('{country}').partition).toMatch(/^if\(match\(ifNull\(toString\(`country`\)/);
    expect(resolve('{d, "%Y"}').partition).toContain('formatDateTime(`d`');
  });

  it('checks what only the job knows', () => {
    bad(() => resolve('{missing}'), /missing/);
    bad(() => resolve('{v}', { variables: { v: "a'b" } }), /variable/);
    bad(() => resolve('{v}/x', { variables: { v: '..' } }), /segments/);
    bad(() => resolve('a/{v}', { variables: { v: '' } }));
    bad(() => resolve("{n, '%Y'}"), /formats a date/);
    bad(() => resolve('{job_timestamp, 3}'));
    bad(() => resolve('{v, 3}', { variables: { v: 'x' } }));
    bad(() => resolve('.csv'), /empty/);
  });

  it('formats the job time (UTC)', () => {
    expect(formatJobTime(new Date('2023-12-31T23:59:58Z'), '%Y%m%d%H%M%S %j')).toBe('20231231235958 365');
    expect(formatJobTime(new Date('2024-01-01T00:00:00Z'))).toBe('20240101000000');
  });
});

describe('paths and options', () => {
  it('parses bucket URIs and local paths', () => {
    expect(parseBucketUri('s3://my-bucket/a/b/', ['s3'])).toEqual({ bucket: 'my-bucket', prefix: 'a/b' });
    expect(parseBucketUri('gs://b.c.d', ['gs', 's3'])).toEqual({ bucket: 'b.c.d', prefix: '' });
    for (const u of [
      '',
      'http://bucket/x',
      's3://Bucket/x',
      "s3://bu'ck/x",
      's3://ab/x',
      's3://bucket/../x',
      's3://bucket/a b',
      's3://a..b/x',
      'gs://bucket/x',
    ]) {
      bad(() => parseBucketUri(u, ['s3']));
    }
    expect(parseLocalPath('local://a/b/')).toBe('a/b');
    expect(parseLocalPath('')).toBe('');
    for (const p of ['/etc', '../x', 'a/../../x', "a'b", 'a//b']) bad(() => parseLocalPath(p));
  });

  it('checks formats, compressions and strategies', () => {
    expect([checkFormat(undefined), checkFormat('NDJSON'), checkFormat('parquet')]).toEqual(['csv', 'ndjson', 'parquet']);
    expect([checkCompression(undefined), checkCompression('gzip'), checkCompression('zstd')]).toEqual(['none', 'gz', 'zstd']);
    expect([checkWriteStrategy(undefined), checkWriteStrategy('truncate')]).toEqual(['new', 'truncate']);
    bad(() => checkFormat('xml'));
    bad(() => checkCompression('lz4'));
    bad(() => checkWriteStrategy('append'));
  });
});
