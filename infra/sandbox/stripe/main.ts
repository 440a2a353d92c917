/**
 * The Stripe sandbox as its own process, for the dev launcher:
 *   SANDBOX_STRIPE_PORT (default 12111), STRIPE_WEBHOOK_URL, STRIPE_WEBHOOK_SECRET (default
 *   whsec_sandbox), SANDBOX_PUBLIC_URL; also SANDBOX_STRIPE_HOST (default 127.0.0.1) and
 *   SANDBOX_STRIPE_SECRET_KEY (default sk_test_sandbox).
 */
import { z } from 'zod';
import { startStripeSandbox } from './server';

const optional = z.string().trim().min(1).optional();
const Env = z.object({
  SANDBOX_STRIPE_PORT: z.coerce.number().int().min(0).max(65535).default(12111),
  SANDBOX_STRIPE_HOST: z.string().trim().min(1).default('127.0.0.1'),
  STRIPE_WEBHOOK_URL: z.url().optional(),
  STRIPE_WEBHOOK_SECRET: optional,
  SANDBOX_STRIPE_SECRET_KEY: optional,
  SANDBOX_PUBLIC_URL: z.url().optional(),
});

async function main(): Promise<void> {
  const parsed = Env.safeParse(Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    console.error(`stripe-sandbox: bad environment\n${problems}`);
    process.exit(2);
  }
  const env = parsed.data;
  const sandbox = await startStripeSandbox({
    port: env.SANDBOX_STRIPE_PORT,
    host: env.SANDBOX_STRIPE_HOST,
    webhookUrl: env.STRIPE_WEBHOOK_URL ?? null,
    ...(env.STRIPE_WEBHOOK_SECRET ? { webhookSecret: env.STRIPE_WEBHOOK_SECRET } : {}),
    ...(env.SANDBOX_STRIPE_SECRET_KEY ? { secretKey: env.SANDBOX_STRIPE_SECRET_KEY } : {}),
    ...(env.SANDBOX_PUBLIC_URL ? { publicUrl: env.SANDBOX_PUBLIC_URL } : {}),
    log: (msg) => console.log(`stripe-sandbox: ${msg}`),
  });
  console.log(
    `stripe-sandbox: listening on ${sandbox.url} (key ${sandbox.secretKey}, webhooks → ${env.STRIPE_WEBHOOK_URL ?? 'nowhere'})`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`stripe-sandbox: ${signal}, stopping`);
    sandbox.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('stripe-sandbox: stop failed', err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error('stripe-sandbox: failed to start', err);
  process.exit(1);
});
