import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { repoRoot } from './repo-root';

/**
 * The environment of the whole mesh, written once for every launcher: `make dev`, the test mesh
 * (infra/testing/mesh.ts) and the benchmark stack. Each launcher starts the servers its own way
 * and passes their addresses here; what one service reads from another is wired in this file only.
 */

export const MESH_PROCESSES = ['billing', 'imager', 'trainer', 'inferencer', 'gateway'] as const;
export type MeshProcess = (typeof MESH_PROCESSES)[number];
export type MeshService = Exclude<MeshProcess, 'gateway'>;

export interface MeshEnvInput {
  logLevel: string;
  databaseUrl: string;
  redisUrl: string;
  s3: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string };
  /** The gRPC port of each service and the gateway's HTTP port, all on 127.0.0.1. */
  ports: Record<MeshProcess, number>;
  stripe: { url: string; secretKey: string; webhookSecret: string };
  replicate: { baseUrl: string; token: string; webhookSecret: string };
}

/** Variables every process of the mesh reads (each takes the ones its schema names). */
export function meshEnv(i: MeshEnvInput): Record<string, string> {
  const addr = (name: MeshService) => `127.0.0.1:${i.ports[name]}`;
  const gatewayUrl = `http://127.0.0.1:${i.ports.gateway}`;
  return {
    LOG_LEVEL: i.logLevel,
    DATABASE_URL: i.databaseUrl,
    REDIS_URL: i.redisUrl,
    S3_ENDPOINT: i.s3.endpoint,
    S3_BUCKET: i.s3.bucket,
    S3_REGION: i.s3.region,
    S3_ACCESS_KEY_ID: i.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: i.s3.secretAccessKey,
    BILLING_ADDR: addr('billing'),
    IMAGER_ADDR: addr('imager'),
    TRAINER_ADDR: addr('trainer'),
    INFERENCER_ADDR: addr('inferencer'),
    STRIPE_SECRET_KEY: i.stripe.secretKey,
    STRIPE_WEBHOOK_SECRET: i.stripe.webhookSecret,
    STRIPE_API_URL: i.stripe.url,
    REPLICATE_API_TOKEN: i.replicate.token,
    REPLICATE_BASE_URL: i.replicate.baseUrl,
    REPLICATE_WEBHOOK_SECRET: i.replicate.webhookSecret,
    PUBLIC_WEBHOOK_URL: `${gatewayUrl}/api/v1/webhooks/replicate`,
    // Checkout sends the browser back to the console.
    CHECKOUT_SUCCESS_URL: `${gatewayUrl}/console/checkout/return?payment_id={PAYMENT_ID}`,
    CHECKOUT_CANCEL_URL: `${gatewayUrl}/console/checkout/return?payment_id={PAYMENT_ID}&canceled=1`,
    HTTP_PORT: String(i.ports.gateway),
    // Callbacks may go to a receiver on this machine (http://127.0.0.1:…).
    WEBHOOK_ALLOW_PRIVATE: 'true',
  };
}

/** Where the sandboxes send webhooks to the gateway. */
export const stripeWebhookUrl = (gatewayPort: number) =>
  `http://127.0.0.1:${gatewayPort}/api/v1/payments/webhook`;

/**
 * A dotenv-style file, read by Node's own parser (the one behind --env-file). The imager's
 * allocator settings live in services/imager/malloc.env, which the container's entrypoint reads
 * too: one home for them.
 */
export function readEnvFile(file: string): Record<string, string> {
  return parseEnv(fs.readFileSync(file, 'utf8')) as Record<string, string>;
}

/** Environment a process needs before it starts (the C library reads it at exec), by process. */
const RUNTIME_ENV_FILES: Partial<Record<MeshProcess, string>> = {
  imager: 'services/imager/malloc.env',
};

/** One process's own additions: its gRPC port (and metrics port, when given) and its runtime
 * environment (see RUNTIME_ENV_FILES; a value already in this process's environment wins). */
export function processEnv(
  name: MeshProcess,
  ports: Record<MeshProcess, number>,
  metricsPort?: number,
): Record<string, string> {
  const file = RUNTIME_ENV_FILES[name];
  const runtime = file ? readEnvFile(path.join(repoRoot(), file)) : {};
  for (const key of Object.keys(runtime)) if (process.env[key] !== undefined) delete runtime[key];
  return {
    ...runtime,
    ...(name === 'gateway' ? {} : { GRPC_PORT: String(ports[name]) }),
    ...(metricsPort === undefined ? {} : { METRICS_PORT: String(metricsPort) }),
  };
}
