/**
 * Standalone Replicate sandbox for the dev stack:
 *   SANDBOX_REPLICATE_PORT (12112), SANDBOX_REPLICATE_HOST (127.0.0.1),
 *   SANDBOX_REPLICATE_TRAINING_MS (5000), SANDBOX_REPLICATE_PREDICTION_MS (1500),
 *   SANDBOX_REPLICATE_OUTPUT_TTL_MS (1 h), SANDBOX_REPLICATE_TOKEN (r8_sandbox),
 *   REPLICATE_WEBHOOK_SECRET (fixed default), SANDBOX_PUBLIC_URL (the listen URL).
 * Stops cleanly on SIGINT/SIGTERM.
 */
import { startReplicateSandbox } from './server';

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

async function main(): Promise<void> {
  const sandbox = await startReplicateSandbox({
    port: intEnv('SANDBOX_REPLICATE_PORT', 12112),
    host: process.env.SANDBOX_REPLICATE_HOST || '127.0.0.1',
    token: process.env.SANDBOX_REPLICATE_TOKEN || undefined,
    webhookSecret: process.env.REPLICATE_WEBHOOK_SECRET || undefined,
    trainingMs: intEnv('SANDBOX_REPLICATE_TRAINING_MS', 5000),
    predictionMs: intEnv('SANDBOX_REPLICATE_PREDICTION_MS', 1500),
    outputTtlMs: intEnv('SANDBOX_REPLICATE_OUTPUT_TTL_MS', 60 * 60 * 1000),
    publicUrl: process.env.SANDBOX_PUBLIC_URL || undefined,
    log: (m) => console.log(`[replicate-sandbox] ${m}`),
  });
  console.log(`[replicate-sandbox] baseUrl ${sandbox.baseUrl} token ${sandbox.token}`);
  const shutdown = (signal: string) => {
    console.log(`[replicate-sandbox] ${signal}: stopping`);
    sandbox.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error('[replicate-sandbox] failed to start:', err);
  process.exit(1);
});
