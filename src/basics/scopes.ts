/** Token scope vocabulary shared by the services (src/domain/access.ts) and the datafile printer. */

/** Scope types that name a resource (a data source or a pipe). */
export const RESOURCE_SCOPES: ReadonlySet<string> = new Set(['DATASOURCES:READ', 'DATASOURCES:APPEND', 'DATASOURCES:DROP', 'PIPES:READ', 'PIPES:DROP']);
