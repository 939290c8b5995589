/**
 * CPU time of a process's threads by group (ms, exact: `/proc/<pid>/task/<tid>/schedstat`): its
 * main thread; ClickHouse's own threads (named by the engine: ThreadPool, QueryPullPipeEx,
 * Formatter...); and Node's other threads (libuv's workers, on which chDB runs each query's own
 * part, and V8's platform threads: Node 20 leaves them all named `node`). Shared by the endpoint
 * benches (bench/endpoint.ts, bench/endpoint-ab.ts).
 */
import fs from 'node:fs';

export interface ThreadCpu {
  main: number;
  engine: number;
  node: number;
}
export type ThreadTimes = Map<number, { ms: number; group: keyof ThreadCpu }>;

export function threadTimes(pid: number): ThreadTimes {
  const out: ThreadTimes = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`).map(Number)) {
    try {
      const ms = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
      const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.set(tid, { ms, group: tid === pid ? 'main' : comm === 'node' ? 'node' : 'engine' });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** CPU ms per group between two snapshots (a thread started meanwhile counts from zero; one that ended is lost). */
export function cpuBetween(a: ThreadTimes, b: ThreadTimes): ThreadCpu {
  const out: ThreadCpu = { main: 0, engine: 0, node: 0 };
  for (const [tid, t] of b) out[t.group] += t.ms - (a.get(tid)?.ms ?? 0);
  return out;
}

export const totalOf = (c: ThreadCpu) => c.main + c.engine + c.node;

/** The whole process's CPU ms (every thread's). */
export const processCpuMs = (pid: number) => [...threadTimes(pid).values()].reduce((a, t) => a + t.ms, 0);
