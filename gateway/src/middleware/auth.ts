import { createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { AppError, Errors, asAppError, type Redis } from '@atelier/kit';
import type { Mesh } from '../clients/mesh';

export interface Limits {
  readsPerMinute: number;
  writesPerMinute: number;
  createsPerDay: number;
  promptsRunning: number;
  trainingsRunning: number;
}

type Entry = { accountId: string; prefix: string; tier: string; limits: Limits; until: number };

export interface AuthOptions {
  cacheMs: number;
  /** Failed key checks allowed per client address per window; then 429 until the window ends. */
  failuresPerWindow: number;
  windowMs: number;
}

const COUNT_FAILURE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

/** The API key of `Bearer <key>`, or the password of HTTP Basic (how A1111 clients send it with
 * `--api-auth user:password`); the Basic user name is ignored. */
function apiKeyOf(header: string): string | undefined {
  const bearer = /^Bearer ([\x21-\x7e]{1,200})$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic ([A-Za-z0-9+/=]{1,400})$/i.exec(header);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const password = decoded.slice(decoded.indexOf(':') + 1);
  return decoded.includes(':') && /^[\x21-\x7e]{1,200}$/.test(password) ? password : undefined;
}

/**
 * Bearer key → billing AuthenticateKey, cached for `cacheMs` (so a revoked key stops working
 * within that time). Only hashes of keys are held in memory. Failed checks are counted per client
 * address in Redis: past the limit that address gets 429 without a key check, so keys cannot be
 * guessed at the speed of the network. Redis down → the count is skipped, not the check.
 */
export function authenticate(mesh: Pick<Mesh, 'billing'>, redis: Redis, opts: AuthOptions) {
  const cache = new Map<string, Entry>();
  const failuresKey = (req: Request) => `authfail:${req.ip ?? 'unknown'}`;

  const refuseIfBlocked = async (req: Request, res: Response): Promise<AppError | undefined> => {
    const key = failuresKey(req);
    const [count, pttl] = await Promise.all([redis.get(key), redis.pttl(key)]).catch(
      () => [null, 0] as const,
    );
    if (Number(count ?? 0) < opts.failuresPerWindow) return undefined;
    const retryS = Math.max(1, Math.ceil((Number(pttl) > 0 ? Number(pttl) : opts.windowMs) / 1000));
    res.setHeader('Retry-After', String(retryS));
    return Errors.tooManyFailedKeyChecks(
      `too many failed API key checks from this address (limit: ${opts.failuresPerWindow} per ${opts.windowMs / 1000} s); retry in ${retryS} s`,
    );
  };
  const countFailure = (req: Request) =>
    redis.eval(COUNT_FAILURE, 1, failuresKey(req), opts.windowMs).catch(() => undefined);

  const handler = async (req: Request, res: Response, next: NextFunction) => {
    const key = apiKeyOf(req.get('authorization') ?? '');
    const cacheKey = key ? createHash('sha256').update(key).digest('base64') : '';
    const now = Date.now();
    let entry = key ? cache.get(cacheKey) : undefined;
    if (!entry || entry.until <= now) {
      cache.delete(cacheKey);
      const blocked = await refuseIfBlocked(req, res);
      if (blocked) return next(blocked);
      if (!key) {
        await countFailure(req);
        return next(Errors.unauthenticated('missing or malformed Authorization: Bearer header'));
      }
      try {
        const res = await mesh.billing.authenticateKey({ apiKey: key });
        // Billing owns the tiers and always says which applies: the gateway keeps no copy of them.
        const l = res.limits;
        if (!l) throw Errors.internal('billing authenticated a key without saying its tier limits');
        entry = {
          accountId: res.accountId,
          prefix: res.keyPrefix,
          tier: l.tier,
          limits: {
            readsPerMinute: l.readsPerMinute,
            writesPerMinute: l.writesPerMinute,
            createsPerDay: l.createsPerDay,
            promptsRunning: l.promptsRunning,
            trainingsRunning: l.trainingsRunning,
          },
          until: now + opts.cacheMs,
        };
        if (opts.cacheMs > 0) {
          if (cache.size > 10_000) cache.clear();
          cache.set(cacheKey, entry);
        }
      } catch (err) {
        if (asAppError(err).code === 'unauthenticated') await countFailure(req);
        return next(err);
      }
    }
    req.accountId = entry.accountId;
    req.keyPrefix = entry.prefix;
    req.tier = entry.tier;
    req.limits = entry.limits;
    next();
  };
  return Object.assign(handler, {
    /** An account's payments changed: its tier may have, so its keys are checked afresh. */
    forgetAccount(accountId: string) {
      for (const [k, e] of cache) if (e.accountId === accountId) cache.delete(k);
    },
  });
}
