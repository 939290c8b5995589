/**
 * Security suite of the Query API (`/v0/sql`) and the SQL safety layer (src/sql): hostile queries
 * over real HTTP against the real engine and catalog. Each one must be refused with a 4xx whose
 * message names what was refused, and must never reach the engine: `engine.select` (the only
 * path user SQL takes into chDB) is wrapped by a recorder that every refusal checks.
 *
 * Canaries, all live (a control proves the engine itself would hand them out):
 *  - a file on disk holding a random secret (chDB's scalar file() reads the host's files);
 *  - a table in another workspace-style database (`w_other.canary`), which must stay unread and
 *    unchanged;
 *  - a table in a database created after the server started (`canary_late`), which the layer's
 *    database-name heuristics do not know, so only the walker's structure stands between it and
 *    the user;
 *  - a data source of the workspace (`survivor`) that must survive every DROP/ALTER/TRUNCATE/
 *    INSERT attempt with its rows intact.
 * No response body may contain any secret.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SelectOptions } from '../../src/engine/engine.js';
import { engineRows, startServer, tableOf, type TestServer } from '../helpers/server.js';

let s: TestServer;
let canaryDir: string;
let canaryFile: string;
let survivorTable: string;
let workspaceDb: string;

const secret = () => `canary_${crypto.randomBytes(12).toString('hex')}`;
const FILE_SECRET = secret();
const TABLE_SECRET = secret();
const LATE_SECRET = secret();
const SECRETS = [FILE_SECRET, TABLE_SECRET, LATE_SECRET];

const SURVIVOR_ROWS = [
  { id: 1, s: 'one' },
  { id: 2, s: 'two' },
  { id: 3, s: 'three' },
];

/** SQL the engine's select() (user queries) was asked to run, in order. */
const engineCalls: string[] = [];
/** SQL the engine's query() (every other statement: exec, rows, ...) was asked to run. */
const internalCalls: string[] = [];
let restoreSelect: (() => void) | undefined;

/** Every response body seen, for the secret check. */
const bodies: string[] = [];
let hostileCount = 0;

/** How the query is sent: raw POST body, GET q=, JSON or form body, or GET with explain=true. */
type Via = 'post' | 'get' | 'json' | 'form' | 'explain';

async function send(q: string, via: Via = 'post'): Promise<{ status: number; text: string; error: string }> {
  let r: Response;
  if (via === 'get') r = await s.req('GET', `/v0/sql?q=${encodeURIComponent(q)}`);
  else if (via === 'explain') r = await s.req('GET', `/v0/sql?explain=true&q=${encodeURIComponent(q)}`);
  else if (via === 'json') r = await s.req('POST', '/v0/sql', { body: JSON.stringify({ q }), headers: { 'content-type': 'application/json' } });
  else if (via === 'form')
    r = await s.req('POST', '/v0/sql', { body: new URLSearchParams({ q }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  else r = await s.req('POST', '/v0/sql', { body: q });
  const text = await r.text();
  bodies.push(text);
  let error = '';
  try {
    error = String((JSON.parse(text) as { error?: unknown }).error ?? '');
  } catch {
    /* not JSON */
  }
  return { status: r.status, text, error };
}

/** Sends a hostile query and asserts: the status, the message naming what was refused, no engine call, no secret. */
async function refused(q: string, status: number, message: RegExp, via: Via = 'post'): Promise<void> {
  hostileCount++;
  const before = engineCalls.length;
  const beforeInternal = internalCalls.length;
  const r = await send(q, via);
  const shown = q.length > 200 ? `${q.slice(0, 200)}... (${q.length} chars)` : q;
  expect(r.status, `${shown}\n-> ${r.text.slice(0, 300)}`).toBe(status);
  expect(r.error, shown).toMatch(message);
  expect(engineCalls.slice(before), `${shown} reached the engine`).toEqual([]);
  expect(internalCalls.slice(beforeInternal), `${shown} made the engine run something`).toEqual([]);
  for (const sec of SECRETS) expect(r.text.includes(sec), `${shown} leaked a canary`).toBe(false);
}

interface Case {
  q: string;
  status: number;
  msg: RegExp;
  via?: Via;
}
const c = (q: string, status: number, msg: RegExp, via?: Via): Case => ({ q, status, msg, via });
const runCases = (cases: Case[]) =>
  it.each(cases.map((x) => [x.q.length > 120 ? `${x.q.slice(0, 120)}...` : x.q, x] as const))('%s', async (_name, x) => {
    await refused(x.q, x.status, x.msg, x.via);
  });

const ONE_STATEMENT = /only one statement is allowed/;
const notStatement = (w: string) => new RegExp(`only SELECT queries are allowed, not ${w}`);
const tableFn = (name: string) => new RegExp(`The query uses disabled table functions: '${name}'`);
const fn = (name: string) => new RegExp(`The query uses disabled functions: '${name}'`);
const db = (name: string) => new RegExp(`the database '${name}' is not accessible`);
const sysTable = (name: string) => new RegExp(`the system table 'system\\.${name}' is not allowed`);
const SETTINGS = /SETTINGS clauses are not allowed/;
const INTO = /INTO OUTFILE is not allowed/;
const FORMAT_ONCE = /FORMAT is only allowed once, at the end of the query/;

beforeAll(async () => {
  s = await startServer();
  canaryDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-canary-'));
  canaryFile = path.join(canaryDir, 'secret.txt');
  fs.writeFileSync(canaryFile, `${FILE_SECRET}\n`);

  const engine = s.app.services.engine;
  await engine.exec('CREATE DATABASE IF NOT EXISTS w_other');
  await engine.exec('CREATE TABLE w_other.canary (id UInt64, secret String) ENGINE = MergeTree ORDER BY id');
  await engine.exec(`INSERT INTO w_other.canary SELECT number, '${TABLE_SECRET}' FROM numbers(3)`);
  // Created after start-up: the query service learned the engine's databases before it existed.
  await engine.exec('CREATE DATABASE IF NOT EXISTS canary_late');
  await engine.exec('CREATE TABLE canary_late.t (n UInt64, s String) ENGINE = MergeTree ORDER BY n');
  await engine.exec(`INSERT INTO canary_late.t SELECT number, '${LATE_SECRET}' FROM numbers(2)`);

  const created = await s.req('POST', '/v0/datasources?name=survivor&mode=create', {
    body: new URLSearchParams({ schema: 'id Int64 `json:$.id`, s String `json:$.s`', engine_sorting_key: 'id' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  expect(created.status, await created.text()).toBe(200);
  const appended = await s.req('POST', '/v0/datasources?name=survivor&mode=append&format=ndjson', {
    body: SURVIVOR_ROWS.map((r) => JSON.stringify(r)).join('\n') + '\n',
  });
  expect(appended.status, await appended.text()).toBe(200);
  survivorTable = (await tableOf(s, 'survivor')).table;
  workspaceDb = survivorTable.split('.')[0];
});

afterAll(async () => {
  restoreSelect?.();
  await s?.close();
  if (canaryDir) fs.rmSync(canaryDir, { recursive: true, force: true });
});

describe('set-up', () => {
  it('the canaries are live: the engine itself hands them out to a read-only Session', async () => {
    const engine = s.app.services.engine;
    const run = async (sql: string) => {
      const opts: SelectOptions = {
        format: 'TSV',
        queryId: `control${crypto.randomBytes(4).toString('hex')}`,
        limits: { maxExecutionTime: 10, maxResultBytes: 1e8, maxMemoryUsage: 2e9 },
      };
      const parts: Buffer[] = [];
      for await (const chunk of await engine.select(sql, opts)) parts.push(chunk);
      return Buffer.concat(parts).toString('utf8');
    };
    expect(await run(`SELECT file('${canaryFile}')`)).toContain(FILE_SECRET);
    expect(await run(`SELECT * APPLY(file) FROM values('p String', '${canaryFile}')`)).toContain(FILE_SECRET);
    expect(await run('SELECT secret FROM w_other.canary LIMIT 1')).toContain(TABLE_SECRET);
    expect(await run('SELECT (FROM canary_late.t SELECT any(s))')).toContain(LATE_SECRET);
  });

  it('installs the engine recorder, and legit SQL goes through it', async () => {
    const engine = s.app.services.engine;
    const original = engine.select;
    const originalQuery = engine.query;
    engine.select = function (this: typeof engine, sql: string, opts: SelectOptions) {
      engineCalls.push(sql);
      return original.call(this, sql, opts);
    } as typeof engine.select;
    // Also every other statement (exec and rows go through query): a refusal runs nothing at all.
    engine.query = function (this: typeof engine, sql: string, opts?: Parameters<typeof originalQuery>[1]) {
      internalCalls.push(sql);
      return originalQuery.call(this, sql, opts);
    } as typeof engine.query;
    restoreSelect = () => {
      engine.select = original;
      engine.query = originalQuery;
    };
    const r = await send('SELECT count() FROM survivor FORMAT CSV');
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe('3\n');
    expect(engineCalls).toHaveLength(1);
    expect(engineCalls[0]).toContain(survivorTable);
  });
});

describe('multi-statements', () => {
  runCases([
    c('SELECT 1; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT * FROM survivor; TRUNCATE TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT 1;DROP DATABASE w_other', 403, ONE_STATEMENT),
    c('SELECT 1;;', 403, ONE_STATEMENT),
    c('SELECT 1; SELECT 2', 403, ONE_STATEMENT),
    c('SELECT 1 /* comment */; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT 1 /* ; */ ; DELETE FROM survivor WHERE 1', 403, ONE_STATEMENT),
    // Nested comments: the first */ closes only the inner one, so the rest is still a comment...
    c('SELECT 1 /* /* nested */ ; DROP TABLE survivor', 400, /unterminated comment/),
    // ...and once both are closed, the ; is code.
    c('SELECT 1 /* /* */ */ ; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT 1 -- comment\n; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT 1 # comment\n; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT 1 #!shebang\n; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT 1 #comment; DROP TABLE survivor', 400, /unexpected character '#'/),
    c("SELECT 'a'''; DROP TABLE survivor", 403, ONE_STATEMENT),
    c("SELECT 'a\\\\'; DROP TABLE survivor; --'", 403, ONE_STATEMENT),
    c("SELECT 'unterminated; DROP TABLE survivor", 400, /unterminated string literal/),
    c('SELECT "col;"; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT `a``b`; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT $$x$$; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT $tag$ $$ ; $tag$; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT $a b$ ; DROP TABLE survivor $a b$', 400, /unexpected character '\$'/),
    c('SELECT $$ ; DROP TABLE survivor', 400, /unterminated heredoc/),
    c('SELECT 1;\fDROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT 1\v;\vDROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT 1\r;\rDROP TABLE survivor', 403, ONE_STATEMENT),
    // No-break spaces separate tokens (as in ClickHouse); the statement separator is still refused.
    c('SELECT 1;\u00a0DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT\u00a01; DROP TABLE survivor', 403, ONE_STATEMENT),
    c('SELECT 1\uff1b DROP TABLE survivor', 400, /unexpected character U\+FF1B/),
    c('SELECT 1\u037e DROP TABLE survivor', 400, /unexpected character U\+037E/),
    c('SELECT 1\u2028; DROP TABLE survivor', 400, /unexpected character U\+2028/),
    c('SELECT 1\u0000; DROP TABLE survivor', 400, /unexpected character U\+0000/),
    // ClickHouse runs `a PARALLEL WITH b` as two statements.
    c('SELECT 1 PARALLEL WITH KILL QUERY WHERE 1', 403, /only one statement is allowed, not PARALLEL WITH/),
    c('SELECT 1 PARALLEL WITH DROP TABLE survivor', 403, /only one statement is allowed, not PARALLEL WITH/),
    c('SELECT 1; DROP TABLE survivor', 403, ONE_STATEMENT, 'get'),
    c('SELECT 1; DROP TABLE survivor', 403, ONE_STATEMENT, 'json'),
    c('SELECT 1; DROP TABLE survivor', 403, ONE_STATEMENT, 'form'),
    c('EXPLAIN AST SELECT 1; DROP TABLE survivor', 403, notStatement('EXPLAIN')),
  ]);
});

describe('table functions outside the allow-list', () => {
  const P = "'/etc/passwd'";
  const all: Array<[string, string]> = [
    ['file', `${P}, 'LineAsString'`],
    ['url', "'http://127.0.0.1:1/x', CSV"],
    ['s3', "'http://127.0.0.1:1/b/x.csv'"],
    ['gcs', "'http://127.0.0.1:1/b/x.csv'"],
    ['remote', "'127.0.0.1:9000', w_other.canary"],
    ['remoteSecure', "'127.0.0.1:9440', w_other, canary"],
    ['cluster', "'default', w_other.canary"],
    ['clusterAllReplicas', "'default', w_other.canary"],
    ['mysql', "'127.0.0.1:3306', 'db', 't', 'u', 'p'"],
    ['postgresql', "'127.0.0.1:5432', 'db', 't', 'u', 'p'"],
    ['sqlite', `${P}, 't'`],
    ['odbc', "'DSN=x', 't'"],
    ['jdbc', "'jdbc:x', 't'"],
    ['mongodb', "'127.0.0.1:27017', 'db', 'c', 'u', 'p', 'x String'"],
    ['redis', "'127.0.0.1:6379', 'k', 'k String'"],
    ['hdfs', "'hdfs://127.0.0.1:9000/x', 'CSV', 'a String'"],
    ['azureBlobStorage', "'DefaultEndpointsProtocol=http', 'c', 'x.csv'"],
    ['executable', "'cat /etc/passwd', 'LineAsString', 'l String'"],
    ['input', "'a String'"],
    ['merge', "'w_other', '.*'"],
    ['dictionary', "'w_other.dict'"],
    ['view', 'SELECT * FROM w_other.canary'],
    ['viewIfPermitted', "SELECT * FROM w_other.canary ELSE null('secret String')"],
    ['viewExplain', "'EXPLAIN AST', '', (SELECT 1)"],
    ['loop', 'w_other.canary'],
    ['iceberg', "'http://127.0.0.1:1/t'"],
    ['icebergLocal', "'/tmp/t'"],
    ['deltaLake', "'http://127.0.0.1:1/t'"],
    ['deltaLakeLocal', "'/tmp/t'"],
    ['hudi', "'http://127.0.0.1:1/t'"],
    ['fuzzQuery', "'SELECT 1'"],
    ['fuzzJSON', "'{}'"],
    ['mergeTreeIndex', 'w_other, canary'],
    ['mergeTreeProjection', 'w_other, canary, p'],
    ['format', 'JSONEachRow, \'{"a": 1}\''],
    // generateSeries is harmless (like numbers), but Tinybird's allow-list does not have it: refused alike.
    ['generateSeries', '1, 10'],
    ['generate_series', '1, 10'],
    ['primes', '10'],
    ['filesystem', "'/'"],
    ['urlCluster', "'default', 'http://127.0.0.1:1/x'"],
    ['s3Cluster', "'default', 'http://127.0.0.1:1/b/x.csv'"],
    ['fileCluster', `'default', ${P}`],
    ['arrowstream', "'/tmp/x'"],
    ['paimonLocal', "'/tmp/t'"],
    ['timeSeriesData', 'w_other.canary'],
    ['ytsaurus', "'http://127.0.0.1:1', '//t', 'tok'"],
  ];
  runCases(all.map(([name, args]) => c(`SELECT * FROM ${name}(${args})`, 403, tableFn(name))));

  describe('in other spellings and places', () => {
    runCases([
      c(`SELECT * FROM FILE(${P})`, 403, tableFn('FILE')),
      c(`SELECT * FROM FiLe(${P})`, 403, tableFn('FiLe')),
      c(`SELECT * FROM \`file\`(${P})`, 403, tableFn('file')),
      c(`SELECT * FROM "file"(${P})`, 403, tableFn('file')),
      c(`SELECT * FROM file /* hidden */ (${P})`, 403, tableFn('file')),
      c(`SELECT * FROM URL('http://127.0.0.1:1/x', CSV)`, 403, tableFn('URL')),
      c(`SELECT * FROM (SELECT * FROM file(${P}))`, 403, tableFn('file')),
      c(`SELECT * FROM survivor AS a JOIN url('http://127.0.0.1:1/x', CSV) AS b ON 1`, 403, tableFn('url')),
      c(`SELECT * FROM survivor, s3('http://127.0.0.1:1/b/x')`, 403, tableFn('s3')),
      c(`WITH x AS (SELECT * FROM file(${P})) SELECT * FROM x`, 403, tableFn('file')),
      c(`SELECT * FROM survivor WHERE s IN (SELECT * FROM file(${P}))`, 403, tableFn('file')),
      c(`SELECT 1 UNION ALL SELECT * FROM remote('127.0.0.1', w_other.canary)`, 403, tableFn('remote')),
      c(`SELECT (SELECT count() FROM merge('w_other', '.*'))`, 403, tableFn('merge')),
      c(`SELECT * FROM merge(REGEXP('^w_'), '.*')`, 403, tableFn('merge')),
      c(`SELECT * FROM numbers(1) AS n LEFT JOIN executable('id', 'TSV', 'x String') AS e ON 1`, 403, tableFn('executable')),
      c(`SELECT s FROM survivor WHERE s IN file(${P})`, 403, fn('file')),
      c(`SELECT * FROM survivor WHERE id = ANY (SELECT 1 FROM input('a String'))`, 403, tableFn('input')),
    ]);
  });
});

describe('the scalar file() and other denied functions', () => {
  const P = `'/etc/passwd'`;
  runCases([
    c(`SELECT file(${P})`, 403, fn('file')),
    c(`SELECT FILE(${P})`, 403, fn('FILE')),
    c(`SELECT \`file\`(${P})`, 403, fn('file')),
    c(`SELECT "file"(${P})`, 403, fn('file')),
    c(`SELECT file/**/(${P})`, 403, fn('file')),
    c(`SELECT lower(file(${P}))`, 403, fn('file')),
    c(`SELECT length(toString(file(${P}))) > 0`, 403, fn('file')),
    c(`SELECT arrayMap(x -> file(x), [${P}])`, 403, fn('file')),
    c(`SELECT [file(${P})]`, 403, fn('file')),
    c(`SELECT file(${P})::String`, 403, fn('file')),
    c(`SELECT anyState(file(${P}))`, 403, fn('file')),
    c(`SELECT * FROM survivor WHERE file(${P}) != ''`, 403, fn('file')),
    c(`SELECT * FROM survivor ORDER BY file(${P})`, 403, fn('file')),
    c(`WITH file(${P}) AS x SELECT x`, 403, fn('file')),
    c(`SELECT (SELECT file(${P}))`, 403, fn('file')),
    // Function references: ClickHouse calls a function passed by name.
    c(`SELECT * APPLY(file) FROM values('p String', ${P})`, 403, fn('file')),
    c(`SELECT * APPLY file FROM values('p String', ${P})`, 403, fn('file')),
    c(`SELECT COLUMNS('p') APPLY(toString) APPLY(\`file\`) FROM values('p String', ${P})`, 403, fn('file')),
    c(`SELECT arrayMap(file, [${P}])`, 403, fn('file')),
    c(`SELECT arrayMap((file), [${P}])`, 403, fn('file')),
    c(`SELECT arrayJoin(arrayMap(file AS f, [${P}]))`, 403, fn('file')),
    c(`SELECT arrayFold(file, [${P}], '')`, 403, fn('file')),
    c(`SELECT mapApply(file, map('a', 'b'))`, 403, fn('file')),
    c("SELECT getSetting('readonly')", 403, fn('getSetting')),
    c("SELECT getSettingOrDefault('readonly', 0)", 403, fn('getSettingOrDefault')),
    c("SELECT getServerSetting('tcp_port')", 403, fn('getServerSetting')),
    c("SELECT arrayMap(getSetting, ['max_threads'])", 403, fn('getSetting')),
    c('SELECT currentDatabase()', 403, fn('currentDatabase')),
    c('SELECT DATABASE()', 403, fn('DATABASE')),
    c('SELECT current_database()', 403, fn('current_database')),
    c('SELECT currentUser(), user()', 403, fn('currentUser')),
    c('SELECT hostName()', 403, fn('hostName')),
    c('SELECT FQDN()', 403, fn('FQDN')),
    c("SELECT hasColumnInTable('w_other', 'canary', 'secret')", 403, fn('hasColumnInTable')),
    c("SELECT dictGet('w_other.dict', 'secret', toUInt64(1))", 403, fn('dictGet')),
    c("SELECT dictGetString('w_other.dict', 'secret', toUInt64(1))", 403, fn('dictGetString')),
    c("SELECT dictHas('w_other.dict', toUInt64(1))", 403, fn('dictHas')),
    c("SELECT naiveBayesClassifier('w_other.dict', 'text')", 403, fn('naiveBayesClassifier')),
    c("SELECT getMacro('shard')", 403, fn('getMacro')),
    c('SELECT filesystemCapacity()', 403, fn('filesystemCapacity')),
    c('SELECT serverUUID()', 403, fn('serverUUID')),
    c("SELECT globalVariable('max_allowed_packet')", 403, fn('globalVariable')),
    c("SELECT getClientHTTPHeader('authorization')", 403, fn('getClientHTTPHeader')),
    c("SELECT aiGenerate('hello')", 403, fn('aiGenerate')),
    c("SELECT generateSerialID('x')", 403, fn('generateSerialID')),
    c("SELECT __getScalar('x')", 403, fn('__getScalar')),
    c("SELECT merge('w_other', 'canary')", 403, fn('merge')),
  ]);
});

describe('joinGet across databases and on tables without the Join engine', () => {
  runCases([
    c(
      "SELECT joinGet('w_other.canary', 'secret', toUInt64(1))",
      404,
      /Resource 'w_other.canary' not found \(joinGet needs a Data Source with the Join engine\)/,
    ),
    c("SELECT joinGetOrNull('w_other.canary', 'secret', toUInt64(1))", 404, /Resource 'w_other.canary' not found/),
    c("SELECT joinGet($$w_other.canary$$, 'secret', toUInt64(1))", 404, /Resource 'w_other.canary' not found/),
    c("SELECT joinGet('survivor', 's', toInt64(1))", 404, /Resource 'survivor' not found \(joinGet needs a Data Source with the Join engine\)/),
    c("SELECT joinGet('x' || 'w_other.canary', 'secret', 1)", 404, /Resource 'x' not found/),
    c("SELECT joinGet(concat('w_other', '.canary'), 'secret', toUInt64(1))", 403, /joinGet needs the name of a Join data source/),
    c("SELECT arrayMap(joinGet, ['w_other.canary'], ['secret'], [1])", 403, fn('joinGet')),
  ]);
});

describe('INTO OUTFILE, SETTINGS and FORMAT', () => {
  runCases([
    c("SELECT 1 INTO OUTFILE '/tmp/pipit-owned'", 403, INTO),
    c("SELECT * FROM survivor INTO OUTFILE '/tmp/pipit-owned' TRUNCATE FORMAT CSV", 403, INTO),
    c("SELECT * FROM survivor INTO OUTFILE '/tmp/pipit-owned' APPEND", 403, INTO),
    c("SELECT 1 FORMAT CSV INTO OUTFILE '/tmp/pipit-owned'", 403, INTO),
    c("SELECT * FROM (SELECT 1 INTO OUTFILE '/tmp/pipit-owned')", 403, INTO),
    c('SELECT 1 SETTINGS readonly = 0', 403, SETTINGS),
    c('SELECT 1 settings readonly=0', 403, SETTINGS),
    c('SELECT * FROM (SELECT 1 SETTINGS readonly = 0)', 403, SETTINGS),
    c('SELECT 1 FORMAT JSON SETTINGS readonly = 0', 403, SETTINGS),
    c('SELECT * FROM survivor SETTINGS max_execution_time = 100000, max_result_bytes = 0', 403, SETTINGS),
    c('WITH x AS (SELECT 1 SETTINGS readonly = 0) SELECT * FROM x', 403, SETTINGS),
    c('SELECT * FROM survivor WHERE id IN (SELECT 1 SETTINGS readonly = 0)', 403, SETTINGS),
    c('SELECT * FROM survivor AS a JOIN (SELECT 1 AS id SETTINGS readonly = 0) AS b USING id', 403, SETTINGS),
    c('SELECT * FROM numbers(10 SETTINGS readonly = 0)', 403, SETTINGS),
    c('SELECT 1 /* hidden */ SETTINGS readonly = 0', 403, SETTINGS),
    c('SELECT * FROM (SELECT 1 FORMAT JSON)', 403, FORMAT_ONCE),
    c('SELECT 1 FORMAT JSON UNION ALL SELECT 2', 403, FORMAT_ONCE),
    c('SELECT 1 FORMAT JSON FORMAT CSV', 403, FORMAT_ONCE),
    c('SELECT 1 IN (SELECT 1 FORMAT CSV)', 403, FORMAT_ONCE),
    c('SELECT 1 FORMAT Vertical', 403, /invalid format, available ones: JSON/),
    c('SELECT 1 FORMAT Native', 403, /invalid format, available ones: JSON/),
    c('SELECT 1 FORMAT Template', 403, /invalid format, available ones: JSON/),
  ]);
});

describe('system tables', () => {
  runCases([
    ...[
      'tables',
      'settings',
      'processes',
      'databases',
      'query_log',
      'columns',
      'users',
      'grants',
      'disks',
      'server_settings',
      'build_options',
      'macros',
      'parts',
      'clusters',
      'zookeeper',
    ].map((t) => c(`SELECT * FROM system.${t}`, 403, sysTable(t))),
    c('SELECT * FROM "system"."tables"', 403, sysTable('tables')),
    c('SELECT * FROM `system`.`tables`', 403, sysTable('tables')),
    c('SELECT * FROM system . tables', 403, sysTable('tables')),
    c('SELECT * FROM system/**/./**/tables', 403, sysTable('tables')),
    c('SELECT * FROM SYSTEM.TABLES', 403, sysTable('TABLES')),
    c('SELECT * FROM system.one JOIN system.settings ON 1', 403, sysTable('settings')),
    c("SELECT 'x' IN system.tables", 403, sysTable('tables')),
    c('SELECT (SELECT count() FROM system.processes)', 403, sysTable('processes')),
    c('SELECT system.tables.name FROM numbers(1)', 403, db('system')),
    c('SELECT * FROM system.tables.name', 403, /the table name 'system.tables.name' is not allowed/),
  ]);
});

describe('names of other databases', () => {
  runCases([
    c('SELECT * FROM w_other.canary', 403, db('w_other')),
    c('SELECT * FROM "w_other"."canary"', 403, db('w_other')),
    c('SELECT * FROM `w_other`.canary', 403, db('w_other')),
    c('SELECT * FROM w_other . canary', 403, db('w_other')),
    c('SELECT * FROM survivor JOIN w_other.canary USING id', 403, db('w_other')),
    c('SELECT * FROM survivor, w_other.canary', 403, db('w_other')),
    c('SELECT * FROM survivor WHERE id IN w_other.canary', 403, db('w_other')),
    c('SELECT * FROM survivor WHERE id IN (w_other.canary)', 403, db('w_other')),
    c('SELECT * FROM survivor WHERE id GLOBAL NOT IN (w_other.canary)', 403, db('w_other')),
    c('SELECT w_other.canary.secret FROM survivor', 403, db('w_other')),
    c('SELECT 1 WHERE (SELECT count() FROM w_other.canary) > 0', 403, db('w_other')),
    c('WITH x AS (SELECT * FROM w_other.canary) SELECT * FROM x', 403, db('w_other')),
    c('SELECT * FROM w_other.canary.secret', 403, /the table name 'w_other.canary.secret' is not allowed/),
    c('SELECT * FROM INFORMATION_SCHEMA.TABLES', 403, db('INFORMATION_SCHEMA')),
    c('SELECT * FROM information_schema.columns', 403, db('information_schema')),
    c('SELECT * FROM default.x', 403, db('default')),
    c('SELECT * FROM pipit_sandbox.x', 403, db('pipit_sandbox')),
    // Every workspace's ingest stages live there; a stage's view would read another workspace's table.
    c('SELECT * FROM pipit_stages.x', 403, db('pipit_stages')),
    c('SELECT * FROM survivor WHERE id IN (SELECT id FROM pipit_stages.x_sj_ok)', 403, db('pipit_stages')),
    c('SELECT in(1, w_other.canary)', 403, fn('in')),
    c('SELECT globalIn(1, w_other.canary)', 403, fn('globalIn')),
    c('SELECT notIn(1, w_other.canary)', 403, fn('notIn')),
  ]);

  it("the workspace's own physical table, by its internal name", async () => {
    await refused(`SELECT * FROM ${survivorTable}`, 403, db(workspaceDb));
  });

  it('an unqualified name the workspace does not have is not found', async () => {
    await refused('SELECT * FROM canary', 404, /Resource 'canary' not found/);
  });

  describe('a database the layer does not know of (created after start-up)', () => {
    runCases([
      c('SELECT * FROM canary_late.t', 403, db('canary_late')),
      c('SELECT * FROM survivor JOIN canary_late.t ON 1', 403, db('canary_late')),
      c('SELECT * FROM survivor WHERE id IN canary_late.t', 403, db('canary_late')),
      // Each of these read canary_late.t before the walker knew the construct.
      c('SELECT (FROM canary_late.t SELECT any(s))', 403, db('canary_late')),
      c('SELECT [(FROM canary_late.t SELECT any(s))]', 403, db('canary_late')),
      c('SELECT 1 WHERE EXISTS (FROM canary_late.t SELECT 1)', 403, db('canary_late')),
      c('SELECT (SELECT 1) UNION ALL (FROM canary_late.t SELECT n)', 403, db('canary_late')),
      c('SELECT * FROM survivor WHERE id IN (FROM canary_late.t SELECT n)', 403, db('canary_late')),
      c('SELECT * FROM survivor AS array JOIN canary_late.t ON 1', 403, db('canary_late')),
      c('SELECT * FROM survivor SAMPLE 1/2 OFFSET 1/2, canary_late.t', 403, db('canary_late')),
      c('SELECT in(1, canary_late.t)', 403, fn('in')),
      c('SELECT * FROM survivor WHERE NOT in((id, s), canary_late.t)', 403, fn('in')),
      c('SELECT * FROM (EXPLAIN SELECT * FROM canary_late.t)', 403, notStatement('EXPLAIN')),
      c('SELECT 1 IN (EXPLAIN SELECT * FROM canary_late.t)', 403, notStatement('EXPLAIN')),
      c('SELECT 1 UNION ALL (SELECT 2) FROM canary_late.t', 400, /unexpected FROM/),
      c('SELECT tuple(1, SELECT s FROM canary_late.t)', 400, /unexpected SELECT/),
    ]);
  });
});

describe('statements other than SELECT', () => {
  runCases([
    c('KILL QUERY WHERE 1', 403, notStatement('KILL')),
    c("KILL QUERY WHERE query_id = 'x' ASYNC", 403, notStatement('KILL')),
    c('SET readonly = 0', 403, notStatement('SET')),
    c('SET max_execution_time = 100000', 403, notStatement('SET')),
    c('SYSTEM DROP DNS CACHE', 403, notStatement('SYSTEM')),
    c('SYSTEM SHUTDOWN', 403, notStatement('SYSTEM')),
    c("INSERT INTO survivor VALUES (4, 'four')", 403, notStatement('INSERT')),
    c('INSERT INTO w_other.canary SELECT 9, secret FROM w_other.canary', 403, notStatement('INSERT')),
    c("INSERT INTO FUNCTION file('/tmp/pipit-owned') SELECT 1", 403, notStatement('INSERT')),
    c('ALTER TABLE survivor DELETE WHERE 1', 403, notStatement('ALTER')),
    c('ALTER TABLE survivor DROP COLUMN s', 403, notStatement('ALTER')),
    c("ALTER TABLE w_other.canary UPDATE secret = 'x' WHERE 1", 403, notStatement('ALTER')),
    c('CREATE TABLE x (a Int8) ENGINE = Memory', 403, notStatement('CREATE')),
    c('CREATE DATABASE owned', 403, notStatement('CREATE')),
    c("CREATE USER owned IDENTIFIED BY 'x'", 403, notStatement('CREATE')),
    c('CREATE FUNCTION f AS x -> file(x)', 403, notStatement('CREATE')),
    c('DROP TABLE survivor', 403, notStatement('DROP')),
    c('drop table survivor', 403, notStatement('DROP')),
    c('/* looks harmless */ DROP TABLE survivor', 403, notStatement('DROP')),
    c('(DROP TABLE survivor)', 403, notStatement('DROP')),
    c('DROP DATABASE w_other', 403, notStatement('DROP')),
    c('DROP TABLE IF EXISTS w_other.canary SYNC', 403, notStatement('DROP')),
    c('TRUNCATE TABLE survivor', 403, notStatement('TRUNCATE')),
    c('TRUNCATE w_other.canary', 403, notStatement('TRUNCATE')),
    c('OPTIMIZE TABLE survivor FINAL', 403, notStatement('OPTIMIZE')),
    c('RENAME TABLE survivor TO gone', 403, notStatement('RENAME')),
    c('EXCHANGE TABLES survivor AND x', 403, notStatement('EXCHANGE')),
    c('ATTACH TABLE x', 403, notStatement('ATTACH')),
    c('DETACH TABLE survivor', 403, notStatement('DETACH')),
    c('DELETE FROM survivor WHERE 1', 403, notStatement('DELETE')),
    c("UPDATE survivor SET s = 'x' WHERE 1", 403, notStatement('UPDATE')),
    c('UNDROP TABLE x', 403, notStatement('UNDROP')),
    c('GRANT ALL ON *.* TO default', 403, notStatement('GRANT')),
    c("BACKUP TABLE survivor TO File('/tmp/pipit-owned')", 403, notStatement('BACKUP')),
    c('CHECK TABLE survivor', 403, notStatement('CHECK')),
    c('EXISTS TABLE w_other.canary', 403, notStatement('EXISTS')),
    c('USE w_other', 403, notStatement('USE')),
    c('SHOW TABLES', 403, notStatement('SHOW')),
    c('SHOW CREATE TABLE w_other.canary', 403, notStatement('SHOW')),
    c('SHOW DATABASES', 403, notStatement('SHOW')),
    c('DESCRIBE TABLE w_other.canary', 403, notStatement('DESCRIBE')),
    c('DESC survivor', 403, notStatement('DESC')),
    c('EXPLAIN SELECT * FROM w_other.canary', 403, notStatement('EXPLAIN')),
    c('EXPLAIN AST SELECT 1', 403, notStatement('EXPLAIN')),
    c('EXPLAIN SYNTAX SELECT 1', 403, notStatement('EXPLAIN')),
    c('EXPLAIN QUERY TREE SELECT 1', 403, notStatement('EXPLAIN')),
    c('EXPLAIN PLAN actions = 1 SELECT * FROM survivor', 403, notStatement('EXPLAIN')),
    c('EXPLAIN PIPELINE SELECT * FROM survivor', 403, notStatement('EXPLAIN')),
    c('EXPLAIN ESTIMATE SELECT * FROM survivor', 403, notStatement('EXPLAIN')),
    c('SELECT (EXPLAIN AST SELECT 1)', 403, notStatement('EXPLAIN')),
    c('WITH 1 AS x INSERT INTO survivor SELECT 1', 403, INTO),
    c("VALUES ('a')", 400, /Syntax error: expected SELECT or WITH, found 'VALUES' at position 1/),
    c('SELECT 1 UNION ALL DROP TABLE survivor', 400, /expected a query after UNION/),
  ]);
});

describe('query parameters', () => {
  runCases([
    c('SELECT {x:String}', 400, /query parameters \(\{name:Type\}\) are not supported/),
    c('SELECT * FROM {t:Identifier}', 400, /query parameters/),
    c('SELECT * FROM survivor WHERE id = {id:Int64}', 400, /query parameters/),
  ]);
});

describe('other ways in', () => {
  runCases([
    c('SELECT * FROM w_other.canary', 403, db('w_other'), 'explain'),
    c("SELECT file('/etc/passwd')", 403, fn('file'), 'explain'),
    c('SELECT 1; DROP TABLE survivor', 403, ONE_STATEMENT, 'explain'),
    c('SELECT * FROM system.tables', 403, sysTable('tables'), 'json'),
    c("SELECT * APPLY(file) FROM values('p String', '/etc/passwd')", 403, fn('file'), 'form'),
  ]);

  it('a template (refused while templates are not supported; its rendered SQL is checked once they are)', async () => {
    hostileCount++;
    const before = engineCalls.length;
    const r = await send('%\nSELECT * FROM w_other.canary');
    expect([400, 403], r.text).toContain(r.status);
    expect(r.error).toMatch(/Template queries|the database 'w_other' is not accessible/);
    expect(engineCalls.slice(before)).toEqual([]);
  });
});

describe('queries far too large or too deep', () => {
  it('a POST body over 1 MB', async () => {
    await refused(`SELECT '${'x'.repeat(1_100_000)}'`, 400, /The maximum size for a SQL query is 1MB/);
  });

  it('a GET q over 8 KB', async () => {
    await refused(`SELECT '${'x'.repeat(9000)}'`, 400, /The maximum size for a SQL query is 8KB/, 'get');
  });

  it('too many tokens under the size limit', async () => {
    await refused(`SELECT ${'1,'.repeat(300_000)}1`, 400, /The query is too large: more than 200000 tokens/);
  });

  it('10,000 nested parentheses', async () => {
    await refused(`SELECT ${'('.repeat(10_000)}1${')'.repeat(10_000)}`, 400, /The query is too deep/);
  });

  it('10,000 nested brackets and 10,000 unclosed parentheses', async () => {
    await refused(`SELECT ${'['.repeat(10_000)}1${']'.repeat(10_000)}`, 400, /The query is too deep/);
    await refused(`SELECT ${'('.repeat(10_000)}`, 400, /The query is too deep/);
  });

  it('1,000 nested subqueries', async () => {
    let q = 'SELECT * FROM w_other.canary';
    for (let i = 0; i < 1000; i++) q = `SELECT * FROM (${q})`;
    await refused(q, 400, /The query is too deep/);
  });

  it('1,000 nested scalar subqueries in a function', async () => {
    await refused(`SELECT ${'plus(1, (SELECT '.repeat(1000)}1${'))'.repeat(1000)}`, 400, /The query is too deep/);
  });

  it('the server still answers afterwards', async () => {
    const r = await send('SELECT 1 FORMAT TSV');
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe('1\n');
  });
});

describe('after every attack', () => {
  it('sent at least 100 hostile queries, none of which reached the engine', () => {
    expect(hostileCount).toBeGreaterThanOrEqual(100);
    // The only engine calls are the legit ones of this file.
    expect(engineCalls.every((q) => !/w_other|canary_late|file\(|APPLY/i.test(q))).toBe(true);
  });

  it('no response carried a canary secret', () => {
    for (const b of bodies) for (const sec of SECRETS) expect(b.includes(sec)).toBe(false);
  });

  it('the canary table is unchanged', async () => {
    const rows = await engineRows<{ id: string | number; secret: string }>(s, 'SELECT id, secret FROM w_other.canary ORDER BY id');
    expect(rows.map((r) => [Number(r.id), r.secret])).toEqual([0, 1, 2].map((id) => [id, TABLE_SECRET]));
    const late = await engineRows<{ n: string | number; s: string }>(s, 'SELECT n, s FROM canary_late.t ORDER BY n');
    expect(late.map((r) => [Number(r.n), r.s])).toEqual([0, 1].map((n) => [n, LATE_SECRET]));
  });

  it('the canary file is unchanged and nothing was written next to it or to the outfile paths', () => {
    expect(fs.readFileSync(canaryFile, 'utf8')).toBe(`${FILE_SECRET}\n`);
    expect(fs.readdirSync(canaryDir)).toEqual(['secret.txt']);
    expect(fs.existsSync('/tmp/pipit-owned')).toBe(false);
  });

  it('the data source survived with its rows', async () => {
    const r = await send('SELECT id, s FROM survivor ORDER BY id FORMAT JSONEachRow');
    expect(r.status, r.text).toBe(200);
    const rows = r.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number | string; s: string });
    expect(rows.map((x) => ({ id: Number(x.id), s: x.s }))).toEqual(SURVIVOR_ROWS);
    const cols = await engineRows<{ name: string }>(
      s,
      `SELECT name FROM system.columns WHERE database = '${workspaceDb}' AND table = '${survivorTable.split('.')[1]}' ORDER BY position`,
    );
    expect(cols.map((x) => x.name)).toEqual(['id', 's']);
    const ds = await s.req('GET', '/v0/datasources/survivor');
    expect(ds.status).toBe(200);
  });

  it('no database or table was created', async () => {
    const dbs = await engineRows<{ name: string }>(s, "SELECT name FROM system.databases WHERE name = 'owned'");
    expect(dbs).toEqual([]);
    const t = await engineRows<{ c: string }>(s, "SELECT count() AS c FROM system.tables WHERE name IN ('x', 'gone')");
    expect(Number(t[0].c)).toBe(0);
  });
});
