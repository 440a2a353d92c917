import { randomBytes } from 'node:crypto';
import { AppError, Errors, type Redis } from '@atelier/kit';

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** How often a release that Redis did not answer is tried again (until the lock expires anyway). */
const RELEASE_RETRY_MS = 250;

export class LockHeldError extends AppError {
  constructor(
    resource: string,
    readonly retryAfterS: number,
  ) {
    super('locked', `${resource} is being changed by another request; retry in ${retryAfterS} s`);
  }
}

/**
 * Runs fn while holding a Redis lock on one resource (SET NX PX with a random token). The TTL is
 * the request's own remaining time, so a lock never outlives the request that took it, whatever
 * happens to Redis or to the process. The release is a compare-and-delete (a lock that expired
 * and was taken by someone else is never released by us); a release Redis did not answer is
 * retried in the background until it succeeds or the lock has expired by itself. Redis down →
 * 503: we never run unlocked.
 */
export async function withLock<T>(
  redis: Redis,
  resource: string,
  ttlMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  const key = `lock:${resource}`;
  const token = randomBytes(16).toString('hex');
  const expires = Date.now() + ttlMs;
  let acquired: string | null;
  try {
    acquired = await redis.set(key, token, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
  } catch (err) {
    // The SET may have reached Redis: release it in case it did.
    void releaseUntil(redis, key, token, expires);
    throw Errors.unavailable('redis', err);
  }
  if (acquired !== 'OK') {
    const pttl = await redis.pttl(key).catch(() => 1000);
    throw new LockHeldError(resource, Math.max(1, Math.ceil((pttl > 0 ? pttl : 1000) / 1000)));
  }
  try {
    return await fn();
  } finally {
    await releaseUntil(redis, key, token, expires);
  }
}

const releaseUntil = (redis: Redis, key: string, token: string, expires: number) =>
  retryUntil(() => redis.eval(RELEASE, 1, key, token), expires);

/**
 * Runs a Redis write that must not be lost (a release, a forget) until it succeeds or `expires`
 * passes (the key expires by itself then). Resolves after the first attempt; later ones run in
 * the background, so a frozen Redis delays no answer by more than one command timeout.
 */
export function retryUntil(write: () => Promise<unknown>, expires: number): Promise<void> {
  const attempt = (): Promise<void> =>
    write().then(
      () => undefined,
      () => {
        if (Date.now() + RELEASE_RETRY_MS < expires)
          setTimeout(() => void attempt(), RELEASE_RETRY_MS).unref();
      },
    );
  return attempt();
}
