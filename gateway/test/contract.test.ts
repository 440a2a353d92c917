import { createMetrics, createRedis, createLogger } from '@atelier/kit';
import type { Router } from 'express';
import { createGatewayApp } from '../src/app';
import { createMesh } from '../src/clients/mesh';
import { gatewayConfigSchema } from '../src/config';

/** Builds the app without connecting to anything: routes and the document only. */
function buildApp() {
  const config = gatewayConfigSchema.parse({
    REDIS_URL: 'redis://127.0.0.1:1',
    BILLING_ADDR: 'a:1',
    IMAGER_ADDR: 'a:1',
    TRAINER_ADDR: 'a:1',
    INFERENCER_ADDR: 'a:1',
  });
  const redis = createRedis(config.REDIS_URL);
  const mesh = createMesh(config);
  const built = createGatewayApp({
    config,
    mesh,
    redis,
    logger: createLogger('test', 'silent'),
    metrics: createMetrics('test'),
  });
  return { ...built, close: () => (mesh.close(), redis.disconnect()) };
}

type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };

function expressRoutes(router: Router): string[] {
  const out: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods))
          out.push(`${method.toUpperCase()} ${layer.route.path}`);
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((router as unknown as { stack: Layer[] }).stack);
  return out;
}

describe('OpenAPI document', () => {
  it('lists exactly the /api/v1 and /sdapi/v1 routes the gateway serves, and the reverse', () => {
    const { app, document, close } = buildApp();
    try {
      const served = expressRoutes((app as unknown as { router: Router }).router)
        .filter((r) => (r.includes(' /api/v1/') || r.includes(' /sdapi/v1/')) && !r.endsWith('/openapi.json'))
        .map((r) => r.replace(/:([a-z_]+)/g, '{$1}'))
        .sort();
      const documented = Object.entries(document.paths ?? {})
        .flatMap(([path, item]) =>
          Object.keys(item as object)
            .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
            .map((m) => `${m.toUpperCase()} ${path}`),
        )
        .sort();
      expect(served).toEqual(documented);
      // Every route the product specification names is there.
      for (const route of [
        'GET /api/v1/plans',
        'POST /api/v1/payments/create',
        'GET /api/v1/payments/{payment_id}',
        'POST /api/v1/payments/webhook',
        'POST /api/v1/versions/train/{payment_id}',
        'GET /api/v1/versions/info/{version_id}',
        'POST /api/v1/versions/{version_id}/cancel',
        'POST /api/v1/prompts/create/{version_id}',
        'GET /api/v1/prompts/{prompt_id}',
        'GET /api/v1/prompts/list/{version_id}',
        'POST /api/v1/prompts/{prompt_id}/cancel',
        'POST /api/v1/webhooks/replicate',
      ]) {
        expect(documented).toContain(route);
      }
    } finally {
      close();
    }
  });

  it('documents every path parameter, the Idempotency-Key of creating POSTs and the multipart upload', () => {
    const { document, close } = buildApp();
    close();
    type Op = {
      parameters?: Array<{ name: string; in: string }>;
      requestBody?: { content: Record<string, unknown> };
    };
    for (const [path, item] of Object.entries(document.paths ?? {})) {
      for (const op of Object.values(item as Record<string, Op>)) {
        const documented = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
        const inPath = [...path.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]);
        expect(documented.sort()).toEqual(inPath.sort());
      }
    }
    const train = document.paths?.['/api/v1/versions/train/{payment_id}']?.post as Op;
    expect(Object.keys(train.requestBody!.content)).toEqual(['multipart/form-data']);
    const headers = (op: Op) => (op.parameters ?? []).filter((p) => p.in === 'header').map((p) => p.name);
    expect(headers(train)).toContain('idempotency-key');
    expect(headers(document.paths?.['/api/v1/prompts/create/{version_id}']?.post as Op).sort()).toEqual([
      'idempotency-key',
      'prefer',
    ]);
    expect(headers(document.paths?.['/api/v1/payments/create']?.post as Op)).toEqual(['idempotency-key']);
  });

  it('is OpenAPI 3.1 with the problem schema and bearer security', () => {
    const { document, close } = buildApp();
    close();
    expect(document.openapi).toBe('3.1.0');
    expect(document.components?.schemas?.Problem).toBeDefined();
    expect(document.components?.securitySchemes?.apiKey).toEqual(
      expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    );
    const plans = document.paths?.['/api/v1/plans']?.get;
    expect(plans?.security).toEqual([]);
    expect(document.paths?.['/api/v1/payments/create']?.post?.security).toEqual([{ apiKey: [] }]);
  });
});
