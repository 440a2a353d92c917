import { loadConfig } from '@atelier/kit';
import { billingConfigSchema, startBilling } from '@atelier/billing';
import { gatewayConfigSchema, startGateway } from '@atelier/gateway';
import { startMesh, waitFor, type Mesh } from '@atelier/infra/testing';

let mesh: Mesh;
let key: string;

beforeAll(async () => {
  mesh = await startMesh({ env: { AUTH_CACHE_MS: '200', RATE_LIMIT_PER_WINDOW: '1000' } });
  ({ apiKey: key } = await mesh.createAccount());
});
afterAll(() => mesh?.stop());

const problem = async (res: Response) => {
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toEqual(
    expect.objectContaining({
      type: expect.any(String),
      title: expect.any(String),
      status: res.status,
      detail: expect.any(String),
      request_id: res.headers.get('x-request-id'),
    }),
  );
  return body;
};

describe('plans', () => {
  it('lists the seed plans without a key, end to end through billing and Postgres', async () => {
    const res = await mesh.api('/api/v1/plans');
    expect(res.status).toBe(200);
    const { plans } = (await res.json()) as {
      plans: Array<{ id: string; price: number; images: number; is_init: boolean }>;
    };
    expect(plans.map((p) => p.id).sort()).toEqual(['basic_extra_creds', 'basic_init']);
    expect(plans.find((p) => p.id === 'basic_init')).toEqual(
      expect.objectContaining({ price: 1300, images: 100, is_init: true }),
    );
  });
});

describe('request id', () => {
  it('keeps a sane incoming X-Request-Id and replaces an insane one', async () => {
    const kept = await mesh.api('/api/v1/plans', { headers: { 'x-request-id': 'client-abc.123' } });
    expect(kept.headers.get('x-request-id')).toBe('client-abc.123');
    const replaced = await mesh.api('/api/v1/plans', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('authentication', () => {
  const path = '/api/v1/payments/0b7f9c1e-4a2d-4c1b-9f0e-2d3c4b5a6e7f';

  it('answers 401 problem+json for a missing, malformed or unknown key', async () => {
    for (const key of [undefined, 'nonsense', 'atl_AAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']) {
      const res = await mesh.api(path, { key });
      expect(res.status).toBe(401);
      await problem(res);
    }
  });

  it('stops accepting a revoked key within the auth cache time', async () => {
    const { accountId } = await mesh.createAccount();
    const created = await mesh.gateway.deps.mesh.billing.createApiKey({ accountId });
    const before = await mesh.api('/api/v1/versions/info/0b7f9c1e-4a2d-4c1b-9f0e-2d3c4b5a6e7f', {
      key: created.apiKey,
    });
    expect(before.status).not.toBe(401);
    await mesh.gateway.deps.mesh.billing.revokeApiKey({ prefix: created.prefix });
    await waitFor(async () => (await mesh.api(path, { key: created.apiKey })).status === 401, {
      timeoutMs: 5_000,
      what: 'revocation to take effect',
    });
  });
});

describe('errors', () => {
  it('answers 400 for a malformed id, before any service is asked', async () => {
    const res = await mesh.api('/api/v1/payments/not-a-uuid', { key });
    expect(res.status).toBe(400);
    expect((await problem(res)).type).toMatch(/malformed-id$/);
  });

  it('answers 404 problem+json for an unknown route', async () => {
    const res = await mesh.api('/api/v1/nope', { key });
    expect(res.status).toBe(404);
    await problem(res);
  });

  it('answers 400 for malformed JSON, 415 for another content type, 413 for a huge body', async () => {
    const bad = await mesh.api('/api/v1/payments/create', {
      key,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"plan_id": ',
    });
    expect(bad.status).toBe(400);
    expect((await problem(bad)).detail).toMatch(/malformed JSON/);

    const form = await mesh.api('/api/v1/payments/create', {
      key,
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'plan_id=basic_init',
    });
    expect(form.status).toBe(415);
    await problem(form);

    const huge = await mesh.api('/api/v1/payments/create', {
      key,
      method: 'POST',
      json: { plan_id: 'x'.repeat(200_000) },
    });
    expect(huge.status).toBe(413);
    await problem(huge);
  });

  it('answers 400 listing every wrong field', async () => {
    const res = await mesh.api('/api/v1/payments/create', {
      key,
      method: 'POST',
      json: { plan_id: 5, version_id: 'nope', extra: true },
    });
    expect(res.status).toBe(400);
    const body = await problem(res);
    const fields = (body.errors as Array<{ field: string }>).map((e) => e.field).sort();
    expect(fields).toEqual(expect.arrayContaining(['body.plan_id', 'body.version_id']));
  });
});

describe('checkout return pages', () => {
  it('serves the pages Stripe Checkout returns the browser to by default', async () => {
    for (const path of ['/checkout/success?payment_id=x', '/checkout/cancel?payment_id=x']) {
      const res = await fetch(`${mesh.gateway.url}${path}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/close this page/);
    }
  });
});

describe('a port already taken', () => {
  // A bind that fails must reject (so a launcher can retry on other ports), not leave the start
  // pending forever while the 'error' event kills the process.
  it('fails the gateway and a service with EADDRINUSE instead of hanging', async () => {
    const gatewayEnv = { ...mesh.env, HTTP_PORT: String(mesh.gateway.port), METRICS_PORT: '0' };
    await expect(startGateway(loadConfig(gatewayConfigSchema, gatewayEnv))).rejects.toThrow(/EADDRINUSE/);
    const billingPort = mesh.billing.address.split(':').pop()!;
    const billingEnv = { ...mesh.envFor('billing'), GRPC_PORT: billingPort, METRICS_PORT: '0' };
    await expect(startBilling(loadConfig(billingConfigSchema, billingEnv))).rejects.toThrow(/EADDRINUSE/);
    // The mesh on those ports still answers: the failed starts closed only what they opened.
    expect((await mesh.api('/api/v1/plans')).status).toBe(200);
  });
});

describe('health', () => {
  it('is live, ready while every service serves, and names a service that stops', async () => {
    expect((await fetch(`${mesh.gateway.url}/healthz`)).status).toBe(200);
    await waitFor(async () => (await fetch(`${mesh.gateway.url}/readyz`)).status === 200, {
      what: 'readyz 200',
    });
    await mesh.inferencer.stop();
    const res = await waitFor(
      async () => {
        const r = await fetch(`${mesh.gateway.url}/readyz`);
        return r.status === 503 ? r : undefined;
      },
      { what: 'readyz 503' },
    );
    expect(await res.json()).toEqual({ status: 'unavailable', failing: ['inferencer'] });
  });
});
