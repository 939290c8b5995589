/**
 * Deleting one object from S3-compatible storage (AWS S3, GCS's XML API with HMAC keys, S3
 * servers): a `DELETE` signed with AWS Signature Version 4. The engine writes and reads object
 * storage itself but can not delete, and a connection check must not leave its object behind.
 */
import crypto from 'node:crypto';

const EMPTY_SHA256 = crypto.createHash('sha256').update('').digest('hex');

const hmac = (key: crypto.BinaryLike, data: string) => crypto.createHmac('sha256', key).update(data).digest();

/** The headers of a SigV4-signed request without a body (`x-amz-date`, `x-amz-content-sha256`, `authorization`). */
export function signV4(opts: { method: string; url: string; region: string; keyId: string; secret: string; now?: Date }): Record<string, string> {
  const u = new URL(opts.url);
  const amzDate = (opts.now ?? new Date())
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const canonicalHeaders = `host:${u.host}\nx-amz-content-sha256:${EMPTY_SHA256}\nx-amz-date:${amzDate}\n`;
  const signedHeaders = 'host;x-amz-content-sha256;x-amz-date';
  // The URL parser already percent-encodes the path; object keys here use a strict character set.
  const canonicalRequest = [opts.method, u.pathname || '/', '', canonicalHeaders, signedHeaders, EMPTY_SHA256].join('\n');
  const scope = `${day}/${opts.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, crypto.createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${opts.secret}`, day), opts.region), 's3'), 'aws4_request');
  const signature = crypto.createHmac('sha256', key).update(toSign).digest('hex');
  return {
    'x-amz-date': amzDate,
    'x-amz-content-sha256': EMPTY_SHA256,
    authorization: `AWS4-HMAC-SHA256 Credential=${opts.keyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

/** Deletes the object at `url`; true when the storage answered 2xx (a missing object is a success too). */
export async function deleteObject(opts: { url: string; region: string; keyId: string; secret: string; timeoutMs?: number }): Promise<boolean> {
  const headers = signV4({ method: 'DELETE', ...opts });
  const res = await fetch(opts.url, { method: 'DELETE', headers, redirect: 'manual', signal: AbortSignal.timeout(opts.timeoutMs ?? 5000) });
  await res.arrayBuffer().catch(() => undefined);
  return res.status >= 200 && res.status < 300;
}
