/**
 * Starts Pipit: reads the config from the environment, builds the app, listens, and shuts down
 * gracefully on SIGTERM/SIGINT (in-flight requests finish, buffered events reach the engine).
 */
import path from 'node:path';
import { createApp } from './app.js';
import { loadConfig } from './config/config.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const app = await createApp(config);
  await app.http.listen({ port: config.port, host: config.host });
  const addr = app.http.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  // A wildcard bind is reachable on loopback, where the console picks up the admin token by itself.
  const consoleHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const t = app.services.localTokens;
  const tokens = !app.services.catalog.shared
    ? `Admin token (default workspace): ${t.workspace_admin_token}\n` +
      `All local tokens: curl http://${config.host}:${port}/tokens  (also in ${path.join(config.dataDir, 'tokens.json')})\n`
    : app.services.createdDefault
      ? // A shared catalog: the first copy to start prints the tokens, once; keep them somewhere safe.
        `Created the default workspace in the shared catalog. These tokens are printed once:\n` +
        `  Admin token (default workspace): ${t.workspace_admin_token}\n` +
        `  User's admin token: ${t.admin_token}\n` +
        `  User token (manages workspaces): ${t.user_token}\n`
      : 'Catalog: shared (PIPIT_CATALOG_URL); the default workspace exists (its tokens were printed by the first copy)\n';
  process.stdout.write(
    `Pipit listening on http://${config.host}:${port}\n` + `Console: http://${consoleHost}:${port}/console/\n` + `Data directory: ${config.dataDir}\n` + tokens,
  );
  // Last resort, and only a log line: an error that no stream, promise or handler took is a bug
  // (every stream the server runs is joined with pipeline or has its listener), but one request
  // must not end the process for everyone. Tests build the app without this, so such a bug still
  // fails them as an unhandled error.
  process.on('uncaughtException', (err, origin) => app.http.log.fatal({ err, origin }, 'uncaught exception (a bug): logged, the server goes on'));
  process.on('unhandledRejection', (reason) => app.http.log.error({ err: reason }, 'unhandled promise rejection (a bug): logged, the server goes on'));
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.http.log.info({ signal }, 'shutting down');
    try {
      await app.close();
      process.exit(0);
    } catch (err) {
      app.http.log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`Pipit failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
