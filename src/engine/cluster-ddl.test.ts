import { describe, expect, it } from 'vitest';
import type { DatasourceRecord } from '../catalog/catalog.js';
import { parseEngineParams, parseSchema } from '../schema/index.js';
import { createTablesSql, dropAllSql, stagesDdl } from '../ingest/physical.js';
import { clusterStatement, REPLICA_ARGS, replicatedEngine } from './cluster-ddl.js';
import { parseVersion, splitStreamException, versionAtLeast } from './remote-engine.js';

const C = '`pipit_cluster`';
const on = (sql: string) => clusterStatement(sql, 'pipit_cluster');

function ds(
  engine: string | undefined,
  args: Record<string, string>,
  schema = 'a String `json:$.a`, ts DateTime `json:$.ts`, ver UInt64 `json:$.ver`',
): DatasourceRecord {
  const columns = parseSchema(schema);
  return {
    id: 't_0123456789abcdef0123456789abcdef',
    workspaceId: 'w',
    name: 'events',
    description: '',
    columns,
    engine: parseEngineParams(engine, args),
    indexes: [],
    format: 'ndjson',
    headers: {},
    createdAt: '',
    updatedAt: '',
    version: 1,
  };
}

describe('clusterStatement: the DDL Pipit generates, made cluster-wide', () => {
  it('leaves every statement unchanged without a cluster', () => {
    const d = ds('MergeTree', { engine_sorting_key: 'a' });
    for (const sql of [...createTablesSql(d, 'w_1'), ...stagesDdl(d, 'w_1').flatMap((x) => x.statements)]) expect(clusterStatement(sql, null)).toBe(sql);
  });

  it('a data source: table, quarantine, ingest stages and their views all run ON CLUSTER; MergeTree tables become Replicated', () => {
    const d = ds('MergeTree', { engine_sorting_key: 'a, ts' });
    const [table, quarantine, ...stages] = [...createTablesSql(d, 'w_1'), ...stagesDdl(d, 'w_1').flatMap((x) => x.statements)].map(on);
    expect(table).toBe(
      `CREATE TABLE \`w_1\`.\`t_0123456789abcdef0123456789abcdef\` ON CLUSTER ${C} (\`a\` String, \`ts\` DateTime, \`ver\` UInt64) ` +
        `ENGINE = ReplicatedMergeTree(${REPLICA_ARGS}) ORDER BY (a, ts) SETTINGS non_replicated_deduplication_window = 1000`,
    );
    expect(quarantine).toMatch(new RegExp(`^CREATE TABLE IF NOT EXISTS w_1\\.t_0123456789abcdef0123456789abcdef_quarantine ON CLUSTER ${C} \\(`));
    expect(quarantine).toContain(`ENGINE = ReplicatedMergeTree(${REPLICA_ARGS}) ORDER BY insertion_date`);
    expect(stages.length).toBeGreaterThan(0);
    for (const s of stages) {
      expect(s).toMatch(new RegExp(`^CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS \\S+ ON CLUSTER ${C} `));
      // Null-engine stages and views are not replicated (a view writes on the replica the insert reached).
      expect(s).not.toContain('Replicated');
    }
  });

  it('engine arguments follow the replication arguments', () => {
    const [table] = createTablesSql(ds('ReplacingMergeTree', { engine_sorting_key: 'a', engine_ver: 'ver' }), 'w_1').map(on);
    expect(table).toContain(`ENGINE = ReplicatedReplacingMergeTree(${REPLICA_ARGS}, ver) ORDER BY a`);
    expect(replicatedEngine("CREATE TABLE x (a Int8) ENGINE = SummingMergeTree((a), ')') ORDER BY a")).toBe(
      `CREATE TABLE x (a Int8) ENGINE = ReplicatedSummingMergeTree(${REPLICA_ARGS}, (a), ')') ORDER BY a`,
    );
    expect(replicatedEngine('CREATE TABLE x (a Int8) ENGINE = AggregatingMergeTree() ORDER BY a')).toBe(
      `CREATE TABLE x (a Int8) ENGINE = ReplicatedAggregatingMergeTree(${REPLICA_ARGS}) ORDER BY a`,
    );
    // Other engines stay.
    expect(on('CREATE TABLE x (a Int8) ENGINE = Null')).toBe(`CREATE TABLE x ON CLUSTER ${C} (a Int8) ENGINE = Null`);
  });

  it('drops, alters, truncates, deletes, renames, exchanges, merges and kills', () => {
    for (const sql of dropAllSql(ds('MergeTree', {}), 'w_1').map(on))
      expect(sql).toMatch(new RegExp(`^DROP (TABLE|VIEW) IF EXISTS \\S+ ON CLUSTER ${C}( SYNC)?$`));
    expect(on('ALTER TABLE w.t ADD COLUMN b Int8')).toBe(`ALTER TABLE w.t ON CLUSTER ${C} ADD COLUMN b Int8`);
    expect(on('ALTER TABLE w.t DELETE WHERE a = 1 SETTINGS mutations_sync = 2')).toBe(
      `ALTER TABLE w.t ON CLUSTER ${C} DELETE WHERE a = 1 SETTINGS mutations_sync = 2`,
    );
    expect(on('TRUNCATE TABLE w.t')).toBe(`TRUNCATE TABLE w.t ON CLUSTER ${C}`);
    expect(on('DELETE FROM w.t WHERE a = 1')).toBe(`DELETE FROM w.t ON CLUSTER ${C} WHERE a = 1`);
    expect(on('EXCHANGE TABLES w.a AND w.b')).toBe(`EXCHANGE TABLES w.a AND w.b ON CLUSTER ${C}`);
    expect(on('RENAME TABLE w.a TO w.b, w.c TO w.d')).toBe(`RENAME TABLE w.a TO w.b, w.c TO w.d ON CLUSTER ${C}`);
    expect(on('SYSTEM STOP MERGES w.t')).toBe(`SYSTEM STOP MERGES ON CLUSTER ${C} w.t`);
    expect(on("KILL QUERY WHERE startsWith(query_id, 'x') ASYNC")).toBe(`KILL QUERY ON CLUSTER ${C} WHERE startsWith(query_id, 'x') ASYNC`);
    expect(on('CREATE DATABASE IF NOT EXISTS `w_1`')).toBe(`CREATE DATABASE IF NOT EXISTS \`w_1\` ON CLUSTER ${C}`);
    expect(on('CREATE MATERIALIZED VIEW w.v TO w.t (a Int8) AS SELECT a FROM w.s')).toBe(
      `CREATE MATERIALIZED VIEW w.v ON CLUSTER ${C} TO w.t (a Int8) AS SELECT a FROM w.s`,
    );
  });

  it('reads and inserts are not DDL', () => {
    for (const sql of ['SELECT 1', 'INSERT INTO w.t SELECT * FROM w.s', "WITH x AS (SELECT 1) SELECT * FROM x WHERE 'CREATE TABLE' != ''"])
      expect(on(sql)).toBe(sql);
  });
});

describe('server version check', () => {
  it('compares versions component by component', () => {
    expect(parseVersion('23.8.2.7')).toEqual([23, 8, 2, 7]);
    expect(versionAtLeast('26.7.2.1', '23.8')).toBe(true);
    expect(versionAtLeast('23.8.1.1', '23.8')).toBe(true);
    expect(versionAtLeast('23.3.22.3', '23.8')).toBe(false);
    expect(versionAtLeast('18.16.1', '23.8')).toBe(false);
    expect(versionAtLeast('100.1', '23.8')).toBe(true);
  });
});

describe('an exception at the end of a streamed response (ClickHouse 25.11+)', () => {
  const frame = (tag: string, msg: string) => `\r\n__exception__\r\n${tag}\n${msg}\n${Buffer.byteLength(msg) + 1} ${tag}\r\n__exception__\r\n`;
  it('is split from the data before it and parsed', () => {
    const tail = Buffer.from(`1\n2\n${frame('abc', 'Code: 395. DB::Exception: boom. (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO) (version 26.7.2.1)')}`);
    const r = splitStreamException(tail, 'abc');
    expect(r?.data.toString()).toBe('1\n2\n');
    expect(r?.error.chCode).toBe(395);
    expect(r?.error.message).toBe('boom.');
  });
  it('needs the response tag: data that merely looks like one is data', () => {
    expect(splitStreamException(Buffer.from(`x${frame('abc', 'Code: 1. DB::Exception: no')}`), 'other')).toBeNull();
    expect(splitStreamException(Buffer.from('plain data\n'), 'abc')).toBeNull();
    expect(splitStreamException(Buffer.from('plain'), undefined)).toBeNull();
  });
});
