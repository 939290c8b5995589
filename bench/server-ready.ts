import type { ChildProcess } from 'node:child_process';

/**
 * Waits until a server child process answers `GET /tokens` on `port` and returns its workspace
 * admin token; throws with the end of its stderr when it exits first or does not answer in 120 s.
 */
export async function adminTokenWhenReady(child: ChildProcess, port: number, name = 'server'): Promise<string> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  for (const t0 = performance.now(); ; ) {
    if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${stderr.slice(-2000)}`);
    if (performance.now() - t0 > 120_000) throw new Error(`${name} did not answer in 120 s: ${stderr.slice(-2000)}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/tokens`);
      if (r.ok) return ((await r.json()) as { workspace_admin_token: string }).workspace_admin_token;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
