/**
 * Composition root: builds the engine, the catalog and the domain services from a Config, and
 * tears them down in order. Nothing here listens on a port (see main.ts).
 */
import fs from 'node:fs';
import { seedFromTemplate } from './catalog/pglite-template.js';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config/config.js';
import { AccessService } from './domain/access.js';
import { loadKeys } from './domain/keys.js';
import { AlterService } from './domain/alter-service.js';
import { DatasourceService, type EngineDamage } from './domain/datasource-service.js';
import { DeleteService } from './domain/delete-service.js';
import { ImportService } from './domain/import-service.js';
import type { Engine } from './engine/engine.js';
import { internalSlotsFor, planLanes, threadpoolFor } from './engine/lanes.js';
import { buildHttp } from './http/server.js';
import { writeFileAtomic } from './basics/disk.js';
import { EventBuffer } from './ingest/event-buffer.js';
import { IngestService } from './ingest/ingest-service.js';
import { physicalNames } from './ingest/physical.js';
import { JobService } from './jobs/job-service.js';
import { QueryService } from './domain/query-service.js';
import { PipeService } from './domain/pipe-service.js';
import { VariableService } from './domain/variable-service.js';
import { MaterializeService } from './domain/materialize-service.js';
import { CopyService } from './domain/copy-service.js';
import { Scheduler } from './domain/scheduler.js';
import { ConnectionService } from './domain/connection-service.js';
import { SinkService } from './domain/sink-service.js';
import { Auth } from './domain/access.js';
import { ResultCache } from './http/query-output.js';
import { keepIntents, recoverAfterCrash } from './domain/recovery.js';
import { Observability } from './observability/observability.js';
import { startMetricsServer } from './http/observability.js';
import { DeployService } from './domain/deploy-service.js';
import { DatasourceWriteService } from './domain/datasource-write-service.js';
import { fetchUrlData, writeJson } from './http/routes/datasources.js';
import { TokenService } from './domain/token-service.js';

import type { Services } from './http/services.js';

export type { Services };

export interface App {
  services: Services;
  http: FastifyInstance;
  /** Stops accepting requests, flushes buffered events, finishes jobs, closes the stores. */
  close(): Promise<void>;
}

/**
 * The engine the config names: a ClickHouse server (PIPIT_ENGINE_URL) or embedded chDB. Each is
 * loaded only when used, so a remote deployment never loads chDB's native library.
 */
async function openEngine(config: Config, lanes: { user: number; internal: number }): Promise<Engine & EngineDamage & { repairs: string[] }> {
  // One internal statement (a copy, a populate) may take half the budget, never all of it.
  const statementMaxMemory = Math.floor(config.engineMaxMemory / 2);
  if (config.engineUrl) {
    const { RemoteEngine } = await import('./engine/remote-engine.js');
    return RemoteEngine.open({
      url: config.engineUrl,
      username: config.engineUser,
      password: config.enginePassword,
      cluster: config.engineCluster,
      userSlots: lanes.user,
      internalSlots: lanes.internal,
      statementMaxMemory,
    });
  }
  const { EmbeddedEngine } = await import('./engine/embedded-engine.js');
  return new EmbeddedEngine(path.join(config.dataDir, 'engine'), {
    userSlots: lanes.user,
    internalSlots: lanes.internal,
    maxServerMemory: config.engineMaxMemory,
    uncompressedCache: config.engineUncompressedCache,
    statementMaxMemory,
    reserveBytes: config.diskReserveBytes,
  });
}

export async function createApp(config: Config): Promise<App> {
  fs.mkdirSync(config.dataDir, { recursive: true });
  const lanes = planLanes(config.threadpoolSize, config.engineSessions);
  // A new embedded catalog is copied from the install-time template on libuv's threads while the
  // engine loads on the main thread.
  const catalogDir = path.join(config.dataDir, 'catalog');
  const catalogSeeded = config.catalogUrl ? null : seedFromTemplate(catalogDir);
  catalogSeeded?.catch(() => undefined);
  const engine = await openEngine(config, lanes);
  const observability = new Observability(engine, { enabled: config.serviceDatasources, flushMs: config.serviceFlushMs }, (msg, extra) =>
    http.log.warn(extra ?? {}, msg),
  );
  // The service tables are made in the engine (libuv's threads) while the catalog opens (PGlite's
  // WASM, the main thread): a first start does both at once. Awaited below, before anything uses them.
  const observabilityReady = observability.init();
  observabilityReady.catch(() => undefined);
  // Connection errors of a shared catalog are logged (once the logger exists); the pool reconnects.
  let catalogError = (_err: Error): void => undefined;
  // Like the engine, each catalog is loaded only when used (PGlite's WASM, or node-postgres).
  const catalog = config.catalogUrl
    ? await (await import('./catalog/postgres-catalog.js')).openPostgresCatalog(config.catalogUrl, {
        // Each insert holds a lock connection (the write gate's lock across copies) while it runs or waits for an internal slot.
        lockPools: { insert: internalSlotsFor(lanes.internal, 'insert'), statement: internalSlotsFor(lanes.internal, 'statement') },
        onError: (err) => catalogError(err),
      })
    : await (await import('./catalog/pglite-catalog.js')).openPgliteCatalog(catalogDir, catalogSeeded ?? undefined);
  // Copies sharing the engine share its write gate: a populate's snapshot holds back every copy's inserts.
  if (catalog.shared)
    engine.gate.acrossCopies({
      shared: (fn, kind) => catalog.holding('writes', 'shared', fn, kind),
      exclusive: (fn) => catalog.holding('writes', 'exclusive', fn),
    });
  // With a shared catalog the data directory holds only this copy's files (WAL, temp): keys come from the master key.
  const keys = loadKeys(config.secretKey, config.catalogUrl ? null : config.dataDir);
  const access = await AccessService.open(catalog, keys.tokenSigning);
  const { created: createdDefault, ...localTokens } = await access.bootstrap();
  const startupWarnings: string[] = [...engine.repairs];
  try {
    // Atomic: a full disk keeps the previous file rather than leaving it empty, and does not stop the start.
    // Embedded mode only: copies sharing a catalog keep no tokens on their disks.
    if (!catalog.shared) writeFileAtomic(path.join(config.dataDir, 'tokens.json'), JSON.stringify(localTokens, null, 2) + '\n');
  } catch (err) {
    startupWarnings.push(`tokens.json could not be written: ${(err as Error).message}`);
  }
  // Before the SQL layer learns the engine's databases: `pipit_service` is one users may not name.
  await observabilityReady;
  const datasources = new DatasourceService(catalog, engine, observability);
  await datasources.ensureDatabase(access.defaultWorkspace);
  await datasources.ensureStagesDatabase();
  // What a full disk left behind: engine objects whose metadata was set aside come back from the catalog.
  for (const ws of await catalog.listWorkspaces()) {
    try {
      await datasources.ensureDatabase(ws);
      startupWarnings.push(...(await datasources.restore(ws, engine)));
    } catch (err) {
      // Still no room (the start goes on, writes answer 503): tried again at the next start.
      startupWarnings.push(`workspace ${ws.name}: engine objects could not be checked: ${(err as Error).message}`);
    }
  }
  const ingest = new IngestService(engine);
  const imports = new ImportService(engine, datasources, ingest, path.join(config.dataDir, 'tmp'));
  const jobs = new JobService(catalog, 2, { leaseMs: config.jobLeaseSeconds * 1000, pollMs: Math.min(2000, (config.jobLeaseSeconds * 1000) / 3) }, (err, msg) =>
    http.log.error({ err }, msg),
  );
  jobs.stopQueries = (id) => engine.kill(id);
  // Intents are held like jobs: the same copy name and lease.
  datasources.journal.owner = jobs.owner;
  datasources.journal.leaseMs = config.jobLeaseSeconds * 1000;
  const pipes = new PipeService(catalog, datasources);
  const variables = VariableService.open(catalog, keys.variables);
  const queries = new QueryService(catalog, engine, datasources, pipes, config, variables);
  await queries.init();
  const events = new EventBuffer(
    path.join(config.dataDir, 'wal'),
    engine,
    config.walFsync,
    (msg, extra) => http.log.error(extra ?? {}, msg),
    (target, ids, rows, bytes, elapsed, written) => observability.eventsInserted(target, ids, rows, bytes, elapsed, written),
  );
  jobs.listeners.add((job) => observability.job(job));
  jobs.created.add((job) => observability.jobCreated(job));

  const clock = { now: () => new Date() };
  const copies = new CopyService({ engine, datasources, pipes, queries, jobs }, () => clock.now(), {
    maxRows: config.copyMaxRows,
    maxActiveJobs: config.copyMaxActiveJobs,
  });
  const connections = ConnectionService.open(catalog, engine, keys.connections, config.sinkLocalRoot);
  const sinks = new SinkService({ engine, connections, pipes, queries, jobs }, () => clock.now());
  // Scheduled copies run with the authority of the workspace's admin token.
  const scheduler = new Scheduler(
    catalog,
    pipes,
    jobs,
    [copies, sinks],
    () => catalog.listWorkspaces(),
    async (ws) => {
      const admin = (await catalog.listTokens(ws.id)).find((t) => t.scopes.some((sc) => sc.type === 'ADMIN'));
      if (!admin) throw new Error(`workspace ${ws.name} has no admin token`);
      return new Auth(admin, ws);
    },
    (err, msg) => http.log.error({ err }, msg),
    () => clock.now(),
  );
  const materializations = new MaterializeService({ engine, datasources, pipes, queries, jobs });
  const deploy = new DeployService({ pipes, datasources, queries, materializations, copies, sinks });
  const services: Services = {
    config,
    engine,
    catalog,
    access,
    localTokens,
    tokens: new TokenService({ access, datasources, pipes, localTokens }),
    createdDefault,
    datasources,
    ingest,
    imports,
    writes: new DatasourceWriteService({
      datasources,
      imports,
      jobs,
      fetch: (url) => fetchUrlData(url, config.allowPrivateUrls),
      present: (auth, spec, r, importId) => writeJson({ datasources, pipes }, auth, spec, r, importId),
    }),
    events,
    jobs,
    queries,
    pipes,
    variables,
    copies,
    connections,
    sinks,
    scheduler,
    clock,
    materializations,
    deploy,
    resultCache: new ResultCache(),
    observability,
    deletes: new DeleteService(engine, jobs),
    alters: new AlterService(engine, datasources),
    async preview(from: string) {
      const r = await engine.query(`SELECT * FROM ${from} LIMIT 10`, { format: 'JSON' });
      return JSON.parse(r.bytes.toString('utf8'));
    },
  };
  const http = buildHttp(services);
  catalogError = (err) => http.log.warn({ err }, 'catalog connection error');
  for (const w of startupWarnings) http.log.warn(w);
  if (lanes.narrowed) {
    http.log.warn(
      { threadpool: lanes.threadpool, userSlots: lanes.user, internalSlots: lanes.internal },
      `libuv's thread pool (UV_THREADPOOL_SIZE=${lanes.threadpool}) is too small for PIPIT_ENGINE_SESSIONS=${config.engineSessions}: the engine runs ${lanes.user} user queries and ${lanes.internal} internal statements at once. Start with UV_THREADPOOL_SIZE=${threadpoolFor(config.engineSessions)} or more (npm start does).`,
    );
  }
  // Jobs whose copy is gone are failed (their kinds' handlers are registered by now, so what their
  // creation left held is released); changes a crash interrupted are rolled forward or back
  // (settling their jobs); orphan engine objects are dropped.
  await jobs.recover();
  await recoverAfterCrash(services, http.log);

  // Rows acknowledged by a previous process but not yet in the engine. The resolver also serves the
  // log's background retries, for workspaces made after the start too.
  let workspaces = new Map((await catalog.listWorkspaces()).map((w) => [w.id, w]));
  await events.recover(async (wsId, dsId, remake) => {
    if (!workspaces.has(wsId)) workspaces = new Map((await catalog.listWorkspaces()).map((w) => [w.id, w]));
    const ws = workspaces.get(wsId);
    if (!ws) return null;
    const ds = await datasources.find(ws, dsId);
    if (!ds) return null;
    if (remake) datasources.forgetStages(ds.id, true);
    await datasources.ensureStage(ws, ds, 'json');
    return physicalNames(ws.database, ds.id).jsonStage;
  });

  scheduler.start();
  observability.start({
    workspaces: () => catalog.listWorkspaces(),
    datasources: (ws) => datasources.list(ws),
    nameOfDatasource: (id) => datasources.nameOfId(id),
    walBacklog: () => events.backlogBytes,
    engineLanes: () => (engine as { laneStats?: { busy: Record<string, number>; queued: Record<string, number> } }).laneStats,
    admission: () => queries.admission.usage,
  });
  const metricsServer = config.metricsPort ? await startMetricsServer(observability, config.metricsPort) : null;
  jobs.start();
  // With a shared catalog: keep this copy's intents claimed, and settle those of copies that died.
  const stopIntents = catalog.shared ? keepIntents(services, http.log, Math.min(2000, (config.jobLeaseSeconds * 1000) / 3)) : async () => undefined;

  return {
    services,
    http,
    async close() {
      await scheduler.stop();
      // In-flight requests finish; a client that keeps an idle or stalled connection open does
      // not hold the shutdown for more than a few seconds.
      const force = setTimeout(() => http.server.closeAllConnections(), 5000);
      await http.close();
      clearTimeout(force);
      metricsServer?.close();
      await events.close();
      await jobs.close();
      await stopIntents();
      // The last records (the shutdown's own requests and jobs) go in before the engine closes.
      await observability.close();
      await engine.close();
      await catalog.close();
    },
  };
}
