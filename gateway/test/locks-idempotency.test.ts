import { randomUUID } from 'node:crypto';
import { AppError, Errors, createRedis, type Redis } from '@atelier/kit';
import { waitFor } from '@atelier/infra/testing';
import { LockHeldError, withLock } from '../src/middleware/lock';
import { IdempotencyInFlightError, idempotent, resourceId } from '../src/middleware/idempotency';

let redis: Redis;
beforeAll(async () => {
  redis = createRedis(process.env.REDIS_URL!);
  await waitFor(() => redis.status === 'ready', { what: 'redis connection' });
});
afterAll(() => redis.quit());

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
};

describe('withLock (real Redis)', () => {
  it('lets exactly one of 50 concurrent holders in; the other 49 get LockHeldError with a retry time', async () => {
    const resource = `payment:${randomUUID()}`;
    const { open, opened } = gate();
    let refusedCount = 0;
    const attempts = Array.from({ length: 50 }, () =>
      withLock(redis, resource, 300_000, () => opened).then(
        () => 'held' as const,
        (err: unknown) => {
          refusedCount++;
          return err;
        },
      ),
    );
    // The winner holds the lock until every other attempt has been refused.
    await waitFor(() => refusedCount === 49, { what: '49 refusals' });
    open();
    const results = await Promise.all(attempts);
    const refused = results.filter((r) => r !== 'held');
    expect(results.filter((r) => r === 'held')).toHaveLength(1);
    expect(refused).toHaveLength(49);
    for (const err of refused) {
      expect(err).toBeInstanceOf(LockHeldError);
      expect((err as LockHeldError).retryAfterS).toBeGreaterThanOrEqual(299);
    }
    expect(await redis.exists(`lock:${resource}`)).toBe(0);
  });

  it('releases the lock when the handler throws', async () => {
    const resource = `version:${randomUUID()}`;
    await expect(
      withLock(redis, resource, 300_000, async () => Promise.reject(new Error('boom'))),
    ).rejects.toThrow('boom');
    expect(await redis.exists(`lock:${resource}`)).toBe(0);
    await expect(withLock(redis, resource, 300_000, async () => 'again')).resolves.toBe('again');
  });

  it('expires after its TTL, and a late release never deletes the next holder’s lock', async () => {
    const resource = `version:${randomUUID()}`;
    const { open, opened } = gate();
    const first = withLock(redis, resource, 200, () => opened);
    await waitFor(async () => (await redis.exists(`lock:${resource}`)) === 0, { what: 'the lock to expire' });
    const second = gate();
    const secondHolder = withLock(redis, resource, 300_000, () => second.opened);
    await waitFor(async () => (await redis.exists(`lock:${resource}`)) === 1, { what: 'the second holder' });
    open();
    await first;
    // The first holder's release found another token and left it alone.
    expect(await redis.exists(`lock:${resource}`)).toBe(1);
    second.open();
    await secondHolder;
    expect(await redis.exists(`lock:${resource}`)).toBe(0);
  });

  it('fails closed with 503 when Redis is unreachable', async () => {
    const dead = createRedis('redis://127.0.0.1:1');
    let ran = false;
    const err = await withLock(dead, 'payment:x', 1000, async () => {
      ran = true;
    }).catch((e: unknown) => e);
    dead.disconnect();
    expect(ran).toBe(false);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('unavailable');
  });
});

describe('idempotent (real Redis)', () => {
  const response = (body: string) => ({ status: 201, contentType: 'application/json', body });

  it('replays the first response byte for byte and refuses another body with 422', async () => {
    const key = randomUUID();
    const accountId = randomUUID();
    let runs = 0;
    const run = async () => response(JSON.stringify({ n: ++runs, at: process.hrtime.bigint().toString() }));
    const first = await idempotent(
      redis,
      { accountId, key, fingerprint: 'POST /x {"a":1}', ttlS: 60, inFlightMs: 60_000 },
      run,
    );
    const again = await idempotent(
      redis,
      { accountId, key, fingerprint: 'POST /x {"a":1}', ttlS: 60, inFlightMs: 60_000 },
      run,
    );
    expect(runs).toBe(1);
    expect(again.body).toBe(first.body);
    expect(again.replayed).toBe(true);
    const other = await idempotent(
      redis,
      { accountId, key, fingerprint: 'POST /x {"a":2}', ttlS: 60, inFlightMs: 60_000 },
      run,
    ).catch((e: unknown) => e);
    expect((other as AppError).code).toBe('idempotency_mismatch');
    // Keys are per account: another account's identical key is a new request.
    await idempotent(
      redis,
      { accountId: randomUUID(), key, fingerprint: 'POST /x {"a":1}', ttlS: 60, inFlightMs: 60_000 },
      run,
    );
    expect(runs).toBe(2);
  });

  it("a streamed body's digest, known only after the first run: a repeat is read and compared once answered, never while in flight", async () => {
    const key = randomUUID();
    const accountId = randomUUID();
    const opts = { accountId, key, fingerprint: 'POST /train/p', ttlS: 60, inFlightMs: 60_000 };
    let runs = 0;
    let release!: () => void;
    const first = idempotent(redis, opts, async () => {
      runs++;
      await new Promise<void>((resolve) => (release = resolve));
      return { ...response('{"version_id":"v"}'), bodyDigest: 'photos-a' };
    });
    await waitFor(() => runs === 1);
    // A concurrent duplicate: 409 without its body read and without a second run.
    let reads = 0;
    const read = (digest: string) => async () => {
      reads++;
      return digest;
    };
    const concurrent = await idempotent(redis, { ...opts, bodyDigest: read('photos-b') }, async () =>
      response('{}'),
    ).catch((e: unknown) => e);
    expect((concurrent as AppError).code).toBe('idempotency_in_flight');
    expect(reads).toBe(0);
    release();
    await first;
    // Answered: the same photos replay the answer, other photos are 422; neither runs again.
    const same = await idempotent(redis, { ...opts, bodyDigest: read('photos-a') }, async () =>
      response('{}'),
    );
    expect(same).toMatchObject({ body: '{"version_id":"v"}', replayed: true });
    const other = await idempotent(redis, { ...opts, bodyDigest: read('photos-b') }, async () =>
      response('{}'),
    ).catch((e: unknown) => e);
    expect((other as AppError).code).toBe('idempotency_mismatch');
    expect(reads).toBe(2);
    expect(runs).toBe(1);
  });

  it('answers 409 while the first request with the key is still running, and forgets a refused one', async () => {
    const key = randomUUID();
    const accountId = randomUUID();
    const { open, opened } = gate();
    const opts = { accountId, key, fingerprint: 'f', ttlS: 60, inFlightMs: 60_000 };
    const first = idempotent(redis, opts, async () => {
      await opened;
      throw Errors.insufficientCredits(0, 1);
    });
    await waitFor(async () => (await redis.keys(`idem:${accountId}:*`)).length === 1, {
      what: 'the in-flight record',
    });
    const concurrent = await idempotent(redis, opts, async () => response('{}')).catch((e: unknown) => e);
    expect((concurrent as AppError).code).toBe('idempotency_in_flight');
    expect((concurrent as IdempotencyInFlightError).retryAfterS).toBeGreaterThan(50);
    open();
    await expect(first).rejects.toMatchObject({ code: 'insufficient_credits' });
    // The refusal created nothing and was forgotten: a retry with the same key runs.
    await expect(idempotent(redis, opts, async () => response('{"ok":true}'))).resolves.toMatchObject({
      body: '{"ok":true}',
    });
  });

  it('keeps the key after a 5xx until the in-flight marker expires with the request deadline', async () => {
    const key = randomUUID();
    const accountId = randomUUID();
    const opts = { accountId, key, fingerprint: 'f', ttlS: 60, inFlightMs: 400 };
    await expect(
      idempotent(redis, opts, async () => Promise.reject(Errors.timeout('inferencer'))),
    ).rejects.toMatchObject({ code: 'timeout' });
    // The first attempt may still be running somewhere: a retry at once is told to wait.
    const early = await idempotent(redis, opts, async () => response('{}')).catch((e: unknown) => e);
    expect((early as AppError).code).toBe('idempotency_in_flight');
    // Never longer than the deadline: then the retry runs (onto the same derived resource id).
    await waitFor(async () => (await redis.keys(`idem:${accountId}:*`)).length === 0, {
      what: 'the marker to expire',
    });
    await expect(idempotent(redis, opts, async () => response('{"ok":true}'))).resolves.toMatchObject({
      body: '{"ok":true}',
    });
  });
});

describe('resourceId', () => {
  it('names the same resource for the same account and key, another for any other', () => {
    const a = randomUUID();
    const id = resourceId(a, 'k1', 'prompt');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(resourceId(a, 'k1', 'prompt')).toBe(id);
    expect(resourceId(randomUUID(), 'k1', 'prompt')).not.toBe(id);
    expect(resourceId(a, 'k2', 'prompt')).not.toBe(id);
    expect(resourceId(a, 'k1', 'payment')).not.toBe(id);
    expect(resourceId(a, undefined, 'prompt')).toBeUndefined();
  });
});
