// The benchmark's stack, in a process of its own (forked by stack.mjs) so that nothing it does runs
// in the event loop that measures: Postgres and Redis (their own processes), the s3rver bucket and
// the Stripe and Replicate sandboxes (in this process), an optional bandwidth/latency shaper in
// front of the Replicate sandbox's files, and the four services and the gateway, each as its own
// `node <service>/dist/main.js` process, as `make dev` runs them.
//
// It answers requests from its parent over IPC ({id, op, args} → {id, result | error}) and stops
// everything it started when told to, when the parent goes away, or on SIGINT/SIGTERM.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CACHE_DIR, ROOT, require, waitFor } from './common.mjs';

const { Client } = require('pg');
const {
  startPostgres,
  startRedis,
  startS3,
  freePort,
  DataDirInUseError,
  meshEnv,
  processEnv,
  stripeWebhookUrl,
} = require('./infra/dist/stack/index.js');
const { isAlive } = require('./infra/dist/stack/processes.js');
const { claimRunDir } = require('./infra/dist/testing/run-dir.js');
const { migrate } = require('./infra/dist/migrate/runner.js');
const { startReplicateSandbox } = require('./infra/dist/sandbox/replicate/index.js');
const { startStripeSandbox } = require('./infra/dist/sandbox/stripe/index.js');

const STATE = path.join(ROOT, '.atelier', 'bench');
const DB_PREFIX = 'atelier_bench_';
const SERVICES = {
  billing: 'services/billing/dist/main.js',
  imager: 'services/imager/dist/main.js',
  trainer: 'services/trainer/dist/main.js',
  inferencer: 'services/inferencer/dist/main.js',
  gateway: 'gateway/dist/main.js',
};

const stops = []; // run in reverse order
const children = new Map(); // name → { child, script, env, nodeArgs, exited }
let stopping;
let opts;
let serviceEnv;
let replicate;
let logDir;

const say = (m) => process.stderr.write(`[stack] ${m}\n`);

async function start(options) {
  opts = options;
  logDir = path.join(CACHE_DIR, 'logs', options.name ?? 'run');
  fs.rmSync(logDir, { recursive: true, force: true });
  fs.mkdirSync(logDir, { recursive: true });
  const runDir = await claimRunDir(STATE);
  stops.push(() => fs.rmSync(runDir, { recursive: true, force: true }));

  const [pg, redis, s3] = await Promise.all([
    startBenchPostgres(runDir).then(stopped),
    startRedis({ dir: path.join(runDir, 'redis') }).then(stopped),
    startS3({ dir: path.join(runDir, 's3'), bucket: 'atelier-bench' }).then(stopped),
  ]);
  const databaseUrl = await createDatabase(pg.url);

  const port = {};
  for (const name of ['billing', 'imager', 'trainer', 'inferencer', 'gateway', 'replicate', 'shaper'])
    port[name] = await freePort();
  const metricsPort = {};
  for (const name of Object.keys(SERVICES)) if (name !== 'gateway') metricsPort[name] = await freePort();
  const gatewayUrl = `http://127.0.0.1:${port.gateway}`;

  const stripe = await startStripeSandbox({
    webhookUrl: stripeWebhookUrl(port.gateway),
    webhookRetry: { baseDelayMs: 100, maxDelayMs: 1000 },
  });
  stops.push(() => stripe.stop());
  const shaper = options.shaper;
  replicate = await startReplicateSandbox({
    port: port.replicate,
    trainingMs: options.replicate?.trainingMs ?? 600_000,
    predictionMs: options.replicate?.predictionMs ?? 200,
    webhookRetryDelaysMs: [100, 300, 1000],
    // Outputs and other URLs handed out point at the shaper when there is one.
    ...(shaper ? { publicUrl: `http://127.0.0.1:${port.shaper}` } : {}),
  });
  stops.push(() => replicate.stop());
  if (shaper) {
    await spawnNode('shaper', 'bench/lib/shaper.mjs', {
      SHAPER_PORT: String(port.shaper),
      SHAPER_TARGET: `127.0.0.1:${port.replicate}`,
      SHAPER_LATENCY_MS: String(shaper.latencyMs),
      SHAPER_BYTES_PER_S: String(shaper.bytesPerSecond),
    });
    await waitFor(
      () =>
        fetch(`http://127.0.0.1:${port.shaper}/v1/account`, {
          headers: { authorization: `Bearer ${replicate.token}` },
        }).then((r) => r.ok),
      {
        what: 'the shaper',
      },
    );
  }

  serviceEnv = {
    ...meshEnv({
      logLevel: options.logLevel ?? 'info',
      databaseUrl,
      redisUrl: redis.url,
      s3,
      ports: port,
      stripe,
      replicate,
    }),
    SHUTDOWN_GRACE_MS: '3000',
    ...options.env,
  };
  const services = options.services ?? Object.keys(SERVICES);
  for (const name of services) {
    // The gateway has no metrics port of its own here: 0 picks a free one (its default is fixed).
    const own = processEnv(name, port, metricsPort[name] ?? 0);
    await spawnNode(name, SERVICES[name], { ...serviceEnv, ...own, ...(options.serviceEnv?.[name] ?? {}) });
  }
  if (services.includes('gateway')) await waitReady(gatewayUrl, services);

  return {
    gatewayUrl,
    databaseUrl,
    adminUrl: pg.url,
    postgresPid: pg.pid,
    redisPid: redisPid(runDir),
    stackPid: process.pid,
    env: serviceEnv,
    ports: port,
    metricsPorts: metricsPort,
    logDir,
    pids: pids(),
    replicate: {
      url: replicate.url,
      baseUrl: replicate.baseUrl,
      token: replicate.token,
      webhookSecret: replicate.webhookSecret,
    },
    stripe: { url: stripe.url },
    shaperUrl: shaper ? `http://127.0.0.1:${port.shaper}` : undefined,
  };
}

function redisPid(runDir) {
  try {
    return Number(fs.readFileSync(path.join(runDir, 'redis', 'redis.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
}

const stopped = (server) => {
  stops.push(() => server.stop());
  return server;
};

/** The bench's own data directory (initdb once, reused); a private one when another run holds it. */
async function startBenchPostgres(runDir) {
  let pg;
  try {
    pg = await startPostgres({ dataDir: path.join(STATE, 'pg') });
  } catch (err) {
    if (!(err instanceof DataDirInUseError)) throw err;
    say(`${err.message}; using a private data directory`);
    pg = await startPostgres({ dataDir: path.join(runDir, 'pg') });
  }
  const pid = Number(fs.readFileSync(path.join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return Object.assign(pg, { pid });
}

/** A fresh, migrated database for this run; databases of earlier runs (all dead: we hold the data
 * directory) are dropped first. */
async function createDatabase(adminUrl) {
  const name = `${DB_PREFIX}${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [
      DB_PREFIX,
    ]);
    for (const { datname } of rows) await admin.query(`DROP DATABASE "${datname}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  await migrate({ databaseUrl: url.toString(), location: path.join(ROOT, 'flyway', 'sql') });
  stops.push(async () => {
    const c = new Client({ connectionString: adminUrl });
    c.on('error', () => undefined);
    // Postgres may already be gone (Ctrl-C reaches it too): the next run drops what is left.
    if (
      !(await c.connect().then(
        () => true,
        () => false,
      ))
    )
      return;
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => c.end());
  });
  return url.toString();
}

async function waitReady(gatewayUrl, services) {
  const all = ['billing', 'imager', 'trainer', 'inferencer'].every((s) => services.includes(s));
  await waitFor(
    async () => {
      for (const [name, c] of children) if (c.exited) throw new Error(`${name} exited: ${tail(name)}`);
      const res = await fetch(`${gatewayUrl}${all ? '/readyz' : '/healthz'}`);
      return res.status === 200;
    },
    { timeoutMs: 60_000, intervalMs: 200, what: 'the gateway and the services to be ready' },
  );
}

function tail(name) {
  try {
    return fs
      .readFileSync(path.join(logDir, `${name}.log`), 'utf8')
      .split('\n')
      .slice(-15)
      .join('\n');
  } catch {
    return '';
  }
}

/** Spawns `node [nodeArgs] script` with its output in <logDir>/<name>.log (a file, not a pipe:
 * writing logs costs the service what it costs in production, not what a pipe reader adds). */
async function spawnNode(name, script, env, nodeArgs = []) {
  const out = fs.openSync(path.join(logDir, `${name}.log`), 'a');
  const child = spawn(process.execPath, [...nodeArgs, path.resolve(ROOT, script)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  const entry = { child, script, env, nodeArgs, exited: undefined };
  entry.done = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      entry.exited = { code, signal };
      if (!stopping && children.get(name) === entry && !entry.expected) {
        process.send?.({ event: 'exit', name, code, signal });
      }
      resolve();
    }),
  );
  children.set(name, entry);
  return child.pid;
}

async function stopChild(name, { graceMs = 10_000 } = {}) {
  const entry = children.get(name);
  if (!entry) return;
  entry.expected = true;
  if (!entry.exited && entry.child.pid && isAlive(entry.child.pid)) {
    entry.child.kill('SIGTERM');
    const escalate = setTimeout(() => entry.child.kill('SIGKILL'), graceMs);
    await entry.done;
    clearTimeout(escalate);
  }
  children.delete(name);
}

/** Stops a service and starts it again with other node flags or environment (e.g. --cpu-prof). */
async function restart(name, { nodeArgs = [], env = {}, script } = {}) {
  const entry = children.get(name);
  if (!entry) throw new Error(`no process named ${name}`);
  await stopChild(name);
  await spawnNode(name, script ?? entry.script, { ...entry.env, ...env }, nodeArgs);
  return children.get(name).child.pid;
}

const pids = () => Object.fromEntries([...children].map(([n, c]) => [n, c.child.pid]));

const ops = {
  start,
  pids,
  spawnNode: ({ name, script, env, nodeArgs }) =>
    spawnNode(name, script, { ...serviceEnv, ...env }, nodeArgs),
  stopChild: ({ name, graceMs }) => stopChild(name, { graceMs }),
  restart: ({ name, nodeArgs, env, script }) => restart(name, { nodeArgs, env, script }),
  waitReady: ({ gatewayUrl }) => waitReady(gatewayUrl, [...children.keys()]),
  dropWebhooks: ({ count }) => replicate.faults.dropWebhooks(count),
  clearFaults: () => replicate.faults.clear(),
  prediction: ({ id }) => replicate.prediction(id),
  settled: async ({ id }) => (await replicate.settled(id)).object,
  training: ({ id }) => replicate.training(id),
  trainings: () =>
    replicate
      .trainings()
      .map((t) => ({ id: t.object.id, status: t.object.status, dataset: t.dataset ?? null })),
  stop: () => shutdown(),
};

async function shutdown() {
  stopping ??= (async () => {
    // Services first (they hold connections to everything else), then the rest in reverse.
    await Promise.all([...children.keys()].map((n) => stopChild(n).catch(() => undefined)));
    for (const stop of stops.reverse()) await stop().catch((err) => say(`stop failed: ${err.message}`));
  })();
  return stopping;
}

process.on('message', async ({ id, op, args }) => {
  try {
    const result = await ops[op](args ?? {});
    process.send?.({ id, result: result === undefined ? null : JSON.parse(JSON.stringify(result)) });
  } catch (err) {
    process.send?.({ id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
});
const bye = () => void shutdown().finally(() => process.exit(0));
process.on('disconnect', bye);
process.on('SIGINT', bye);
process.on('SIGTERM', bye);
process.on('exit', () => {
  for (const { child, exited } of children.values()) if (!exited) child.kill('SIGKILL');
});
// Keep the loop alive while the parent is connected.
setInterval(() => undefined, 60_000);
