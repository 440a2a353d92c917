import { createHash, randomBytes } from 'node:crypto';
import { AppError, Errors, asAppError, ERROR_TABLE, type Redis } from '@atelier/kit';
import { retryUntil } from './lock';

export interface StoredResponse {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
  /**
   * The digest of a body the route read itself as it streamed (a multipart upload), known only
   * once the body was read: stored with the response and compared on a replay. Never sent.
   */
  bodyDigest?: string;
}

type Record_ =
  | { state: 'in_flight'; fingerprint: string; token: string }
  | ({ state: 'done'; fingerprint: string } & StoredResponse);

export class IdempotencyInFlightError extends AppError {
  constructor(
    detail: string,
    readonly retryAfterS: number,
  ) {
    super('idempotency_in_flight', detail);
  }
}

const FORGET = `
local raw = redis.call('GET', KEYS[1])
if raw and string.find(raw, ARGV[1], 1, true) then return redis.call('DEL', KEYS[1]) end
return 0
`;

const isValidIdempotencyKey = (key: string) => /^[\x21-\x7e]{1,255}$/.test(key);

/**
 * Idempotency-Key for creating POSTs: the first response (2xx) is kept for the TTL and replayed
 * byte for byte; another request under the same key is 422; the same key while the first request
 * still runs is 409. The in-flight marker lives only as long as the request's own deadline
 * (`inFlightMs`), so a crash or a deploy never blocks a key for long. A refusal (4xx) forgets the
 * key: nothing was created and the client may fix the request. A 5xx or a timeout keeps the
 * marker until it expires, so a retry waits until the first attempt has ended; the retry then runs
 * again with the same derived resource ids and finds what the first one created.
 *
 * A streamed body (the training upload's photos) cannot be in `fingerprint`: it is only known
 * once read, and reading it first would mean holding the photos. So the key is claimed on the
 * request line alone (a concurrent duplicate still gets 409 and starts nothing), the first
 * attempt's run hashes the body as it streams through and returns the digest with its response,
 * and a repeat of a completed key reads its own body through `bodyDigest` and is replayed only
 * when the digests match (422 otherwise).
 */
export async function idempotent(
  redis: Redis,
  opts: {
    accountId: string;
    key: string | undefined;
    fingerprint: string;
    ttlS: number;
    inFlightMs: number;
    /** Reads this request's streamed body into the digest its first attempt returned. */
    bodyDigest?: () => Promise<string>;
  },
  run: () => Promise<StoredResponse>,
): Promise<StoredResponse & { replayed?: boolean }> {
  if (opts.key === undefined) return run();
  if (!isValidIdempotencyKey(opts.key))
    throw Errors.invalid('Idempotency-Key must be 1–255 visible ASCII characters');
  const redisKey = `idem:${opts.accountId}:${createHash('sha256').update(opts.key).digest('hex')}`;
  const fingerprint = createHash('sha256').update(opts.fingerprint).digest('hex');
  const token = randomBytes(12).toString('hex');
  const claimedAt = Date.now();
  let claimed: string | null;
  try {
    claimed = await redis.set(
      redisKey,
      JSON.stringify({ state: 'in_flight', fingerprint, token } satisfies Record_),
      'PX',
      Math.max(1, Math.ceil(opts.inFlightMs)),
      'NX',
    );
  } catch (err) {
    throw Errors.unavailable('redis', err);
  }
  if (claimed !== 'OK') {
    const [raw, pttl] = await Promise.all([redis.get(redisKey), redis.pttl(redisKey)]).catch((err) => {
      throw Errors.unavailable('redis', err);
    });
    if (raw === null)
      throw new IdempotencyInFlightError('the request with this Idempotency-Key just finished; retry', 1);
    const stored = JSON.parse(raw) as Record_;
    if (stored.fingerprint !== fingerprint) {
      throw Errors.idempotencyMismatch();
    }
    if (stored.state === 'in_flight') {
      throw new IdempotencyInFlightError(
        'a request with this Idempotency-Key is still in progress',
        Math.max(1, Math.ceil((pttl > 0 ? pttl : 1000) / 1000)),
      );
    }
    if (stored.bodyDigest !== undefined) {
      const digest = opts.bodyDigest ? await opts.bodyDigest() : undefined;
      if (digest !== stored.bodyDigest) throw Errors.idempotencyMismatch();
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
    // Only a refusal is known to have created nothing; after a 5xx or a timeout the first attempt
    // may still be running, so its marker stays until it expires with the request's deadline.
    if (ERROR_TABLE[asAppError(err).code].http < 500)
      await retryUntil(
        () => redis.eval(FORGET, 1, redisKey, `"token":"${token}"`),
        claimedAt + opts.inFlightMs,
      );
    throw err;
  }
  const record: Record_ = { state: 'done', fingerprint, ...response };
  // If this write is lost, the marker expires and a retry re-runs onto the same derived ids.
  await redis.set(redisKey, JSON.stringify(record), 'EX', opts.ttlS).catch(() => undefined);
  return response;
}

/**
 * The id of the resource a keyed create makes: the same account and key always name the same
 * resource, so a retry after a timeout finds the first attempt's resource instead of making a
 * second one. Without a key, a fresh random id. Formatted as a UUID (version 8, RFC 9562).
 */
export function resourceId(accountId: string, key: string | undefined, kind: string): string | undefined {
  if (key === undefined) return undefined;
  const h = createHash('sha256').update(`${kind}\0${accountId}\0${key}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
