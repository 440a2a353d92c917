import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createLogger, createMetrics, createRedis } from '@atelier/kit';
import { createGatewayApp } from '../src/app';
import { createMesh } from '../src/clients/mesh';
import { gatewayConfigSchema } from '../src/config';

/**
 * gateway/openapi.json is the reviewed contract (the console's typed client is generated from it).
 * Any route change must show up there: regenerate it with `npm run openapi`.
 */
describe('committed OpenAPI document', () => {
  it('equals the document the gateway serves at /api/v1/openapi.json', async () => {
    const config = gatewayConfigSchema.parse({
      REDIS_URL: 'redis://127.0.0.1:1',
      BILLING_ADDR: 'a:1',
      IMAGER_ADDR: 'a:1',
      TRAINER_ADDR: 'a:1',
      INFERENCER_ADDR: 'a:1',
    });
    const redis = createRedis(config.REDIS_URL);
    const mesh = createMesh(config);
    const { app } = createGatewayApp({
      config,
      mesh,
      redis,
      logger: createLogger('test', 'silent'),
      metrics: createMetrics('test'),
    });
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/openapi.json`);
      expect(res.status).toBe(200);
      const served: unknown = await res.json();
      const committed: unknown = JSON.parse(readFileSync(path.join(__dirname, '..', 'openapi.json'), 'utf8'));
      // On failure: run `npm run openapi` and commit gateway/openapi.json.
      expect(served).toEqual(committed);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      mesh.close();
      redis.disconnect();
    }
  });
});
