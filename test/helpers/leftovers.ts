/**
 * Processes the tests start outside their own process tree's lifetime (PostgreSQL clusters, engine
 * test servers) are registered here, so that the run's global teardown (test/global-setup.ts)
 * stops whatever a test file did not: a vitest worker ended with a signal runs no `exit` handler,
 * and a hook that timed out never reaches its `close()`. Without the run's directory
 * (PIPIT_TEST_RUN_DIR, set by the global setup) nothing is registered.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface Leftover {
  pid: number;
  /** The signal that stops it at once (a postmaster: SIGQUIT, its immediate shutdown). */
  signal: NodeJS.Signals;
  /** A directory to remove once it stopped. */
  dir?: string;
}

/** Registers a process to stop at the end of the run. */
export function registerLeftover(l: Leftover): void {
  const runDir = process.env.PIPIT_TEST_RUN_DIR;
  if (!runDir || !fs.existsSync(runDir)) return;
  fs.writeFileSync(path.join(runDir, `${l.pid}.json`), JSON.stringify(l));
}

/** A registered process stopped as planned: nothing to do at the end (its pid may be reused). */
export function forgetLeftover(pid: number | undefined): void {
  const runDir = process.env.PIPIT_TEST_RUN_DIR;
  if (runDir && pid) fs.rmSync(path.join(runDir, `${pid}.json`), { force: true });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Stops every registered process still running, removes their directories and the run's. */
export async function stopLeftovers(runDir: string): Promise<number> {
  let stopped = 0;
  for (const f of fs.existsSync(runDir) ? fs.readdirSync(runDir) : []) {
    const l = JSON.parse(fs.readFileSync(path.join(runDir, f), 'utf8')) as Leftover;
    if (alive(l.pid)) {
      stopped++;
      try {
        process.kill(l.pid, l.signal);
      } catch {
        // gone meanwhile
      }
      for (const end = Date.now() + 5000; alive(l.pid) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
      if (alive(l.pid)) process.kill(l.pid, 'SIGKILL');
    }
    if (l.dir) fs.rmSync(l.dir, { recursive: true, force: true });
  }
  fs.rmSync(runDir, { recursive: true, force: true });
  return stopped;
}
