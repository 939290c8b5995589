/**
 * The server's keys: token signing (static token values are HMAC-signed), and the encryption of
 * workspace variables and connection credentials. With PIPIT_SECRET_KEY (or _FILE) they are
 * derived from that one master key with HKDF-SHA256, so every copy of the server given the same
 * master key signs and decrypts alike. Without it (embedded mode) each key lives in its own file in
 * the data directory, created on first start. A data directory that already has its key files
 * keeps using them also once a master key is configured, so existing tokens and secrets stay valid.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadKeyFile } from '../basics/disk.js';

export interface Keys {
  tokenSigning: Buffer;
  variables: Buffer;
  connections: Buffer;
}

/** Key files of the embedded mode, by purpose. */
const FILES: Record<keyof Keys, string> = { tokenSigning: 'secret.key', variables: 'variables.key', connections: 'connections.key' };

/** A 32-byte key for `purpose` derived from the master key (HKDF-SHA256; the purpose is the info). */
export function deriveKey(master: Buffer, purpose: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', master, Buffer.from('pipit'), Buffer.from(purpose), 32));
}

/**
 * The keys for this copy: derived from `master` when given (a key file already in `dataDir` wins,
 * when `dataDir` is not shared), else read from (or created in) `dataDir`.
 */
export function loadKeys(master: Buffer | null, dataDir: string | null): Keys {
  const out = {} as Keys;
  for (const purpose of Object.keys(FILES) as Array<keyof Keys>) {
    const file = dataDir ? path.join(dataDir, FILES[purpose]) : null;
    if (master && !(file && fs.existsSync(file))) out[purpose] = deriveKey(master, purpose);
    else if (file) out[purpose] = loadKeyFile(file);
    else throw new Error('PIPIT_SECRET_KEY is required');
  }
  return out;
}
