/**
 * Tiers through the real mesh: budgets set by the account's paid payments, separate read and
 * write budgets, RateLimit-* headers, the cap on prompts running at once, and usage. No
 * RATE_LIMIT_PER_WINDOW override here: the tiers' own numbers apply.
 */
import { randomUUID } from 'node:crypto';
import { readyVersion, startMesh, waitFor, type Mesh } from '@atelier/infra/testing';
import { sandboxModelVersion } from '../../services/inferencer/test/support/sandbox-version';

let mesh: Mesh;
let model: { model: string; version: string };

beforeAll(async () => {
  mesh = await startMesh({
    // Long enough that a burst of prompts is still running when the next one arrives.
    replicate: { predictionMs: 6_000 },
    // Long: a tier change must show through invalidation, not through the cache running out.
    env: { AUTH_CACHE_MS: '600000' },
  });
  model = await sandboxModelVersion(mesh.replicate);
});
afterAll(() => mesh?.stop());

const write = (key: string) => mesh.api(`/api/v1/prompts/${randomUUID()}/cancel`, { key, method: 'POST' });
const read = (key: string) => mesh.api(`/api/v1/payments/${randomUUID()}`, { key });

/** A payment made paid by the Stripe sandbox, watched in billing (not through the key's read budget). */
async function pay(account: { accountId: string; apiKey: string }) {
  const created = await mesh.api('/api/v1/payments/create', {
    key: account.apiKey,
    method: 'POST',
    json: { plan_id: 'basic_init' },
  });
  expect(created.status).toBe(201);
  const payment = (await created.json()) as { payment_id: string; checkout_url: string };
  expect(
    (await fetch(payment.checkout_url, { method: 'POST', headers: { accept: 'application/json' } })).status,
  ).toBe(200);
  const billing = mesh.gateway.deps.mesh.billing;
  await waitFor(
    async () =>
      (await billing.getPayment({ accountId: account.accountId, paymentId: payment.payment_id })).payment
        ?.paidAt !== undefined,
    { what: 'the payment to be paid' },
  );
  return payment;
}

describe('tier budgets', () => {
  it('a free key hits its write limit while its reads still pass; every answer carries RateLimit-*', async () => {
    const { apiKey } = await mesh.createAccount();
    for (let i = 0; i < 10; i++) {
      const res = await write(apiKey);
      expect(res.status).toBe(404);
      expect(res.headers.get('ratelimit-limit')).toBe('10');
      expect(res.headers.get('ratelimit-remaining')).toBe(String(9 - i));
      expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    }
    const limited = await write(apiKey);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const problem = (await limited.json()) as { detail: string; limit: string; tier: string };
    expect(problem).toMatchObject({ limit: 'writes_per_minute', tier: 'free' });
    expect(problem.detail).toMatch(/writes_per_minute/);
    // Polling is not writing: reads have their own budget.
    const polled = await read(apiKey);
    expect(polled.status).toBe(404);
    expect(polled.headers.get('ratelimit-limit')).toBe('60');
  });

  it('limits change the moment a payment becomes paid, and again when it is refunded', async () => {
    const account = await mesh.createAccount();
    expect((await read(account.apiKey)).headers.get('ratelimit-limit')).toBe('60');
    const payment = await pay(account);
    // The key is cached for 10 minutes: only the webhook's word can change its limits this soon.
    await waitFor(async () => (await read(account.apiKey)).headers.get('ratelimit-limit') === '600', {
      what: 'the standard tier',
      intervalMs: 250,
    });
    expect((await write(account.apiKey)).headers.get('ratelimit-limit')).toBe('120');

    const sessionId = new URL(payment.checkout_url).pathname.split('/').pop()!;
    await mesh.stripe.refund(mesh.stripe.session(sessionId)!.payment_intent as string);
    await waitFor(async () => (await read(account.apiKey)).headers.get('ratelimit-limit') === '60', {
      what: 'back to the free tier',
      intervalMs: 250,
    });
    expect((await write(account.apiKey)).headers.get('ratelimit-limit')).toBe('10');
  });
});

describe('prompts running at once', () => {
  it('8 concurrent prompts on one model with a standard key all start; the 9th is refused until one finishes', async () => {
    const account = await mesh.createAccount();
    const versionId = await readyVersion(mesh, account, 20, model);
    const create = () =>
      mesh.api(`/api/v1/prompts/create/${versionId}`, {
        key: account.apiKey,
        method: 'POST',
        json: { prompt: 'burst', num_outputs: 1, width: 256, height: 256 },
      });
    const burst = await Promise.all(Array.from({ length: 8 }, create));
    expect(burst.map((r) => r.status)).toEqual(Array(8).fill(202));
    const ninth = await create();
    expect(ninth.status).toBe(429);
    expect(Number(ninth.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await ninth.json()) as { limit: string; max: number }).toMatchObject({
      limit: 'prompts_running',
      max: 8,
    });
    // The refused one reserved nothing: 8 of 20 credits are held.
    const info = (await (
      await mesh.api(`/api/v1/versions/info/${versionId}`, { key: account.apiKey })
    ).json()) as {
      images: { used: number };
    };
    expect(info.images.used).toBe(8);
    // Once the burst is done, there is room again.
    await waitFor(async () => (await create()).status === 202, {
      what: 'a free slot',
      timeoutMs: 30_000,
      intervalMs: 1_000,
    });

    const usage = await mesh.api('/api/v1/usage', { key: account.apiKey });
    expect(usage.status).toBe(200);
    const body = (await usage.json()) as {
      versions: Array<{ version_id: string | null; amount_paid: number }>;
      total: { amount_paid: number; images: number };
    };
    expect(body.total.amount_paid).toBe(100);
    expect(body.versions.find((v) => v.version_id === versionId)).toMatchObject({ amount_paid: 100 });
  });
});
