/**
 * Helpers for the full-disk tests: a small tmpfs mounted as the data directory (needs root, as
 * on CI; otherwise the caller skips, loudly), a ballast file that fills it to a chosen number of
 * free bytes, and the real server (`src/main.ts`) as a child process, so it can be stopped with
 * SIGTERM or killed with SIGKILL and started again on the same directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Tmpfs {
  dir: string;
  unmount(): void;
}

/** Mounts a tmpfs of `sizeMb` MB on a new directory; returns why not when it can not. */
export function mountTmpfs(sizeMb: number): Tmpfs | { skip: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-full-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    const e = err as { stderr?: Buffer; message: string };
    return { skip: `cannot mount a ${sizeMb} MB tmpfs (${(e.stderr?.toString() || e.message).trim()}): run as root (CI does) to test a full disk` };
  }
  return {
    dir,
    unmount() {
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Grows (or shrinks) `<dir>/ballast` so that about `leaveBytes` stay free on the file system. */
export function fillTo(dir: string, leaveBytes: number): void {
  const ballast = path.join(dir, 'ballast');
  const current = fs.existsSync(ballast) ? fs.statSync(ballast).size : 0;
  const size = Math.max(0, current + freeBytes(dir) - leaveBytes);
  if (size < current) fs.truncateSync(ballast, size);
  else if (size > current) {
    try {
      execFileSync('fallocate', ['-l', String(size), ballast], { stdio: 'pipe' });
    } catch {
      // No fallocate: write zeros until the size (or the disk) is reached.
      const fd = fs.openSync(ballast, 'a');
      const chunk = Buffer.alloc(1024 * 1024);
      try {
        for (let n = current; n < size; n += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - n));
      } catch {
        /* full */
      } finally {
        fs.closeSync(fd);
      }
    }
  }
}

export function removeBallast(dir: string): void {
  fs.rmSync(path.join(dir, 'ballast'), { force: true });
}

export interface ChildServer {
  child: ChildProcess;
  url: string;
  token: string;
  /** Everything the process wrote to stderr and stdout (for failure messages). */
  output(): string;
  req(method: string, pathAndQuery: string, opts?: { body?: BodyInit; headers?: Record<string, string> }): Promise<Response>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

/**
 * Starts the server on `dataDir` (a free loopback port) and resolves once it listens: `src/main.ts`
 * through tsx, or with `args` another entry (`scripts/start.mjs`: the built bundle `npm start` runs).
 */
export async function startChild(dataDir: string, env: Record<string, string> = {}, args = ['--import', 'tsx', 'src/main.ts']): Promise<ChildServer> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, PIPIT_DATA_DIR: dataDir, PIPIT_PORT: '0', PIPIT_HOST: '127.0.0.1', PIPIT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 45 s:\n${out}`)), 45_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${out}`));
    });
  });
  const token = (JSON.parse(fs.readFileSync(path.join(dataDir, 'tokens.json'), 'utf8')) as { workspace_admin_token: string }).workspace_admin_token;
  return {
    child,
    url,
    token,
    output: () => out,
    req(method, p, opts = {}) {
      return fetch(url + p, { method, body: opts.body, headers: { authorization: `Bearer ${token}`, ...(opts.headers ?? {}) } });
    },
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
