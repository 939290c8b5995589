/**
 * What the HTTP layer is given: the services the composition root (src/app.ts) builds. Routes
 * depend on this interface, never on app.ts, so http stays above the services and below the root.
 */
import type { Config } from '../config/config.js';
import type { Engine } from '../engine/engine.js';
import type { Catalog } from '../catalog/catalog.js';
import type { AccessService, LocalTokens } from '../domain/access.js';
import type { DatasourceService } from '../domain/datasource-service.js';
import type { IngestService } from '../ingest/ingest-service.js';
import type { ImportService } from '../domain/import-service.js';
import type { EventBuffer } from '../ingest/event-buffer.js';
import type { JobService } from '../jobs/job-service.js';
import type { DeleteService } from '../domain/delete-service.js';
import type { AlterService } from '../domain/alter-service.js';
import type { QueryService } from '../domain/query-service.js';
import type { PipeService } from '../domain/pipe-service.js';
import type { VariableService } from '../domain/variable-service.js';
import type { MaterializeService } from '../domain/materialize-service.js';
import type { DeployService } from '../domain/deploy-service.js';
import type { DatasourceWriteService } from '../domain/datasource-write-service.js';
import type { TokenService } from '../domain/token-service.js';
import type { CopyService } from '../domain/copy-service.js';
import type { ConnectionService } from '../domain/connection-service.js';
import type { SinkService } from '../domain/sink-service.js';
import type { Scheduler } from '../domain/scheduler.js';
import type { ResultCache } from './query-output.js';
import type { Observability } from '../observability/observability.js';

export interface Services {
  config: Config;
  engine: Engine;
  catalog: Catalog;
  access: AccessService;
  localTokens: LocalTokens;
  /** The Tokens API's static tokens and JWTs (it keeps localTokens in step). */
  tokens: TokenService;
  /** Whether this start created the default workspace (with a shared catalog, only the first copy does). */
  createdDefault: boolean;
  datasources: DatasourceService;
  ingest: IngestService;
  imports: ImportService;
  /** Writes of the Data Sources API: create, append, replace, from a body or a URL. */
  writes: DatasourceWriteService;
  events: EventBuffer;
  jobs: JobService;
  deletes: DeleteService;
  alters: AlterService;
  queries: QueryService;
  pipes: PipeService;
  variables: VariableService;
  materializations: MaterializeService;
  /** Plans and applies pipes (the API's POST /v0/pipes, node appends; the CLI's push goes through them). */
  deploy: DeployService;
  copies: CopyService;
  connections: ConnectionService;
  sinks: SinkService;
  scheduler: Scheduler;
  /** The scheduler's and the rate limits' clock; tests replace `now` to drive them without waiting. */
  clock: { now: () => Date };
  /** Results of endpoints whose templates ask for cache_ttl(). */
  resultCache: ResultCache;
  /** Service data sources (`tinybird.*`) and Prometheus metrics. */
  observability: Observability;
  /** Up to 10 rows of a table expression as Tinybird's JSON preview. */
  preview(from: string): Promise<unknown>;
}
