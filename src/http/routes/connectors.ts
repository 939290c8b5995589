/**
 * Connections for sinks (`/v0/connectors`, ADMIN only; credentials are write-only) and the
 * integration endpoints that tell a user what to allow in their cloud account:
 * `/v0/integrations/s3/policies/trust-policy`, `.../write-access-policy?bucket=`,
 * `/v0/integrations/s3/settings` (with the workspace's own, stable external id) and
 * `/v0/datasources-bigquery-credentials`.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { bodyLimit, named, pathParams } from '../route-docs.js';
import { connectionJson } from '../../domain/connection-service.js';
import { badRequest, notFound, PipitError } from '../../basics/errors.js';
import { authenticateAdmin } from '../auth.js';
import { hasBody, isJson, queryParams, readBody } from '../body.js';
import { checkUrl } from './url-fetch.js';
import { parseUserJson } from '../../basics/input-limits.js';

/** Arguments from the query string and a form or JSON body. */
async function args(req: FastifyRequest): Promise<Record<string, string>> {
  const out = queryParams(req);
  if (!hasBody(req)) return out;
  const body = await readBody(req);
  if (isJson(req)) {
    const j = parseUserJson(body.toString('utf8'), 'The request body should be a JSON object');
    if (!j || typeof j !== 'object' || Array.isArray(j)) throw badRequest('The request body should be a JSON object');
    for (const [k, v] of Object.entries(j)) if (v !== null && v !== undefined) out[k] = String(v);
  } else {
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) out[k] = v;
  }
  return out;
}

/** Routes on one connection. */
type ConnectorRoute = { Params: { id: string } };

export function connectorRoutes(s: Services): FastifyPluginAsync {
  return async (app) => {
    bodyLimit(app, 64 * 1024);
    const admin = (req: FastifyRequest) => authenticateAdmin(s, req);
    const json = async (auth: Awaited<ReturnType<typeof admin>>, c: Parameters<typeof connectionJson>[0]) =>
      connectionJson(
        c,
        (await s.sinks.usersOf(auth.workspace, c.id)).map((p) => ({ id: p.id, name: p.name })),
      );

    app.get('/v0/connectors', async (req) => {
      const auth = await admin(req);
      const service = queryParams(req).service;
      const list = (await s.connections.list(auth.workspace)).filter((c) => !service || c.service === service);
      return { connectors: await Promise.all(list.map((c) => json(auth, c))) };
    });

    app.post('/v0/connectors', async (req) => {
      const auth = await admin(req);
      const a = await args(req);
      // Object storage endpoints are outside addresses, as url= imports are.
      for (const k of ['s3_endpoint', 'gcs_endpoint', 'endpoint']) {
        if (a[k]) {
          try {
            await checkUrl(a[k], s.config.allowPrivateUrls);
          } catch (err) {
            if (err instanceof PipitError) throw badRequest(`Invalid endpoint "${a[k]}": it must be an http(s) URL of a public address`);
            throw err;
          }
        }
      }
      return json(auth, await s.connections.create(auth.workspace, a));
    });

    app.get<ConnectorRoute>(
      '/v0/connectors/:id',
      named(null, { summary: 'A connection', params: pathParams({ id: 'Connection name or id' }) }),
      async (req) => {
        const auth = await admin(req);
        return json(auth, await s.connections.get(auth.workspace, req.params.id));
      },
    );

    app.delete<ConnectorRoute>(
      '/v0/connectors/:id',
      named(null, { summary: 'Delete a connection no sink uses', params: pathParams({ id: 'Connection name or id' }) }),
      async (req, reply) => {
        const auth = await admin(req);
        const c = await s.connections.get(auth.workspace, req.params.id);
        await s.connections.delete(
          auth.workspace,
          c.id,
          (await s.sinks.usersOf(auth.workspace, c.id)).map((p) => p.name),
        );
        return reply.code(204).send();
      },
    );

    const awsAccount = () => {
      if (!s.config.awsAccountId) throw notFound('S3 integration not supported in your region');
      return s.config.awsAccountId;
    };

    app.get('/v0/integrations/s3/policies/trust-policy', async (req) => {
      const auth = await admin(req);
      return {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'sts:AssumeRole',
            Principal: { AWS: `arn:aws:iam::${awsAccount()}:root` },
            Condition: { StringEquals: { 'sts:ExternalId': s.connections.externalId(auth.workspace) } },
          },
        ],
      };
    });

    app.get('/v0/integrations/s3/policies/write-access-policy', async (req) => {
      await admin(req);
      const bucket = queryParams(req).bucket || '<bucket>';
      if (bucket !== '<bucket>' && !/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(bucket)) throw badRequest(`Invalid bucket name "${bucket}"`);
      return {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['s3:GetBucketLocation', 's3:ListBucket'], Resource: `arn:aws:s3:::${bucket}` },
          { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:PutObjectAcl'], Resource: `arn:aws:s3:::${bucket}/*` },
        ],
      };
    });

    app.get('/v0/integrations/s3/settings', async (req) => {
      const auth = await admin(req);
      return { principal: `arn:aws:iam::${awsAccount()}:root`, external_id: s.connections.externalId(auth.workspace) };
    });

    app.get('/v0/datasources-bigquery-credentials', async (req) => {
      await admin(req);
      if (!s.config.gcpServiceAccount) throw new PipitError('unavailable', 'Feature not enabled in your region');
      return { account: s.config.gcpServiceAccount };
    });
  };
}
