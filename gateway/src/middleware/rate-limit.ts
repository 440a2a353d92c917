import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { Errors, type Redis } from '@atelier/kit';
import type { GatewayConfig } from '../config';

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

/** What a request spends: reads (GET) and writes have separate budgets; a create also spends a day's creates. */
export type RequestKind = 'read' | 'write' | 'create';

export interface Budgets {
  readsPerMinute: number;
  writesPerMinute: number;
  createsPerDay: number;
}

const DAY_MS = 24 * 3600 * 1000;

export interface LimiterSettings {
  /** The window of the read and write budgets (a minute, unless an operator or a test says otherwise). */
  windowMs: number;
  /** Replaces every tier's read and write budget per window (an operator's or a test's). */
  override?: number;
}

export const limiterSettings = (config: GatewayConfig): LimiterSettings => ({
  windowMs: config.RATE_LIMIT_WINDOW_MS,
  override: config.RATE_LIMIT_PER_WINDOW,
});

/** The read and write requests one window allows: the override, or the tier's budgets. */
export function windowBudgets(
  budgets: Budgets,
  settings: LimiterSettings,
): { reads: number; writes: number } {
  return {
    reads: settings.override ?? budgets.readsPerMinute,
    writes: settings.override ?? budgets.writesPerMinute,
  };
}

/**
 * Per-key limits in Redis from the key's tier (set on the request by auth), with RateLimit-*
 * headers on every answer and 429 + Retry-After naming the limit that was hit. `override` (an
 * operator's or a test's) replaces the per-minute budgets of every tier. When Redis is down the
 * limiter lets requests through: refusing all traffic would turn a cache outage into a full one.
 */
export function rateLimiter(redis: Redis, opts: LimiterSettings) {
  // A defined command runs as EVALSHA: the script's text is not sent with every request.
  redis.defineCommand('atelierRateLimit', { numberOfKeys: 1, lua: SLIDING_WINDOW });
  const limiter = redis as Redis & {
    atelierRateLimit(...args: Array<string | number>): Promise<[number, number, number]>;
  };
  const spend = (key: string, windowMs: number, limit: number) =>
    limiter.atelierRateLimit(key, Date.now(), windowMs, limit, randomUUID());

  return (kind: RequestKind) => async (req: Request, res: Response, next: NextFunction) => {
    // Mounted after auth only, which sets the key and its tier's limits.
    const { keyPrefix: subject, limits: budgets, tier } = req;
    if (!subject || !budgets) return next(Errors.internal('the rate limiter ran before auth'));
    const perWindow = windowBudgets(budgets, opts);
    const checks: Array<{ name: string; key: string; windowMs: number; limit: number; per: string }> = [
      kind === 'read'
        ? {
            name: 'reads_per_minute',
            key: `ratelimit:${subject}:r`,
            windowMs: opts.windowMs,
            limit: perWindow.reads,
            per: 'read requests per minute',
          }
        : {
            name: 'writes_per_minute',
            key: `ratelimit:${subject}:w`,
            windowMs: opts.windowMs,
            limit: perWindow.writes,
            per: 'write requests per minute',
          },
    ];
    if (kind === 'create')
      checks.push({
        name: 'creates_per_day',
        key: `ratelimit:${subject}:c`,
        windowMs: DAY_MS,
        limit: budgets.createsPerDay,
        per: 'creates per day',
      });
    for (const check of checks) {
      let result: [number, number, number];
      try {
        result = await spend(check.key, check.windowMs, check.limit);
      } catch (err) {
        req.log.warn({ err: (err as Error).message }, 'rate limiter unavailable; allowing request');
        return next();
      }
      const [allowed, remaining, resetMs] = result;
      const resetS = Math.max(1, Math.ceil(resetMs / 1000));
      // The per-minute budget is the one a client paces itself by; the day's shows only when hit.
      if (check === checks[0] || !allowed) {
        res.setHeader('RateLimit-Limit', String(check.limit));
        res.setHeader('RateLimit-Remaining', String(remaining));
        res.setHeader('RateLimit-Reset', String(resetS));
      }
      if (!allowed) {
        res.setHeader('Retry-After', String(resetS));
        return next(
          Errors.rateLimited(
            `${check.name}: the ${tier} tier allows ${check.limit} ${check.per}; retry in ${resetS} s`,
            { limit: check.name, tier, max: check.limit },
          ),
        );
      }
    }
    next();
  };
}
