/**
 * A full disk is a server-side condition, never the user's fault: every store (engine, catalog,
 * write-ahead log, spooled uploads, key files) turns its own "no space" failure into one
 * DiskFullError at its boundary, which the HTTP layer answers with a retryable 503 and a
 * Retry-After header (text/plain on the Events API, JSON elsewhere). Also: the free-space
 * probe behind the engine's reserve, and the atomic file writes that a full disk can not tear.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PipitError } from './errors.js';

/** Seconds a client is asked to wait before retrying a write refused for lack of disk space. */
export const DISK_FULL_RETRY_AFTER = 30;

export const DISK_FULL_MESSAGE = 'The server is out of disk space, please retry later';

/** No space left where the server keeps its data: 503 with Retry-After; the request may be retried as is. */
export class DiskFullError extends PipitError {
  readonly retryAfter = DISK_FULL_RETRY_AFTER;
  constructor(
    message = DISK_FULL_MESSAGE,
    /** What failed, for the log (never shown to the client). */
    readonly detail?: string,
  ) {
    super('unavailable', message);
    this.name = 'DiskFullError';
  }
}

/** errno codes of a file system that can not take more bytes. */
const NODE_CODES = new Set(['ENOSPC', 'EDQUOT']);
/** ClickHouse error types of a write the disk refused. */
const ENGINE_TYPES = new Set(['NOT_ENOUGH_SPACE', 'CANNOT_WRITE_TO_FILE_DESCRIPTOR', 'CANNOT_FSYNC']);
/** ClickHouse codes: NOT_ENOUGH_SPACE (243), CANNOT_WRITE_TO_FILE_DESCRIPTOR (75). */
const ENGINE_CODES = new Set([243, 75]);
/** PostgreSQL SQLSTATE disk_full (PGlite raises it when a relation or its log can not grow). */
const PG_DISK_FULL = '53100';
const MESSAGE = /No space left on device|not enough space|Disk quota exceeded|errno: 28\b|ENOSPC|EDQUOT/i;

/**
 * Whether an error means the disk is full, whatever raised it: a Node file system call, the
 * engine (parsed `{chCode, chType}` or a raw chDB error), or the catalog (SQLSTATE 53100).
 */
export function isDiskFull(err: unknown): boolean {
  if (err instanceof DiskFullError) return true;
  if (err === null || typeof err !== 'object') return false;
  const e = err as { code?: unknown; chCode?: unknown; chType?: unknown; clickhouseCode?: unknown; message?: unknown };
  if (typeof e.code === 'string' && (NODE_CODES.has(e.code) || e.code === PG_DISK_FULL)) return true;
  if (typeof e.chType === 'string' && ENGINE_TYPES.has(e.chType)) return true;
  const ch = typeof e.chCode === 'number' && e.chCode !== 0 ? e.chCode : typeof e.clickhouseCode === 'number' ? e.clickhouseCode : undefined;
  if (ch !== undefined) return ENGINE_CODES.has(ch);
  // Only an error that carries no code of its own is judged by its text (an engine error's text
  // may quote user values).
  if (e.code !== undefined) return false;
  return typeof e.message === 'string' && MESSAGE.test(e.message);
}

/** The error as a DiskFullError when it means a full disk, else unchanged. */
export function asDiskFull(err: unknown): unknown {
  if (err instanceof DiskFullError || !isDiskFull(err)) return err;
  return new DiskFullError(DISK_FULL_MESSAGE, err instanceof Error ? err.message : String(err));
}

/** Bytes an unprivileged writer may still use on the file system holding `dir` (Infinity when unknown). */
export function freeBytes(dir: string): number {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return Infinity;
  }
}

/**
 * Writes a file whole or not at all: a temporary file beside it, flushed, then renamed over it.
 * On a full disk the old content stays (a plain writeFile truncates first and may leave it empty).
 */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'wx', mode);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw asDiskFull(err);
  }
}

/**
 * A 32-byte key kept in `<file>` as hex, created on first use. The key is written atomically,
 * so a full disk at first start leaves no file rather than an empty key; an empty file left by
 * an older version (no value can have been sealed or signed with a key that was never written)
 * is replaced, and any other content that is not a key stops the start with a clear message.
 */
export function loadKeyFile(file: string): Buffer {
  let text: string | null = null;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text === null || text === '') {
    writeFileAtomic(file, crypto.randomBytes(32).toString('hex'));
    text = fs.readFileSync(file, 'utf8').trim();
  }
  if (!/^[0-9a-f]{64}$/i.test(text))
    throw new Error(`${path.basename(file)} in the data directory is damaged (expected 64 hex digits); restore it from a backup`);
  return Buffer.from(text, 'hex');
}
