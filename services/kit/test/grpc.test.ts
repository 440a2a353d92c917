import {
  AppError,
  Errors,
  createGrpcClient,
  createHealthChecker,
  createLogger,
  createMetrics,
  currentContext,
  implement,
  loadConfig,
  startGrpcServer,
  type CallContext,
  type RunningGrpcServer,
} from '@atelier/kit';
import { billing, trainer } from '@atelier/protos';
import { billingConfigSchema, startBilling } from '@atelier/billing';
import {
  createTestDatabase,
  startTcpProxy,
  testDouble,
  viaProxy,
  waitFor,
  type TestDatabase,
} from '@atelier/infra/testing';

const logger = createLogger('test', 'silent');

describe('request id and deadline propagation', () => {
  let upstream: RunningGrpcServer;
  let downstream: RunningGrpcServer;
  let seen: { ctx?: CallContext; deadline?: number } = {};

  beforeAll(async () => {
    const metrics = createMetrics('test');
    // downstream records what reached it; upstream calls it from inside its own handler.
    downstream = await startGrpcServer({
      serviceNames: ['d'],
      host: '127.0.0.1',
      port: 0,
      logger,
      readiness: async () => undefined,
      services: [
        implement(
          trainer.TrainerServiceService,
          testDouble<typeof trainer.TrainerServiceService>({
            async getVersion() {
              seen = { ctx: currentContext(), deadline: currentContext()?.deadline };
              throw Errors.notFound('version', 'x');
            },
          }),
          { logger, metrics },
        ),
      ],
    });
    const client = createGrpcClient(trainer.TrainerServiceService, downstream.address, { timeoutMs: 30_000 });
    upstream = await startGrpcServer({
      serviceNames: ['u'],
      host: '127.0.0.1',
      port: 0,
      logger,
      readiness: async () => undefined,
      services: [
        implement(
          billing.BillingServiceService,
          testDouble<typeof billing.BillingServiceService>({
            async listPlans() {
              await client.getVersion({ accountId: 'a', versionId: 'v' });
              return { plans: [] };
            },
          }),
          { logger, metrics },
        ),
      ],
    });
  });
  afterAll(async () => {
    await upstream.shutdown(100);
    await downstream.shutdown(100);
  });

  it('carries the caller request id and its (sooner) deadline to the next hop, and the error code back', async () => {
    const { runWithContext } = await import('@atelier/kit');
    const client = createGrpcClient(billing.BillingServiceService, upstream.address, { timeoutMs: 60_000 });
    const deadline = Date.now() + 4_000;
    const error = await runWithContext({ requestId: 'trace-123', deadline }, () =>
      client.listPlans({ includeDeprecated: false }),
    ).catch((e: unknown) => e);
    client.close();
    expect(seen.ctx?.requestId).toBe('trace-123');
    // The downstream deadline is the caller's, not the 30 s default of the inner client.
    expect(seen.deadline).toBeDefined();
    expect(seen.deadline!).toBeLessThanOrEqual(deadline + 50);
    expect(seen.deadline!).toBeGreaterThan(Date.now() - 10_000);
    // The downstream's error code survives two hops.
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('not_found');
  });

  it('answers UNIMPLEMENTED for a method without a handler', async () => {
    const client = createGrpcClient(trainer.TrainerServiceService, downstream.address);
    await expect(client.cancelTraining({ accountId: 'a', versionId: 'v' })).rejects.toMatchObject({
      code: 'unimplemented',
    });
    client.close();
  });
});

describe('health', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('is NOT_SERVING while Postgres is unreachable and SERVING once it answers', async () => {
    const target = new URL(db.url);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
    proxy.down();
    const service = await startBilling(
      loadConfig(billingConfigSchema, {
        DATABASE_URL: viaProxy(db.url, proxy),
        TRAINER_ADDR: '127.0.0.1:1',
        STRIPE_SECRET_KEY: 'sk_test_x',
        STRIPE_WEBHOOK_SECRET: 'whsec_x',
        GRPC_PORT: '0',
        METRICS_PORT: '0',
        LOG_LEVEL: 'silent',
        HEALTH_CHECK_INTERVAL_MS: '100',
      }),
    );
    const health = createHealthChecker(service.address);
    try {
      expect(await health.check('atelier.billing.v1.BillingService')).toBe('NOT_SERVING');
      proxy.up();
      await waitFor(async () => (await health.check('atelier.billing.v1.BillingService')) === 'SERVING', {
        what: 'SERVING after Postgres answers',
      });
      proxy.down();
      await waitFor(async () => (await health.check('')) === 'NOT_SERVING', {
        what: 'NOT_SERVING after Postgres goes away',
      });
    } finally {
      health.close();
      await service.stop();
      await proxy.close();
    }
  });
});
