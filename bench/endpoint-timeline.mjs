/**
 * Preloaded into a server process (`node --import=<this file> ...`, e.g. as an AB_VARIANTS word of
 * bench/endpoint-ab.ts): where the wall time of each endpoint request (`GET /v0/pipes/<pipe>.json`)
 * goes inside the server, at concurrency 1. Marks, from Node's `request`
 * event (the HTTP head parsed) to chDB's queryAsync call, its synchronous return and its
 * resolution, then `res.end()` (the answer handed to Node: its head built and written with the
 * body). Code under test may add marks with `globalThis.__tl?.('label')` (temporary probes; not
 * kept in the sources). Medians of each step over the requests after the first TIMELINE_SKIP (1,500; warm-up),
 * written to $TIMELINE_OUT (/tmp/timeline.txt) when the process exits. At concurrency above 1
 * the marks of overlapping requests mix: only c1 figures mean anything.
 * Each answer also carries its marks so far in an `x-timeline` header (set when the head is
 * written): `request,queryAsync call,queryAsync resolved,writeHead` on the system's monotonic clock
 * (process.hrtime, ms), which the client's clock shares: endpoint-ab splits the round trip with it.
 */
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Session } = require('chdb');
const rows = [];
/** The system's monotonic clock in ms (shared by every process on the machine). */
const mono = () => Number(process.hrtime.bigint()) / 1e6;
let cur = null;
globalThis.__tl = (label) => {
  if (cur) cur.m.push([label, performance.now()]);
};
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (ev, ...args) {
  const [req, res] = args;
  if (ev === 'request' && /^\/v0\/pipes\/[^/]+\.json/.test(req.url)) {
    cur = { m: [['request', performance.now()]], hr: [mono()] };
    res.__timeline = cur;
  }
  return emit.call(this, ev, ...args);
};
const queryAsync = Session.prototype.queryAsync;
Session.prototype.queryAsync = function (...a) {
  const c = cur;
  if (!c || c.queried) return queryAsync.apply(this, a);
  c.queried = true;
  c.m.push(['queryAsync call', performance.now()]);
  c.hr.push(mono());
  const p = queryAsync.apply(this, a);
  c.m.push(['queryAsync returned', performance.now()]);
  return p.then((r) => {
    c.m.push(['queryAsync resolved', performance.now()]);
    c.hr.push(mono());
    return r;
  });
};
const writeHead = http.ServerResponse.prototype.writeHead;
http.ServerResponse.prototype.writeHead = function (status, ...a) {
  const c = this.__timeline;
  if (c && c.hr.length === 3) {
    const stamp = [...c.hr, mono()].map((x) => x.toFixed(4)).join(',');
    const headers = a.find((x) => x && typeof x === 'object' && !Array.isArray(x));
    if (headers) headers['x-timeline'] = stamp;
    else this.setHeader('x-timeline', stamp);
  }
  return writeHead.call(this, status, ...a);
};
const end = http.ServerResponse.prototype.end;
http.ServerResponse.prototype.end = function (...a) {
  const c = this.__timeline;
  if (c) c.m.push(['res.end', performance.now()]);
  const r = end.apply(this, a);
  if (c) {
    c.m.push(['res.end returned', performance.now()]);
    rows.push(c);
    cur = null;
  }
  return r;
};
process.on('exit', () => {
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const kept = rows.slice(Number(process.env.TIMELINE_SKIP ?? 1500));
  if (!kept.length) return;
  const labels = kept[0].m.map(([l]) => l);
  const same = kept.filter((c) => c.m.length === labels.length && c.m.every(([l], i) => l === labels[i]));
  let out = `${same.length} of ${kept.length} requests with the same marks; µs, medians of each step:\n`;
  for (let i = 1; i < labels.length; i++)
    out += `  ${labels[i - 1]} → ${labels[i]}: ${(median(same.map((c) => c.m[i][1] - c.m[i - 1][1])) * 1000).toFixed(1)}\n`;
  out += `  total: ${(median(same.map((c) => c.m.at(-1)[1] - c.m[0][1])) * 1000).toFixed(1)}\n`;
  fs.writeFileSync(process.env.TIMELINE_OUT || '/tmp/timeline.txt', out);
});
