/**
 * Temporary port to the template language while src/template is being written: plain SQL only.
 * Replaced by `../template/index.js` as soon as it lands.
 */
import { badRequest } from '../domain/errors.js';

export type ParamValue = string | string[] | number | boolean | null | unknown[] | Record<string, unknown>;
export interface RenderResult { sql: string; maxThreads?: number; cacheTtl?: number; tables: string[]; warnings: string[] }
export const isTemplate = (sql: string) => sql.trimStart().startsWith('%');
export function render(sql: string, _params: Record<string, ParamValue>, _opts: { testMode?: boolean } = {}): RenderResult {
  if (isTemplate(sql)) throw badRequest('Template queries (starting with %) are not supported by this server yet; send plain SQL');
  return { sql, tables: [], warnings: [] };
}
export const templateParams = (_sql: string): Array<Record<string, unknown>> => [];
