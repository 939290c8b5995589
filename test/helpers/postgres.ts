/**
 * A throw-away PostgreSQL cluster for tests: initdb in a temporary directory and pg_ctl on a free
 * loopback port, stopped and removed afterwards. Uses Debian's postgresql-15 binaries; when the
 * process runs as root (CI does) the cluster runs as the `postgres` user, as PostgreSQL requires.
 *
 *   const pg = await startPostgres();
 *   ... PIPIT_CATALOG_URL = pg.url + '/' + await pg.createDatabase('t1') ...
 *   await pg.stop();
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { forgetLeftover, registerLeftover } from './leftovers.js';

export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:<port>` (no database: append `/<name>`). */
  url: string;
  port: number;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** The directory of the PostgreSQL server binaries, or null when none is installed. */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  const versions = fs
    .readdirSync(root)
    .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(root, versions[0], 'bin') : null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql-15)');
  const root = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-pg-'));
  const data = path.join(dir, 'data');
  if (root) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const run = (cmd: string, args: string[]) =>
    root
      ? execFileSync('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args], { stdio: 'pipe' })
      : execFileSync(path.join(bin, cmd), args, { stdio: 'pipe' });
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  // fsync off: a test cluster trades durability for speed; the socket lives in the temp directory.
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  run('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  // The postmaster's pid (first line of postmaster.pid): stopped by the run's teardown if this worker is not.
  const postmaster = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  registerLeftover({ pid: postmaster, signal: 'SIGQUIT', dir });
  const url = `postgres://postgres@127.0.0.1:${port}`;
  let stopped = false;
  return {
    url,
    port,
    async createDatabase(name: string) {
      const c = new pg.Client({ connectionString: `${url}/postgres` });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await c.end();
      }
      return `${url}/${name}`;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
        forgetLeftover(postmaster);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
