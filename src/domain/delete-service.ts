/**
 * Deleting rows by condition (`POST /v0/datasources/:name/delete`): a dry run counts the rows; a
 * real run is a `delete_data` job that applies a synchronous mutation and reports rows_affected.
 * The job's payload (table, condition) is stored with it, so any copy of the server may run it.
 */
import type { DatasourceRecord, JobRecord, Workspace } from '../catalog/catalog.js';
import type { Engine } from '../engine/engine.js';
import { name, sql, trusted } from '../engine/sql.js';
import { EngineError } from '../engine/engine.js';
import { physicalNames, userFacingNames } from '../ingest/physical.js';
import type { Enqueue, JobService } from '../jobs/job-service.js';
import { checkExpression } from '../schema/index.js';
import { badRequest } from '../basics/errors.js';
import { isMergeTreeFamily } from '../schema/index.js';

/** What a delete_data job needs, stored with the job so any copy can run it. */
interface DeletePayload {
  table: string;
  datasourceId: string;
  datasourceName: string;
  condition: string;
}

export class DeleteService {
  private readonly enqueue: Enqueue<DeletePayload>;

  constructor(
    private readonly engine: Engine,
    jobs: JobService,
  ) {
    this.enqueue = jobs.register('delete_data', (_job, payload: DeletePayload) => this.run(payload));
  }

  async start(
    ws: Workspace,
    ds: DatasourceRecord,
    quarantine: boolean,
    condition: string,
    dryRun: boolean,
  ): Promise<JobRecord | { rows_to_be_deleted: number }> {
    if (!quarantine && !isMergeTreeFamily(ds.engine.engine)) {
      throw badRequest(`The data source engine (${ds.engine.engine}) is not supported. Deletion of data is supported for engines from the family MergeTree`);
    }
    checkExpression(condition, 'delete_condition');
    const n = physicalNames(ws.database, ds.id);
    const payload: DeletePayload = { table: quarantine ? n.quarantine : n.table, datasourceId: ds.id, datasourceName: ds.name, condition };
    const rows = await this.count(payload);
    if (dryRun) return { rows_to_be_deleted: rows };
    const shown = quarantine ? `${ds.name}_quarantine` : ds.name;
    return this.enqueue(ws, { datasource: { id: ds.id, name: shown }, delete_condition: condition }, payload);
  }

  /** The job, on whichever copy claims it: a synchronous mutation, and the rows it removed. */
  private async run(p: DeletePayload): Promise<Record<string, unknown>> {
    const cond = checkExpression(p.condition, 'delete_condition');
    const before = await this.count(p);
    await this.engine.exec(sql`ALTER TABLE ${name(p.table)} DELETE WHERE ${trusted(cond)} SETTINGS mutations_sync = 2`.text);
    const after = await this.count(p);
    return { rows_affected: before - after };
  }

  private async count(p: DeletePayload): Promise<number> {
    const cond = checkExpression(p.condition, 'delete_condition');
    try {
      const r = await this.engine.rows<{ c: string }>(sql`SELECT count() AS c FROM ${name(p.table)} WHERE ${trusted(cond)}`.text);
      return Number(r[0].c);
    } catch (err) {
      if (err instanceof EngineError)
        throw badRequest(
          `Failed to apply delete_condition='${p.condition}': ${userFacingNames(err.message, (id) => (id === p.datasourceId ? p.datasourceName : undefined))}`,
        );
      throw err;
    }
  }
}
