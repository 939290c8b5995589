/**
 * Nothing lost, for every write path of the Events API: large bodies (≥ 1 MB, logged as their own
 * `.ndjson` segment and inserted apart), gzip bodies (decompressed size decides the path), small
 * bodies (group-committed TSV segments), `wait=true` (200) and the default (202), all sent
 * concurrently, some with bad rows. A child server is killed with SIGKILL right after an
 * acknowledgement, at a different moment each round; after the restart (which replays the log)
 * every acknowledged row is present exactly once, in the table or, for a bad row, in quarantine,
 * and no row is present twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-durability-large-'));
const walDir = path.join(dataDir, 'wal');
let child: ChildProcess | null = null;
afterAll(() => {
  child?.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/**
 * Starts the server on an ephemeral port (from its banner): a new port per start, so fetch's
 * keep-alive pool never hands a request a socket of the killed process, and no port clashes.
 */
async function startChild(): Promise<{ child: ChildProcess; base: string }> {
  const c = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, PIPIT_DATA_DIR: dataDir, PIPIT_PORT: '0', PIPIT_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    c.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve(m[1]);
    });
    c.on('exit', (code, signal) => reject(new Error(`server exited with ${code ?? signal} before listening`)));
  });
  return { child: c, base };
}

async function kill(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGKILL');
  await exited;
}

/** Segments (acknowledged rows not yet known to be in the engine) left in the log. */
const walSegments = () => (fs.existsSync(walDir) ? fs.readdirSync(walDir).filter((f) => f.endsWith('.tsv') || f.endsWith('.ndjson')) : []);

interface Batch {
  /** Rows that fit the schema. */
  good: number[];
  /** Rows with a value that does not convert (quarantine, id kept in the row). */
  badType: number[];
  /** Lines that are not JSON (quarantine, id only inside the error message). */
  broken: number[];
  wait: boolean;
  gzip: boolean;
  /** Gzip announced by Content-Encoding (otherwise found by its magic bytes). */
  gzipHeader: boolean;
  large: boolean;
  body: Buffer;
  status?: number;
  answer?: { successful_rows: number; quarantined_rows: number };
}

let nextId = 1;
let gzipCount = 0;
const PAD = 'p'.repeat(220);

function batch(opts: { good: number; badType?: number; broken?: number; wait: boolean; gzip: boolean; pad?: boolean }): Batch {
  const b: Batch = {
    good: [],
    badType: [],
    broken: [],
    wait: opts.wait,
    gzip: opts.gzip,
    gzipHeader: opts.gzip && gzipCount++ % 2 === 0,
    large: false,
    body: Buffer.alloc(0),
  };
  const lines: string[] = [];
  const pad = opts.pad ? PAD : '';
  for (let i = 0; i < opts.good; i++) {
    b.good.push(nextId);
    lines.push(JSON.stringify({ id: nextId++, v: i, pad }));
  }
  // Bad rows sit in the middle of the batch, among good ones.
  const at = Math.floor(lines.length / 2);
  const bad: string[] = [];
  for (let i = 0; i < (opts.badType ?? 0); i++) {
    b.badType.push(nextId);
    bad.push(JSON.stringify({ id: nextId++, v: 'not an int', pad }));
  }
  for (let i = 0; i < (opts.broken ?? 0); i++) {
    b.broken.push(nextId);
    bad.push(`{"id": ${nextId++}, "v": 1, "pad": "unterminated`);
  }
  lines.splice(at, 0, ...bad);
  const raw = Buffer.from(lines.join('\n') + '\n');
  b.large = raw.length >= 1024 * 1024;
  b.body = opts.gzip ? zlib.gzipSync(raw) : raw;
  return b;
}

/** One round's batches: large and small, plain and gzip, wait=true and 202, some with bad rows. */
function round(): Batch[] {
  const out: Batch[] = [];
  for (const [wait, gzip] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const) {
    out.push(batch({ good: 4800, badType: 2, broken: 1, wait, gzip, pad: true }));
  }
  for (let i = 0; i < 16; i++) {
    out.push(batch({ good: 150, badType: i % 4 === 0 ? 2 : 0, broken: i % 5 === 0 ? 1 : 0, wait: i % 2 === 0, gzip: i % 3 === 0 }));
  }
  return out;
}

it('large, gzip and small batches acknowledged with 202 or 200 survive kill -9, once each, bad rows in quarantine', async () => {
  let base = '';
  const start = async () => {
    ({ child, base } = await startChild());
  };
  await start();
  const { admin_token: token } = await (await fetch(`${base}/tokens`)).json();
  const auth = { authorization: `Bearer ${token}` };
  const schema = 'id UInt32 `json:$.id`, v Int32 `json:$.v`, pad String `json:$.pad`';
  const c = await fetch(`${base}/v0/datasources?name=durl&mode=create&format=ndjson`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ schema }).toString(),
  });
  expect(c.status).toBe(200);

  // When to kill, per round: right after the first 202 of a large body (its insert is then
  // usually still running), right after the first 200 of a large body, right after the last
  // acknowledgement of the round.
  const killAfter: Array<(b: Batch, all: Batch[]) => boolean> = [
    (b) => b.large && !b.wait,
    (b) => b.large && b.wait,
    (_b, all) => all.every((x) => x.status !== undefined),
  ];
  const batches: Batch[] = [];
  let leftInLog = 0;
  for (const trigger of killAfter) {
    const server = child!;
    const these = round();
    batches.push(...these);
    let killed = false;
    await Promise.all(
      these.map(async (b) => {
        try {
          const headers: Record<string, string> = b.gzipHeader ? { ...auth, 'content-encoding': 'gzip' } : { ...auth };
          const r = await fetch(`${base}/v0/events?name=durl${b.wait ? '&wait=true' : ''}`, { method: 'POST', headers, body: new Uint8Array(b.body) });
          if (r.status !== 200 && r.status !== 202) throw new Error(`unexpected ${r.status}: ${await r.text()}`);
          b.status = r.status; // acknowledged: the promise holds even if the body is cut by the kill
          b.answer = await r.json().catch(() => undefined);
        } catch (err) {
          if (!killed) throw err; // before the kill, every request must succeed
          b.status = 0;
        }
        if (!killed && b.status && trigger(b, these)) {
          killed = true;
          server.kill('SIGKILL');
        }
      }),
    );
    expect(killed).toBe(true);
    await kill(server);
    leftInLog += walSegments().length;
    await start(); // replays the log
    expect(walSegments()).toEqual([]);
  }

  // Every round's trigger fired and the last round was acknowledged whole: each path was covered.
  const acked = batches.filter((b) => b.status === 200 || b.status === 202);
  for (const wait of [true, false])
    for (const gzip of [true, false]) {
      expect(acked.some((b) => b.large && b.wait === wait && b.gzip === gzip && b.badType.length > 0)).toBe(true);
      expect(acked.some((b) => !b.large && b.wait === wait && b.gzip === gzip)).toBe(true);
    }
  // At least one kill left acknowledged rows in the log only, so a replay was exercised.
  expect(leftInLog).toBeGreaterThan(0);
  // What the answers said.
  for (const b of acked.filter((x) => x.answer)) {
    const lines = b.good.length + b.badType.length + b.broken.length;
    if (b.status === 202) expect(b.answer).toEqual({ successful_rows: lines, quarantined_rows: 0 });
    else expect(b.answer).toEqual({ successful_rows: b.good.length, quarantined_rows: b.badType.length + b.broken.length });
  }

  // A segment the engine refuses (here: a malformed TSV row) must not stop the start: it is kept
  // for the next one. A body whose write never completed (`.partial`) was never acknowledged.
  const wsId = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).u as string;
  const dsId = (await (await fetch(`${base}/v0/datasources/durl`, { headers: auth })).json()).id as string;
  const refused = `${wsId}__${dsId}__01ZZZZZZZZZZZZZZZZZZZZZZZZ.tsv`;
  fs.writeFileSync(path.join(walDir, refused), 'not\ta valid\tsegment row\n');
  fs.writeFileSync(path.join(walDir, `${wsId}__${dsId}__01ZZZZZZZZZZZZZZZZZZZZZZZY__01ZZZZZZZZZZZZZZZZZZZZZZZX.ndjson.partial`), '{"id": 4000000000');
  await kill(child!);
  child = null;

  const app = await createApp(loadConfig({}, { dataDir, port: 0, logLevel: 'silent' }));
  try {
    expect(fs.readdirSync(walDir)).toEqual([refused]);
    const ws = app.services.access.defaultWorkspace;
    const ds = await app.services.datasources.get(ws, 'durl');
    const inTable = new Map<number, number>();
    for (const r of await app.services.engine.rows<{ id: number; c: string }>(`SELECT id, count() AS c FROM ${ws.database}.${ds.id} GROUP BY id`))
      inTable.set(Number(r.id), Number(r.c));
    const inQuarantine = new Map<number, number>();
    for (const r of await app.services.engine.rows<{ id: string | null; e: string[] }>(`SELECT id, c__error AS e FROM ${ws.database}.${ds.id}_quarantine`)) {
      const id = r.id !== null ? Number(r.id) : Number(/"id": (\d+)/.exec(r.e[0] ?? '')?.[1]);
      expect(Number.isInteger(id)).toBe(true);
      inQuarantine.set(id, (inQuarantine.get(id) ?? 0) + 1);
    }
    const problems: string[] = [];
    const check = (what: string, b: Batch, ids: number[], table: number, quarantine: number) => {
      for (const id of ids) {
        const t = inTable.get(id) ?? 0;
        const q = inQuarantine.get(id) ?? 0;
        const ok = b.status ? t === table && q === quarantine : t + q <= 1 && t <= table && q <= quarantine;
        if (!ok)
          problems.push(
            `${what} id ${id} (${b.status ? 'acknowledged ' + b.status : 'not acknowledged'}, ${b.large ? 'large' : 'small'}${b.gzip ? ' gzip' : ''}): table ${t}, quarantine ${q}`,
          );
      }
    };
    for (const b of batches) {
      check('good', b, b.good, 1, 0);
      check('bad value', b, b.badType, 0, 1);
      check('broken line', b, b.broken, 0, 1);
    }
    expect(problems.slice(0, 20)).toEqual([]);
    const known = new Set(batches.flatMap((b) => [...b.good, ...b.badType, ...b.broken]));
    expect([...inTable.keys(), ...inQuarantine.keys()].filter((id) => !known.has(id))).toEqual([]);
    expect(acked.reduce((n, b) => n + b.good.length, 0)).toBeGreaterThan(20_000);
  } finally {
    await app.close();
  }
}, 120_000);
