// Datafiles of a Tinybird project (reference §11): parse and print `.datasource`, `.pipe`,
// `.token` and `.incl`. Pure: no I/O (includes are read through a callback). The printers of
// stored resources (pipe and token records) are in ./records.ts.
export * from './model.js';
export { parseDatafile, parseDatasource, parsePipe, parseToken, parseInclude, kindOf, splitArgs, substitute, ENGINE_KEYS } from './parse.js';
export type { ParseOptions, ParseResult } from './parse.js';
export { printDatasource, printPipe, printToken, printInclude, printDatafile, printDatasourceFile, quoted } from './print.js';
export type { DatasourceFileInput } from './print.js';
