/**
 * Encryption at rest for secrets kept in the catalog (workspace variables, connection
 * credentials): AES-256-GCM under a key held in its own file beside the catalog, never in it.
 * The additional data binds a sealed value to where it belongs (workspace and name), so a value
 * copied to another record does not open.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { loadKeyFile } from '../basics/disk.js';

export class SecretBox {
  private constructor(readonly key: Buffer) {}

  /** The box whose key is `<dir>/<file>` (created with mode 0600 on first use). */
  static open(dir: string, file: string): SecretBox {
    return new SecretBox(loadKeyFile(path.join(dir, file)));
  }

  /** `v1.<iv>.<tag>.<ciphertext>` (base64url). */
  seal(value: string, aad: string): string {
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([c.update(value, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  open(stored: string, aad: string): string {
    const [v, iv, tag, ct] = stored.split('.');
    if (v !== 'v1') throw new Error('unknown encryption version of a sealed value');
    const d = crypto.createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}
