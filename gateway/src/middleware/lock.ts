import { randomBytes } from 'node:crypto';
import { AppError, Errors, type Redis } from '@atelier/kit';

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export class LockHeldError extends AppError {
  constructor(
    resource: string,
    readonly retryAfterS: number,
  ) {
    super('locked', `${resource} is being changed by another request; retry in ${retryAfterS} s`);
  }
}

/**
 * Runs fn while holding a Redis lock on one resource (SET NX PX with a random token). The
 * lock is released in `finally` by compare-and-delete, so a lock that expired and was taken
 * by someone else is never released by us. Redis down → 503: we never run unlocked.
 */
export async function withLock<T>(
  redis: Redis,
  resource: string,
  ttlMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  const key = `lock:${resource}`;
  const token = randomBytes(16).toString('hex');
  let acquired: string | null;
  try {
    acquired = await redis.set(key, token, 'PX', ttlMs, 'NX');
  } catch (err) {
    throw Errors.unavailable('redis', err);
  }
  if (acquired !== 'OK') {
    const pttl = await redis.pttl(key).catch(() => ttlMs);
    throw new LockHeldError(resource, Math.max(1, Math.ceil((pttl > 0 ? pttl : 1000) / 1000)));
  }
  try {
    return await fn();
  } finally {
    await redis.eval(RELEASE, 1, key, token).catch(() => undefined);
  }
}
