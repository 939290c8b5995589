/**
 * `pipit`: the command line for a Tinybird project on Pipit (or any Tinybird-compatible host).
 * Commands follow the classic `tb` CLI. It talks to the server only through the public /v0 API.
 *
 * Exit codes: 0 success; 1 the operation or a test failed (or push was blocked); 2 bad usage or
 * configuration (unknown command or flag, unreadable datafile, no server or token).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DatafileError, printDatafile } from '../datafile/index.js';
import { Client, CliError, DEFAULT_HOST, resolveConnection } from './client.js';
import { listFiles, loadProject } from './project.js';
import { push, type PlanItem } from './push.js';
import { runTests } from './test-run.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

interface Args {
  positional: string[];
  flags: Record<string, string | true>;
}

/** Flags that never take a value. */
const BOOLEAN = new Set(['force', 'populate', 'dry-run', 'json', 'help', 'yes', 'no-watch', 'once', 'truncate']);

export function parseArgs(argv: string[]): Args {
  const out: Args = { positional: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(a);
    if (!m) {
      out.positional.push(a);
      continue;
    }
    const name = m[1];
    if (m[2] !== undefined) out.flags[name] = m[2];
    else if (BOOLEAN.has(name) || i + 1 >= argv.length || argv[i + 1].startsWith('--')) out.flags[name] = true;
    else out.flags[name] = argv[++i];
  }
  return out;
}

const HELP = `Usage: pipit <command> [options]

Connection: --host URL --token TOKEN, or TB_HOST / TB_TOKEN, or the .tinyb file of \`tb auth\`
(default host ${DEFAULT_HOST}; with no token, a local server's admin token is used).

  push [paths] [--force] [--populate] [--dry-run]   push datafiles (dependency order)
  pull [--folder DIR] [--force]                     write the workspace's datafiles
  sql "SELECT ..." [--format json|csv|ndjson]       run a query
  pipe ls | pipe data <pipe> [--<param> v] [--format json|csv|ndjson]
  datasource ls | append <ds> <file|url> | replace <ds> <file|url> | truncate <ds> | rm <ds> [--force]
  token ls | token create static <name> --scope S [--resource R]
  test run [paths]                                  tests/*.test (+ .test.result) and tests/*.yaml
  dev [dir] [--port N]                              start a local server if none runs, push, watch
  auth --host URL --token TOKEN                     check and save them in .tinyb
  fmt <file>                                        print a datafile in canonical form

--json prints machine-readable output. Exit codes: 0 ok, 1 failed, 2 usage/config error.
`;

export async function run(argv: string[], io: Io): Promise<number> {
  const args = parseArgs(argv);
  const json = args.flags.json === true;
  try {
    return await dispatch(args, io, json);
  } catch (e) {
    const code = e instanceof DatafileError ? 1 : e instanceof CliError ? e.exitCode : 1;
    const message = e instanceof Error ? e.message : String(e);
    if (json) io.out(`${JSON.stringify({ ok: false, error: message })}\n`);
    io.err(`Error: ${message}\n`);
    if (!(e instanceof DatafileError) && !(e instanceof CliError)) io.err(`${(e as Error).stack ?? ''}\n`);
    return code;
  }
}

const str = (v: string | true | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

async function connect(args: Args, io: Io): Promise<Client> {
  return new Client(await resolveConnection({ host: str(args.flags.host), token: str(args.flags.token) }, io.env, io.cwd));
}

async function dispatch(args: Args, io: Io, json: boolean): Promise<number> {
  const [cmd, sub, ...rest] = args.positional;
  const out = io.out;
  if (!cmd || cmd === 'help' || args.flags.help) {
    out(HELP);
    return cmd || args.flags.help ? 0 : 2;
  }
  const abs = (p: string) => path.resolve(io.cwd, p);
  switch (cmd) {
    case 'push': {
      const paths = [sub, ...rest].filter(Boolean).map(abs);
      return doPush(args, io, paths.length ? paths : [io.cwd], json);
    }
    case 'pull':
      return pull(await connect(args, io), abs(str(args.flags.folder) ?? '.'), args.flags.force === true, io, json);
    case 'sql': {
      if (!sub) throw new CliError('Usage: pipit sql "SELECT ..."', 2);
      const client = await connect(args, io);
      const format = str(args.flags.format);
      const query: Record<string, string> = { q: `${sub} FORMAT ${format ? engineFormat(format) : 'JSON'}` };
      if (str(args.flags.pipeline)) query.pipeline = str(args.flags.pipeline)!;
      const r = await client.request('GET', '/v0/sql', { query });
      return printResult(await r.text(), format, json, io);
    }
    case 'pipe':
      return pipeCmd(sub, rest, args, io, json);
    case 'datasource':
      return datasourceCmd(sub, rest, args, io, json);
    case 'token':
      return tokenCmd(sub, rest, args, io, json);
    case 'test': {
      if (sub !== 'run') throw new CliError('Usage: pipit test run [paths]', 2);
      const client = await connect(args, io);
      const roots = rest.length ? rest.map(abs) : [abs('tests')];
      const files = listFiles(roots, /\.(test|ya?ml)$/i).sort();
      const results = await runTests(client, files, (argv) => capture([...argv, ...connFlags(args)], io));
      const failed = results.filter((r) => !r.ok);
      if (json) out(`${JSON.stringify({ ok: failed.length === 0, results })}\n`);
      else {
        for (const r of results)
          out(`${r.ok ? 'PASS' : 'FAIL'} ${path.relative(io.cwd, r.file)} ${r.name}${r.message ? `\n  ${r.message.replace(/\n/g, '\n  ')}` : ''}\n`);
        out(`${results.length - failed.length} passed, ${failed.length} failed\n`);
      }
      return failed.length || !results.length ? 1 : 0;
    }
    case 'dev': {
      const { dev } = await import('./dev.js');
      return dev(abs(sub ?? '.'), args, io);
    }
    case 'auth': {
      const client = await connect(args, io);
      const ws = await client.json<{ name?: string; id?: string }>('GET', '/v0/workspace');
      const file = path.join(io.cwd, '.tinyb');
      fs.writeFileSync(file, `${JSON.stringify({ host: client.conn.host, token: client.conn.token, name: ws.name, id: ws.id }, null, 4)}\n`, { mode: 0o600 });
      out(
        json
          ? `${JSON.stringify({ ok: true, host: client.conn.host, workspace: ws.name })}\n`
          : `Authenticated on ${client.conn.host}, workspace ${ws.name}; saved in ${file}\n`,
      );
      return 0;
    }
    case 'fmt': {
      if (!sub) throw new CliError('Usage: pipit fmt <file>', 2);
      const project = loadProject(io.cwd, [abs(sub)], io.env);
      const r = [...project.datasources, ...project.pipes, ...project.tokens][0];
      if (!r) throw new CliError(`${sub}: not a .datasource, .pipe or .token file`, 2);
      out(printDatafile(r.value));
      return 0;
    }
    default:
      throw new CliError(`Unknown command "${cmd}". Run \`pipit help\``, 2);
  }
}

/** --host/--token passed on to commands a test file runs. */
function connFlags(args: Args): string[] {
  const out: string[] = [];
  for (const k of ['host', 'token']) if (str(args.flags[k])) out.push(`--${k}`, str(args.flags[k])!);
  return out;
}

async function capture(argv: string[], io: Io): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(argv, { ...io, out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

export async function doPush(args: Args, io: Io, paths: string[], json: boolean): Promise<number> {
  // The project root (where INCLUDE paths also resolve): the folder pushed, else the current one.
  const root = paths.length === 1 && fs.statSync(paths[0], { throwIfNoEntry: false })?.isDirectory() ? paths[0] : io.cwd;
  const project = loadProject(root, paths, io.env);
  for (const w of project.warnings) io.err(`Warning: ${w.file}:${w.line}: ${w.message}\n`);
  const client = await connect(args, io);
  const dryRun = args.flags['dry-run'] === true;
  const report = (i: PlanItem) => {
    if (!json)
      io.out(
        `${(dryRun && i.action !== 'unchanged' && i.action !== 'blocked' ? `would ${i.action}` : label(i.action)).padEnd(14)} ${i.kind.padEnd(10)} ${i.name}${i.detail ? `  (${i.detail})` : ''}\n`,
      );
  };
  let items: PlanItem[] = [];
  try {
    items = await push(client, project, { force: args.flags.force === true, populate: args.flags.populate === true, dryRun, report: (i) => report(i) });
  } catch (e) {
    if (json) io.out(`${JSON.stringify({ ok: false, error: (e as Error).message, plan: items })}\n`);
    throw e;
  }
  const blocked = items.filter((i) => i.action === 'blocked');
  const changed = items.filter((i) => i.action !== 'unchanged' && i.action !== 'blocked');
  if (json) io.out(`${JSON.stringify({ ok: blocked.length === 0, dry_run: dryRun, changes: changed.length, plan: items })}\n`);
  else
    io.out(
      `${dryRun ? 'Dry run: ' : ''}${changed.length ? `${changed.length} change(s)` : 'no changes'}${blocked.length ? `, ${blocked.length} blocked` : ''}\n`,
    );
  return blocked.length ? 1 : 0;
}

const label = (a: PlanItem['action']) => ({ create: 'created', alter: 'altered', replace: 'replaced', unchanged: 'unchanged', blocked: 'blocked' })[a];

function engineFormat(f: string): string {
  const m: Record<string, string> = { json: 'JSON', csv: 'CSVWithNames', ndjson: 'JSONEachRow' };
  const v = m[f.toLowerCase()];
  if (!v) throw new CliError(`Invalid --format "${f}": use json, csv or ndjson`, 2);
  return v;
}

/** Raw output for --format; otherwise a table (or the JSON with --json). */
function printResult(text: string, format: string | undefined, json: boolean, io: Io): number {
  if (format || json) {
    io.out(text.endsWith('\n') ? text : `${text}\n`);
    return 0;
  }
  const body = JSON.parse(text) as { meta?: Array<{ name: string }>; data?: Array<Record<string, unknown>>; rows?: number };
  io.out(
    table(
      (body.meta ?? []).map((m) => m.name),
      body.data ?? [],
    ),
  );
  return 0;
}

function table(cols: string[], rows: Array<Record<string, unknown>>): string {
  const cell = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.slice(0, widths[i]).padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return (
    [line(cols), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => line(cols.map((c) => cell(r[c])))), `${rows.length} row(s)`].join('\n') + '\n'
  );
}

async function pipeCmd(sub: string | undefined, rest: string[], args: Args, io: Io, json: boolean): Promise<number> {
  const client = await connect(args, io);
  if (sub === 'ls') {
    const { pipes } = await client.json<{ pipes: Array<{ name: string; type: string; nodes: unknown[] }> }>('GET', '/v0/pipes');
    if (json) io.out(`${JSON.stringify({ pipes })}\n`);
    else
      io.out(
        table(
          ['name', 'type', 'nodes'],
          pipes.map((p) => ({ name: p.name, type: p.type, nodes: p.nodes.length })),
        ),
      );
    return 0;
  }
  if (sub !== 'data' || !rest[0]) throw new CliError('Usage: pipit pipe ls | pipit pipe data <pipe> [--param value] [--format json|csv|ndjson]', 2);
  const format = str(args.flags.format)?.toLowerCase();
  if (format && !['json', 'csv', 'ndjson'].includes(format)) throw new CliError(`Invalid --format "${format}": use json, csv or ndjson`, 2);
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(args.flags)) if (!['host', 'token', 'format', 'json'].includes(k)) query[k] = v === true ? 'true' : v;
  const r = await client.request('GET', `/v0/pipes/${encodeURIComponent(rest[0])}.${format ?? 'json'}`, { query });
  return printResult(await r.text(), format, json, io);
}

async function datasourceCmd(sub: string | undefined, rest: string[], args: Args, io: Io, json: boolean): Promise<number> {
  const client = await connect(args, io);
  const name = rest[0];
  const say = (human: string, data: Record<string, unknown>) => io.out(json ? `${JSON.stringify({ ok: true, ...data })}\n` : `${human}\n`);
  switch (sub) {
    case 'ls': {
      const { datasources } = await client.json<{ datasources: Array<{ name: string; engine?: { engine?: string }; row_count?: number }> }>(
        'GET',
        '/v0/datasources',
      );
      if (json) io.out(`${JSON.stringify({ datasources })}\n`);
      else
        io.out(
          table(
            ['name', 'engine', 'rows'],
            datasources.map((d) => ({ name: d.name, engine: d.engine?.engine ?? '', rows: d.row_count ?? '' })),
          ),
        );
      return 0;
    }
    case 'append':
    case 'replace': {
      const source = rest[1];
      if (!name || !source) throw new CliError(`Usage: pipit datasource ${sub} <datasource> <file|url>`, 2);
      const r = await ingest(client, sub, name, source, io, json);
      say(`${sub === 'append' ? 'Appended' : 'Replaced'} ${name}: ${r.rows} row(s)${r.quarantine ? `, ${r.quarantine} in quarantine` : ''}`, {
        datasource: name,
        ...r,
      });
      return 0;
    }
    case 'truncate':
      if (!name) throw new CliError('Usage: pipit datasource truncate <datasource>', 2);
      await client.request('POST', `/v0/datasources/${encodeURIComponent(name)}/truncate`);
      say(`Truncated ${name}`, { datasource: name });
      return 0;
    case 'rm':
      if (!name) throw new CliError('Usage: pipit datasource rm <datasource> [--force]', 2);
      await client.request('DELETE', `/v0/datasources/${encodeURIComponent(name)}`, { query: { force: args.flags.force === true ? 'true' : undefined } });
      say(`Removed ${name}`, { datasource: name });
      return 0;
    default:
      throw new CliError('Usage: pipit datasource ls | append | replace | truncate | rm', 2);
  }
}

/** Appends/replaces from a local file (multipart, streamed from disk) or a URL (an import job, polled). */
async function ingest(client: Client, mode: string, name: string, source: string, io: Io, json: boolean): Promise<{ rows: number; quarantine: number }> {
  const isUrl = /^https?:\/\//i.test(source);
  const base = source.replace(/[?#].*$/, '').replace(/\.(gz|gzip)$/i, '');
  const format = /\.ndjson$|\.jsonl?$/i.test(base) ? 'ndjson' : /\.parquet$/i.test(base) ? 'parquet' : 'csv';
  const query = { name, mode, format };
  if (isUrl) {
    const started = await client.json<{ id: string }>('POST', '/v0/datasources', { query: { ...query, url: source } });
    for (;;) {
      const job = await client.json<{ status: string; error?: string; statistics?: { row_count?: number }; quarantine_rows?: number }>(
        'GET',
        `/v0/jobs/${started.id}`,
      );
      if (job.status === 'done') return { rows: job.statistics?.row_count ?? 0, quarantine: job.quarantine_rows ?? 0 };
      if (job.status === 'error' || job.status === 'cancelled') throw new CliError(`Import ${job.status}: ${job.error ?? ''}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const file = path.resolve(io.cwd, source);
  if (!fs.existsSync(file)) throw new CliError(`${source}: no such file`, 2);
  const size = fs.statSync(file).size;
  const blob = await fs.openAsBlob(file);
  const field = format === 'csv' ? 'csv' : format;
  const form = new FormData();
  form.append(field, blob, path.basename(file));
  const big = size > 16 * 1024 * 1024 && !json;
  if (big) io.err(`Uploading ${path.basename(file)} (${(size / 1048576).toFixed(1)} MB)...\n`);
  const r = await client.json<{ statistics?: { row_count?: number }; quarantine_rows?: number; error?: unknown }>('POST', '/v0/datasources', {
    query,
    body: form,
  });
  if (big) io.err('Uploaded.\n');
  return { rows: r.statistics?.row_count ?? 0, quarantine: r.quarantine_rows ?? 0 };
}

async function tokenCmd(sub: string | undefined, rest: string[], args: Args, io: Io, json: boolean): Promise<number> {
  const client = await connect(args, io);
  if (sub === 'ls') {
    const { tokens } = await client.json<{ tokens: Array<{ name: string; scopes: Array<{ type: string; resource?: string }> }> }>('GET', '/v0/tokens');
    if (json) io.out(`${JSON.stringify({ tokens })}\n`);
    else
      io.out(
        table(
          ['name', 'scopes'],
          tokens.map((t) => ({ name: t.name, scopes: t.scopes.map((s) => [s.type, s.resource].filter(Boolean).join(':')).join(' ') })),
        ),
      );
    return 0;
  }
  if (sub === 'create' && rest[0] === 'static' && rest[1]) {
    const scope = str(args.flags.scope);
    if (!scope) throw new CliError('Usage: pipit token create static <name> --scope SCOPE [--resource NAME]', 2);
    const resource = str(args.flags.resource);
    const t = await client.json<{ token: string; name: string }>('POST', '/v0/tokens', {
      query: { name: rest[1], scope: resource ? `${scope}:${resource}` : scope },
    });
    io.out(json ? `${JSON.stringify({ ok: true, name: t.name, token: t.token })}\n` : `${t.token}\n`);
    return 0;
  }
  throw new CliError('Usage: pipit token ls | pipit token create static <name> --scope SCOPE [--resource NAME]', 2);
}

async function pull(client: Client, folder: string, force: boolean, io: Io, json: boolean): Promise<number> {
  const existing = new Map<string, string>();
  if (fs.existsSync(folder)) for (const f of listFiles([folder], /\.(datasource|pipe)$/i)) existing.set(path.basename(f), f);
  const { datasources } = await client.json<{ datasources: Array<{ name: string }> }>('GET', '/v0/datasources');
  const { pipes } = await client.json<{ pipes: Array<{ name: string }> }>('GET', '/v0/pipes');
  const written: Array<{ file: string; action: string }> = [];
  const save = (base: string, dir: string, text: string) => {
    const file = existing.get(base) ?? path.join(folder, dir, base);
    const rel = path.relative(io.cwd, file);
    if (fs.existsSync(file)) {
      if (fs.readFileSync(file, 'utf8') === text) return written.push({ file: rel, action: 'unchanged' });
      if (!force) return written.push({ file: rel, action: 'skipped (exists; use --force)' });
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    written.push({ file: rel, action: 'written' });
  };
  for (const d of datasources) {
    if (d.name.includes('.')) continue; // service data sources
    save(`${d.name}.datasource`, 'datasources', await (await client.request('GET', `/v0/datasources/${encodeURIComponent(d.name)}.datasource`)).text());
  }
  for (const p of pipes) save(`${p.name}.pipe`, 'pipes', await (await client.request('GET', `/v0/pipes/${encodeURIComponent(p.name)}.pipe`)).text());
  if (json) io.out(`${JSON.stringify({ ok: true, files: written })}\n`);
  else for (const w of written) io.out(`${w.action.padEnd(10)} ${w.file}\n`);
  return 0;
}

// Entry point when run directly (bin/pipit.mjs imports this module).
export async function main(): Promise<void> {
  const code = await run(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
    cwd: process.cwd(),
  });
  // `dev` keeps running; everything else exits with its code once output is flushed.
  process.exitCode = code;
}
