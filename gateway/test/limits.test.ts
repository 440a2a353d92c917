import { randomUUID } from 'node:crypto';
import {
  startMesh,
  startTcpProxy,
  viaProxy,
  waitFor,
  type Mesh,
  type TcpProxy,
} from '@atelier/infra/testing';

let mesh: Mesh;
let redisProxy: TcpProxy;
let key: string;

beforeAll(async () => {
  const target = new URL(process.env.REDIS_URL!);
  redisProxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  mesh = await startMesh({
    env: {
      REDIS_URL: viaProxy(process.env.REDIS_URL!, redisProxy),
      RATE_LIMIT_PER_WINDOW: '5',
      // Long enough for six requests on a loaded machine; the recovery below waits it out.
      RATE_LIMIT_WINDOW_MS: '6000',
    },
  });
  ({ apiKey: key } = await mesh.createAccount());
});
afterAll(async () => {
  await mesh?.stop();
  await redisProxy?.close();
});

describe('rate limit', () => {
  it('answers 429 with Retry-After past the limit and recovers after the window', async () => {
    const path = `/api/v1/payments/${randomUUID()}`;
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 6; i++) {
      const res = await mesh.api(path, { key });
      statuses.push(res.status);
      expect(res.headers.get('ratelimit-limit')).toBe('5');
      if (res.status === 429) limited = res;
    }
    expect(statuses.slice(0, 5).every((s) => s !== 429)).toBe(true);
    expect(statuses[5]).toBe(429);
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited!.headers.get('ratelimit-remaining')).toBe('0');
    expect(((await limited!.json()) as { status: number }).status).toBe(429);
    // Another key has its own budget.
    const other = await mesh.createAccount();
    expect((await mesh.api(path, { key: other.apiKey })).status).not.toBe(429);
    await waitFor(async () => (await mesh.api(path, { key })).status !== 429, {
      what: 'the window to pass',
      intervalMs: 500,
      timeoutMs: 20_000,
    });
  });

  it('GET /account tells the read and write budgets the limiter enforces, per minute', async () => {
    const { apiKey } = await mesh.createAccount();
    const res = await mesh.api('/api/v1/account', { key: apiKey });
    expect(res.headers.get('ratelimit-limit')).toBe('5');
    const { limits } = (await res.json()) as {
      limits: { reads_per_minute: number; writes_per_minute: number };
    };
    // 5 per window of 6 s.
    expect(limits).toEqual(expect.objectContaining({ reads_per_minute: 50, writes_per_minute: 50 }));
  });
});

describe('locks over HTTP', () => {
  it('answers 409 with Retry-After while another request holds the resource, and never locks reads', async () => {
    // A key of its own: the rate-limit test above spends its key's budget.
    const { apiKey: key } = await mesh.createAccount();
    const paymentId = await pendingPayment(key);
    const train = (k: string) =>
      mesh.api(`/api/v1/versions/train/${paymentId}?class=man`, {
        key: k,
        method: 'POST',
        headers: { 'content-type': 'multipart/form-data; boundary=x' },
        body: '--x--\r\n',
      });
    await mesh.gateway.deps.redis.set(`lock:payment:${paymentId}`, 'someone-else', 'PX', 60_000);
    const res = await train(key);
    expect(res.status).toBe(409);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(((await res.json()) as { type: string }).type).toMatch(/locked$/);
    // The lock is taken after the ownership check: knowing the id does not make it answer 409
    // to anyone else.
    const stranger = await mesh.createAccount();
    expect((await train(stranger.apiKey)).status).toBe(404);
    const read = await mesh.api(`/api/v1/payments/${paymentId}`, { key });
    expect(read.status).toBe(200);
    await mesh.gateway.deps.redis.del(`lock:payment:${paymentId}`);
    await waitFor(async () => (await train(key)).status !== 409, { what: 'unlocked' });
  });
});

async function pendingPayment(key: string): Promise<string> {
  const res = await mesh.api('/api/v1/payments/create', {
    key,
    method: 'POST',
    json: { plan_id: 'basic_init' },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { payment_id: string }).payment_id;
}

describe('Redis unavailable', () => {
  it('fails closed: locked and idempotent routes answer 503 and nothing runs', async () => {
    const { apiKey: key } = await mesh.createAccount();
    const paymentId = await pendingPayment(key);
    redisProxy.down();
    try {
      await waitFor(
        async () =>
          (
            await mesh.api(`/api/v1/versions/train/${paymentId}?class=man`, {
              key,
              method: 'POST',
              headers: { 'content-type': 'multipart/form-data; boundary=x' },
              body: '--x--\r\n',
            })
          ).status === 503,
        { what: 'locked route 503' },
      );
      const idem = await mesh.api('/api/v1/payments/create', {
        key,
        method: 'POST',
        json: { plan_id: 'basic_init' },
        headers: { 'idempotency-key': randomUUID() },
      });
      expect(idem.status).toBe(503);
      const body = (await idem.json()) as { detail: string };
      expect(body.detail).not.toMatch(/redis|ECONN|127\.0\.0\.1/i);
    } finally {
      redisProxy.up();
    }
  });
});
