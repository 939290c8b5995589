/**
 * Unit tests of the SQL safety layer's walker (analyzeQuery) with a small in-memory scope: the
 * holes the security suite (test/integration/sql-security.test.ts) found and the rules that close
 * them, and legitimate look-alikes that must keep passing. Every refusal asserts the error code
 * (bad_request 400 / forbidden 403 / not_found 404) and that the message names what was refused.
 */
import { describe, expect, it } from 'vitest';
import { PipitError } from '../basics/errors.js';
import { analyzeQuery, type ResolvedTable, type SqlScope } from './analyzer.js';

const tables: Record<string, ResolvedTable> = {
  events: { name: 'events', kind: 'datasource', id: 't_1', sql: 'w_a.t_1' },
  events_quarantine: { name: 'events_quarantine', kind: 'quarantine', id: 't_1', sql: 'w_a.t_1_quarantine' },
  lookup: { name: 'lookup', kind: 'datasource', id: 't_2', sql: 'w_a.t_2' },
};

const scope: SqlScope = {
  resolve: (name) => tables[name],
  resolveJoinTable: (name) => (name === 'lookup' ? 'w_a.t_2' : undefined),
  // As learned at start-up; `latedb` below is a database the scope does not know (created later).
  databases: new Set(['system', 'default', 'information_schema', 'w_a', 'w_b']),
};

const analyze = (sql: string) => analyzeQuery(sql, scope);

function refused(sql: string): PipitError {
  try {
    analyze(sql);
  } catch (e) {
    if (e instanceof PipitError) return e;
    throw e;
  }
  throw new Error(`not refused: ${sql}`);
}

function expectRefused(sql: string, code: PipitError['code'], message: RegExp): void {
  const e = refused(sql);
  expect(e.code, `${sql} -> ${e.message}`).toBe(code);
  expect(e.message, sql).toMatch(message);
}

describe('holes found by the security suite', () => {
  it('walks `(FROM t SELECT ...)` as a subquery wherever a parenthesis opens', () => {
    // ClickHouse runs these: before, the table of a `(FROM ...)` group went unchecked.
    for (const q of [
      'SELECT (FROM latedb.secret SELECT s)',
      'SELECT [ (FROM latedb.secret SELECT s) ]',
      'SELECT 1 WHERE EXISTS (FROM latedb.secret SELECT 1)',
      'SELECT number FROM numbers(2) WHERE number IN (FROM latedb.secret SELECT n)',
      'SELECT 1 FROM numbers(1) WHERE 1 = ANY(FROM latedb.secret SELECT 1)',
      'SELECT (SELECT 1) UNION ALL (FROM latedb.secret SELECT n)',
      'SELECT 1 UNION ALL ((FROM latedb.secret SELECT n))',
      'WITH x AS ((FROM latedb.secret SELECT s)) SELECT * FROM x',
      'SELECT arrayMap(x -> (FROM latedb.secret SELECT s), [1])',
    ]) {
      expectRefused(q, 'forbidden', /the database 'latedb' is not accessible/);
    }
    expectRefused('SELECT (FROM nowhere SELECT 1)', 'not_found', /Resource 'nowhere' not found/);
  });

  it('rewrites data sources inside `(FROM ...)` groups', () => {
    expect(analyze('SELECT (FROM events SELECT max(a))').sql).toBe('SELECT (FROM w_a.t_1 AS `events` SELECT max(a))');
  });

  it('refuses EXPLAIN as a subquery', () => {
    for (const q of [
      'SELECT * FROM (EXPLAIN SELECT s FROM latedb.secret)',
      'SELECT 1 IN (EXPLAIN SELECT 1)',
      'SELECT (EXPLAIN AST SELECT 1)',
      'SELECT * FROM numbers(2) AS a JOIN (EXPLAIN SELECT 1) AS b ON 1',
      'SELECT 1 UNION ALL (EXPLAIN SELECT 1)',
      'WITH x AS (EXPLAIN SELECT 1) SELECT * FROM x',
    ]) {
      expectRefused(q, 'forbidden', /only SELECT queries are allowed, not EXPLAIN/);
    }
  });

  it('checks the table joined to a table aliased `array` (not an ARRAY JOIN)', () => {
    expectRefused('SELECT * FROM numbers(1) AS array JOIN latedb.secret ON 1', 'forbidden', /database 'latedb'/);
    expectRefused('SELECT * FROM numbers(1) AS array JOIN nowhere ON 1', 'not_found', /Resource 'nowhere' not found/);
    expect(analyze('SELECT * FROM numbers(1) AS array JOIN events ON 1').sql).toBe('SELECT * FROM numbers(1) AS array JOIN w_a.t_1 AS `events` ON 1');
  });

  it('keeps the table list open after SAMPLE k OFFSET m', () => {
    expectRefused('SELECT * FROM events SAMPLE 1/2 OFFSET 1/2, latedb.secret', 'forbidden', /database 'latedb'/);
    expectRefused('SELECT * FROM events SAMPLE 1/2 OFFSET 1/2, nowhere', 'not_found', /Resource 'nowhere' not found/);
  });

  it.each([
    ['SELECT in(1, latedb.secret)', 'in'],
    ['SELECT number FROM numbers(3) WHERE in(number, latedb.secret)', 'in'],
    ['SELECT 1 WHERE NOT in(1, latedb.secret)', 'in'],
    ['SELECT [in(1, latedb.secret)]', 'in'],
    ['SELECT globalIn(1, latedb.secret)', 'globalIn'],
    ['SELECT notIn(1, latedb.secret)', 'notIn'],
    ['SELECT nullIn(1, latedb.secret)', 'nullIn'],
    ['SELECT globalNotIn(1, latedb.secret)', 'globalNotIn'],
  ])('refuses in(x, table) written as a function: %s', (q, fn) => {
    expectRefused(q, 'forbidden', new RegExp(`disabled functions: '${fn}'`));
  });

  it('refuses denied functions passed by name to APPLY and to higher-order functions', () => {
    for (const q of [
      "SELECT * APPLY(file) FROM values('x String', '/etc/passwd')",
      "SELECT * APPLY file FROM values('x String', '/etc/passwd')",
      "SELECT * APPLY(`file`) FROM values('x String', '/etc/passwd')",
      "SELECT COLUMNS('x') APPLY(toString) APPLY(file) FROM values('x String', '/etc/passwd')",
      "SELECT arrayMap(file, ['/etc/passwd'])",
      "SELECT arrayMap(`file`, ['/etc/passwd'])",
      'SELECT arrayMap("file", [\'/etc/passwd\'])',
      "SELECT arrayMap((file), ['/etc/passwd'])",
      "SELECT arrayMap(((file AS f)), ['/etc/passwd'])",
      "SELECT arraySort(file, ['/etc/passwd'])",
      "SELECT arrayFold(file, ['/etc/passwd'], '')",
      "SELECT mapApply(file, map('a', 'b'))",
      "SELECT arrayJoin(arrayMap(file, ['/etc/passwd']))",
      "SELECT arrayMap(x -> x, arrayMap(file, ['/etc/passwd']))",
    ]) {
      expectRefused(q, 'forbidden', /disabled functions: 'file'/);
    }
    expectRefused("SELECT arrayMap(getSetting, ['max_threads'])", 'forbidden', /disabled functions: 'getSetting'/);
    expectRefused("SELECT arrayMap(dictGetString, ['d'], ['a'], [1])", 'forbidden', /disabled functions: 'dictGetString'/);
    expectRefused("SELECT arrayMap(joinGet, ['w_b.t'], ['s'], [1])", 'forbidden', /disabled functions: 'joinGet'/);
    expectRefused("SELECT arrayMap(hasColumnInTable, ['w_b'], ['t'], ['s'])", 'forbidden', /disabled functions: 'hasColumnInTable'/);
  });

  it('refuses functions that reach the host, Keeper, LLM providers and dictionaries', () => {
    for (const f of [
      'FQDN',
      'fullHostName',
      'generateSerialID',
      'aiGenerate',
      'AIGenerate',
      'aiEmbed',
      'aiClassify',
      'aiExtract',
      'aiTranslate',
      'naiveBayesClassifier',
      'naiveBayesClassifierWithProb',
    ]) {
      expectRefused(`SELECT ${f}('x')`, 'forbidden', new RegExp(`disabled functions: '${f}'`));
    }
  });

  it('fails closed on query keywords it cannot place', () => {
    expectRefused('SELECT tuple(1, SELECT s FROM latedb.secret)', 'bad_request', /unexpected SELECT/);
    expectRefused('SELECT [SELECT 1]', 'bad_request', /unexpected SELECT/);
    expectRefused('SELECT 1 UNION ALL DROP TABLE events', 'bad_request', /expected a query after UNION/);
    expectRefused('SELECT 1 INTERSECT events', 'bad_request', /expected a query after INTERSECT/);
    expectRefused('SELECT 1 UNION ALL (SELECT 2) FROM latedb.secret', 'bad_request', /unexpected FROM/);
    expectRefused('SELECT 1 FROM events WHERE 1 FROM latedb.secret', 'bad_request', /unexpected FROM/);
  });

  it('refuses PARALLEL WITH (several statements in one) and any WITH that is not a modifier', () => {
    for (const q of ['SELECT 1 PARALLEL WITH KILL QUERY WHERE 1', 'SELECT 1 PARALLEL WITH USE w_b', 'SELECT * FROM (SELECT 1 PARALLEL WITH SELECT 2)']) {
      expectRefused(q, 'forbidden', /only one statement is allowed, not PARALLEL WITH/);
    }
    expectRefused('SELECT 1 WITH KILL QUERY WHERE 1', 'bad_request', /unexpected WITH/);
    for (const m of ['TOTALS', 'ROLLUP', 'CUBE']) expect(analyze(`SELECT a, count() FROM events GROUP BY a WITH ${m}`).sql).toContain(`WITH ${m}`);
    expect(analyze('SELECT a FROM events ORDER BY a LIMIT 1 WITH TIES').sql).toContain('WITH TIES');
  });

  it('names SETTINGS and INTO OUTFILE when they follow the trailing FORMAT', () => {
    expectRefused('SELECT 1 FORMAT JSON SETTINGS readonly = 0', 'forbidden', /SETTINGS clauses are not allowed/);
    expectRefused("SELECT 1 FORMAT CSV INTO OUTFILE '/tmp/x'", 'forbidden', /INTO OUTFILE is not allowed/);
  });
});

describe('the existing rules', () => {
  it.each([
    ['SELECT 1; DROP TABLE events', 'forbidden', /only one statement/],
    ['SELECT 1 /* ; */ ; SELECT 2', 'forbidden', /only one statement/],
    ['SELECT 1 /* /* */ ; DROP TABLE events', 'bad_request', /unterminated comment/],
    ["SELECT 'a'''; DROP TABLE events", 'forbidden', /only one statement/],
    ['SELECT $$x$$; DROP TABLE events', 'forbidden', /only one statement/],
    ['SELECT 1;\u00a0DROP TABLE events', 'forbidden', /only one statement/],
    ['SELECT 1\u2028; DROP TABLE events', 'bad_request', /unexpected character U\+2028/],
    ['SELECT 1\uff1b DROP TABLE events', 'bad_request', /unexpected character U\+FF1B/],
    ['DROP TABLE events', 'forbidden', /only SELECT queries are allowed, not DROP/],
    ["SELECT * FROM file('/etc/passwd')", 'forbidden', /disabled table functions: 'file'/],
    ["SELECT * FROM `url`('http://x', CSV)", 'forbidden', /disabled table functions: 'url'/],
    ["SELECT file('/etc/passwd')", 'forbidden', /disabled functions: 'file'/],
    ['SELECT 1 SETTINGS readonly = 0', 'forbidden', /SETTINGS clauses are not allowed/],
    ['SELECT * FROM system.tables', 'forbidden', /system table 'system.tables'/],
    ['SELECT * FROM w_b.t', 'forbidden', /database 'w_b' is not accessible/],
    ['SELECT {x:String}', 'bad_request', /query parameters/],
    ['SELECT * FROM (SELECT 1 FORMAT JSON)', 'forbidden', /FORMAT is only allowed once/],
    ["SELECT joinGet('events', 'a', 1)", 'not_found', /Resource 'events' not found \(joinGet needs a Data Source with the Join engine\)/],
  ] as const)('%s', (q, code, msg) => expectRefused(q, code, msg));

  it('refuses nesting deeper than the limit without recursing into it', () => {
    expectRefused('SELECT ' + '('.repeat(10_000) + '1' + ')'.repeat(10_000), 'bad_request', /too deep/);
    let q = 'SELECT 1';
    for (let i = 0; i < 1000; i++) q = `SELECT * FROM (${q})`;
    expectRefused(q, 'bad_request', /too deep/);
  });
});

describe('legitimate look-alikes still pass', () => {
  it.each([
    // A column (and an alias) named format; format() the string function.
    ['SELECT format FROM events', 'SELECT format FROM w_a.t_1 AS `events`'],
    ["SELECT format('{} {}', 'a', 'b') AS format FROM events FORMAT JSON", "SELECT format('{} {}', 'a', 'b') AS format FROM w_a.t_1 AS `events`"],
    ["SELECT position('a' IN s) FROM events", "SELECT position('a' IN s) FROM w_a.t_1 AS `events`"],
    ['SELECT EXTRACT(DAY FROM d) FROM events', 'SELECT EXTRACT(DAY FROM d) FROM w_a.t_1 AS `events`'],
    ["SELECT substring(s FROM 2), trim(BOTH 'x' FROM s) FROM events", "SELECT substring(s FROM 2), trim(BOTH 'x' FROM s) FROM w_a.t_1 AS `events`"],
    ['SELECT * EXCEPT (a) FROM events', 'SELECT * EXCEPT (a) FROM w_a.t_1 AS `events`'],
    ['SELECT * EXCEPT a FROM events', 'SELECT * EXCEPT a FROM w_a.t_1 AS `events`'],
    ['SELECT * APPLY(toString) FROM events', 'SELECT * APPLY(toString) FROM w_a.t_1 AS `events`'],
    [
      'SELECT number FROM numbers(10) ORDER BY number WITH FILL FROM 0 TO 20 STEP 2',
      'SELECT number FROM numbers(10) ORDER BY number WITH FILL FROM 0 TO 20 STEP 2',
    ],
    ["SELECT '; DROP TABLE x' AS s, $$; DROP TABLE x$$ AS h", "SELECT '; DROP TABLE x' AS s, $$; DROP TABLE x$$ AS h"],
    ["SELECT 'it''s; DROP TABLE x', 'a\\'; DROP TABLE x; --'", "SELECT 'it''s; DROP TABLE x', 'a\\'; DROP TABLE x; --'"],
    ['SELECT 1 /* ; DROP TABLE x */ -- ; DROP\n', 'SELECT 1'],
    [
      'SELECT a IS DISTINCT FROM b, a IS NOT DISTINCT FROM NULL FROM events',
      'SELECT a IS DISTINCT FROM b, a IS NOT DISTINCT FROM NULL FROM w_a.t_1 AS `events`',
    ],
    [
      'SELECT number FROM numbers(5) WHERE number IN (1, 2) AND number NOT IN (3) AND number GLOBAL NOT IN (4) AND number in(1,2)',
      'SELECT number FROM numbers(5) WHERE number IN (1, 2) AND number NOT IN (3) AND number GLOBAL NOT IN (4) AND number in(1,2)',
    ],
    [
      'SELECT a FROM events WHERE a IN (SELECT a FROM events_quarantine) AND a IN lookup',
      'SELECT a FROM w_a.t_1 AS `events` WHERE a IN (SELECT a FROM w_a.t_1_quarantine AS `events_quarantine` ) AND a IN w_a.t_2',
    ],
    // Columns that share a name with denied functions, outside function-reference positions.
    [
      'SELECT lower(user), domain(url), count(file), arraySum(file), arrayMap(x -> x, file) FROM events',
      'SELECT lower(user), domain(url), count(file), arraySum(file), arrayMap(x -> x, file) FROM w_a.t_1 AS `events`',
    ],
    [
      'SELECT arrayMap(x -> x * 2, arr), arrayFilter(x -> x > 1, arr) FROM events',
      'SELECT arrayMap(x -> x * 2, arr), arrayFilter(x -> x > 1, arr) FROM w_a.t_1 AS `events`',
    ],
    ['SELECT a, x FROM events LEFT ARRAY JOIN arr AS x, arr2 AS y', 'SELECT a, x FROM w_a.t_1 AS `events` LEFT ARRAY JOIN arr AS x, arr2 AS y'],
    ['SELECT * FROM events SAMPLE 1/10 OFFSET 1/2 WHERE a > 1', 'SELECT * FROM w_a.t_1 AS `events` SAMPLE 1/10 OFFSET 1/2 WHERE a > 1'],
    ['SELECT * FROM events AS e JOIN lookup AS l USING (a) WHERE e.a > 0', 'SELECT * FROM w_a.t_1 AS e JOIN w_a.t_2 AS l USING (a) WHERE e.a > 0'],
    ['SELECT 1 UNION ALL SELECT 2 INTERSECT SELECT 2', 'SELECT 1 UNION ALL SELECT 2 INTERSECT SELECT 2'],
    [
      'SELECT a, count() FROM events GROUP BY a WITH TOTALS ORDER BY a LIMIT 1 BY a',
      'SELECT a, count() FROM w_a.t_1 AS `events` GROUP BY a WITH TOTALS ORDER BY a LIMIT 1 BY a',
    ],
  ])('%s', (q, expected) => {
    expect(analyze(q).sql).toBe(expected);
  });

  it('keeps the trailing FORMAT out of the statement', () => {
    const r = analyze('SELECT number FROM numbers(3) ORDER BY number DESC NULLS LAST FORMAT JSONEachRow;');
    expect(r.sql).toBe('SELECT number FROM numbers(3) ORDER BY number DESC NULLS LAST');
    expect(r.format).toBe('JSONEachRow');
    // Also after a bound parameter (a template's secret): the statement is wrapped to be found by kill().
    const p = analyzeQuery('SELECT 1 WHERE 2 != {tb_secret_s:String} FORMAT JSON', scope, { params: new Set(['tb_secret_s']) });
    expect(p.sql).toBe('SELECT 1 WHERE 2 != {tb_secret_s:String}');
    expect(p.format).toBe('JSON');
  });

  it('lists the resources read, once each', () => {
    expect(analyze('SELECT * FROM events JOIN lookup USING a WHERE a IN (SELECT a FROM events)').tables.map((t) => t.name)).toEqual(['events', 'lookup']);
  });
});

describe('legitimate queries the SQL corpus found refused or broken (test/integration/sql-corpus.test.ts)', () => {
  it('reads a column named format where the select list starts after DISTINCT ON (..), TOP n [WITH TIES], SELECT ALL', () => {
    for (const [q, expected] of [
      ['SELECT DISTINCT ON (id) format FROM events', 'SELECT DISTINCT ON (id) format FROM w_a.t_1 AS `events`'],
      ['SELECT DISTINCT ON (id, (a)) format FROM events FORMAT JSON', 'SELECT DISTINCT ON (id, (a)) format FROM w_a.t_1 AS `events`'],
      ['SELECT TOP 2 format FROM events', 'SELECT TOP 2 format FROM w_a.t_1 AS `events`'],
      ['SELECT TOP 2 WITH TIES format FROM events ORDER BY format', 'SELECT TOP 2 WITH TIES format FROM w_a.t_1 AS `events` ORDER BY format'],
      ['SELECT ALL format FROM events', 'SELECT ALL format FROM w_a.t_1 AS `events`'],
    ])
      expect(analyze(q).sql, q).toBe(expected);
    // A real FORMAT clause after such a prefix is still one, and still only at the end.
    expect(analyze('SELECT DISTINCT ON (a) a FROM events FORMAT CSV').format).toBe('CSV');
    expectRefused('SELECT (SELECT TOP 1 a FROM events FORMAT CSV)', 'forbidden', /FORMAT/);
  });

  it('rewrites zeros()/zeros_mt(), which read-only Sessions refuse, to the same rows from numbers()', () => {
    expect(analyze('SELECT count() FROM zeros(7)').sql).toBe('SELECT count() FROM (SELECT toUInt8(0) AS zero FROM numbers (7 ))');
    expect(analyze('SELECT z.zero FROM zeros_mt(3) AS z').sql).toBe('SELECT z.zero FROM (SELECT toUInt8(0) AS zero FROM numbers_mt (3 )) AS z');
    expectRefused('SELECT * FROM zeros((SELECT s FROM latedb.secret))', 'forbidden', /latedb/);
  });
});

describe('name-bearing virtual columns (_table, _database)', () => {
  const vt: Record<string, ResolvedTable> = {
    ev: { name: 'ev', kind: 'datasource', id: 't_1', sql: 'w_a.t_1', virtuals: { _table: 'ev', _database: 'ws' }, columns: ['n'] },
    own: { name: 'own', kind: 'datasource', id: 't_3', sql: 'w_a.t_3', virtuals: { _table: 'own', _database: 'ws' }, columns: ['_table'] },
    p: { name: 'p', kind: 'pipe', id: 't_9', sql: '(SELECT n FROM w_a.t_1)' },
  };
  const vscope: SqlScope = { resolve: (name) => vt[name], databases: new Set(['w_a']) };
  const sql = (q: string) => analyzeQuery(q, vscope).sql;

  it('become the user-facing names, keeping their output name in the SELECT list', () => {
    expect(sql('SELECT _table, _database FROM ev')).toBe(
      "SELECT toLowCardinality('ev') AS `_table` , toLowCardinality('ws') AS `_database` FROM w_a.t_1 AS `ev`",
    );
    expect(sql("SELECT n FROM ev WHERE _table = 'ev'")).toBe("SELECT n FROM w_a.t_1 AS `ev` WHERE toLowCardinality('ev') = 'ev'");
    expect(sql('SELECT x._table AS t FROM ev AS x')).toBe("SELECT toLowCardinality('ev') AS t FROM w_a.t_1 AS x");
    expect(sql('SELECT ev._table FROM ev')).toBe("SELECT toLowCardinality('ev') AS `ev._table` FROM w_a.t_1 AS `ev`");
  });

  it('are left to the engine where it answers them otherwise', () => {
    expect(sql('SELECT _table FROM own')).toBe('SELECT _table FROM w_a.t_3 AS `own`');
    expect(sql("SELECT 'x' AS _table FROM ev WHERE _table = 'x'")).toBe("SELECT 'x' AS _table FROM w_a.t_1 AS `ev` WHERE _table = 'x'");
    expect(sql('SELECT _table FROM system.one')).toBe('SELECT _table FROM system.one');
    expect(sql('SELECT _table FROM p')).toBe('SELECT _table FROM (SELECT n FROM w_a.t_1) AS `p`');
    expect(sql('SELECT _part FROM ev')).toBe('SELECT _part FROM w_a.t_1 AS `ev`');
  });

  it('are refused where which table they name is not sound', () => {
    expect(() => sql('SELECT _table FROM ev AS a JOIN ev AS b ON a.n = b.n')).toThrow(/ambiguous/);
    expect(() => sql('SELECT arrayMap(_table -> 1, [1]) FROM ev')).toThrow(/lambda parameter/);
    expect(() => sql('SELECT arrayMap((x, _database) -> 1, [1], [2]) FROM ev')).toThrow(/lambda parameter/);
    expect(sql('SELECT a._table, b._table AS t2 FROM ev AS a JOIN ev AS b ON a.n = b.n')).toContain("toLowCardinality('ev') AS `a._table`");
  });
});
