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
      RATE_LIMIT_WINDOW_MS: '1500',
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
      intervalMs: 300,
    });
  });
});

describe('locks over HTTP', () => {
  it('answers 409 with Retry-After while another request holds the resource, and never locks reads', async () => {
    // A key of its own: the rate-limit test above spends its key's budget.
    const { apiKey: key } = await mesh.createAccount();
    const versionId = randomUUID();
    await mesh.gateway.deps.redis.set(`lock:version:${versionId}`, 'someone-else', 'PX', 60_000);
    const res = await mesh.api(`/api/v1/versions/${versionId}/cancel`, { key, method: 'POST' });
    expect(res.status).toBe(409);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(((await res.json()) as { type: string }).type).toMatch(/locked$/);
    const read = await mesh.api(`/api/v1/versions/info/${versionId}`, { key });
    expect(read.status).not.toBe(409);
    await mesh.gateway.deps.redis.del(`lock:version:${versionId}`);
    await waitFor(
      async () =>
        (await mesh.api(`/api/v1/versions/${versionId}/cancel`, { key, method: 'POST' })).status !== 409,
      { what: 'unlocked' },
    );
  });
});

describe('Redis unavailable', () => {
  it('fails closed: locked and idempotent routes answer 503 and nothing runs', async () => {
    const { apiKey: key } = await mesh.createAccount();
    redisProxy.down();
    try {
      await waitFor(
        async () =>
          (await mesh.api(`/api/v1/versions/${randomUUID()}/cancel`, { key, method: 'POST' })).status === 503,
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
