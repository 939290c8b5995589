/**
 * Datafiles of stored resources: the `.pipe` of a pipe record and the `.token` of a token record,
 * as the API serves them (`GET /v0/pipes/:name.pipe`, `GET /v0/tokens/:name.token`).
 */
import type { PipeRecord, TokenRecord } from '../catalog/catalog.js';
import { RESOURCE_SCOPES } from '../basics/scopes.js';
import type { PipeNode, TokenScope } from './model.js';
import { printPipe, printToken } from './print.js';

const str = (v: unknown): string | undefined => (v === undefined || v === null || v === '' ? undefined : String(v));

/**
 * The `.pipe` datafile of a pipe. `names` maps Data Source ids to names: with it, materialized and
 * copy nodes say their target (DATASOURCE / TARGET_DATASOURCE), so the file can be pushed back.
 */
export function pipeDatafile(p: PipeRecord, names?: ReadonlyMap<string, string>): string {
  const nodes: PipeNode[] = p.nodes.map((n) => {
    const node: PipeNode = { name: n.name, sql: n.sql.trim(), engineParams: {}, export: {} };
    if (n.description) node.description = n.description;
    if (n.nodeType !== 'standard') node.type = n.nodeType;
    const d = n.data;
    if (n.nodeType === 'materialized' && names) node.datasource = names.get(String(d.materialized));
    if (n.nodeType === 'copy' && names) {
      node.targetDatasource = names.get(String(d.copy_target));
      if (str(d.cron)) node.copySchedule = String(d.cron);
      if (str(d.mode)) node.copyMode = String(d.mode);
    }
    if (n.nodeType === 'sink') {
      node.export = {
        connection_name: String(d.sink_connection_name),
        bucket_uri: String(d.sink_path),
        file_template: String(d.sink_file_template),
        format: String(d.sink_format),
        compression: String(d.sink_compression),
        write_strategy: String(d.sink_write_strategy),
      };
      if (d.cron) node.export.schedule = String(d.cron);
    }
    return node;
  });
  return printPipe({ kind: 'pipe', description: p.description ?? undefined, tokens: [], nodes });
}

/** The `.token` datafile (§11.4): DESCRIPTION, then SCOPE / RESOURCE / FILTER per scope. */
export function tokenDatafile(t: TokenRecord, names: ReadonlyMap<string, string>): string {
  const scopes: TokenScope[] = [];
  for (const sc of t.scopes) {
    const scoped = sc.resource && RESOURCE_SCOPES.has(sc.type);
    // A scope whose resource was dropped grants nothing: not printed.
    if (scoped && !names.has(sc.resource!)) continue;
    scopes.push({ type: sc.type, ...(scoped ? { resource: names.get(sc.resource!) } : {}), ...(sc.filter ? { filter: sc.filter } : {}) });
  }
  return printToken({ kind: 'token', description: t.description || undefined, scopes });
}
