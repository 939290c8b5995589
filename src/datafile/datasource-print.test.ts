import { describe, expect, it } from 'vitest';
import { parseEngineParams, parseIndexes } from '../schema/engine.js';
import { parseSchema } from '../schema/schema.js';
import { printDatasourceFile } from './print.js';

describe('printDatasourceFile', () => {
  it('says ENGINE_SORTING_KEY "tuple()" for a MergeTree without a sorting key, and the file parses back to the same engine', () => {
    const engine = parseEngineParams('MergeTree', {});
    const text = printDatasourceFile({ columns: parseSchema('`a` Int32'), engine });
    expect(text).toBe('SCHEMA >\n    `a` Int32\n\nENGINE "MergeTree"\nENGINE_SORTING_KEY "tuple()"\n');
    const again = parseEngineParams('MergeTree', { engine_sorting_key: 'tuple()' });
    expect(printDatasourceFile({ columns: parseSchema('`a` Int32'), engine: again })).toBe(text);
    expect(printDatasourceFile({ columns: parseSchema('`a` Int32'), engine: parseEngineParams('Null', {}) })).toBe(
      'SCHEMA >\n    `a` Int32\n\nENGINE "Null"\n',
    );
  });

  it('prints every section of §11.2', () => {
    const text = printDatasourceFile({
      description: 'Events from the web\n\nOne row per hit',
      columns: parseSchema(
        "`timestamp` DateTime `json:$.timestamp`, `session_id` String `json:$.session_id`, `tags` Array(String) `json:$.tags[:]`, `payload` String `json:$.payload` DEFAULT ''",
      ),
      engine: parseEngineParams('ReplacingMergeTree', {
        engine_partition_key: 'toYYYYMM(timestamp)',
        engine_sorting_key: 'session_id, timestamp',
        engine_primary_key: 'session_id',
        engine_ttl: 'timestamp + toIntervalDay(60)',
        engine_settings: 'index_granularity=8192',
        engine_ver: 'timestamp',
      }),
      indexes: parseIndexes('idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4'),
    });
    expect(text).toBe(
      [
        'DESCRIPTION >',
        '    Events from the web',
        '',
        '    One row per hit',
        '',
        'SCHEMA >',
        '    `timestamp` DateTime `json:$.timestamp`,',
        '    `session_id` String `json:$.session_id`,',
        '    `tags` Array(String) `json:$.tags[:]`,',
        "    `payload` String `json:$.payload` DEFAULT ''",
        '',
        'INDEXES >',
        '    idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4',
        '',
        'ENGINE "ReplacingMergeTree"',
        'ENGINE_PARTITION_KEY "toYYYYMM(timestamp)"',
        'ENGINE_SORTING_KEY "session_id, timestamp"',
        'ENGINE_PRIMARY_KEY "session_id"',
        'ENGINE_TTL "timestamp + toIntervalDay(60)"',
        'ENGINE_SETTINGS "index_granularity = 8192"',
        'ENGINE_VER "timestamp"',
        '',
      ].join('\n'),
    );
  });

  it('omits empty sections', () => {
    expect(printDatasourceFile({ description: '  ', columns: parseSchema('a String'), engine: parseEngineParams(undefined, {}), indexes: [] })).toBe(
      'SCHEMA >\n    `a` String\n\nENGINE "MergeTree"\nENGINE_SORTING_KEY "tuple()"\n',
    );
  });

  it('prints Join params and escapes double quotes', () => {
    const text = printDatasourceFile({
      columns: parseSchema('a String, b String'),
      engine: parseEngineParams('Join', { engine_join_strictness: 'ANY', engine_join_type: 'LEFT', engine_key_columns: 'a' }),
    });
    expect(text).toBe(
      'SCHEMA >\n    `a` String,\n    `b` String\n\nENGINE "Join"\nENGINE_JOIN_STRICTNESS "ANY"\nENGINE_JOIN_TYPE "LEFT"\nENGINE_KEY_COLUMNS "a"\n',
    );
    const ttl = printDatasourceFile({
      columns: parseSchema('a String, ts DateTime'),
      engine: { engine: 'MergeTree', params: { ttl: 'ts + toIntervalDay(1)\n  WHERE a = "x"' } },
    });
    expect(ttl).toContain('ENGINE_TTL "ts + toIntervalDay(1) WHERE a = \\"x\\""');
  });
});
