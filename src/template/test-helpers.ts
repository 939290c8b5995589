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

/** The TemplateError message a render fails with (throws if it does not fail that way). */
export function err(body: string, params: Record<string, ParamValue> = {}, opts: RenderOptions = {}): string {
  try {
    render('%' + body, params, opts);
  } catch (e) {
    if (e instanceof TemplateError) return e.message;
    throw e;
  }
  throw new Error(`expected a TemplateError rendering ${JSON.stringify(body)}`);
}

/** The TemplateError itself. */
export function errObj(body: string, params: Record<string, ParamValue> = {}, opts: RenderOptions = {}): TemplateError {
  try {
    render('%' + body, params, opts);
  } catch (e) {
    if (e instanceof TemplateError) return e;
    throw e;
  }
  throw new Error(`expected a TemplateError rendering ${JSON.stringify(body)}`);
}

/** The CustomTemplateError a render fails with. */
export function custom(body: string, params: Record<string, ParamValue> = {}, opts: RenderOptions = {}): CustomTemplateError {
  try {
    render('%' + body, params, opts);
  } catch (e) {
    if (e instanceof CustomTemplateError) return e;
    throw e;
  }
  throw new Error(`expected a CustomTemplateError rendering ${JSON.stringify(body)}`);
}

export const SYN = 'Template Syntax Error: ';
