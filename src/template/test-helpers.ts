/** Helpers shared by the template unit tests. */
import { CustomTemplateError, render, TemplateError, type ParamValue, type RenderOptions } from './index.js';

/** Renders `body` as a template ('%' added) and returns the SQL. */
export function r(body: string, params: Record<string, ParamValue> = {}, opts: RenderOptions = {}): string {
  return render('%' + body, params, opts).sql;
}

/** Renders in test mode. */
export function t(body: string, params: Record<string, ParamValue> = {}, opts: RenderOptions = {}): string {
  return render('%' + body, params, { ...opts, testMode: true }).sql;
}

/** The error of class `type` a render fails with (throws if it does not fail that way). */
function failure<E extends Error>(type: new (...args: never[]) => E, body: string, params: Record<string, ParamValue>, opts: RenderOptions): E {
  try {
    render('%' + body, params, opts);
  } catch (e) {
    if (e instanceof type) return e;
    throw e;
  }
  throw new Error(`expected a ${type.name} rendering ${JSON.stringify(body)}`);
}

/** The TemplateError message a render fails with (throws if it does not fail that way). */
export function err(body: string, params: Record<string, ParamValue> = {}, opts: RenderOptions = {}): string {
  return failure(TemplateError, body, params, opts).message;
}

/** The TemplateError itself. */
export function errObj(body: string, params: Record<string, ParamValue> = {}, opts: RenderOptions = {}): TemplateError {
  return failure(TemplateError, body, params, opts);
}

/** The CustomTemplateError a render fails with. */
export function custom(body: string, params: Record<string, ParamValue> = {}, opts: RenderOptions = {}): CustomTemplateError {
  return failure(CustomTemplateError, body, params, opts);
}

export const SYN = 'Template Syntax Error: ';
