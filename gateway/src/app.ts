import http from 'node:http';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Counter, Histogram } from 'prom-client';
import {
  DependenciesDown,
  Errors,
  createLogger,
  createMetrics,
  createRedis,
  dependencyReadiness,
  listen,
  startMetricsServer,
} from '@atelier/kit';
import { createMesh } from './clients/mesh';
import type { GatewayConfig } from './config';
import type { GatewayDeps } from './deps';
import { sendProblem } from './errors/problem';
import { authenticate } from './middleware/auth';
import { verifyUtf8 } from './middleware/text';
import { limiterSettings, rateLimiter } from './middleware/rate-limit';
import { requestContext } from './middleware/request-context';
import { apiDocument } from './openapi/document';
import { serveConsole } from './routes/console';
import { mountRoutes } from './routes/define';
import { v1Routes } from './routes/v1';
import { sdapiRoutes } from './routes/sdapi';
import { a1111Errors } from './routes/sdapi/a1111.mappers';

/** Body-parser failures as the problems the contract names. */
function bodyError(err: unknown): unknown {
  const type = (err as { type?: string }).type;
  if (type === 'entity.parse.failed') return Errors.invalid(`malformed JSON: ${(err as Error).message}`);
  if (type === 'entity.too.large')
    return Errors.payloadTooLarge(`the body is larger than ${(err as { limit: number }).limit} bytes`);
  if (type === 'encoding.unsupported' || type === 'charset.unsupported')
    return Errors.unsupportedMediaType((err as Error).message);
  if (type === 'request.aborted') return Errors.invalid('the client closed the request');
  return err;
}

export function createGatewayApp(deps: GatewayDeps) {
  const { config, mesh, redis, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const requests = new Counter({
    name: 'atelier_http_requests_total',
    help: 'HTTP requests by route template, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [metrics.registry],
  });
  const duration = new Histogram({
    name: 'atelier_http_request_duration_seconds',
    help: 'HTTP request duration by route template',
    labelNames: ['route', 'method'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [metrics.registry],
  });
  app.use(requestContext(logger, { requests, duration }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Also atelier_dependency_up{dependency}, refreshed at every scrape of /metrics.
  const readiness = dependencyReadiness(metrics, { ...mesh.healthChecks, redis: () => redis.ping() });
  app.get('/readyz', async (_req, res) => {
    const failing = await readiness().then(
      () => [],
      (err: unknown) => (err instanceof DependenciesDown ? err.failing : ['unknown']),
    );
    res
      .status(failing.length ? 503 : 200)
      .json(failing.length ? { status: 'unavailable', failing } : { status: 'ready' });
  });

  const document = apiDocument();
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json(document);
  });
  // Where Stripe Checkout sends the browser back when no storefront of the customer's own is
  // configured (CHECKOUT_SUCCESS_URL / CHECKOUT_CANCEL_URL): a plain page, never payment state —
  // the webhook decides that.
  const checkoutPage = (title: string, text: string) => (_req: Request, res: Response) => {
    res
      .type('html')
      .send(
        `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p></body></html>`,
      );
  };
  app.get(
    '/checkout/success',
    checkoutPage('Thank you', 'Your payment is being confirmed. You can close this page.'),
  );
  app.get(
    '/checkout/cancel',
    checkoutPage('Payment canceled', 'Nothing was charged. You can close this page.'),
  );

  const swaggerDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  app.use('/docs/assets', express.static(swaggerDir, { index: false }));
  app.get('/docs', (_req, res) => {
    res.type('html').send(`<!doctype html><html><head><meta charset="utf-8"><title>Atelier API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head><body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: '/api/v1/openapi.json', dom_id: '#ui' });</script></body></html>`);
  });

  serveConsole(app, config.CONSOLE_DIR);

  const jsonParser = express.json({
    limit: config.JSON_BODY_LIMIT_BYTES,
    type: () => true,
    strict: true,
    verify: verifyUtf8,
  });
  const json = (req: Request, res: Response, next: NextFunction) => {
    const length = Number(req.get('content-length') ?? 0);
    const chunked = req.get('transfer-encoding') !== undefined;
    if ((length > 0 || chunked) && !req.is('application/json')) {
      return next(Errors.unsupportedMediaType('send the body as application/json'));
    }
    if (length === 0 && !chunked) {
      req.body = {};
      return next();
    }
    jsonParser(req, res, (err?: unknown) => next(err ? bodyError(err) : undefined));
  };
  // Webhook bodies: a training's logs alone exceed 1 MB in real runs. Verified before parsing.
  const rawParser = express.raw({ type: () => true, limit: config.WEBHOOK_BODY_LIMIT_BYTES });
  const raw = (req: Request, res: Response, next: NextFunction) =>
    rawParser(req, res, (err?: unknown) => {
      if (err) return next(bodyError(err));
      req.rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      next();
    });

  const auth = authenticate(mesh, redis, {
    cacheMs: config.AUTH_CACHE_MS,
    failuresPerWindow: config.AUTH_FAILURES_PER_WINDOW,
    windowMs: config.AUTH_FAILURE_WINDOW_MS,
  });
  deps.accountChanged = (accountId) => auth.forgetAccount(accountId);
  const router = express.Router({ strict: false });
  mountRoutes(router, [...v1Routes, ...sdapiRoutes], deps, {
    auth,
    rateLimit: rateLimiter(redis, limiterSettings(config)),
    json,
    raw,
  });
  app.use(router);

  app.use((req: Request, _res: Response, next: NextFunction) =>
    next(Errors.notFound('route', `${req.method} ${req.path}`)),
  );
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) =>
    a1111Errors(bodyError(err), req, res, next),
  );
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) =>
    sendProblem(req, res, bodyError(err)),
  );
  return { app, document };
}

export interface RunningGateway {
  url: string;
  port: number;
  /** /metrics is served here, never on the public port. */
  metricsPort: number;
  deps: GatewayDeps;
  stop(): Promise<void>;
}

export async function startGateway(config: GatewayConfig): Promise<RunningGateway> {
  const logger = createLogger('gateway', config.LOG_LEVEL);
  const metrics = createMetrics('gateway');
  const deps: GatewayDeps = {
    config,
    logger,
    metrics,
    mesh: createMesh(config, metrics),
    redis: createRedis(config.REDIS_URL),
  };
  const { app } = createGatewayApp(deps);
  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  let port: number;
  let metricsServer: Awaited<ReturnType<typeof startMetricsServer>>;
  try {
    port = await listen(server, config.HTTP_PORT, config.HTTP_HOST);
    metricsServer = await startMetricsServer(metrics.registry, config.METRICS_PORT, config.HTTP_HOST);
  } catch (err) {
    // A failed bind leaves nothing open behind it: the caller may retry on other ports.
    server.close();
    deps.mesh.close();
    deps.redis.disconnect();
    throw err;
  }
  const url = `http://${config.HTTP_HOST}:${port}`;
  logger.info({ url, metrics_port: metricsServer.port }, 'listening');
  let stopped: Promise<void> | undefined;
  return {
    url,
    port,
    metricsPort: metricsServer.port,
    deps,
    stop: () =>
      (stopped ??= (async () => {
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            server.closeAllConnections();
            resolve();
          }, config.SHUTDOWN_GRACE_MS);
          force.unref();
          server.close(() => {
            clearTimeout(force);
            resolve();
          });
          server.closeIdleConnections();
        });
        await metricsServer.close();
        deps.mesh.close();
        await deps.redis.quit().catch(() => deps.redis.disconnect());
      })()),
  };
}
