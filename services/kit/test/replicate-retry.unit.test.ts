/** The one Replicate retry policy every service's adapter uses. */
import { retryDelayMs, withReplicateRetries, type RetryPolicy } from '@atelier/kit';

describe('Replicate retries', () => {
  const policy: RetryPolicy = { attempts: 3, baseDelayMs: 100, maxDelayMs: 1000 };
  const apiError = (status: number) =>
    Object.assign(new Error(`status ${status}`), { response: { status, headers: new Headers() } });

  it('retry 5xx and network failures of idempotent calls only, and never 4xx or 429 (the kit waits those out)', () => {
    expect(retryDelayMs(apiError(503), 1, true, policy)).toBeGreaterThan(0);
    expect(retryDelayMs(apiError(503), 1, false, policy)).toBeNull();
    expect(
      retryDelayMs(Object.assign(new Error('fetch failed'), { name: 'TypeError' }), 1, true, policy),
    ).toBeGreaterThan(0);
    for (const status of [400, 404, 409, 422, 429])
      expect(retryDelayMs(apiError(status), 1, true, policy)).toBeNull();
  });

  it('back off between attempts and answer 503 carrying the status when they run out', async () => {
    const waits: number[] = [];
    let calls = 0;
    const err = await withReplicateRetries(
      async () => {
        calls++;
        throw apiError(502);
      },
      { idempotent: true, policy, wait: async (ms) => waits.push(ms) },
    ).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect(waits).toHaveLength(2);
    expect(waits[1]!).toBeGreaterThan(waits[0]!);
    expect(err).toEqual(expect.objectContaining({ code: 'unavailable', replicateStatus: 502 }));
  });

  it('never re-send a failed create', async () => {
    let calls = 0;
    const err = await withReplicateRetries(
      async () => {
        calls++;
        throw apiError(500);
      },
      { idempotent: false, policy, wait: async () => undefined },
    ).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(err).toEqual(expect.objectContaining({ code: 'unavailable', replicateStatus: 500 }));
  });
});
