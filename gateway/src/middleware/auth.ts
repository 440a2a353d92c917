import { createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { Errors } from '@atelier/kit';
import type { Mesh } from '../clients/mesh';

/**
 * Bearer key → billing AuthenticateKey, cached for `cacheMs` (so a revoked key stops working
 * within that time). Only hashes of keys are held in memory.
 */
export function authenticate(mesh: Pick<Mesh, 'billing'>, cacheMs: number) {
  const cache = new Map<string, { accountId: string; prefix: string; until: number }>();
  return async (req: Request, _res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer ([\x21-\x7e]{1,200})$/i.exec(header);
    if (!match) return next(Errors.unauthenticated('missing or malformed Authorization: Bearer header'));
    const key = match[1]!;
    const cacheKey = createHash('sha256').update(key).digest('base64');
    const now = Date.now();
    let entry = cache.get(cacheKey);
    if (!entry || entry.until <= now) {
      cache.delete(cacheKey);
      try {
        const res = await mesh.billing.authenticateKey({ apiKey: key });
        entry = { accountId: res.accountId, prefix: res.keyPrefix, until: now + cacheMs };
        if (cacheMs > 0) {
          if (cache.size > 10_000) cache.clear();
          cache.set(cacheKey, entry);
        }
      } catch (err) {
        return next(err);
      }
    }
    req.accountId = entry.accountId;
    req.keyPrefix = entry.prefix;
    next();
  };
}
