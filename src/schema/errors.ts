// SchemaError: the one error type of the schema modules. Its message is the exact user-facing
// Tinybird text; the http layer turns it into a 400 `{"error": message}`.
// Everything under src/schema throws only this (never plain Error) for bad input.

export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}
