/**
 * `npm run bench -- start`: time from `npm start` until the server answers `GET /tokens`, on an
 * empty data directory and on one holding 100 data sources and 100 pipes (made through the API
 * by a first server, then stopped). Medians of BENCH_RUNS (3) starts each; `npm start` includes
 * its build checks (scripts/start.mjs) and npm itself. Prints the issue-15 target (≤ 2 s) and
 * whether it holds. Wall time depends on what else the machine runs, so each start also reports
 * the CPU time (user + system) of `npm start`'s processes until ready (Linux: /proc), with the
 * load average: on a shared machine compare CPU time.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const N = Number(process.env.BENCH_START_OBJECTS ?? 100);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const loadAverage = () => os.loadavg()[0].toFixed(1);

/** CPU seconds (user + system, with waited-for children) of the processes in a process group; NaN off Linux. */
function groupCpuSeconds(pgid: number): number {
  if (!fs.existsSync('/proc/self/stat')) return Number.NaN;
  const tick = 100; // USER_HZ
  let ticks = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the command name: state, ppid, pgrp, ..., utime (14), stime, cutime, cstime (17).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) === pgid) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks / tick;
}

/** Starts `npm start` on `dir`; resolves with the seconds until /tokens answered, the CPU seconds spent by then, and a stop function. */
async function start(dir: string): Promise<{ seconds: number; cpu: number; base: string; stop: () => Promise<void> }> {
  const port = 30000 + Math.floor(Math.random() * 20000);
  const base = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const child = spawn('npm', ['start', '--silent'], {
    env: { ...process.env, PIPIT_DATA_DIR: dir, PIPIT_PORT: String(port), PIPIT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited ${child.exitCode}: ${stderr.slice(-2000)}`);
    try {
      if ((await fetch(`${base}/tokens`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = groupCpuSeconds(child.pid!);
  const stop = async () => {
    // npm's process group: npm, its shell, the server.
    process.kill(-child.pid!, 'SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await new Promise((r) => setTimeout(r, 300));
  };
  return { seconds, cpu, base, stop };
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-bench-start-'));
  try {
    const empty: number[] = [];
    const emptyCpu: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const dir = path.join(tmp, `empty-${i}`);
      const s = await start(dir);
      empty.push(s.seconds);
      emptyCpu.push(s.cpu);
      await s.stop();
      console.log(`empty data dir, start ${i + 1}: ${s.seconds.toFixed(2)} s, CPU ${s.cpu.toFixed(2)} s (load ${loadAverage()})`);
    }
    // A data directory with N data sources and N pipes.
    const dir = path.join(tmp, 'full');
    const first = await start(dir);
    const { workspace_admin_token: token } = (await (await fetch(`${first.base}/tokens`)).json()) as { workspace_admin_token: string };
    const headers = { authorization: `Bearer ${token}` };
    for (let i = 0; i < N; i++) {
      const r = await fetch(`${first.base}/v0/datasources?name=ds_${i}&mode=create&format=ndjson`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ schema: 'timestamp DateTime `json:$.timestamp`, id UInt64 `json:$.id`, name String `json:$.name`' }).toString(),
      });
      if (r.status !== 200) throw new Error(`create ds_${i}: ${r.status} ${await r.text()}`);
      const p = await fetch(`${first.base}/v0/pipes`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({
          name: `pipe_${i}`,
          nodes: [{ name: `pipe_${i}_0`, sql: `%\nSELECT count() c FROM ds_${i} WHERE id > {{ UInt64(min_id, 0) }}`, type: 'endpoint' }],
        }),
      });
      if (p.status !== 200) throw new Error(`create pipe_${i}: ${p.status} ${await p.text()}`);
    }
    await first.stop();
    const full: number[] = [];
    const fullCpu: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const s = await start(dir);
      full.push(s.seconds);
      fullCpu.push(s.cpu);
      await s.stop();
      console.log(`${N} data sources and ${N} pipes, start ${i + 1}: ${s.seconds.toFixed(2)} s, CPU ${s.cpu.toFixed(2)} s (load ${loadAverage()})`);
    }
    console.log(
      `median of ${RUNS}: empty ${median(empty).toFixed(2)} s (CPU ${median(emptyCpu).toFixed(2)} s); ` +
        `${N} data sources and pipes ${median(full).toFixed(2)} s (CPU ${median(fullCpu).toFixed(2)} s)`,
    );
    console.log('targets (issue 15):');
    console.log(`  npm start to ready ≤ 2 s, empty data dir: ${median(empty).toFixed(2)} s — ${median(empty) <= 2 ? 'holds' : 'does not hold'}`);
    console.log(`  npm start to ready ≤ 2 s, ${N} data sources and pipes: ${median(full).toFixed(2)} s — ${median(full) <= 2 ? 'holds' : 'does not hold'}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
