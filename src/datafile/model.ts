/**
 * The datafiles of a Tinybird project (reference §11) as plain data: what the parser returns and
 * the printers take. Line numbers (`line`, `sqlLine`) say where a thing was written, so the CLI
 * can point an error at the file and line; printers ignore them.
 */

export type NodeType = 'standard' | 'endpoint' | 'materialized' | 'copy' | 'sink';

/** `TOKEN "name" READ|APPEND` in a .datasource or .pipe. */
export interface TokenRef {
  name: string;
  permission: string;
  line?: number;
}

export interface DatasourceFile {
  kind: 'datasource';
  description?: string;
  /** The SCHEMA block as written (dedented), e.g. "`a` Int32 `json:$.a`,\n`b` String". */
  schema?: string;
  /** The INDEXES block, one index per line. */
  indexes?: string;
  engine?: string;
  /** ENGINE_* values by lower-case key without the prefix (`sorting_key`, `ttl`, `ver`, ...). */
  engineParams: Record<string, string>;
  tokens: TokenRef[];
  tags?: string;
  version?: number;
  sharedWith?: string[];
  /** Connector settings (KAFKA_*, IMPORT_*) by their lower-case key. */
  connector: Record<string, string>;
  line?: number;
  schemaLine?: number;
}

export interface PipeNode {
  name: string;
  description?: string;
  sql: string;
  type?: NodeType;
  /** Materialized: the target Data Source. */
  datasource?: string;
  /** Engine of an auto-created materialized target. */
  engine?: string;
  engineParams: Record<string, string>;
  /** Copy settings. */
  targetDatasource?: string;
  copySchedule?: string;
  copyMode?: string;
  /** EXPORT_* values by lower-case key without the prefix (`connection_name`, `bucket_uri`, ...). */
  export: Record<string, string>;
  tags?: string;
  line?: number;
  sqlLine?: number;
}

export interface PipeFile {
  kind: 'pipe';
  description?: string;
  tags?: string;
  tokens: TokenRef[];
  version?: number;
  nodes: PipeNode[];
}

export interface TokenScope {
  type: string;
  resource?: string;
  filter?: string;
}

export interface TokenFile {
  kind: 'token';
  description?: string;
  scopes: TokenScope[];
}

/** An `.incl` fragment: nodes and/or connection settings pasted by INCLUDE. */
export interface IncludeFile {
  kind: 'incl';
  nodes: PipeNode[];
  settings: Record<string, string>;
}

export type Datafile = DatasourceFile | PipeFile | TokenFile | IncludeFile;
export type DatafileKind = Datafile['kind'];

export interface DatafileWarning {
  file: string;
  line: number;
  message: string;
}

/** A problem in a datafile: the message names the file and line (`pipes/x.pipe:12: ...`). */
export class DatafileError extends Error {
  constructor(
    readonly reason: string,
    readonly file: string,
    readonly line: number,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${reason}`);
    this.name = 'DatafileError';
  }
}
