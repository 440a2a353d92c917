import { loadConfig, type Clock } from '@atelier/kit';
import { billingConfigSchema, startBilling } from '@atelier/billing';
import { imagerConfigSchema, startImager } from '@atelier/imager';
import { trainerConfigSchema, startTrainer } from '@atelier/trainer';
import { inferencerConfigSchema, startInferencer } from '@atelier/inferencer';
import { gatewayConfigSchema, startGateway, type RunningGateway } from '@atelier/gateway';
import type { RunningService } from '@atelier/kit';
import { startReplicateSandbox, type ReplicateSandbox } from '../sandbox/replicate';
import { startStripeSandbox, type StripeSandbox } from '../sandbox/stripe';
import type { DbService } from '../stack/db-roles';
import { meshEnv, processEnv, stripeWebhookUrl } from '../stack/mesh-env';
import { freePort } from '../stack/ports';
import { checkedResponse, checkerFor } from './contract';
import { createTestDatabase, requireEnv, type TestDatabase } from './db';

export interface Mesh {
  db: TestDatabase;
  stripe: StripeSandbox;
  replicate: ReplicateSandbox;
  billing: RunningService;
  imager: RunningService;
  trainer: RunningService;
  inferencer: RunningService;
  gateway: RunningGateway;
  /** The environment every process was configured from; its DATABASE_URL is the owner's. */
  env: Record<string, string>;
  /**
   * The environment of one more replica of `service`, connected to Postgres as that service's own
   * login role like the mesh's (so a missing grant fails there too).
   */
  envFor(service: DbService): Record<string, string>;
  /** Creates an account through billing and returns its API key. */
  createAccount(email?: string): Promise<{ accountId: string; apiKey: string }>;
  /** GETs/POSTs to the gateway with an API key; every answer is checked against the served OpenAPI document. */
  api(path: string, init?: RequestInit & { key?: string; json?: unknown }): Promise<Response>;
  stop(): Promise<void>;
}

export interface MeshOptions {
  /** Extra or overriding environment for every process (e.g. RATE_LIMIT_PER_WINDOW). */
  env?: Record<string, string>;
  replicate?: { trainingMs?: number; predictionMs?: number; outputTtlMs?: number };
  /** Billing's clock (callback back-offs); tests advance it instead of sleeping. */
  clock?: Clock;
}

/**
 * Starts the whole product in this process on free ports against a fresh test database, the
 * jest stack's Redis and bucket, and both sandboxes: the same code `make dev` runs.
 */
export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  // Ports are picked before binding (services must know each other's address first), so another
  // process can take one in between: start afresh on new ports when that happens.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMeshOnce(options);
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test(String((err as Error).message))) throw err;
    }
  }
}

async function startMeshOnce(options: MeshOptions): Promise<Mesh> {
  const db = await createTestDatabase();
  const [billingPort, imagerPort, trainerPort, inferencerPort, gatewayPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const stripe = await startStripeSandbox({
    webhookUrl: stripeWebhookUrl(gatewayPort),
    webhookRetry: { baseDelayMs: 100, maxDelayMs: 1000 },
  });
  const replicate = await startReplicateSandbox({
    trainingMs: options.replicate?.trainingMs ?? 300,
    predictionMs: options.replicate?.predictionMs ?? 200,
    outputTtlMs: options.replicate?.outputTtlMs,
    webhookRetryDelaysMs: [100, 300, 1000],
  });
  const ports = {
    billing: billingPort,
    imager: imagerPort,
    trainer: trainerPort,
    inferencer: inferencerPort,
    gateway: gatewayPort,
  };
  const env: Record<string, string> = {
    ...meshEnv({
      logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
      databaseUrl: db.url,
      redisUrl: requireEnv('REDIS_URL'),
      s3: {
        endpoint: requireEnv('S3_ENDPOINT'),
        bucket: requireEnv('S3_BUCKET'),
        region: process.env.S3_REGION ?? 'us-east-1',
        accessKeyId: requireEnv('S3_ACCESS_KEY_ID'),
        secretAccessKey: requireEnv('S3_SECRET_ACCESS_KEY'),
      },
      ports,
      stripe,
      replicate,
    }),
    METRICS_PORT: '0',
    RECONCILE_INTERVAL_MS: '500',
    HEALTH_CHECK_INTERVAL_MS: '200',
    SHUTDOWN_GRACE_MS: '2000',
    OUTBOX_INTERVAL_MS: '100',
    WEBHOOK_DELIVERY_INTERVAL_MS: '100',
    // Failed key checks are counted per client address in the shared Redis, and every test file
    // is 127.0.0.1: one file's 401 tests must not lock out another's. Tests of the limit set it.
    AUTH_FAILURES_PER_WINDOW: '1000000',
    // Test files share one account across many trainings left running; the cap on trainings at
    // once is tested where it is set (gateway/test/training-cap.test.ts).
    TIER_LIMITS: JSON.stringify({
      free: { trainingsRunning: 1000 },
      standard: { trainingsRunning: 1000 },
      pro: { trainingsRunning: 1000 },
    }),
    MAX_RUNNING_TRAININGS_PER_ACCOUNT: '1000',
    ...options.env,
  };
  const started: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async () => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    await stripe.stop();
    await replicate.stop();
    await db.drop();
  };
  const start = async <T extends { stop(): Promise<void> }>(fn: () => Promise<T>): Promise<T> => {
    const s = await fn();
    started.push(s);
    return s;
  };
  try {
    // Each service connects as its own login role, as in production; env.DATABASE_URL stays the
    // owner's (fixtures and migrations), and envFor() gives extra replicas their service's role.
    const envFor = (service: DbService) => ({ ...env, DATABASE_URL: db.serviceUrls[service] });
    const own = (service: DbService) => ({ ...envFor(service), ...processEnv(service, ports) });
    const billing = await start(() =>
      startBilling(loadConfig(billingConfigSchema, own('billing')), {
        clock: options.clock,
      }),
    );
    const imager = await start(() =>
      startImager(loadConfig(imagerConfigSchema, { ...env, ...processEnv('imager', ports) })),
    );
    const trainer = await start(() => startTrainer(loadConfig(trainerConfigSchema, own('trainer'))));
    const inferencer = await start(() =>
      startInferencer(loadConfig(inferencerConfigSchema, own('inferencer'))),
    );
    const gateway = await start(() => startGateway(loadConfig(gatewayConfigSchema, env)));
    const contract = checkerFor(await (await fetch(`${gateway.url}/api/v1/openapi.json`)).text());
    const mesh: Mesh = {
      db,
      stripe,
      replicate,
      billing,
      imager,
      trainer,
      inferencer,
      gateway,
      env,
      envFor,
      async createAccount(email = `user-${Math.random().toString(36).slice(2)}@example.com`) {
        const res = await gateway.deps.mesh.billing.createAccount({ email });
        return { accountId: res.account!.accountId, apiKey: res.apiKey };
      },
      async api(path, init = {}) {
        const headers = new Headers(init.headers);
        if (init.key) headers.set('authorization', `Bearer ${init.key}`);
        let body = init.body;
        if (init.json !== undefined) {
          headers.set('content-type', 'application/json');
          body = JSON.stringify(init.json);
        }
        const res = await fetch(`${gateway.url}${path}`, { ...init, headers, body });
        return checkedResponse(contract, init.method ?? 'GET', path, res);
      },
      stop: stopAll,
    };
    return mesh;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
