/**
 * `pipit dev [dir]`: a local loop. Uses the server at --host/TB_HOST/.tinyb if one answers;
 * otherwise starts the embedded server in this process (data in `<dir>/.pipit/data`, port
 * --port or 7181). Pushes the folder (with --force), then watches it and pushes again whenever a
 * datafile changes; only what changed is applied. `--once` pushes and stops (no watching).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CliError, DEFAULT_HOST, findTinyb } from './client.js';
import { doPush, type parseArgs, type Io } from './main.js';

type Args = ReturnType<typeof parseArgs>;

async function alive(host: string): Promise<boolean> {
  try {
    return (await fetch(`${host}/v0/health`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

export async function dev(dir: string, args: Args, io: Io): Promise<number> {
  if (!fs.existsSync(dir)) throw new CliError(`${dir}: no such folder`, 2);
  const flags: Record<string, string | true> = { ...args.flags, force: true };
  const explicit = typeof flags.host === 'string' || io.env.TB_HOST || findTinyb(dir);
  const port = typeof flags.port === 'string' ? Number(flags.port) : 7181;
  let host = typeof flags.host === 'string' ? flags.host : (io.env.TB_HOST ?? (explicit ? undefined : `http://127.0.0.1:${port}`));
  let close: (() => Promise<void>) | null = null;
  if (!host || !(await alive(host))) {
    if (explicit && host) throw new CliError(`No server answers at ${host}`, 2);
    const [{ createApp }, { loadConfig }] = await Promise.all([import('../app.js'), import('../config/config.js')]);
    const config = loadConfig(io.env, { dataDir: path.join(dir, '.pipit', 'data'), port, host: '127.0.0.1', logLevel: 'warn' });
    const app = await createApp(config);
    await app.http.listen({ port, host: '127.0.0.1' });
    const addr = app.http.server.address();
    host = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port}`;
    (config as { apiHost: string }).apiHost = host;
    flags.token = app.services.localTokens.workspace_admin_token;
    close = () => app.close();
    io.out(`Started Pipit on ${host} (data in ${config.dataDir})\n`);
  }
  flags.host = host ?? DEFAULT_HOST;
  const devArgs: Args = { positional: [], flags };
  const pushOnce = async () => {
    try {
      return await doPush(devArgs, io, [dir], false);
    } catch (e) {
      io.err(`Error: ${(e as Error).message}\n`);
      return 1;
    }
  };
  const first = await pushOnce();
  if (flags.once === true) {
    await close?.();
    return first;
  }
  io.out(`Watching ${dir} for changes (Ctrl-C to stop)\n`);
  let timer: NodeJS.Timeout | null = null;
  let running = Promise.resolve();
  const watcher = fs.watch(dir, { recursive: true }, (_event, file) => {
    if (!file || !/\.(datasource|pipe|token|incl)$/i.test(String(file)) || String(file).includes('.pipit')) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      running = running.then(async () => {
        io.out(`Changed: ${file}\n`);
        await pushOnce();
        io.out('Watching for changes\n');
      });
    }, 200);
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  watcher.close();
  await running;
  await close?.();
  return 0;
}
