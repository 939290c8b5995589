/**
 * Secrets never reach the log. Every line the logger writes passes `redactSecrets`, so a token
 * sent as `?token=`, in a path (`/v0/tokens/p.…`), in an `Authorization` header or quoted in an
 * error message is replaced whatever logged it and at whatever level.
 */

/**
 * `token=` query values; Pipit static tokens (`p.<payload>.<signature>`); JWTs (`eyJ….eyJ….…`);
 * `Bearer <value>`; and `"authorization": "<value>"` in logged header objects.
 */
const SECRET =
  /([?&;]token=)[^&#\s"\\]*|\bp\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*|(\bbearer\s+)[^\s"\\,]+|("authorization"\s*:\s*")[^"\\]*/gi;

export const REDACTED = '[REDACTED]';

export function redactSecrets(text: string): string {
  return text.replace(SECRET, (_m, q?: string, bearer?: string, header?: string) => (q ?? bearer ?? header ?? '') + REDACTED);
}

export interface LogDestination {
  write(line: string): unknown;
}

/** A logger destination that redacts each line, then writes it to `dest` (stdout by default). */
export function redactingStream(dest: LogDestination = process.stdout): LogDestination {
  return { write: (line: string) => dest.write(redactSecrets(line)) };
}
