import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { createGrpcClient } from '@atelier/kit';
import { billing } from '@atelier/protos';
import { migrate } from '../migrate/runner';
import { startReplicateSandbox } from '../sandbox/replicate';
import { startStripeSandbox } from '../sandbox/stripe';
import { isAlive, killAndWait } from '../stack/processes';
import {
  ensureLoginRoles,
  isDbService,
  meshEnv,
  processEnv,
  repoRoot,
  startPostgres,
  startRedis,
  startS3,
  stripeWebhookUrl,
} from '../stack';
import { waitFor } from '../testing/wait';

/**
 * `make dev`: the whole product on 127.0.0.1 — Postgres, Redis, the bucket and both sandboxes
 * in this process, the four services and the gateway as child processes built from dist/ —
 * then a demo account. Ctrl-C or SIGTERM stops everything it started.
 */
const ROOT = repoRoot(__dirname);
const STATE = path.join(ROOT, '.atelier');
const DEV = path.join(STATE, 'dev');
const PIDS = path.join(DEV, 'children.json');
const PORTS = {
  gateway: 8080,
  billing: 50051,
  imager: 50052,
  trainer: 50053,
  inferencer: 50054,
  postgres: 54329,
  redis: 63790,
  s3: 9000,
  stripe: 12111,
  replicate: 12112,
};
const DEMO_EMAIL = 'demo@atelier.local';

const log = (msg: string) => process.stdout.write(`[dev] ${msg}\n`);
const stops: Array<() => Promise<void>> = [];

async function main() {
  fs.mkdirSync(DEV, { recursive: true });
  await killLeftoverChildren();

  log('starting Postgres, Redis and the bucket');
  const [pg, redis, s3] = await Promise.all([
    startPostgres({ dataDir: path.join(DEV, 'postgres'), port: PORTS.postgres }),
    startRedis({ dir: path.join(DEV, 'redis'), port: PORTS.redis }),
    startS3({ dir: path.join(DEV, 's3'), port: PORTS.s3, bucket: 'atelier' }),
  ]);
  stops.push(
    () => pg.stop(),
    () => redis.stop(),
    () => s3.stop(),
  );

  const databaseUrl = await ensureDatabase(pg.url, 'atelier');
  const { applied } = await migrate({ databaseUrl, location: path.join(ROOT, 'flyway', 'sql') });
  log(applied.length ? `migrated: ${applied.join(', ')}` : 'schema up to date');
  // Each service logs in as its own role, as in compose, so a grant it lacks shows here first.
  // Dev passwords: this Postgres listens on 127.0.0.1 only.
  const serviceDatabaseUrls = await ensureLoginRoles(databaseUrl, {
    billing: 'atelier-dev-billing',
    trainer: 'atelier-dev-trainer',
    inferencer: 'atelier-dev-inferencer',
  });

  const gatewayUrl = `http://127.0.0.1:${PORTS.gateway}`;
  const stripe = await startStripeSandbox({
    port: PORTS.stripe,
    webhookUrl: stripeWebhookUrl(PORTS.gateway),
  });
  const replicate = await startReplicateSandbox({
    port: PORTS.replicate,
    trainingMs: Number(process.env.SANDBOX_REPLICATE_TRAINING_MS ?? 5000),
    predictionMs: Number(process.env.SANDBOX_REPLICATE_PREDICTION_MS ?? 1500),
  });
  stops.push(
    () => stripe.stop(),
    () => replicate.stop(),
  );
  log(`Stripe sandbox ${stripe.url}, Replicate sandbox ${replicate.url}`);

  const env = meshEnv({
    logLevel: process.env.LOG_LEVEL ?? 'info',
    databaseUrl,
    redisUrl: redis.url,
    s3,
    ports: PORTS,
    stripe: {
      url: stripe.url,
      secretKey: process.env.STRIPE_SECRET_KEY ?? stripe.secretKey,
      webhookSecret: process.env.STRIPE_WEBHOOK_SECRET ?? stripe.webhookSecret,
    },
    replicate,
  });
  const services = [
    ['billing', 'services/billing/dist/main.js', 9101],
    ['imager', 'services/imager/dist/main.js', 9102],
    ['trainer', 'services/trainer/dist/main.js', 9103],
    ['inferencer', 'services/inferencer/dist/main.js', 9104],
    ['gateway', 'gateway/dist/main.js', undefined],
  ] as const;
  const children = services.map(([name, script, metricsPort]) =>
    spawnChild(name, script, {
      ...env,
      ...processEnv(name, PORTS, metricsPort),
      ...(isDbService(name) ? { DATABASE_URL: serviceDatabaseUrls[name] } : {}),
    }),
  );
  // The console was built by `make dev`; this rebuilds it on every change while dev runs.
  children.push(spawnConsoleWatch());
  fs.writeFileSync(PIDS, JSON.stringify(children.map((c) => c.pid)));

  await waitFor(async () => (await fetch(`${gatewayUrl}/readyz`).catch(() => undefined))?.status === 200, {
    timeoutMs: 60_000,
    intervalMs: 250,
    what: 'the gateway and every service to be ready',
  });

  const demo = await demoAccount(env.BILLING_ADDR!);
  const devJson = {
    gateway_url: gatewayUrl,
    api_key: demo.apiKey,
    account_id: demo.accountId,
    database_url: databaseUrl,
    redis_url: redis.url,
    s3_endpoint: s3.endpoint,
    s3_bucket: s3.bucket,
  };
  fs.writeFileSync(path.join(STATE, 'dev.json'), `${JSON.stringify(devJson, null, 2)}\n`, { mode: 0o600 });
  log(`ready: ${gatewayUrl} (docs at ${gatewayUrl}/docs)`);
  log(`console: ${gatewayUrl}/console/ (sign in with the API key below)`);
  log(`demo account ${demo.accountId}`);
  log(`API key: ${demo.apiKey}`);
  log(
    'callbacks: run a receiver, e.g. `node -e "require(\'http\').createServer((q,s)=>{q.pipe(process.stdout);s.end()}).listen(9999)"`,',
  );
  log(
    `  then: curl -X POST ${gatewayUrl}/api/v1/webhook-endpoints -H "authorization: Bearer ${demo.apiKey}" \\`,
  );
  log(
    `    -H 'content-type: application/json' -d '{"url":"http://127.0.0.1:9999/hooks"}'  (verify with the standardwebhooks library)`,
  );
  log('settings written to .atelier/dev.json; Ctrl-C stops everything');
}

function spawnChild(
  name: string,
  script: string,
  env: Record<string, string>,
  args: string[] = [],
  cwd = ROOT,
): ChildProcess {
  const child = spawn(process.execPath, [path.join(ROOT, script), ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter(Boolean)
      .forEach((line) => process.stdout.write(`[${name}] ${line}\n`));
  child.stdout?.on('data', prefix);
  child.stderr?.on('data', prefix);
  child.on('exit', (code, signal) => {
    if (!shuttingDown) {
      log(`${name} exited (${signal ?? code}); stopping everything`);
      void shutdown(1);
    }
  });
  stops.unshift(async () => {
    if (child.pid && isAlive(child.pid)) await killAndWait(child.pid, 'SIGTERM', 10_000);
  });
  return child;
}

function spawnConsoleWatch(): ChildProcess {
  const vite = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  return spawnChild(
    'console',
    path.relative(ROOT, vite),
    {},
    ['build', '--watch'],
    path.join(ROOT, 'console'),
  );
}

/** A previous `make dev` that was killed hard can leave children holding the ports. */
async function killLeftoverChildren() {
  if (!fs.existsSync(PIDS)) return;
  const pids = JSON.parse(fs.readFileSync(PIDS, 'utf8')) as number[];
  for (const pid of pids) {
    if (isAlive(pid)) {
      log(`stopping leftover process ${pid} of an earlier run`);
      await killAndWait(pid, 'SIGTERM', 10_000);
    }
  }
  fs.rmSync(PIDS, { force: true });
}

async function ensureDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The demo account, made once; each run gets a fresh key (keys are shown only when made). */
async function demoAccount(billingAddr: string) {
  const client = createGrpcClient(billing.BillingServiceService, billingAddr);
  try {
    const { accounts } = await client.listAccounts({});
    const existing = accounts.find((a) => a.email === DEMO_EMAIL);
    if (existing) {
      const { apiKey } = await client.createApiKey({ accountId: existing.accountId });
      return { accountId: existing.accountId, apiKey };
    }
    const created = await client.createAccount({ email: DEMO_EMAIL });
    return { accountId: created.account!.accountId, apiKey: created.apiKey };
  } finally {
    client.close();
  }
}

let shuttingDown = false;
async function shutdown(code: number) {
  if (shuttingDown) return;
  shuttingDown = true;
  log('stopping');
  for (const stop of stops) await stop().catch((err) => log(`stop failed: ${(err as Error).message}`));
  fs.rmSync(PIDS, { force: true });
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
main().catch((err) => {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`);
  void shutdown(1);
});
