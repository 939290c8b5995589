/**
 * Writes that land whole or not at all, also across a `kill -9` (each is an intent of the journal):
 *
 * - **Staged append** (copy pipes in append mode, populates): the rows go first into a private
 *   staging table (numbered `__n` in order), then are published into the target in chunks, each
 *   one `INSERT ... SELECT ... WHERE __n IN chunk` squashed into a single block with the
 *   deduplication token `<intent>-<chunk>`. Published chunks are recorded in the intent. A crash
 *   while staging leaves the target untouched (the staging table is dropped on start); a crash
 *   while publishing is finished on start by publishing the rest again: the chunk that was in
 *   flight is deduplicated by the target (and, with `deduplicate_blocks_in_dependent_materialized_views`,
 *   by every materialized view it feeds) and written once. ATTACH/MOVE PARTITION would be atomic
 *   per partition but does not fire the target's materialized views, so a copy into a table that
 *   feeds others would not cascade: publishing is an INSERT so that it does.
 * - **Shadow replace** (mode=replace, copy pipes in replace mode): the new rows go into a shadow
 *   table that is swapped in with `EXCHANGE TABLES` (or, with a replace condition, the matching
 *   rows are deleted and re-inserted from the shadow). Until the swap, an interruption is rolled
 *   back (the shadow is dropped); after it, forward. Whether the swap happened is read from the
 *   engine: the target's name then points at the shadow's table UUID.
 */
import type { DatasourceRecord, Intent, ReplaceIntentData, Workspace } from '../catalog/catalog.js';
import type { Engine, QueryOptions } from '../engine/engine.js';
import { ident, name, sql, trusted } from '../engine/sql.js';
import { dropAllSql, physicalNames } from '../ingest/physical.js';
import { newResourceId } from '../basics/ids.js';
import type { Journal } from './journal.js';

/** Bytes a published chunk holds at most (as one block in memory), and its row bounds. */
const CHUNK_BYTES = 256 * 1024 * 1024;
const MIN_CHUNK_ROWS = 8192;
const MAX_CHUNK_ROWS = 1_048_576;
const ONE_BLOCK = 'min_insert_block_size_rows = 1000000000000000, min_insert_block_size_bytes = 1000000000000000, max_threads = 1';

/** The engine UUID of a table, or null when it does not exist. */
export async function tableUuid(engine: Engine, database: string, table: string): Promise<string | null> {
  const r = await engine.rows<{ uuid: string }>(sql`SELECT toString(uuid) AS uuid FROM system.tables WHERE database = ${database} AND name = ${table}`.text);
  return r[0]?.uuid ?? null;
}

async function dropQuietly(engine: Engine, sql: string[]): Promise<void> {
  for (const s of sql) await engine.exec(s).catch(() => undefined);
}

/**
 * Appends the result of `select` (whose columns are `cols`) to `target`, all or nothing. Staging
 * runs with `opts` (query id and abort signal: cancelling stops it and nothing is written);
 * publishing is not interrupted by a cancel. Returns the rows appended.
 */
export async function stagedAppend(
  engine: Engine,
  journal: Journal,
  ws: Workspace,
  target: DatasourceRecord,
  cols: string[],
  select: string,
  opts: QueryOptions & { job?: string; checkpoint: string },
): Promise<number> {
  await journal.checkpoint(`${opts.checkpoint}:begin`);
  const staging = newResourceId();
  const intent = await journal.begin(ws, 'append', {
    database: ws.database,
    target: target.id,
    staging,
    cols,
    phase: 'stage',
    job: opts.job,
  });
  const st = name(ws.database, staging);
  const q = cols.map(ident);
  const typeOf = (c: string) => target.columns.find((x) => x.name === c)?.type ?? 'String';
  try {
    await engine.exec(sql`CREATE TABLE ${st} (__n UInt64, ${cols.map((c) => sql`${ident(c)} ${trusted(typeOf(c))}`)}) ENGINE = MergeTree ORDER BY __n`.text);
    await engine.exec(sql`INSERT INTO ${st} (__n, ${q}) SELECT rowNumberInAllBlocks(), ${q} FROM (${trusted(select)})`.text, {
      queryId: opts.queryId,
      params: opts.params,
      signal: opts.signal,
    });
    if (opts.signal?.aborted) throw new Error('The job was cancelled');
    const r = await engine.rows<{ rows: string; bytes: string }>(
      sql`SELECT sum(rows) AS rows, sum(data_uncompressed_bytes) AS bytes FROM system.parts WHERE database = ${ws.database} AND table = ${staging} AND active`
        .text,
    );
    const rows = Number(r[0]?.rows ?? 0);
    const perRow = rows ? Number(r[0]?.bytes ?? 0) / rows : 1;
    const chunkRows = Math.max(MIN_CHUNK_ROWS, Math.min(MAX_CHUNK_ROWS, Math.floor(CHUNK_BYTES / Math.max(1, perRow))));
    await journal.checkpoint(`${opts.checkpoint}:loaded`);
    // The point of no return, passed only while this copy still holds the job (see Journal.update).
    await journal.update(intent, { phase: 'publish', rows, chunkRows, published: 0 }, opts.job);
  } catch (err) {
    await dropQuietly(engine, [sql`DROP TABLE IF EXISTS ${st} SYNC`.text]);
    await journal.end(intent).catch(() => undefined);
    throw err;
  }
  // Point of no return: from here the append is finished, now or on the next start.
  await journal.checkpoint(`${opts.checkpoint}:staged`);
  try {
    await publish(engine, journal, intent, opts.checkpoint);
  } catch {
    try {
      await publish(engine, journal, intent, opts.checkpoint);
    } catch (err) {
      throw new Error(`The rows are staged but could not all be appended yet (${(err as Error).message}); the append is completed when the server restarts`);
    }
  }
  return intent.data.rows ?? 0;
}

/** Publishes the remaining chunks of a staged append, drops the staging table, ends the intent. */
async function publish(engine: Engine, journal: Journal, intent: Intent<'append'>, checkpoint = 'append'): Promise<void> {
  const d = intent.data;
  const st = name(d.database, d.staging);
  const target = name(physicalNames(d.database, d.target).table);
  const q = d.cols.map(ident);
  const size = d.chunkRows ?? MAX_CHUNK_ROWS;
  if (await tableUuid(engine, d.database, d.staging)) {
    for (let k = d.published ?? 0; k * size < (d.rows ?? 0); k++) {
      await engine.exec(
        sql`INSERT INTO ${target} (${q}) SELECT ${q} FROM ${st} WHERE __n >= ${k * size} AND __n < ${(k + 1) * size} ORDER BY __n SETTINGS insert_deduplication_token = ${`${intent.id}-${k}`}, deduplicate_blocks_in_dependent_materialized_views = 1, ${trusted(ONE_BLOCK)}`
          .text,
      );
      await journal.update(intent, { published: k + 1 });
      await journal.checkpoint(`${checkpoint}:published`);
    }
    await engine.exec(sql`DROP TABLE IF EXISTS ${st} SYNC`.text);
  }
  await journal.end(intent);
}

/** Finishes (publish phase) or undoes (stage phase) an interrupted staged append. */
export async function recoverAppend(engine: Engine, journal: Journal, intent: Intent<'append'>): Promise<'forward' | 'back'> {
  const d = intent.data;
  if (d.phase === 'publish' && (await tableUuid(engine, d.database, d.target))) {
    await publish(engine, journal, intent);
    return 'forward';
  }
  await engine.exec(sql`DROP TABLE IF EXISTS ${name(d.database, d.staging)} SYNC`.text);
  await journal.end(intent);
  return 'back';
}

/** Starts a shadow replace: records the intent, then creates the shadow with `createSql`. */
export async function beginReplace(
  engine: Engine,
  journal: Journal,
  ws: Workspace,
  target: DatasourceRecord,
  createSql: (shadow: DatasourceRecord) => string[],
  opts: { condition?: string; token: string; quarantine: boolean; job?: string },
): Promise<{ intent: Intent<'replace'>; shadow: DatasourceRecord }> {
  const shadow: DatasourceRecord = { ...target, id: newResourceId() };
  const intent = await journal.begin(ws, 'replace', {
    database: ws.database,
    target: target.id,
    shadow: shadow.id,
    condition: opts.condition ?? null,
    token: opts.token,
    quarantine: opts.quarantine,
    phase: 'load',
    job: opts.job,
  });
  try {
    for (const s of createSql(shadow)) await engine.exec(s);
  } catch (err) {
    await abandonReplace(engine, journal, intent);
    throw err;
  }
  return { intent, shadow };
}

/** Undoes a replace that has not swapped yet (its shadow is loading or failed to load). */
export async function abandonReplace(engine: Engine, journal: Journal, intent: Intent<'replace'>): Promise<void> {
  const d = intent.data;
  await dropQuietly(engine, dropAllSql({ id: d.shadow } as DatasourceRecord, d.database));
  await journal.end(intent).catch(() => undefined);
}

/**
 * Swaps a loaded shadow in: past this call's first statement the replace is finished (now, or by
 * recovery on the next start). On failure the intent stays for the next start unless a retry here
 * settles it. A copy that lost its job's claim drops the shadow instead (nothing is replaced).
 */
export async function swapIn(engine: Engine, journal: Journal, intent: Intent<'replace'>): Promise<void> {
  const d = intent.data;
  try {
    // The point of no return, passed only while this copy still holds the job (see Journal.update).
    await journal.update(intent, { phase: 'swap', shadowUuid: await tableUuid(engine, d.database, d.shadow) }, d.job);
  } catch (err) {
    await abandonReplace(engine, journal, intent);
    throw err;
  }
  await journal.checkpoint('replace:loaded');
  const real = physicalNames(d.database, d.target);
  const tmp = physicalNames(d.database, d.shadow);
  try {
    if (d.condition) await replaceWhere(engine, d, d.condition, `${d.token}-replace`);
    else await engine.exec(sql`EXCHANGE TABLES ${name(real.table)} AND ${name(tmp.table)}`.text);
    await journal.checkpoint('replace:exchanged');
    if (d.quarantine) await moveQuarantine(engine, d);
    await dropQuietly(engine, dropAllSql({ id: d.shadow } as DatasourceRecord, d.database));
    await journal.end(intent);
  } catch (err) {
    // Settle it now if the engine lets us; otherwise the next start does.
    await recoverReplace(engine, journal, intent).catch(() => undefined);
    throw err;
  }
}

async function moveQuarantine(engine: Engine, d: ReplaceIntentData): Promise<void> {
  if (!(await tableUuid(engine, d.database, `${d.shadow}_quarantine`))) return;
  const real = physicalNames(d.database, d.target);
  const tmp = physicalNames(d.database, d.shadow);
  await engine.exec(
    sql`INSERT INTO ${name(real.quarantine)} SELECT * FROM ${name(tmp.quarantine)} SETTINGS insert_deduplication_token = ${`${d.token}-replace-q`}`.text,
  );
}

/** The rows of the target that match `condition` are replaced by the shadow's that do. */
async function replaceWhere(engine: Engine, d: ReplaceIntentData, condition: string, token: string): Promise<void> {
  const real = name(physicalNames(d.database, d.target).table);
  const tmp = name(physicalNames(d.database, d.shadow).table);
  await engine.exec(sql`ALTER TABLE ${real} DELETE WHERE ${trusted(condition)} SETTINGS mutations_sync = 2`.text);
  await engine.exec(sql`INSERT INTO ${real} SELECT * FROM ${tmp} WHERE ${trusted(condition)} SETTINGS insert_deduplication_token = ${token}`.text);
}

/**
 * Settles an interrupted replace: not swapped yet → the shadow is dropped (the target keeps its
 * rows); swapped (or, with a condition, possibly half-swapped) → the remaining steps run again.
 */
export async function recoverReplace(engine: Engine, journal: Journal, intent: Intent<'replace'>): Promise<'forward' | 'back'> {
  const d = intent.data;
  let outcome: 'forward' | 'back' = 'back';
  const shadowExists = !!(await tableUuid(engine, d.database, d.shadow));
  const targetUuid = await tableUuid(engine, d.database, d.target);
  if (d.phase === 'swap' && targetUuid) {
    if (d.condition) {
      // The delete may have run: redo delete + insert (a fresh token: the interrupted insert's
      // blocks were deleted again and must not be taken for duplicates).
      if (shadowExists) {
        await replaceWhere(engine, d, d.condition, `${d.token}-replace-${Date.now()}`);
        if (d.quarantine) await moveQuarantine(engine, d);
      }
      outcome = 'forward';
    } else if (targetUuid === d.shadowUuid) {
      if (d.quarantine) await moveQuarantine(engine, d);
      outcome = 'forward';
    }
  }
  await dropQuietly(engine, dropAllSql({ id: d.shadow } as DatasourceRecord, d.database));
  await journal.end(intent);
  return outcome;
}
