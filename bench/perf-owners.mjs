#!/usr/bin/env node
/**
 * Where a server thread's CPU goes, by owner, from a `perf` recording: what the V8 CPU profile
 * (BENCH_ENDPOINT_PROFILE) can not say, since its sampler counts wall time, so a thread preempted
 * inside a native call (chDB's queryAsync waking a libuv worker, which then takes the CPU) looks
 * like time spent in that call. perf samples only what the thread runs.
 *
 *   node --perf-basic-prof --enable-source-maps scripts/start.mjs     (the server, with JIT symbols;
 *     or AB_VARIANTS='x=--enable-source-maps --perf-basic-prof' with bench/endpoint-ab.ts)
 *   perf record -F 4000 -g -t <tid> -o main.data -- sleep 5           (under load; -t <pid>: its main thread)
 *   perf script -i main.data | node bench/perf-owners.mjs <µs of CPU per request> [lines]
 *
 * Each sample goes to the innermost frame that names an owner: Pipit's sources (by file; with
 * `lines`, by function and line), a bundled dependency (Fastify, pino...), Node's own JavaScript
 * (by module), chDB's addon (queueing a query on libuv's pool and resolving its result), else what
 * the thread did outside JavaScript (libuv's poll and reads, context switches, other native code).
 * Frames of the server bundle (dist/server) are mapped to their sources through its source maps.
 * Printed: µs per request (the share of the samples times the CPU per request given, e.g. the
 * main thread's from bench/endpoint-ab.ts in the same minutes).
 */
import fs from 'node:fs';
import { SourceMap } from 'node:module';
import readline from 'node:readline';

const perRequest = Number(process.argv[2]);
const byLine = process.argv[3] === 'lines';
if (!(perRequest > 0)) {
  console.error('usage: perf script -i <file> | node bench/perf-owners.mjs <µs of CPU per request> [lines]');
  process.exit(2);
}

const maps = new Map();
/** `function source:line` of a JIT frame of the bundle, through its source map; null otherwise. */
function original(sym) {
  const m = /^JS:\S*?(\S*) (file:\/\/\/\S+\.mjs):(\d+):(\d+)/.exec(sym);
  if (!m) return null;
  const file = decodeURIComponent(m[2].slice('file://'.length));
  if (!maps.has(file)) maps.set(file, fs.existsSync(`${file}.map`) ? new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8'))) : null);
  const e = maps.get(file)?.findEntry(Number(m[3]) - 1, Number(m[4]) - 1);
  return e?.originalSource ? { fn: m[1] || '(anonymous)', src: e.originalSource, line: e.originalLine + 1 } : null;
}

/** The owner a frame names, or null when it names none (then the caller's frame decides). */
function owner(sym) {
  if (/QueryAsyncConnectionWrapper|chdb_node|Napi::/.test(sym)) return "chDB's addon: queueing a query, resolving its result";
  if (!sym.startsWith('JS:')) return null;
  if (sym.includes('/node_modules/chdb/')) return "chDB's JavaScript wrapper";
  const node = / node:(?:internal\/)?([\w/]+)/.exec(sym);
  if (node) return `Node: ${/^_?http|^streams|^stream_base|^net$/.test(node[1]) ? 'HTTP, sockets, streams' : node[1]}`;
  const o = original(sym);
  if (!o) return null;
  const dep = /node_modules\/(@[^/]+\/[^/]+|[^/]+)/.exec(o.src);
  if (dep) return /^(fastify|find-my-way|avvio|light-my-request|@fastify\/.*)$/.test(dep[1]) ? 'Fastify' : /^(pino|sonic-boom)$/.test(dep[1]) ? 'pino' : dep[1];
  const src = /(?:^|\/)src\/(.*)\.ts$/.exec(o.src);
  if (!src) return null;
  return byLine ? `Pipit ${o.fn} ${src[1]}:${o.line}` : `Pipit ${src[1]}`;
}

const counts = new Map();
let samples = 0;
let stack = [];
function flush() {
  if (!stack.length) return;
  samples++;
  let o = null;
  for (const f of stack) if ((o = owner(f))) break;
  if (!o) {
    const all = stack.join(' ');
    o = /finish_task_switch|__schedule/.test(all)
      ? 'outside JavaScript: context switches'
      : /uv__io_poll|epoll/.test(all)
        ? "outside JavaScript: libuv's poll, reads"
        : `outside JavaScript: ${stack[0].replace(/\+0x[0-9a-f]+$/, '').slice(0, 60)}`;
  }
  counts.set(o, (counts.get(o) ?? 0) + 1);
  stack = [];
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (l) => {
  if (!l.trim() || /^\S/.test(l)) return flush();
  const m = /^\s+[0-9a-f]+ (.*) \((.*)\)$/.exec(l);
  if (m) stack.push(m[1]);
});
rl.on('close', () => {
  flush();
  console.log(`${samples} samples; µs per request of ${perRequest}:`);
  for (const [k, n] of [...counts].sort((a, b) => b[1] - a[1]).filter(([, n]) => n / samples >= 0.002))
    console.log(`${((n / samples) * perRequest).toFixed(1).padStart(7)}  ${k}`);
});
