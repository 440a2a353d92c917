import { createHash } from 'node:crypto';
import { AppError, Errors, type Redis } from '@atelier/kit';

export interface StoredResponse {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

type Record_ =
  { state: 'in_flight'; fingerprint: string } | ({ state: 'done'; fingerprint: string } & StoredResponse);

/**
 * Idempotency-Key for creating POSTs: the first response (2xx) is kept for the TTL and replayed
 * byte for byte; another body under the same key is 422; the same key while the first request
 * still runs is 409. A failed request forgets the key so the client can retry it.
 */
export async function idempotent(
  redis: Redis,
  opts: { accountId: string; key: string | undefined; fingerprint: string; ttlS: number },
  run: () => Promise<StoredResponse>,
): Promise<StoredResponse & { replayed?: boolean }> {
  if (opts.key === undefined) return run();
  if (!/^[\x21-\x7e]{1,255}$/.test(opts.key))
    throw Errors.invalid('Idempotency-Key must be 1–255 visible ASCII characters');
  const redisKey = `idem:${opts.accountId}:${createHash('sha256').update(opts.key).digest('hex')}`;
  const fingerprint = createHash('sha256').update(opts.fingerprint).digest('hex');
  let claimed: string | null;
  try {
    claimed = await redis.set(
      redisKey,
      JSON.stringify({ state: 'in_flight', fingerprint } satisfies Record_),
      'EX',
      opts.ttlS,
      'NX',
    );
  } catch (err) {
    throw Errors.unavailable('redis', err);
  }
  if (claimed !== 'OK') {
    const raw = await redis.get(redisKey).catch((err) => {
      throw Errors.unavailable('redis', err);
    });
    if (raw === null)
      throw new AppError(
        'idempotency_in_flight',
        'the request with this Idempotency-Key just finished; retry',
      );
    const stored = JSON.parse(raw) as Record_;
    if (stored.fingerprint !== fingerprint) {
      throw new AppError('idempotency_mismatch', 'this Idempotency-Key was used with a different request');
    }
    if (stored.state === 'in_flight') {
      throw new AppError('idempotency_in_flight', 'a request with this Idempotency-Key is still in progress');
    }
    return {
      status: stored.status,
      contentType: stored.contentType,
      body: stored.body,
      headers: stored.headers,
      replayed: true,
    };
  }
  let response: StoredResponse;
  try {
    response = await run();
  } catch (err) {
    await redis.del(redisKey).catch(() => undefined);
    throw err;
  }
  const record: Record_ = { state: 'done', fingerprint, ...response };
  await redis.set(redisKey, JSON.stringify(record), 'EX', opts.ttlS).catch(() => undefined);
  return response;
}
