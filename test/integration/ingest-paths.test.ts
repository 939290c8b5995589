/**
 * The same NDJSON lines end up the same way whichever ingest path carried them: one row in the
 * table, or the same quarantine row. A differential test over a corpus of tricky lines, on a real
 * server (loopback HTTP, embedded engine, catalog), each path into its own data source of one schema:
 *
 * - `plain`: Events API, a small request per body (groupsOf: a case alone or like cases joined),
 *   `wait=true`: logged "plain" (each line as sent, 0x01, the request id; inserted as CSV split at
 *   0x01) unless the body needs TSV;
 * - `tsv`: the same with a blank line holding a CR first, so the body is logged TSV (toTsv);
 * - `tsvbytes`: the same with a line holding an invalid UTF-8 byte first (toTsvBytes; that line's
 *   own quarantine row is left out of the comparison);
 * - `large`: each body followed by a 1 MB blank line (preceded, without a final newline), so
 *   appendLarge logs it and it goes in as LineAsString; half with `wait=true`; plus lines over 1 MB;
 * - `import`: `POST /v0/datasources?mode=append&format=ndjson`, a request per body;
 * - `mixed`: every case at once, a request each, plain and TSV ones alternating, half with
 *   `wait=true` (lane segments holding both kinds: oneFormat / plainToTsv);
 * - `replay_lane`, `replay_large`: files left in `wal/` replayed at the next start (recover): a lane
 *   segment of every case's rows as `append` writes them (both kinds: rowsOfFile), and one large
 *   body's `.ndjson` file per case;
 * - `killed`: every case acknowledged (202) by a server process that is then killed with SIGKILL;
 *   the next start replays what its log still held (with the remote engine or the PostgreSQL
 *   catalog, whose state is not in the data directory, the test server itself acknowledges them).
 *
 * Also run by `npm run test:remote`, where the engine reads LineAsString itself.
 *
 * Table rows and quarantine rows are compared byte for byte (hex), leaving out the columns that
 * legitimately differ (insertion date; the import id, checked to be the request's or import's).
 * `wait=true` and import answers are checked against what the request really wrote.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { newUlid } from '../../src/basics/ids.js';
import { EventBuffer } from '../../src/ingest/event-buffer.js';
import { forgetLeftover, registerLeftover } from '../helpers/leftovers.js';
import { engineRows, remoteEngine, startServer, tableOf, type TestServer } from '../helpers/server.js';

const SCHEMA = [
  'id Int64 `json:$.id`',
  "s String `json:$.s` DEFAULT ''",
  'f Float64 `json:$.f` DEFAULT 0',
  "ts DateTime `json:$.ts` DEFAULT toDateTime('2000-01-01 00:00:00')",
  'n Nullable(Int32) `json:$.n`',
  'arr Array(String) `json:$.arr[:]`',
  'names Array(Nullable(String)) `json:$.items[:].name`',
  'deep Nullable(String) `json:$.a.b.c`',
  'd Int32 `json:$.d` DEFAULT 7',
  'u UInt64 `json:$.u` DEFAULT 0',
  'i8 Int8 `json:$.i8` DEFAULT 0',
  'obj Nullable(String) `json:$.obj`',
  'day Date `json:$.day` DEFAULT toDate(ts)',
].join(', ');
const COLUMNS = ['id', 's', 'f', 'ts', 'n', 'arr', 'names', 'deep', 'd', 'u', 'i8', 'obj', 'day'];

type Bytes = Buffer<ArrayBuffer>;
const bytes = (...parts: Array<string | number[]>): Bytes => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
const BOM = [0xef, 0xbb, 0xbf];

/** The corpus: each case is a body (one or more lines); groupsOf says which go alone. */
const CASES: Record<string, Bytes> = {
  simple: bytes('{"id":1,"s":"hello","f":1.5,"ts":"2024-01-02 03:04:05","n":3,"arr":["a","b"],"a":{"b":{"c":"deep"}},"d":1,"u":2,"i8":3}\n'),
  quotes_commas: bytes('{"id":2,"s":"a \\"quoted\\", value, with, commas \'single\'"}\n'),
  backslashes: bytes('{"id":3,"s":"back\\\\slash \\\\\\\\ two \\\\ end\\\\"}\n'),
  escapes: bytes('{"id":4,"s":"tab\\there\\nnewline\\rcr\\bbs\\ffeed\\/slash"}\n'),
  escaped_nul_soh: bytes('{"id":5,"s":"nul\\u0000soh\\u0001end"}\n'),
  escaped_backslash_n: bytes('{"id":6,"s":"\\\\N"}\n{"id":7,"s":"x\\\\Ny\\\\\\\\N"}\n'),
  line_is_backslash_n: bytes('{"id":8}\n\\N\n{"id":9}\n'),
  backslash_n_prefixed: bytes('\\Nx\n \\N\n'),
  literal_tab_in_string: bytes('{"id":10,"s":"a\tb"}\n'),
  tab_between_fields: bytes('{"id":11,\t"s":"tab-separated JSON"}\t\n'),
  spaces_around: bytes('   {"id":12,"s":"  padded  "}   \n'),
  empty_and_blank_lines: bytes('\n\n{"id":13}\n   \n\t\n\n{"id":14}\n\n'),
  whitespace_only: bytes('   \n\t \n'),
  vertical_tab_and_form_feed_lines: bytes('{"id":15}\n\u000b\n\u000c\n\u000b{"id":16}\n'),
  empty_object: bytes('{}\n'),
  spaced_empty_object: bytes('  { }  \n'),
  non_objects: bytes('[1,2,3]\n42\n"a string"\nnull\ntrue\n[{"id":17}]\n'),
  invalid_json: bytes('{"id":18,"s":\n{id:19}\n{"id":20,}\nnot json\n{"id":21\n}\n'),
  trailing_garbage: bytes('{"id":22} trailing\n{"id":23}{"id":24}\n{"id":25},\n'),
  invalid_utf8: bytes('{"id":26,"s":"bad', [0xff, 0xfe], 'bytes"}\n{"id":27,"s":"lone', [0x80], 'cont"}\n{"id":28,"s":"overlong', [0xc0, 0xaf], '"}\n'),
  invalid_utf8_outside_string: bytes('{"id":29}', [0xff], '\n'),
  bom_at_start: bytes(BOM, '{"id":30,"s":"bom"}\n{"id":31}\n'),
  bom_mid_body: bytes('{"id":32}\n', BOM, '{"id":33}\n'),
  bom_inside_string: bytes('{"id":34,"s":"', BOM, 'x"}\n'),
  spaces_then_crlf: bytes('   {"id":119}  \r\n'),
  crlf: bytes('{"id":35,"s":"crlf"}\r\n{"id":36}\r\n'),
  cr_mid_line: bytes('{"id":37,"s":"a"}\r{"id":38}\n{"id":39,"s":"cr\rin string"}\n'),
  crlf_blank_lines: bytes('{"id":40}\r\n\r\n  \r\n{"id":41}\r\n'),
  no_final_newline: bytes('{"id":42,"s":"first"}\n{"id":43,"s":"no newline"}'),
  no_final_newline_crlf: bytes('{"id":44}\r\n{"id":45}\r'),
  long_100k: bytes(`{"id":46,"s":"${'x'.repeat(100_000)}","arr":["${'y'.repeat(1000)}"]}\n`),
  raw_nul: bytes('{"id":47,"s":"nul', [0], 'raw"}\n{"id":48}', [0], '\n', [0], '\n{"id":49}\n'),
  raw_soh: bytes('{"id":50,"s":"soh', [1], 'raw"}\n{"id":51}\n'),
  raw_soh_outside_string: bytes('{"id":52}', [1], '\n'),
  raw_control_chars: bytes('{"id":53,"s":"bell', [7], 'esc', [0x1b], 'del', [0x7f], '"}\n'),
  unicode: bytes('{"id":54,"s":"😀 مرحبا שלום \u202e reversed \u200b zw ñ 中文"}\n'),
  unicode_escapes: bytes('{"id":55,"s":"\\ud83d\\ude00 \\u00e9 \\u4e2d"}\n{"id":56,"s":"lone \\ud800 surrogate"}\n{"id":57,"s":"bad \\uZZZZ escape"}\n'),
  unicode_keys: bytes('{"i\\u0064":58,"s":"escaped key"}\n{"id":59,"é":"x","😀":1}\n'),
  int_limits: bytes(
    '{"id":9223372036854775807,"u":18446744073709551615,"i8":127,"n":2147483647}\n' +
      '{"id":-9223372036854775808,"u":0,"i8":-128,"n":-2147483648}\n' +
      '{"id":9223372036854775808}\n{"id":60,"u":18446744073709551616}\n{"id":61,"u":-1}\n{"id":62,"i8":128}\n{"id":63,"n":2147483648}\n',
  ),
  int_forms: bytes('{"id":"64"}\n{"id":65.0}\n{"id":1e2}\n{"id":true}\n{"id":" 66"}\n{"id":"0x43"}\n{"id":67.5}\n{"id":null}\n{"id":[68]}\n'),
  float_limits: bytes(
    '{"id":69,"f":1.7976931348623157e308}\n{"id":70,"f":5e-324}\n{"id":71,"f":-0.0}\n{"id":72,"f":1e309}\n' +
      '{"id":73,"f":"nan"}\n{"id":74,"f":"inf"}\n{"id":75,"f":"1.5"}\n{"id":76,"f":0.1}\n{"id":77,"f":123456789012345678901234567890}\n',
  ),
  nested_json_in_string: bytes('{"id":78,"s":{"nested":{"x":[1,2,"\\t"],"y":null}},"obj":{"k":"v\\\\N","t":"a\\tb"}}\n{"id":79,"s":[1,"two"],"obj":[]}\n'),
  datetimes: bytes(
    '{"id":80,"ts":"2024-01-02T03:04:05Z"}\n{"id":81,"ts":"2024-01-02T03:04:05.123+02:00"}\n{"id":82,"ts":1704164645}\n' +
      '{"id":83,"ts":"1704164645"}\n{"id":84,"ts":"not a date"}\n{"id":85,"ts":""}\n{"id":86,"ts":"2024-01-02"}\n{"id":87,"ts":"1969-12-31 23:59:59"}\n{"id":88,"ts":"2106-02-07 06:28:16"}\n',
  ),
  arrays: bytes(
    '{"id":89,"arr":["a","b\\n",1,null,"\\\\N"]}\n{"id":90,"arr":"not an array"}\n{"id":91,"arr":[]}\n{"id":92,"arr":[["x"]]}\n' +
      '{"id":93,"items":[{"name":"n1"},{"name":null},{},{"name":"t\\tab"}]}\n{"id":94,"items":"x"}\n',
  ),
  nested_paths: bytes('{"id":95,"a":{"b":"not an object"}}\n{"id":96,"a":{"b":{"c":{"x":1}}}}\n{"id":97,"a":{"b":{"c":null}}}\n{"id":98,"a":{"b":{"c":12}}}\n'),
  nullable_and_defaults: bytes('{"id":99,"n":null,"d":null}\n{"id":100,"n":"12"}\n{"id":101,"d":"x"}\n{"id":102,"s":null}\n'),
  duplicate_keys: bytes('{"id":103,"id":104,"s":"a","s":"b"}\n'),
  deep_nesting: bytes(`{"id":105,"obj":${'['.repeat(200)}${']'.repeat(200)}}\n`),
  quote_starts: bytes('"quoted line"\n\'single\'\n"{\\"id\\":106}"\n'),
  csv_like: bytes('a,b,"c"\n""\n"",""\n'),
  backslash_line_ends: bytes('{"id":107,"s":"x"}\\\n\\\n{"id":108}\\t\n'),
  null_word: bytes('NULL\nnull\n{"id":109,"s":"NULL"}\n'),
  crlf_and_invalid_utf8: bytes('{"id":110,"s":"bad', [0xff], '"}\r\n{"id":111}\r\n'),
  crlf_and_raw_nul: bytes('{"id":112}\r\n{"id":113,"s":"nul', [0], '"}\r\n{"id":114}\r\n'),
  backslash_n_and_invalid_utf8: bytes('{"id":115,"s":"\\\\N', [0xfe], '"}\n\\N\n'),
  soh_and_crlf: bytes('{"id":116,"s":"soh', [1], '"}\r\n'),
  bom_only: bytes(BOM, '\n{"id":117}\n'),
  bom_crlf_invalid: bytes(BOM, '{"id":118,"s":"', [0xff], '"}\r\n'),
  starts_with_empty_lines: bytes('\n\n{"id":120}\n'),
  starts_with_crlf: bytes('\r\n{"id":121}\r\r\n'),
  starts_with_spaces_and_tab: bytes(' \t {"id":122}\n'),
  line_separators: bytes(
    '{"id":123,"s":"ls\u2028ps\u2029nel\u0085"}\n{"id":124,"s":"raw \u2028 \u2029 \u0085"}\n',
    '{"id":125,"s":"',
    [0xe2, 0x80, 0xa8],
    '"}\n',
  ),
  record_separator: bytes([0x1e], '{"id":126}\n{"id":127,"s":"rs', [0x1e], '"}\n'),
  lone_braces: bytes('{\n}\n{"id":128}\n'),
};

/** Cases too large for a small request (≥ 1 MB): large, replay of `.ndjson` and import only. */
const LARGE_CASES: Record<string, Bytes> = {
  line_over_1mb: bytes(`{"id":200,"s":"${'z'.repeat(1_200_000)}"}\n{"id":201}\n`),
  line_over_1mb_crlf: bytes(`{"id":202,"s":"${'z'.repeat(1_100_000)}"}\r\n{"id":203}\r\n`),
  many_lines: bytes(Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ id: 300 + i, s: `row ${i} "q" \\ \t` })).join('\n') + '\n'),
};

/**
 * The cases as the per-case paths send them, a request each: every case that must be a body of
 * its own (a BOM, a line end or a space at its start, no final newline), and
 * the others joined in three bodies (a request costs ~50 ms, more on a loaded machine): those
 * logged plain, those logged TSV for a `\N` alone (a large body goes through the engine's CSV
 * reading), and those holding a CR or 0x01 (a large body goes inline). A row that differs shows
 * its line, whichever body carried it.
 */
function groupsOf(cases: Record<string, Bytes>): Record<string, Bytes> {
  const out: Record<string, Bytes> = {};
  const joined: Record<string, Bytes[]> = { plain_lines: [], backslash_n_lines: [], cr_soh_lines: [] };
  for (const [name, body] of Object.entries(cases)) {
    const alone = startsWithBom(body) || body[0] === 10 || body[0] === 13 || body[0] === 32 || body[body.length - 1] !== 10;
    if (alone) out[name] = body;
    else if (EventBuffer.rowsOf(body, 'X').plain) joined.plain_lines.push(body);
    else if (body.indexOf(13) < 0 && body.indexOf(1) < 0) joined.backslash_n_lines.push(body);
    else joined.cr_soh_lines.push(body);
  }
  for (const [name, bodies] of Object.entries(joined)) out[name] = Buffer.concat(bodies);
  return out;
}

/** A blank line of 1 MB: puts a case's body in the large path without adding a row. */
const FILLER = Buffer.from(`${' '.repeat(1024 * 1024)}\n`);
const startsWithBom = (b: Buffer) => b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;

/** Trigger lines: a blank line with a CR (skipped everywhere) makes a body TSV; an invalid byte makes it byte-escaped TSV. */
const CR_LINE = Buffer.from(' \r\n');
const BAD_LINE = Buffer.from([0xff, ...Buffer.from('__trigger\n')]);
/** A body made TSV without changing its rows: the trigger goes first, or last after a BOM at the start. */
function withTrigger(body: Bytes, trigger: Buffer): Bytes {
  if (!startsWithBom(body)) return Buffer.concat([trigger, body]);
  return Buffer.concat([body, body[body.length - 1] === 10 ? Buffer.alloc(0) : Buffer.from('\n'), trigger]);
}
/** A case as a large body: the case first (as a body's start), the filler after it, or before it when the body has no final newline. */
const largeBody = (body: Bytes): Bytes =>
  body.length >= FILLER.length ? body : body[body.length - 1] === 10 ? Buffer.concat([body, FILLER]) : Buffer.concat([FILLER, body]);

const GROUPS = groupsOf(CASES);

interface Rows {
  table: string[];
  quarantine: string[];
}

const DATASOURCES = ['plain', 'tsv', 'tsvbytes', 'large', 'import', 'mixed', 'replay_lane', 'replay_large', 'killed'];
/** The data directory: first a server process's that is killed with SIGKILL, then the test server's. */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-ingest-paths-'));
let s: TestServer;
/** Files the killed process left in its log (replayed when the test server starts). */
let leftByKill: string[] = [];

/** A server process on `dataDir` (test/helpers/fault-server.ts): its base URL and admin token. */
async function startChild(): Promise<{ child: ChildProcess; base: string; token: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/fault-server.ts'], {
    env: { ...process.env, PIPIT_DATA_DIR: dataDir, PIPIT_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Stopped by the run's teardown if this file never gets to kill it (a hook that timed out).
  if (child.pid) registerLeftover({ pid: child.pid, signal: 'SIGKILL' });
  const ready = await new Promise<string[]>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PIPIT_READY (\d+) (\S+)/.exec(out);
      if (m) resolve([m[1], m[2]]);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, base: `http://127.0.0.1:${ready[0]}`, token: ready[1] };
}

/**
 * The `killed` path needs a server process on the data directory the test server then opens: not
 * when the test server's engine or catalog lives elsewhere (`npm run test:remote`, PIPIT_TEST_CATALOG=pg),
 * where `killed` is sent to the test server itself (acknowledged, then drained).
 */
const withKill = !remoteEngine && process.env.PIPIT_TEST_CATALOG !== 'pg';

async function createDatasources(base: string, token: string): Promise<void> {
  for (const n of DATASOURCES) {
    const r = await fetch(`${base}/v0/datasources?name=${n}&mode=create&format=ndjson`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ schema: SCHEMA }).toString(),
    });
    expect(r.status, await r.text()).toBe(200);
  }
}

/** Every case into `killed` (202): the first request starts a flush, the others wait in the next segment meanwhile. */
async function sendKilled(base: string, token: string): Promise<void> {
  const send = (body: Bytes) =>
    fetch(`${base}/v0/events?name=killed`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body }).then((r) => r.status);
  const first = await send(CASES.simple);
  const statuses = await Promise.all(Object.entries(CASES).map(([name, body]) => (name === 'simple' ? first : send(body))));
  expect(statuses.filter((st) => st !== 202 && st !== 400)).toEqual([]);
}

beforeAll(async () => {
  if (!withKill) {
    s = await startServer();
    await createDatasources(s.url, s.token);
    await sendKilled(s.url, s.token);
    return;
  }
  // A server process makes the data sources, acknowledges (202) every case into `killed` and is
  // killed at once: its log keeps what it had not inserted yet, replayed by the next start.
  const { child, base, token } = await startChild();
  const exited = new Promise((r) => child.once('exit', r));
  try {
    await createDatasources(base, token);
    await sendKilled(base, token);
  } finally {
    child.kill('SIGKILL');
    await exited;
    forgetLeftover(child.pid);
  }
  leftByKill = fs.readdirSync(path.join(dataDir, 'wal')).filter((f) => f.endsWith('.tsv') || f.endsWith('.ndjson'));
  s = await startServer({ config: { dataDir } });
}, 60_000);
afterAll(async () => {
  await s?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Rows as hex of their TSV text: every byte as stored (a JSON answer would hide invalid UTF-8). */
async function rowsOf(name: string): Promise<Rows> {
  const t = await tableOf(s, name);
  const table = await engineRows<{ h: string }>(s, `SELECT hex(formatRowNoNewline('TabSeparated', ${COLUMNS.join(', ')})) AS h FROM ${t.table} ORDER BY h`);
  const quarantine = await engineRows<{ h: string }>(
    s,
    `SELECT hex(formatRowNoNewline('TabSeparated', ${COLUMNS.join(', ')}, c__error_column, c__error)) AS h FROM ${t.quarantine} ORDER BY h`,
  );
  const trigger = Buffer.from('__trigger').toString('hex').toUpperCase();
  return { table: table.map((r) => r.h), quarantine: quarantine.map((r) => r.h).filter((h) => !h.includes(trigger)) };
}

/** The distinct import ids of a data source's quarantine rows. */
async function importIds(name: string): Promise<string[]> {
  const t = await tableOf(s, name);
  return (await engineRows<{ id: string }>(s, `SELECT DISTINCT c__import_id AS id FROM ${t.quarantine} ORDER BY id`)).map((r) => r.id);
}

async function truncate(name: string): Promise<void> {
  const t = await tableOf(s, name);
  await engineRows(s, `TRUNCATE TABLE ${t.table}`);
  await engineRows(s, `TRUNCATE TABLE ${t.quarantine}`);
}

/** A row for a failure message: its TSV text with the bytes that are not printable ASCII escaped. */
const show = (hex: string) =>
  Buffer.from(hex, 'hex')
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .slice(0, 300);

/** Until every acknowledged row is in the engine. */
async function idle(): Promise<void> {
  const until = Date.now() + 30_000;
  while (s.app.services.events.backlogBytes > 0 || s.app.services.events.pendingSegments > 0) {
    if (Date.now() > until) throw new Error('the Events API log did not drain');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Rows only in `a` and only in `b` (multisets). */
function difference(a: string[], b: string[]): { onlyA: string[]; onlyB: string[] } {
  const rest = new Map<string, number>();
  for (const x of b) rest.set(x, (rest.get(x) ?? 0) + 1);
  const onlyA: string[] = [];
  for (const x of a) {
    const n = rest.get(x) ?? 0;
    if (n > 0) rest.set(x, n - 1);
    else onlyA.push(x);
  }
  const onlyB = [...rest].flatMap(([x, n]) => Array.from({ length: n }, () => x));
  return { onlyA, onlyB };
}

/** What each path wrote for each case, and the answers that do not say what was written. */
const results = new Map<string, Map<string, Rows>>();
const answerMismatches: string[] = [];

function events(ds: string, body: Bytes, wait: boolean): Promise<Response> {
  return s.req('POST', `/v0/events?name=${ds}${wait ? '&wait=true' : ''}`, { body });
}

/**
 * Sends every case alone through `send`, reading (then clearing) what it wrote after each one. An
 * answer with counts (`wait=true`, an import) must count what the request wrote.
 */
async function perCase(
  ds: string,
  cases: Record<string, Bytes>,
  send: (body: Bytes, i: number) => Promise<{ counted: boolean; res: Response; extraQuarantined?: number }>,
) {
  const out = new Map<string, Rows>();
  results.set(ds, out);
  let i = 0;
  for (const [name, body] of Object.entries(cases)) {
    const { counted, res, extraQuarantined = 0 } = await send(body, i++);
    const text = await res.text();
    await idle();
    const rows = await rowsOf(ds);
    out.set(name, rows);
    // Quarantine rows carry the request's id (the import's id for an import).
    const id = ds === 'import' && res.status === 200 ? (JSON.parse(text) as { import_id: string }).import_id : res.headers.get('x-request-id');
    const ids = await importIds(ds);
    if (ids.some((x) => x !== id)) answerMismatches.push(`${ds}/${name}: quarantine rows of import ids ${JSON.stringify(ids)}, not ${id}`);
    if (counted && res.status === 200) {
      const got = JSON.parse(text) as { successful_rows: number; quarantined_rows: number };
      const wrote = { successful_rows: rows.table.length, quarantined_rows: rows.quarantine.length + extraQuarantined };
      const answered = { successful_rows: got.successful_rows, quarantined_rows: got.quarantined_rows };
      if (JSON.stringify(answered) !== JSON.stringify(wrote))
        answerMismatches.push(`${ds}/${name}: answered ${JSON.stringify(answered)}, wrote ${JSON.stringify(wrote)}`);
    } else if (![200, 202, 400].includes(res.status)) answerMismatches.push(`${ds}/${name}: status ${res.status} ${text}`);
    await truncate(ds);
  }
}

/** The rows of the cases `names` together, each case's as `of` says. */
const all = (names: string[], of: (name: string) => Rows): Rows => ({
  table: names.flatMap((n) => of(n).table).sort(),
  quarantine: names.flatMap((n) => of(n).quarantine).sort(),
});

it('every path writes the same table and quarantine rows for the same lines', async () => {
  const started = Date.now();
  await Promise.all([
    perCase('plain', GROUPS, async (body) => ({ counted: true, res: await events('plain', body, true) })),
    perCase('tsv', GROUPS, async (body) => {
      const plain = EventBuffer.rowsOf(body, 'X').plain;
      return { counted: true, res: await events('tsv', plain ? withTrigger(body, CR_LINE) : body, true) };
    }),
    perCase('tsvbytes', GROUPS, async (body) => ({ counted: true, res: await events('tsvbytes', withTrigger(body, BAD_LINE), true), extraQuarantined: 1 })),
    perCase('large', { ...GROUPS, ...LARGE_CASES }, async (body, i) => ({ counted: i % 2 === 0, res: await events('large', largeBody(body), i % 2 === 0) })),
    perCase('import', { ...GROUPS, ...LARGE_CASES }, async (body) => ({
      counted: true,
      res: await s.req('POST', '/v0/datasources?name=import&mode=append&format=ndjson', { body, headers: { 'content-type': 'application/x-ndjson' } }),
    })),
  ]);
  const perCaseMs = Date.now() - started;

  // Every case at once into one lane, plain and TSV bodies alternating, half waiting: segments
  // holding both kinds of rows (oneFormat, plainToTsv).
  const entries = Object.entries(CASES);
  const mixedIds: string[] = [];
  const answers = await Promise.all(
    entries.map(([, body], i) =>
      events('mixed', i % 2 === 0 ? body : withTrigger(body, CR_LINE), i % 4 < 2).then(async (r) => {
        mixedIds.push(r.headers.get('x-request-id')!);
        return r.status === 500 ? `500 ${await r.text()}` : r.status;
      }),
    ),
  );
  expect(answers.filter((st) => st !== 200 && st !== 202 && st !== 400)).toEqual([]);
  await idle();
  const mixed = await rowsOf('mixed');
  // Each quarantine row carries the id of a request that sent it (the segment's rows are of many).
  expect((await importIds('mixed')).filter((id) => !mixedIds.includes(id))).toEqual([]);

  // Files left in wal/ by a previous process, replayed by the next start: a lane segment holding
  // every case's rows as `append` logs them (plain and TSV parts), and a large body's file per case.
  const ws = s.app.services.access.defaultWorkspace;
  const wal = path.join(s.app.services.config.dataDir, 'wal');
  const lane = await s.app.services.datasources.get(ws, 'replay_lane');
  const large = await s.app.services.datasources.get(ws, 'replay_large');
  expect(new Set(entries.map(([, body]) => EventBuffer.rowsOf(body, 'X').plain))).toEqual(new Set([true, false]));
  fs.writeFileSync(
    path.join(wal, `${ws.id}__${lane.id}__${newUlid()}.tsv`),
    Buffer.concat(entries.map(([, body], i) => EventBuffer.rowsOf(body, `R${i}`).bytes)),
  );
  const largeCases = Object.entries({ ...GROUPS, ...LARGE_CASES });
  largeCases.forEach(([, body], i) => fs.writeFileSync(path.join(wal, `${ws.id}__${large.id}__${newUlid()}__L${i}.ndjson`), largeBody(body)));
  await s.restart();
  await idle();
  expect(fs.readdirSync(wal)).toEqual([]);
  // A replayed row's import id is its request's: the id after its line, or the large body file's.
  expect((await importIds('replay_lane')).filter((id) => !/^R\d+$/.test(id))).toEqual([]);
  expect((await importIds('replay_large')).filter((id) => !/^L\d+$/.test(id))).toEqual([]);

  const report: string[] = [];
  const compare = (what: string, want: Rows, got: Rows) => {
    const found: string[] = [];
    for (const part of ['table', 'quarantine'] as const) {
      const { onlyA, onlyB } = difference(want[part], got[part]);
      for (const r of onlyA) found.push(`${what} ${part}: missing ${show(r)}`);
      for (const r of onlyB) found.push(`${what} ${part}: extra   ${show(r)}`);
    }
    report.push(...found);
  };
  const ref = results.get('plain')!;
  for (const ds of ['tsv', 'tsvbytes', 'large', 'import'])
    for (const name of Object.keys(GROUPS)) compare(`${ds}/${name} (vs plain)`, ref.get(name)!, results.get(ds)!.get(name)!);
  for (const name of Object.keys(LARGE_CASES)) compare(`import/${name} (vs large)`, results.get('large')!.get(name)!, results.get('import')!.get(name)!);
  // Small cases as the plain path wrote them; the large-only ones as the large path did.
  const refOf = (n: string) => (n in GROUPS ? ref.get(n)! : results.get('large')!.get(n)!);
  const refAll = all(Object.keys(GROUPS), refOf);
  compare('mixed (vs plain)', refAll, mixed);
  compare('replay_lane (vs plain)', refAll, await rowsOf('replay_lane'));
  compare(
    'replay_large (vs plain, large)',
    all(
      largeCases.map(([n]) => n),
      refOf,
    ),
    await rowsOf('replay_large'),
  );
  // Whether the killed process left its rows in the log or had inserted them, each is there once.
  compare(`killed (vs plain; ${leftByKill.length} log files replayed)`, refAll, await rowsOf('killed'));

  // A `$.a[:].b` path gives each element's field (its stage could not be made before).
  const killed = await tableOf(s, 'killed');
  expect(await engineRows(s, `SELECT names FROM ${killed.table} WHERE id = 93`)).toEqual([{ names: ['n1', null, null, 't\tab'] }]);
  // One whose array is not an array goes to quarantine, as a non-array under `$.arr[:]` does (a missing one takes the default).
  expect(await engineRows(s, `SELECT id FROM ${killed.table} WHERE id IN (90, 94)`)).toEqual([]);
  expect(await engineRows(s, `SELECT c__error_column AS c FROM ${killed.quarantine} WHERE id IN ('90', '94') ORDER BY id`)).toEqual([
    { c: ['arr'] },
    { c: ['names'] },
  ]);
  // The corpus reaches both the table and the quarantine.
  expect(refAll.table.length).toBeGreaterThan(50);
  expect(refAll.quarantine.length).toBeGreaterThan(50);
  console.log(
    `ingest paths: ${perCaseMs} ms for the request-per-body paths, ${Date.now() - started} ms in all; the killed server left ${leftByKill.length} log files`,
  );
  expect([...report, ...answerMismatches]).toEqual([]);
}, 120_000);
