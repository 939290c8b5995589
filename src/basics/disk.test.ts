import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EngineError } from '../engine/engine.js';
import { toHttpError } from '../http/errors.js';
import { asDiskFull, DiskFullError, isDiskFull, loadKeyFile, writeFileAtomic } from './disk.js';

describe('a full disk is one retryable condition', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const engineFull = new EngineError(243, 'NOT_ENOUGH_SPACE', 'Cannot reserve 1.00 MiB, not enough space');
  const pgFull = Object.assign(new Error('could not extend file "base/5/16449": No space left on device'), { code: '53100' });

  it('recognises the file system, engine and catalog forms', () => {
    for (const e of [enospc, engineFull, pgFull, new EngineError(75, 'CANNOT_WRITE_TO_FILE_DESCRIPTOR', 'Cannot write to file'), new DiskFullError()]) {
      expect(isDiskFull(e)).toBe(true);
      expect(asDiskFull(e)).toBeInstanceOf(DiskFullError);
    }
  });

  it('does not take a user error quoting the words for one', () => {
    const userThrow = new EngineError(395, 'FUNCTION_THROW_IF_VALUE_IS_NON_ZERO', 'No space left on device (NOT_ENOUGH_SPACE)');
    expect(isDiskFull(userThrow)).toBe(false);
    expect(toHttpError(userThrow).status).toBe(400);
    expect(isDiskFull(Object.assign(new Error('No space left on device'), { code: 'ERR_SOMETHING' }))).toBe(false);
  });

  it('answers 503 with Retry-After, never 400 or 500', () => {
    for (const e of [enospc, engineFull, pgFull]) {
      const h = toHttpError(e);
      expect(h.status).toBe(503);
      expect(h.headers?.['retry-after']).toMatch(/^\d+$/);
      expect(h.body.error).toMatch(/disk space/);
    }
  });
});

describe('files a full disk can not tear', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-disk-'));

  it('writeFileAtomic replaces whole or leaves the old content', () => {
    const f = path.join(dir, 'a.json');
    writeFileAtomic(f, 'one');
    writeFileAtomic(f, 'two');
    expect(fs.readFileSync(f, 'utf8')).toBe('two');
    expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('loadKeyFile creates a key once, replaces an empty file (an older version torn by a full disk), refuses garbage', () => {
    const f = path.join(dir, 'secret.key');
    const k = loadKeyFile(f);
    expect(k.length).toBe(32);
    expect(loadKeyFile(f).equals(k)).toBe(true);
    fs.writeFileSync(f, '');
    expect(loadKeyFile(f).length).toBe(32);
    fs.writeFileSync(f, 'abc');
    expect(() => loadKeyFile(f)).toThrow(/damaged/);
  });
});
