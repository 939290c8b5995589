/**
 * `npx tsx bench/endpoint-ab.ts`: an A/B of server variants, each in its own process, on the
 * trivial endpoint (a) (`SELECT {{Int32(x, 1)}} AS x`) at concurrency 1. Not part of
 * `npm run bench`: a tool for finding what a start option or a code change costs per request.
 *
 * Each variant is a Pipit server started as `npm start` starts it unless its spec says otherwise,
 * on its own temporary data directory, its stdout going to /dev/null. They are driven in turn, in
 * blocks of AB_N (1,500) requests with one keep-alive node:http client, AB_ROUNDS (6) rounds, the
 * order rotating; per block: the server main thread's CPU per request
 * (`/proc/<pid>/task/<pid>/schedstat`, exact), the whole process's, the client's, and the p50
 * round trip. Medians over the rounds (the per-round figures are printed too: on a loaded
 * machine, compare variants round by round).
 *
 * AB_VARIANTS: `;`-separated `name=spec`, spec a space-separated list of `KEY=value` environment
 * settings and node options (`--import=<file>` preloads, e.g. bench/endpoint-timeline.mjs), and
 * optionally `src` (run src/main.ts through tsx instead of scripts/start.mjs), `pipe` (stdout into
 * a `cat` process through a FIFO, as a log reader such as journald or a container runtime reads
 * it; its CPU per request is the "reader" column) or the absolute path of another checkout (its
 * scripts/start.mjs; build its bundle first). Two specs are not server processes: `inproc` (a
 * server created in this process from the sources, PIPIT_LOG_LEVEL from the spec or silent, as
 * bench/endpoint.ts's in-process server) and `raw` (one chDB Session in this process with default
 * settings running the natural SQL, `SELECT toInt32(<x>) AS x`, FORMAT JSON; on the inproc
 * server's data directory when one is listed before it). Run this tool with UV_THREADPOOL_SIZE=16
 * for those two. The "client" column is this process's main thread per request (for inproc and
 * raw the whole request: client, server and engine calls share it).
 * Default: the differences between the in-process bench server and `npm start`'s, with both
 * references.
 */
import { adminTokenWhenReady } from './server-ready.js';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.AB_N ?? 1500);
const ROUNDS = Number(process.env.AB_ROUNDS ?? 6);
const VARIANTS =
  process.env.AB_VARIANTS ??
  'start=--enable-source-maps;no-source-maps=;silent=--enable-source-maps PIPIT_LOG_LEVEL=silent;tsx-src=src PIPIT_LOG_LEVEL=silent;inproc=inproc;raw=raw';

interface Variant {
  name: string;
  /** The server process; undefined for inproc and raw (this process). */
  child?: ChildProcess;
  /** The process reading its stdout (`pipe`). */
  reader?: ChildProcess;
  /** One request (x in 1..20). */
  call: (x: number) => Promise<void>;
  stop: () => Promise<void>;
  main: number[];
  proc: number[];
  client: number[];
  readerCpu: number[];
  p50: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function mainCpuMs(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}
/** The whole process's CPU (ms): every thread's schedstat; threads that ended meanwhile are lost (few). */
function procCpuMs(pid: number): number {
  let ms = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ms += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
    } catch {
      // ended meanwhile
    }
  }
  return ms;
}

function get(agent: http.Agent, port: number, p: string, token: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

let inprocEngineDir: string | undefined;

async function start(name: string, spec: string): Promise<Variant> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pipit-ab-${name}-`));
  const words = spec.split(' ').filter(Boolean);
  const stats = { main: [], proc: [], client: [], readerCpu: [], p50: [] };
  if (words[0] === 'raw') {
    const { Session } = await import('chdb');
    // chDB holds one data directory per process: the in-process server's, when there is one.
    const session = new Session(inprocEngineDir ?? dir);
    return {
      name,
      ...stats,
      call: async (x) => void (await session.queryAsync(`SELECT toInt32(${x}) AS x`, { format: 'JSON' })).bytes(),
      stop: async () => session.close(),
    };
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PIPIT_DATA_DIR: dir,
    PIPIT_PORT: '0',
    PIPIT_HOST: '127.0.0.1',
    PIPIT_ENGINE_SESSIONS: '4',
    UV_THREADPOOL_SIZE: '16',
  };
  delete env.PIPIT_LOG_LEVEL;
  const nodeArgs: string[] = [];
  let root = ROOT;
  let src = false;
  let pipe = false;
  for (const w of words) {
    if (w === 'src' || w === 'inproc') src = true;
    else if (w === 'pipe') pipe = true;
    else if (w.startsWith('/')) root = w;
    else if (/^[A-Z_]+=/.test(w)) env[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
    else nodeArgs.push(w);
  }
  let port: number;
  let token: string;
  let child: ChildProcess | undefined;
  let reader: ChildProcess | undefined;
  let stop: () => Promise<void>;
  if (words[0] === 'inproc') {
    const { createApp } = await import('../src/app.js');
    const { loadConfig } = await import('../src/config/config.js');
    const app = await createApp(loadConfig({}, { dataDir: dir, port: 0, host: '127.0.0.1', logLevel: env.PIPIT_LOG_LEVEL ?? 'silent', engineSessions: 4 }));
    await app.http.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.http.server.address();
    port = typeof addr === 'object' && addr ? addr.port : 0;
    token = app.services.localTokens.workspace_admin_token;
    inprocEngineDir = path.join(dir, 'engine');
    stop = () => app.close();
  } else {
    port = 30000 + Math.floor(Math.random() * 20000);
    env.PIPIT_PORT = String(port);
    const args = src ? [...nodeArgs, '--import', 'tsx', path.join(root, 'src', 'main.ts')] : [...nodeArgs, path.join(root, 'scripts', 'start.mjs')];
    const out = fs.openSync('/dev/null', 'w');
    let stdout = out;
    if (pipe) {
      // A FIFO between the server and `cat`: only those two hold its ends.
      const fifo = path.join(dir, 'stdout.fifo');
      execFileSync('mkfifo', [fifo]);
      const rd = spawn('cat', [fifo], { stdio: ['ignore', out, 'inherit'] });
      reader = rd;
      process.once('exit', () => rd.kill('SIGKILL'));
      stdout = fs.openSync(fifo, 'w');
    }
    const c = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', stdout, 'pipe'] });
    if (stdout !== out) fs.closeSync(stdout);
    child = c;
    process.once('exit', () => c.kill('SIGKILL'));
    token = await adminTokenWhenReady(c, port, name);
    stop = async () => {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    };
  }
  const r = await fetch(`http://127.0.0.1:${port}/v0/pipes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'trivial_ep', nodes: [{ name: 'n', sql: '%\nSELECT {{ Int32(x, 1) }} AS x', type: 'endpoint' }] }),
  });
  if (!r.ok) throw new Error(`${name}: creating the pipe: ${r.status} ${await r.text()}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  return { name, child, reader, ...stats, call: (x) => get(agent, port, `/v0/pipes/trivial_ep.json?x=${x}`, token), stop };
}

async function block(v: Variant, n: number): Promise<void> {
  const pid = v.child?.pid;
  const lat: number[] = [];
  const m0 = pid ? mainCpuMs(pid) : 0;
  const p0 = pid ? procCpuMs(pid) : 0;
  const c0 = mainCpuMs(process.pid);
  const r0 = v.reader ? procCpuMs(v.reader.pid!) : 0;
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await v.call((i % 20) + 1);
    lat.push(performance.now() - t);
  }
  v.client.push(((mainCpuMs(process.pid) - c0) * 1000) / n);
  v.readerCpu.push(v.reader ? ((procCpuMs(v.reader.pid!) - r0) * 1000) / n : 0);
  v.main.push(pid ? ((mainCpuMs(pid) - m0) * 1000) / n : 0);
  v.proc.push(pid ? ((procCpuMs(pid) - p0) * 1000) / n : 0);
  v.p50.push(median(lat));
}

async function main() {
  const specs = VARIANTS.split(';').map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)] as const);
  const vs: Variant[] = [];
  for (const [name, spec] of specs) vs.push(await start(name, spec));
  console.log(
    `load ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}; ${vs.length} variants started; warming up`,
  );
  for (const v of vs) await block(v, 2000);
  for (const v of vs) {
    v.main.length = 0;
    v.proc.length = 0;
    v.client.length = 0;
    v.readerCpu.length = 0;
    v.p50.length = 0;
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < vs.length; k++) await block(vs[(r + k) % vs.length], N);
    console.log(
      `round ${r + 1}: ${vs.map((v) => `${v.name} ${v.main.at(-1)!.toFixed(0)}µs/${v.p50.at(-1)!.toFixed(3)}ms`).join('  ')}  load ${os.loadavg()[0].toFixed(1)}`,
    );
  }
  const ref = vs.find((v) => v.name === 'raw');
  console.log(
    '\nvariant: server main thread µs/request, server process µs/request, client (this process) main thread µs/request, reader µs/request, p50 ms, p50 − raw p50 (medians of the rounds)',
  );
  for (const v of vs)
    console.log(
      `${v.name.padEnd(20)} ${[v.main, v.proc, v.client, v.readerCpu].map((xs) => median(xs).toFixed(0).padStart(6)).join(' ')} ${median(v.p50).toFixed(3).padStart(8)}` +
        (ref ? ` ${(median(v.p50) - median(ref.p50)).toFixed(3).padStart(7)}` : ''),
    );
  for (const v of vs) await v.stop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
