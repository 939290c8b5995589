import { describe, expect, it } from 'vitest';
import type { Column } from '../basics/types.js';
import {
  engineClause,
  engineToJson,
  engineToListJson,
  formatIndex,
  indexClause,
  isMergeTreeFamily,
  parseEngineParams,
  parseIndexes,
  parseSettings,
} from './engine.js';
import { SchemaError } from './errors.js';
import { schemaError } from './test-helpers.js';
import { parseSchema } from './schema.js';

const columns: Column[] = parseSchema('a String, b Int32, ts DateTime, ver UInt64, is_deleted UInt8, sign Int8, v UInt32, x UInt32, c Int64');

const clause = (engine: string | undefined, args: Record<string, string>) => engineClause(parseEngineParams(engine, args), columns);

const err = (fn: () => unknown) => schemaError(fn);

describe('parseEngineParams', () => {
  it('defaults to MergeTree and strips the engine_ prefix', () => {
    expect(parseEngineParams(undefined, {})).toEqual({ engine: 'MergeTree', params: {} });
    expect(parseEngineParams('', { name: 'x', mode: 'create', engine_sorting_key: 'a, b', engine_partition_key: '' })).toEqual({
      engine: 'MergeTree',
      params: { sorting_key: 'a, b' },
    });
  });

  it('matches engine names case-insensitively', () => {
    expect(parseEngineParams('replacingmergetree', { engine_sorting_key: 'a' }).engine).toBe('ReplacingMergeTree');
    expect(parseEngineParams('NULL', {}).engine).toBe('Null');
    expect(parseEngineParams('join', { engine_join_strictness: 'any', engine_join_type: 'left', engine_key_columns: 'a' })).toEqual({
      engine: 'Join',
      params: { join_strictness: 'ANY', join_type: 'LEFT', key_columns: 'a' },
    });
  });

  it('rejects unknown engines', () => {
    expect(err(() => parseEngineParams('Log', {}))).toBe(
      'Engine Log is not supported, supported engines include: MergeTree, ReplacingMergeTree, SummingMergeTree, AggregatingMergeTree, CollapsingMergeTree, VersionedCollapsingMergeTree, Join, Null',
    );
    expect(err(() => parseEngineParams('ReplicatedMergeTree', {}))).toMatch(/^Engine ReplicatedMergeTree is not supported/);
  });

  it('rejects unknown and misplaced engine_* params, naming them', () => {
    expect(err(() => parseEngineParams('MergeTree', { engine_foo: '1' }))).toBe(
      'Invalid engine parameter "engine_foo" for engine MergeTree. Valid parameters are: engine_partition_key, engine_sorting_key, engine_primary_key, engine_sampling_key, engine_ttl, engine_settings',
    );
    expect(err(() => parseEngineParams('MergeTree', { engine_ver: 'ver' }))).toMatch(/^Invalid engine parameter "engine_ver" for engine MergeTree/);
    expect(err(() => parseEngineParams('Null', { engine_sorting_key: 'a' }))).toBe(
      'Invalid engine parameter "engine_sorting_key" for engine Null. Valid parameters are: none',
    );
  });

  it('requires the mandatory params', () => {
    expect(err(() => parseEngineParams('CollapsingMergeTree', { engine_sorting_key: 'a' }))).toBe(
      'Missing required parameter "engine_sign" for engine CollapsingMergeTree',
    );
    expect(err(() => parseEngineParams('VersionedCollapsingMergeTree', { engine_sign: 'sign' }))).toBe(
      'Missing required parameter "engine_version" for engine VersionedCollapsingMergeTree',
    );
    expect(err(() => parseEngineParams('ReplacingMergeTree', {}))).toBe('Missing required parameter "engine_sorting_key" for engine ReplacingMergeTree');
    expect(err(() => parseEngineParams('AggregatingMergeTree', {}))).toMatch(/engine_sorting_key/);
    expect(err(() => parseEngineParams('Join', { engine_join_strictness: 'ANY', engine_join_type: 'LEFT' }))).toBe(
      'Missing required parameter "engine_key_columns" for engine Join',
    );
    expect(err(() => parseEngineParams('ReplacingMergeTree', { engine_sorting_key: 'a', engine_is_deleted: 'is_deleted' }))).toBe(
      'The parameter "engine_is_deleted" requires "engine_ver" to be set',
    );
  });

  it('validates parameter values', () => {
    expect(err(() => parseEngineParams('Join', { engine_join_strictness: 'ASOF', engine_join_type: 'LEFT', engine_key_columns: 'a' }))).toBe(
      'Invalid engine_join_strictness "ASOF", valid values are: ANY, ALL, SEMI, ANTI',
    );
    expect(err(() => parseEngineParams('Join', { engine_join_strictness: 'ANY', engine_join_type: 'CROSS', engine_key_columns: 'a' }))).toMatch(
      /^Invalid engine_join_type "CROSS"/,
    );
    expect(err(() => parseEngineParams('ReplacingMergeTree', { engine_sorting_key: 'a', engine_ver: 'toUInt64(ver)' }))).toBe(
      'Invalid engine_ver "toUInt64(ver)": expected a column name',
    );
    expect(err(() => parseEngineParams('SummingMergeTree', { engine_columns: 'b, c + 1' }))).toMatch(/^Invalid engine_columns "c \+ 1"/);
  });
});

describe('injection attempts are rejected', () => {
  const rejected: Record<string, string>[] = [
    { engine_sorting_key: 'a; DROP TABLE x' },
    { engine_partition_key: "toYYYYMM(ts) -- '" },
    { engine_ttl: 'ts + INTERVAL 1 DAY /* x */' },
    { engine_sorting_key: "a) SETTINGS disk = disk(type = local, path = '/')" },
    { engine_sorting_key: "a SETTINGS storage_policy = 'x'" },
    { engine_sorting_key: "a AS SELECT * FROM file('/etc/passwd')" },
    { engine_partition_key: "length(file('/etc/passwd'))" },
    { engine_ttl: "ts + toIntervalDay(length(url('http://evil')))" },
    { engine_sorting_key: '(a' },
    { engine_sorting_key: 'a)' },
    { engine_sorting_key: "'unterminated" },
    { engine_sorting_key: '$$x$$' },
    { engine_settings: 'index_granularity = 8192; DROP TABLE x' },
    { engine_settings: "disk = disk(type = local, path = '/tmp/')" },
    { engine_settings: 'index_granularity = (SELECT 1)' },
    { engine_settings: "storage_policy = 'a\\' OR 1'" },
    { engine_settings: 'a b = 1' },
    { engine_settings: 'index_granularity' },
    { engine_settings: 'index_granularity = 1 + 1' },
    { engine_settings: "x = 'a' SETTINGS y = 1" },
  ];
  it.each(rejected)('%o', (args) => {
    expect(() => parseEngineParams('MergeTree', args)).toThrow(SchemaError);
  });

  it('rejects semicolons anywhere, even quoted', () => {
    expect(err(() => parseEngineParams('MergeTree', { engine_ttl: "ts + 1 WHERE a = ';'" }))).toBe("Invalid character ';' in engine_ttl");
    expect(err(() => parseEngineParams('ReplacingMergeTree', { engine_sorting_key: 'a', engine_ver: 'v;' }))).toBe("Invalid character ';' in engine_ver");
  });
});

describe('parseSettings', () => {
  it('accepts simple literals and normalises spacing', () => {
    expect(parseSettings("index_granularity=2048, ttl_only_drop_parts=false, storage_policy='default', x = -1.5, y = ident")).toEqual([
      ['index_granularity', '2048'],
      ['ttl_only_drop_parts', 'false'],
      ['storage_policy', "'default'"],
      ['x', '-1.5'],
      ['y', 'ident'],
    ]);
    expect(parseEngineParams('MergeTree', { engine_settings: 'index_granularity=2048,ttl_only_drop_parts=1' }).params.settings).toBe(
      'index_granularity = 2048, ttl_only_drop_parts = 1',
    );
  });
});

describe('engineClause', () => {
  it('MergeTree with every option, in ClickHouse order', () => {
    expect(
      clause('MergeTree', {
        engine_settings: 'index_granularity=2048',
        engine_ttl: 'ts + toIntervalDay(1)',
        engine_sampling_key: 'x',
        engine_sorting_key: 'a, x',
        engine_primary_key: 'a',
        engine_partition_key: 'toYYYYMM(ts)',
      }),
    ).toBe(
      'ENGINE = MergeTree PARTITION BY toYYYYMM(ts) PRIMARY KEY a ORDER BY (a, x) SAMPLE BY x TTL ts + toIntervalDay(1) SETTINGS index_granularity = 2048',
    );
  });

  it('defaults the MergeTree family to ORDER BY tuple()', () => {
    expect(clause(undefined, {})).toBe('ENGINE = MergeTree ORDER BY tuple()');
    expect(clause('SummingMergeTree', {})).toBe('ENGINE = SummingMergeTree ORDER BY tuple()');
  });

  it('keeps single and already-parenthesised keys as given', () => {
    expect(clause('MergeTree', { engine_sorting_key: '(a, b)' })).toBe('ENGINE = MergeTree ORDER BY (a, b)');
    expect(clause('MergeTree', { engine_sorting_key: 'tuple()' })).toBe('ENGINE = MergeTree ORDER BY tuple()');
    expect(clause('MergeTree', { engine_sorting_key: 'cityHash64(a, b)' })).toBe('ENGINE = MergeTree ORDER BY cityHash64(a, b)');
    expect(clause('MergeTree', { engine_partition_key: 'a, toYear(ts)' })).toBe('ENGINE = MergeTree PARTITION BY (a, toYear(ts)) ORDER BY tuple()');
  });

  it('ReplacingMergeTree', () => {
    expect(
      clause('ReplacingMergeTree', {
        engine_sorting_key: 'a, b',
        engine_ver: 'ver',
        engine_is_deleted: 'is_deleted',
        engine_partition_key: 'toYYYYMM(ts)',
        engine_primary_key: 'a',
        engine_ttl: 'ts + toIntervalDay(1)',
        engine_settings: 'index_granularity = 2048',
      }),
    ).toBe(
      'ENGINE = ReplacingMergeTree(ver, is_deleted) PARTITION BY toYYYYMM(ts) PRIMARY KEY a ORDER BY (a, b) TTL ts + toIntervalDay(1) SETTINGS index_granularity = 2048',
    );
    expect(clause('ReplacingMergeTree', { engine_sorting_key: 'a', engine_ver: 'ver' })).toBe('ENGINE = ReplacingMergeTree(ver) ORDER BY a');
    expect(clause('ReplacingMergeTree', { engine_sorting_key: 'a' })).toBe('ENGINE = ReplacingMergeTree ORDER BY a');
  });

  it('SummingMergeTree with one or several columns', () => {
    expect(clause('SummingMergeTree', { engine_sorting_key: 'a', engine_columns: 'b' })).toBe('ENGINE = SummingMergeTree(b) ORDER BY a');
    expect(clause('SummingMergeTree', { engine_sorting_key: 'a', engine_columns: 'b, c' })).toBe('ENGINE = SummingMergeTree((b, c)) ORDER BY a');
    expect(clause('SummingMergeTree', { engine_sorting_key: 'a', engine_columns: '(b,c)' })).toBe('ENGINE = SummingMergeTree((b, c)) ORDER BY a');
  });

  it('AggregatingMergeTree, CollapsingMergeTree, VersionedCollapsingMergeTree', () => {
    expect(clause('AggregatingMergeTree', { engine_sorting_key: 'a' })).toBe('ENGINE = AggregatingMergeTree ORDER BY a');
    expect(clause('CollapsingMergeTree', { engine_sorting_key: 'a', engine_sign: 'sign' })).toBe('ENGINE = CollapsingMergeTree(sign) ORDER BY a');
    expect(clause('VersionedCollapsingMergeTree', { engine_sorting_key: 'a', engine_sign: 'sign', engine_version: 'v' })).toBe(
      'ENGINE = VersionedCollapsingMergeTree(sign, v) ORDER BY a',
    );
  });

  it('Join and Null', () => {
    expect(clause('Join', { engine_join_strictness: 'ANY', engine_join_type: 'LEFT', engine_key_columns: 'a, b' })).toBe('ENGINE = Join(ANY, LEFT, a, b)');
    expect(clause('Join', { engine_join_strictness: 'all', engine_join_type: 'inner', engine_key_columns: 'a', engine_settings: 'join_use_nulls=1' })).toBe(
      'ENGINE = Join(ALL, INNER, a) SETTINGS join_use_nulls = 1',
    );
    expect(clause('Null', {})).toBe('ENGINE = Null');
  });

  it('checks column references against the schema when columns are given', () => {
    const spec = parseEngineParams('ReplacingMergeTree', { engine_sorting_key: 'a', engine_ver: 'nope' });
    expect(err(() => engineClause(spec, columns))).toBe("Invalid engine_ver: column 'nope' does not exist in the schema");
    expect(engineClause(spec)).toBe('ENGINE = ReplacingMergeTree(nope) ORDER BY a');
    const join = parseEngineParams('Join', { engine_join_strictness: 'ANY', engine_join_type: 'LEFT', engine_key_columns: 'a, zz' });
    expect(err(() => engineClause(join, columns))).toBe("Invalid engine_key_columns: column 'zz' does not exist in the schema");
  });
});

describe('engine JSON', () => {
  it('engineToJson lists engine_full and the non-empty params', () => {
    const spec = parseEngineParams('ReplacingMergeTree', {
      engine_sorting_key: 'a, b',
      engine_partition_key: 'toYYYYMM(ts)',
      engine_ver: 'ver',
      engine_settings: 'index_granularity=2048',
    });
    expect(engineToJson(spec)).toEqual({
      engine: 'ReplacingMergeTree',
      engine_full: 'ReplacingMergeTree(ver) PARTITION BY toYYYYMM(ts) ORDER BY (a, b) SETTINGS index_granularity = 2048',
      partition_key: 'toYYYYMM(ts)',
      sorting_key: 'a, b',
      settings: 'index_granularity = 2048',
      ver: 'ver',
    });
    expect(engineToJson(parseEngineParams('MergeTree', {}))).toEqual({ engine: 'MergeTree', engine_full: 'MergeTree ORDER BY tuple()' });
    expect(engineToJson(parseEngineParams('MergeTree', { engine_sorting_key: '(a, b)' })).sorting_key).toBe('a, b');
    expect(engineToJson(parseEngineParams('MergeTree', { engine_sorting_key: 'tuple()' })).sorting_key).toBeUndefined();
    expect(engineToJson(parseEngineParams('Null', {}))).toEqual({ engine: 'Null', engine_full: 'Null' });
  });

  it('engineToListJson uses engine_-prefixed keys', () => {
    expect(engineToListJson(parseEngineParams('MergeTree', { engine_sorting_key: 'a, b', engine_partition_key: 'toYear(ts)' }))).toEqual({
      engine: 'MergeTree',
      engine_sorting_key: 'a, b',
      engine_partition_key: 'toYear(ts)',
      engine_primary_key: 'a, b',
    });
    expect(engineToListJson(parseEngineParams('MergeTree', { engine_sorting_key: 'a, b', engine_primary_key: 'a' })).engine_primary_key).toBe('a');
    expect(engineToListJson(parseEngineParams('Null', {}))).toEqual({
      engine: 'Null',
      engine_sorting_key: '',
      engine_partition_key: '',
      engine_primary_key: '',
    });
  });

  it('isMergeTreeFamily', () => {
    for (const e of ['MergeTree', 'ReplacingMergeTree', 'SummingMergeTree', 'AggregatingMergeTree', 'CollapsingMergeTree', 'VersionedCollapsingMergeTree'])
      expect(isMergeTreeFamily(e), e).toBe(true);
    expect(isMergeTreeFamily('Join')).toBe(false);
    expect(isMergeTreeFamily('Null')).toBe(false);
  });
});

describe('indexes', () => {
  it('parses newline-separated definitions', () => {
    expect(parseIndexes('index_name a TYPE set(100) GRANULARITY 100\nindex_name_bf mapValues(d) TYPE bloom_filter(0.001) GRANULARITY 16')).toEqual([
      { name: 'index_name', expr: 'a', type: 'set(100)', granularity: '100' },
      { name: 'index_name_bf', expr: 'mapValues(d)', type: 'bloom_filter(0.001)', granularity: '16' },
    ]);
  });

  it('handles INDEX prefixes, trailing commas, blank lines and default granularity', () => {
    expect(parseIndexes(' INDEX  idx a TYPE minmax,\n\n  idx2 b TYPE bloom_filter\n')).toEqual([
      { name: 'idx', expr: 'a', type: 'minmax', granularity: '1' },
      { name: 'idx2', expr: 'b', type: 'bloom_filter', granularity: '1' },
    ]);
  });

  it('handles complex expressions and a column named type', () => {
    expect(parseIndexes('index_name type TYPE set(100) GRANULARITY 100')[0]).toEqual({
      name: 'index_name',
      expr: 'type',
      type: 'set(100)',
      granularity: '100',
    });
    expect(parseIndexes("my_index m['key'] TYPE ngrambf_v1(1, 1024, 1, 42) GRANULARITY 1")[0].expr).toBe("m['key']");
    expect(parseIndexes("l arrayMap(x -> tupleElement(x,'message'), column_name) TYPE ngrambf_v1(1, 1024, 1, 42) GRANULARITY 1")[0].expr).toBe(
      "arrayMap(x -> tupleElement(x,'message'), column_name)",
    );
    expect(parseIndexes('r (toIPv6(s), toIPv6(e)) TYPE minmax GRANULARITY 1')[0].expr).toBe('(toIPv6(s), toIPv6(e))');
    expect(parseIndexes('i path TYPE ngrambf_v1(4,1024,1,42) GRANULARITY 1')[0].type).toBe('ngrambf_v1(4, 1024, 1, 42)');
  });

  it('returns [] for empty or 0', () => {
    expect(parseIndexes('')).toEqual([]);
    expect(parseIndexes(undefined)).toEqual([]);
    expect(parseIndexes(' 0 ')).toEqual([]);
  });

  it('rejects malformed and disallowed indexes', () => {
    const format = 'invalid INDEX format. Usage: `name expr TYPE type_full GRANULARITY granularity`';
    expect(err(() => parseIndexes('index_name u64 * length(s)'))).toBe(format);
    expect(err(() => parseIndexes('index_name a TYPE set(100) GRANULARITY 100, idx2 mapValues(d) TYPE bloom_filter(0.001) GRANULARITY 16'))).toBe(format);
    expect(err(() => parseIndexes('i a TYPE set(100) GRANULARITY x'))).toBe(format);
    expect(err(() => parseIndexes('i a TYPE set(100) GRANULARITY 0'))).toBe(format);
    expect(err(() => parseIndexes('i TYPE set(1)'))).toBe(format);
    expect(err(() => parseIndexes('i a TYPE set(toUInt8(1))'))).toBe(format);
    expect(err(() => parseIndexes('i a TYPE hypothesis GRANULARITY 1'))).toBe("Not allowed index 'hypothesis'");
    expect(err(() => parseIndexes('i a TYPE minmax\ni b TYPE minmax'))).toBe("Index name 'i' is duplicated");
    expect(err(() => parseIndexes("i length(file('/etc/passwd')) TYPE minmax"))).toMatch(/function 'file' is not allowed/);
  });

  it('prints DDL and datafile forms', () => {
    const [i] = parseIndexes('idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4');
    expect(indexClause(i)).toBe('INDEX idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4');
    expect(formatIndex(i)).toBe('idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4');
  });
});
