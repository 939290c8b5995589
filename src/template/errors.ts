/**
 * Errors of the template language.
 *
 * - TemplateError: what the user sees (HTTP 400). Its message is the full user message, e.g.
 *   "Template Syntax Error: Error validating 'abc' to type Int32".
 * - CustomTemplateError: raised by error()/custom_error(); the caller answers with `status` and `body`.
 * - PyError (internal): a Python exception raised while evaluating a template. Templates can catch it
 *   with {% try %}...{% except %}; whatever escapes is turned into a TemplateError by the renderer.
 * - LimitError (internal): a resource cap was hit. Never catchable by a template.
 */

export const DOCS_BASE = 'https://docs.tinybird.co';
export const TEMPLATE_DOCS = `${DOCS_BASE}/cli/advanced-templates.html`;
export const SYNTAX_PREFIX = 'Template Syntax Error: ';

export class TemplateError extends Error {
  /** Link to the documentation of the failing construct (the reference's `documentation` field). */
  readonly documentation: string;
  constructor(message: string, documentation: string = TEMPLATE_DOCS) {
    super(message);
    this.name = 'TemplateError';
    this.documentation = documentation;
  }
}

export class CustomTemplateError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
    this.name = 'CustomTemplateError';
  }
}

/** Python exception classes known to templates (child → parent). */
export const EXC_PARENT: Record<string, string | null> = {
  BaseException: null,
  Exception: 'BaseException',
  ArithmeticError: 'Exception',
  ZeroDivisionError: 'ArithmeticError',
  OverflowError: 'ArithmeticError',
  AssertionError: 'Exception',
  AttributeError: 'Exception',
  LookupError: 'Exception',
  IndexError: 'LookupError',
  KeyError: 'LookupError',
  NameError: 'Exception',
  UnboundLocalError: 'NameError',
  RuntimeError: 'Exception',
  RecursionError: 'RuntimeError',
  NotImplementedError: 'RuntimeError',
  StopIteration: 'Exception',
  TypeError: 'Exception',
  ValueError: 'Exception',
  UnicodeError: 'ValueError',
  SQLTemplateException: 'ValueError',
  SQLTemplateCustomError: 'Exception',
};

/**
 * Python's builtin exception classes, as templates see them (builtins and reserved names): the
 * hierarchy above without Tinybird's own two, then those templates can only name.
 */
export const PY_EXCEPTIONS: readonly string[] = [
  ...Object.keys(EXC_PARENT).filter((n) => n !== 'SQLTemplateException' && n !== 'SQLTemplateCustomError'),
  'BaseExceptionGroup',
  'BlockingIOError',
  'BrokenPipeError',
  'BufferError',
  'BytesWarning',
  'ChildProcessError',
  'ConnectionAbortedError',
  'ConnectionError',
  'ConnectionRefusedError',
  'ConnectionResetError',
  'DeprecationWarning',
  'EOFError',
  'EncodingWarning',
  'EnvironmentError',
  'ExceptionGroup',
  'FileExistsError',
  'FileNotFoundError',
  'FloatingPointError',
  'FutureWarning',
  'GeneratorExit',
  'IOError',
  'ImportError',
  'ImportWarning',
  'IndentationError',
  'InterruptedError',
  'IsADirectoryError',
  'KeyboardInterrupt',
  'MemoryError',
  'ModuleNotFoundError',
  'NotADirectoryError',
  'OSError',
  'PendingDeprecationWarning',
  'PermissionError',
  'ProcessLookupError',
  'ReferenceError',
  'ResourceWarning',
  'RuntimeWarning',
  'StopAsyncIteration',
  'SyntaxError',
  'SyntaxWarning',
  'SystemError',
  'SystemExit',
  'TabError',
  'TimeoutError',
  'UnicodeDecodeError',
  'UnicodeEncodeError',
  'UnicodeTranslateError',
  'UnicodeWarning',
  'UserWarning',
  'Warning',
];

export function excIsSubclass(cls: string, parent: string): boolean {
  let c: string | null | undefined = cls;
  while (c) {
    if (c === parent) return true;
    c = EXC_PARENT[c];
  }
  return false;
}

export class PyError extends Error {
  /** Set on SQLTemplateException: anchor-less documentation path, e.g. '/cli/advanced-templates.html#column'. */
  documentation?: string;
  /** error(): a ValueError raised on purpose by the template author. */
  fromErrorFn?: boolean;
  /** custom_error(): HTTP status and body. */
  status?: number;
  body?: unknown;
  constructor(
    readonly pyType: string,
    readonly msg: string,
  ) {
    super(msg);
    this.name = pyType;
  }
}

export class LimitError extends Error {}

/** An exception object bound by `except E as e`. */
export class PyException {
  constructor(readonly err: PyError) {}
}

export const pyErr = (type: string, msg: string) => new PyError(type, msg);
export const typeError = (msg: string) => new PyError('TypeError', msg);
export const valueError = (msg: string) => new PyError('ValueError', msg);

export function sqlTemplateError(msg: string, documentation = '/cli/advanced-templates.html'): PyError {
  const e = new PyError('SQLTemplateException', msg);
  e.documentation = documentation;
  return e;
}

/** Parse-time error (tornado ParseError, SecurityException, SyntaxError). */
export class ParseFailure extends Error {
  constructor(
    message: string,
    readonly line = 0,
  ) {
    super(message);
  }
}
