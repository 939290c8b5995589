/**
 * `pipit test run`: the two kinds of tests Tinybird projects carry.
 * - `tests/<name>.test` + `<name>.test.result`: each `.test` holds CLI command lines
 *   (`tb pipe data top --date 2024-01-01 --format CSV`, `tb sql "..."`); they are run by this CLI
 *   (`tb`, `pipit`, `npx pipit` all accepted) and their output must equal the `.test.result`.
 * - `tests/*.yaml` regression tests, in either form:
 *   classic data-quality tests `- name: {sql, max_time, max_bytes_read, pipe: {name, params}}`,
 *   passing when the SQL returns no rows (within the limits), or endpoint tests
 *   `- {name, parameters, expected_result}` for the pipe named like the file (`tests/<pipe>.yaml`
 *   or a `pipe:` key), passing when the endpoint's NDJSON equals `expected_result`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { splitArgs } from '../datafile/index.js';
import type { Client } from './client.js';

export interface TestResult {
  file: string;
  name: string;
  ok: boolean;
  message?: string;
}

/** Runs one CLI command line and returns what it printed (used for `.test` files). */
export type RunLine = (argv: string[]) => Promise<{ code: number; out: string; err: string }>;

const norm = (s: string) =>
  s
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .join('\n')
    .trim();

export async function runTests(client: Client, files: string[], runLine: RunLine): Promise<TestResult[]> {
  const results: TestResult[] = [];
  for (const file of files) {
    if (file.endsWith('.test')) results.push(await runCommandTest(file, runLine));
    else results.push(...(await runYamlTests(client, file)));
  }
  return results;
}

async function runCommandTest(file: string, runLine: RunLine): Promise<TestResult> {
  const name = path.basename(file, '.test');
  const resultFile = `${file}.result`;
  if (!fs.existsSync(resultFile)) return { file, name, ok: false, message: `missing ${resultFile}` };
  let out = '';
  for (const raw of fs.readFileSync(file, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let argv = splitArgs(line);
    if (argv[0] === 'npx') argv = argv.slice(1);
    if (argv[0] === 'tb' || argv[0] === 'pipit') argv = argv.slice(1);
    else return { file, name, ok: false, message: `only tb/pipit commands can run here: ${line}` };
    const r = await runLine(argv);
    if (r.code !== 0) return { file, name, ok: false, message: `\`${line}\` failed: ${r.err.trim() || r.out.trim()}` };
    out += r.out;
  }
  const expected = fs.readFileSync(resultFile, 'utf8');
  if (norm(out) === norm(expected)) return { file, name, ok: true };
  return { file, name, ok: false, message: `output differs from ${resultFile}:\n${diff(norm(expected), norm(out))}` };
}

function diff(expected: string, actual: string): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < 20; i++) {
    if (a[i] === b[i]) continue;
    if (a[i] !== undefined) out.push(`  - ${a[i]}`);
    if (b[i] !== undefined) out.push(`  + ${b[i]}`);
  }
  return out.join('\n');
}

type Case = Record<string, unknown>;

async function runYamlTests(client: Client, file: string): Promise<TestResult[]> {
  let doc: unknown;
  try {
    doc = parseYaml(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return [{ file, name: path.basename(file), ok: false, message: `not valid YAML: ${(e as Error).message}` }];
  }
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc)) return [{ file, name: path.basename(file), ok: false, message: 'a test file is a YAML list of tests' }];
  const out: TestResult[] = [];
  for (const entry of doc as unknown[]) {
    if (!entry || typeof entry !== 'object') {
      out.push({ file, name: String(entry), ok: false, message: 'each test is a mapping' });
      continue;
    }
    const e = entry as Case;
    // Classic: `- test_name: {sql: ...}`; endpoint tests: `- name: ..., expected_result: ...`.
    const keys = Object.keys(e);
    if (keys.length === 1 && e[keys[0]] && typeof e[keys[0]] === 'object' && !('name' in e))
      out.push(await qualityTest(client, file, keys[0], e[keys[0]] as Case));
    else out.push(await endpointTest(client, file, e));
  }
  return out;
}

function params(v: unknown): Record<string, string> {
  if (!v) return {};
  if (typeof v === 'string') return Object.fromEntries(new URLSearchParams(v.replace(/^\?/, '')));
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as Case).map(([k, x]) => [k, String(x)]));
  return {};
}

async function qualityTest(client: Client, file: string, name: string, t: Case): Promise<TestResult> {
  if (typeof t.sql !== 'string' || !t.sql.trim()) return { file, name, ok: false, message: 'the test needs its sql' };
  try {
    let body: { data?: unknown[]; statistics?: { elapsed?: number; bytes_read?: number } };
    const sql = `${t.sql.trim().replace(/;$/, '')} FORMAT JSON`;
    const pipe = t.pipe as Case | undefined;
    if (pipe?.name)
      body = await client.json('GET', `/v0/pipes/${encodeURIComponent(String(pipe.name))}.json`, { query: { ...params(pipe.params), q: t.sql.trim() } });
    else body = await client.json('GET', '/v0/sql', { query: { q: sql } });
    const rows = body.data?.length ?? 0;
    if (rows > 0) return { file, name, ok: false, message: `expected no rows, got ${rows}: ${JSON.stringify(body.data!.slice(0, 3))}` };
    const elapsed = body.statistics?.elapsed ?? 0;
    if (typeof t.max_time === 'number' && elapsed > t.max_time) return { file, name, ok: false, message: `took ${elapsed}s, max_time is ${t.max_time}s` };
    const bytes = body.statistics?.bytes_read ?? 0;
    if (typeof t.max_bytes_read === 'number' && bytes > t.max_bytes_read)
      return { file, name, ok: false, message: `read ${bytes} bytes, max_bytes_read is ${t.max_bytes_read}` };
    return { file, name, ok: true };
  } catch (e) {
    return { file, name, ok: false, message: (e as Error).message };
  }
}

async function endpointTest(client: Client, file: string, t: Case): Promise<TestResult> {
  const name = String(t.name ?? '(unnamed)');
  const pipe = String(t.pipe ?? path.basename(file).replace(/\.ya?ml$/, ''));
  try {
    const r = await client.request('GET', `/v0/pipes/${encodeURIComponent(pipe)}.ndjson`, { query: params(t.parameters), allow: [400, 403, 404] });
    const text = await r.text();
    if ('expected_http_status' in t && Number(t.expected_http_status) !== r.status)
      return { file, name, ok: false, message: `expected HTTP ${t.expected_http_status}, got ${r.status}: ${text.trim()}` };
    if (!r.ok && !('expected_http_status' in t)) return { file, name, ok: false, message: `HTTP ${r.status}: ${text.trim()}` };
    if (t.expected_result === undefined || t.expected_result === null) return { file, name, ok: true };
    const expected = norm(String(t.expected_result));
    if (norm(text) === expected) return { file, name, ok: true };
    return { file, name, ok: false, message: `result differs:\n${diff(expected, norm(text))}` };
  } catch (e) {
    return { file, name, ok: false, message: (e as Error).message };
  }
}
