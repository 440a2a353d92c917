// The benchmark's side of the stack: forks stack-process.mjs, talks to it over IPC and gives the
// benchmarks what they need to drive the product from outside (accounts, payments, ready versions).
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { BENCH_DIR, log, require, waitFor } from './common.mjs';

const { Client } = require('pg');

/**
 * Starts the stack in a child process and resolves once the gateway answers /readyz.
 * options: { name, services?, env?, serviceEnv?, logLevel?, replicate?: {trainingMs, predictionMs},
 *            shaper?: {latencyMs, bytesPerSecond} }
 */
export async function startStack(options) {
  // BENCH_SERVICE_ENV='{"imager":{"MALLOC_ARENA_MAX":"2"}}' adds to one service's environment (experiments).
  const extra = JSON.parse(process.env.BENCH_SERVICE_ENV || '{}');
  options = { ...options, serviceEnv: { ...options.serviceEnv } };
  for (const [name, vars] of Object.entries(extra))
    options.serviceEnv[name] = { ...options.serviceEnv[name], ...vars };
  const child = fork(path.join(BENCH_DIR, 'lib', 'stack-process.mjs'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 0;
  const pending = new Map();
  let crashed;
  child.on('message', (msg) => {
    if (msg.event === 'exit') {
      crashed = `${msg.name} exited unexpectedly (code ${msg.code}, signal ${msg.signal}); see bench/.cache/logs/${options.name}/${msg.name}.log`;
      log(crashed);
      return;
    }
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if ('error' in msg) p.reject(new Error(`stack: ${msg.error}`));
    else p.resolve(msg.result);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  void exited.then(() => {
    for (const p of pending.values()) p.reject(new Error('the stack process exited'));
    pending.clear();
  });
  const call = (op, args) =>
    new Promise((resolve, reject) => {
      if (!child.connected) return reject(new Error('the stack process is gone'));
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, op, args });
    });
  // If this process dies, the stack hears 'disconnect' and stops; a hard exit still kills it.
  const killOnExit = () => child.kill('SIGTERM');
  process.on('exit', killOnExit);

  let stopped;
  const stop = () =>
    (stopped ??= (async () => {
      await Promise.race([call('stop').catch(() => undefined), exited]);
      child.disconnect?.();
      await exited;
      process.off('exit', killOnExit);
    })());

  let info;
  try {
    info = await call('start', options);
  } catch (err) {
    await stop();
    throw err;
  }
  const stack = {
    info,
    call,
    stop,
    get crashed() {
      return crashed;
    },
    async pids() {
      return call('pids');
    },
    /** A pg client on the benchmark's database. */
    async db() {
      const c = new Client({ connectionString: info.databaseUrl });
      await c.connect();
      return c;
    },
  };
  return stack;
}

/** gRPC clients of billing (for accounts, plans and grants), made with the kit as the gateway makes them. */
export function billingClient(stack) {
  const { createGrpcClient } = require('@atelier/kit');
  const { billing } = require('@atelier/protos');
  return createGrpcClient(billing.BillingServiceService, stack.info.env.BILLING_ADDR, { timeoutMs: 10_000 });
}

export async function createAccount(stack) {
  const client = billingClient(stack);
  try {
    const res = await client.createAccount({ email: `bench-${randomUUID().slice(0, 8)}@example.com` });
    return { accountId: res.account.accountId, apiKey: res.apiKey };
  } finally {
    client.close();
  }
}

export function api(stack, route, { key, json, ...init } = {}) {
  const headers = new Headers(init.headers);
  if (key) headers.set('authorization', `Bearer ${key}`);
  let body = init.body;
  if (json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(json);
  }
  return fetch(`${stack.info.gatewayUrl}${route}`, { ...init, headers, body });
}

/** A paid init payment of `planId`, made through the gateway and paid on the Stripe sandbox's checkout page. */
export async function paidPayment(stack, key, planId = 'basic_init') {
  const res = await api(stack, '/api/v1/payments/create', {
    key,
    method: 'POST',
    json: { plan_id: planId },
    headers: { 'idempotency-key': randomUUID() },
  });
  if (res.status !== 201) throw new Error(`payments/create answered ${res.status}: ${await res.text()}`);
  const payment = await res.json();
  const paid = await fetch(payment.checkout_url, { method: 'POST', headers: { accept: 'application/json' } });
  if (paid.status !== 200) throw new Error(`checkout answered ${paid.status}`);
  await waitFor(
    async () =>
      (await (await api(stack, `/api/v1/payments/${payment.payment_id}`, { key })).json()).status === 'paid',
    {
      timeoutMs: 15_000,
      what: 'the payment to be paid',
    },
  );
  return payment.payment_id;
}
