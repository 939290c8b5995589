import { describe, expect, it } from 'vitest';
import { DatafileError, type Datafile } from './model.js';
import { parseDatafile, parseDatasource, parsePipe, parseToken, splitArgs } from './parse.js';
import { printDatafile, printPipe } from './print.js';

/** The model without line numbers (printers ignore them). */
function strip<T>(v: T): T {
  return JSON.parse(JSON.stringify(v, (k, x) => (k === 'line' || k === 'sqlLine' || k === 'schemaLine' ? undefined : x)));
}

function roundTrip(f: Datafile): void {
  const text = printDatafile(f);
  const back = parseDatafile(text, { kind: f.kind, file: `x.${f.kind}` }).value;
  expect(strip(back), text).toEqual(strip(f));
  expect(printDatafile(back)).toBe(text);
}

const DS = `
DESCRIPTION >
    Events from the web

    One row per hit

TOKEN "ingest_token" APPEND
TOKEN read_token READ
TAGS "team=web, events"
VERSION 2

SCHEMA >
    \`timestamp\` DateTime \`json:$.timestamp\`,
    \`session_id\` String \`json:$.session_id\`,
    \`tags\` Array(String) \`json:$.tags[:]\`,
    \`payload\` String \`json:$.payload\` DEFAULT '' CODEC(ZSTD(1))

INDEXES >
    idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4

# the engine
ENGINE "ReplacingMergeTree"
ENGINE_PARTITION_KEY "toYYYYMM(timestamp)"
ENGINE_SORTING_KEY session_id, timestamp
ENGINE_TTL "timestamp + toIntervalDay(60) WHERE payload = \\"x\\""
ENGINE_SETTINGS "index_granularity=8192"
ENGINE_VER "timestamp"
FORWARD_QUERY >
    SELECT *
`;

describe('datafile parser', () => {
  it('reads every section of a .datasource (§11.2)', () => {
    const { value, warnings } = parseDatasource(DS, { file: 'datasources/events.datasource' });
    expect(strip(value)).toEqual({
      kind: 'datasource',
      description: 'Events from the web\n\nOne row per hit',
      tokens: [
        { name: 'ingest_token', permission: 'APPEND' },
        { name: 'read_token', permission: 'READ' },
      ],
      tags: 'team=web, events',
      version: 2,
      schema:
        "`timestamp` DateTime `json:$.timestamp`,\n`session_id` String `json:$.session_id`,\n`tags` Array(String) `json:$.tags[:]`,\n`payload` String `json:$.payload` DEFAULT '' CODEC(ZSTD(1))",
      indexes: 'idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4',
      engine: 'ReplacingMergeTree',
      engineParams: {
        partition_key: 'toYYYYMM(timestamp)',
        sorting_key: 'session_id, timestamp',
        ttl: 'timestamp + toIntervalDay(60) WHERE payload = "x"',
        settings: 'index_granularity=8192',
        ver: 'timestamp',
      },
      connector: {},
    });
    expect(value.schemaLine).toBe(13);
    expect(warnings).toEqual([{ file: 'datasources/events.datasource', line: 28, message: 'FORWARD_QUERY is a Tinybird Forward option; ignored' }]);
    roundTrip(value);
  });

  it('reads legacy keys, unquoted engines and connector settings', () => {
    const { value } = parseDatasource(
      'SCHEMA >\n  a Int32\nENGINE MergeTree\nSORTING_KEY a\nKAFKA_TOPIC "t"\nIMPORT_SCHEDULE @auto\nSHARED_WITH >\n    ws_a\n    ws_b\n',
    );
    expect(strip(value)).toMatchObject({
      engine: 'MergeTree',
      engineParams: { sorting_key: 'a' },
      connector: { kafka_topic: 't', import_schedule: '@auto' },
      sharedWith: ['ws_a', 'ws_b'],
    });
    roundTrip(value);
  });

  it('reads a .pipe with every node kind and keeps templates as written', () => {
    const text = [
      'DESCRIPTION >',
      '    Pipe description',
      'TAGS "t1"',
      'TOKEN "endpoint_read" READ',
      '',
      'NODE filtered',
      'DESCRIPTION >',
      '    first node',
      'SQL >',
      '    %',
      '    SELECT * FROM events',
      '    WHERE 1 {% if defined(day) %} AND toDate(timestamp) = {{ Date(day) }} {% end %}',
      '',
      '# a comment between nodes',
      'NODE endpoint',
      'SQL >',
      '    SELECT count() c',
      'FROM filtered',
      '',
      'TYPE ENDPOINT',
      '',
    ].join('\n');
    const { value } = parsePipe(text, { file: 'pipes/p.pipe' });
    expect(strip(value)).toEqual({
      kind: 'pipe',
      description: 'Pipe description',
      tags: 't1',
      tokens: [{ name: 'endpoint_read', permission: 'READ' }],
      nodes: [
        {
          name: 'filtered',
          description: 'first node',
          sql: '%\nSELECT * FROM events\nWHERE 1 {% if defined(day) %} AND toDate(timestamp) = {{ Date(day) }} {% end %}',
          engineParams: {},
          export: {},
        },
        { name: 'endpoint', sql: 'SELECT count() c\nFROM filtered', type: 'endpoint', engineParams: {}, export: {} },
      ],
    });
    expect(value.nodes[1]).toMatchObject({ line: 15, sqlLine: 17 });
    roundTrip(value);
    const copy = parsePipe('NODE c\nSQL >\n  select 1 a\nTYPE copy\nTARGET_DATASOURCE t\nCOPY_SCHEDULE "0 * * * *"\nCOPY_MODE replace\n').value;
    expect(copy.nodes[0]).toMatchObject({ type: 'copy', targetDatasource: 't', copySchedule: '0 * * * *', copyMode: 'replace' });
    roundTrip(copy);
    const mv = parsePipe('NODE m\nSQL >\n  select 1 a\nTYPE materialized\nDATASOURCE target\nENGINE "SummingMergeTree"\nENGINE_SORTING_KEY "a"\n').value;
    expect(mv.nodes[0]).toMatchObject({ type: 'materialized', datasource: 'target', engine: 'SummingMergeTree', engineParams: { sorting_key: 'a' } });
    roundTrip(mv);
    const sink = parsePipe(
      'NODE s\nSQL >\n  select 1 a\nTYPE sink\nEXPORT_CONNECTION_NAME "conn"\nEXPORT_BUCKET_URI "s3://b/p"\nEXPORT_FILE_TEMPLATE "f_{date}"\nEXPORT_FORMAT csv\nEXPORT_SCHEDULE "@on-demand"\n',
    ).value;
    expect(sink.nodes[0].export).toEqual({ connection_name: 'conn', bucket_uri: 's3://b/p', file_template: 'f_{date}', format: 'csv', schedule: '@on-demand' });
    roundTrip(sink);
  });

  it('pastes INCLUDE files with their variables and substitutes environment variables', () => {
    const files: Record<string, string> = {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a datafile's own ${VAR} syntax
      'includes/node.incl': "NODE $name\nSQL >\n    SELECT * FROM ${source} WHERE env = '${ENVIRONMENT}'\n",
    };
    const readInclude = (p: string) => {
      if (!(p in files)) throw new Error('no such file');
      return { file: p, text: files[p] };
    };
    const { value } = parsePipe('INCLUDE "includes/node.incl" name=first source=events\n\nNODE second\nSQL >\n    SELECT $UNSET FROM first\nTYPE endpoint\n', {
      file: 'pipes/p.pipe',
      readInclude,
      env: { ENVIRONMENT: 'prod' },
    });
    expect(value.nodes.map((n) => [n.name, n.sql])).toEqual([
      ['first', "SELECT * FROM events WHERE env = 'prod'"],
      ['second', 'SELECT $UNSET FROM first'],
    ]);
    expect(() => parsePipe('INCLUDE "missing.incl"\n', { file: 'p.pipe', readInclude })).toThrow(
      'p.pipe:1: Can not read the included file "missing.incl": no such file',
    );
    const loop = { file: 'a.incl', text: 'INCLUDE "a.incl"\n' };
    expect(() => parsePipe('INCLUDE "a.incl"\n', { file: 'p.pipe', readInclude: () => loop })).toThrow('a.incl:1: INCLUDE "a.incl" includes itself');
    const incl = parseDatafile('KAFKA_TOPIC "t"\nNODE n\nSQL >\n  select 1\n', { file: 'x.incl' }).value;
    expect(strip(incl)).toEqual({ kind: 'incl', settings: { kafka_topic: 't' }, nodes: [{ name: 'n', sql: 'select 1', engineParams: {}, export: {} }] });
    roundTrip(incl);
  });

  it('reads and prints .token files', () => {
    const { value } = parseToken("DESCRIPTION >\n    reads ES\n\nSCOPE 'DATASOURCES:READ'\nRESOURCE events\nFILTER >\n    country = 'ES'\n\nSCOPE 'TOKENS'\n");
    expect(value).toEqual({
      kind: 'token',
      description: 'reads ES',
      scopes: [{ type: 'DATASOURCES:READ', resource: 'events', filter: "country = 'ES'" }, { type: 'TOKENS' }],
    });
    roundTrip(value);
  });

  it('reports errors with file and line', () => {
    const err = (text: string, file = 'pipes/p.pipe') => {
      try {
        parseDatafile(text, { file });
      } catch (e) {
        expect(e).toBeInstanceOf(DatafileError);
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err('NODE a\nSQL >\n  select 1\nTYPE endpoint\nBOGUS 1\n')).toBe('pipes/p.pipe:5: BOGUS is not a valid option');
    expect(err('SQL >\n  select 1\n')).toBe('pipes/p.pipe:1: SQL must be called after a NODE command');
    expect(err('NODE\n')).toBe('pipes/p.pipe:1: Missing node name for pipe creation after the NODE label');
    expect(err('NODE a\nSQL >\n\nTYPE endpoint\n')).toBe('pipes/p.pipe:2: Missing sql query for pipe creation after the SQL label');
    expect(err('NODE a\n')).toBe('pipes/p.pipe:1: Missing sql query for node "a": add a SQL > block after the NODE label');
    expect(err('TOKEN "x"\n')).toBe('pipes/p.pipe:1: TOKEN gets two params, token name and permissions e.g TOKEN "read api token" READ');
    expect(err('NODE a\nSQL >\n  select 1\nTYPE materialized\n')).toBe('pipes/p.pipe:4: The materialized node "a" needs DATASOURCE <target data source>');
    expect(err('NODE a\nSQL >\n  select 1\nTYPE endpoint\nNODE b\nSQL >\n  select 1\nTYPE copy\nTARGET_DATASOURCE t\n')).toMatch(
      /^pipes\/p.pipe:8: A pipe has one output node/,
    );
    expect(err('NODE a\nSQL >\n  select 1\nTYPE table\n')).toBe('pipes/p.pipe:4: Invalid node type "table": use endpoint, materialized, copy or sink');
    expect(err('SETTINGS "x=1"\nSCHEMA >\n  a Int32\n', 'd.datasource')).toBe('d.datasource:1: SETTINGS is not a valid option');
    expect(err('ENGINE MergeTree\n', 'd.datasource')).toBe('d.datasource: SCHEMA is required in a .datasource file');
    expect(err('SCHEMA >\n  a Int32\nVERSION x\n', 'd.datasource')).toBe('d.datasource:3: VERSION must be a non-negative integer, got "x"');
    expect(err('SCHEMA >\n  a Int32\n  INDENTED\nENGINE MergeTree\n   stray\n', 'd.datasource')).toBe(
      'd.datasource:5: Unexpected indented line: a multi-line value starts with "INSTRUCTION >" on the line before',
    );
    expect(err('NODE a\nSQL >\n  select 1\nENGINE_FOO "x"\n')).toBe('pipes/p.pipe:4: ENGINE_FOO is not a valid option');
  });

  it('splits arguments like a shell', () => {
    expect(splitArgs(`"read api token" READ 'a b' c\\d "x\\"y"`)).toEqual(['read api token', 'READ', 'a b', 'c\\d', 'x"y']);
    expect(() => splitArgs('"open')).toThrow('Unclosed " quote');
  });

  it('prints a pipe the way the API always has', () => {
    const text = printPipe({
      kind: 'pipe',
      description: 'per country',
      tokens: [],
      nodes: [
        { name: 'filtered', description: 'first', sql: '%\nSELECT * FROM events\n\n\nWHERE 1', engineParams: {}, export: {} },
        { name: 'agg', sql: 'SELECT count() FROM filtered', type: 'endpoint', engineParams: {}, export: {} },
      ],
    });
    expect(text).toBe(
      [
        'DESCRIPTION >',
        '    per country',
        '',
        'NODE filtered',
        'DESCRIPTION >',
        '    first',
        '',
        'SQL >',
        '    %',
        '    SELECT * FROM events',
        '',
        '',
        '    WHERE 1',
        '',
        'NODE agg',
        'SQL >',
        '    SELECT count() FROM filtered',
        '',
        'TYPE endpoint',
        '',
      ].join('\n'),
    );
    // Blank lines inside SQL are kept: the file reads back to the same SQL.
    expect(parsePipe(text).value.nodes[0].sql).toBe('%\nSELECT * FROM events\n\n\nWHERE 1');
  });
});
