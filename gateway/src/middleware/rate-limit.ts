import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { AppError, type Redis } from '@atelier/kit';

// Sliding-window log: one sorted set per key; atomic because Redis runs the script alone.
const SLIDING_WINDOW = `
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return {1, limit - count - 1, window}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
`;

/**
 * Per-key limit in Redis with RateLimit-* headers and 429 + Retry-After. When Redis is down the
 * limiter lets requests through: refusing all traffic would turn a cache outage into a full one.
 */
export function rateLimit(redis: Redis, opts: { limit: number; windowMs: number }) {
  // A defined command runs as EVALSHA: the script's text is not sent with every request.
  redis.defineCommand('atelierRateLimit', { numberOfKeys: 1, lua: SLIDING_WINDOW });
  const limiter = redis as Redis & {
    atelierRateLimit(...args: Array<string | number>): Promise<[number, number, number]>;
  };
  return async (req: Request, res: Response, next: NextFunction) => {
    const subject = req.keyPrefix ?? `ip:${req.ip}`;
    let result: [number, number, number];
    try {
      result = await limiter.atelierRateLimit(
        `ratelimit:${subject}`,
        Date.now(),
        opts.windowMs,
        opts.limit,
        randomUUID(),
      );
    } catch (err) {
      req.log.warn({ err: (err as Error).message }, 'rate limiter unavailable; allowing request');
      return next();
    }
    const [allowed, remaining, resetMs] = result;
    const resetS = Math.max(1, Math.ceil(resetMs / 1000));
    res.setHeader('RateLimit-Limit', String(opts.limit));
    res.setHeader('RateLimit-Remaining', String(remaining));
    res.setHeader('RateLimit-Reset', String(resetS));
    if (allowed) return next();
    res.setHeader('Retry-After', String(resetS));
    next(
      new AppError(
        'rate_limited',
        `more than ${opts.limit} requests in ${opts.windowMs / 1000} s; retry in ${resetS} s`,
      ),
    );
  };
}
