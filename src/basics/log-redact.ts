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

/** Destinations with lines not yet written, flushed when the process exits (see BufferedLog). */
const pending = new Set<BufferedLog>();
let exitHook = false;

/**
 * The server's log destination on stdout: redacted lines (as redactingStream), written in batches.
 * A busy server logs a line per request; written one by one that is a `write` system call per
 * request, and with a reader on the other end (journald, a container runtime, a pipe into a
 * shipper) one wake-up of that reader per request, on the same cores as the server.
 *
 * Lines are held at most `maxDelayMs` (then written by a timer that does not keep the process
 * alive) or until `maxBytes` are held. A line of level warn or above (`{"level":40` and up, or
 * any line not in that shape) is written at once, after the lines held before it, so errors and
 * the last words of a failing process are never waiting in memory. `flush()` writes what is
 * held; it runs when the process exits (every way but a kill or a crash of native code: the
 * `exit` event, which `process.exit` after a graceful shutdown also emits, writes synchronously
 * to a file, a pipe or a terminal on Linux) and when the HTTP application closes. What a kill -9
 * loses is at most the info lines of the last `maxDelayMs`.
 */
export class BufferedLog implements LogDestination {
  private lines: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dest: LogDestination = process.stdout,
    private readonly maxDelayMs = 100,
    private readonly maxBytes = 64 * 1024,
  ) {
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => {
        for (const b of pending) b.flush();
      });
    }
  }

  write(line: string): void {
    const text = redactSecrets(line);
    this.lines.push(text);
    this.bytes += text.length;
    // `{"level":NN`: pino's levels are 10 (trace) to 60 (fatal), warn is 40: only 1x, 2x and 3x wait.
    const tens = line.charCodeAt(9);
    if (this.bytes >= this.maxBytes || tens < 49 /* '1' */ || tens > 51 /* '3' */ || !line.startsWith('{"level":')) {
      this.flush();
      return;
    }
    if (this.timer === undefined) {
      pending.add(this);
      this.timer = setTimeout(this.flush, this.maxDelayMs);
      this.timer.unref();
    }
  }

  /** Writes every line held, in order, in one write. */
  readonly flush = (): void => {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    pending.delete(this);
    if (this.lines.length === 0) return;
    const text = this.lines.length === 1 ? this.lines[0] : this.lines.join('');
    this.lines = [];
    this.bytes = 0;
    this.dest.write(text);
  };
}
