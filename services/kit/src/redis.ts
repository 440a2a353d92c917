import { Redis } from 'ioredis';

export { Redis };

/**
 * Fails fast instead of queueing while Redis is down, so callers can answer 503 at once
 * rather than hang until their deadline.
 */
export function createRedis(url: string): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  redis.on('error', () => undefined);
  return redis;
}
