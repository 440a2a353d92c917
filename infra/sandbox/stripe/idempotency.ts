/**
 * Stripe's idempotency: a POST's result is saved under its `Idempotency-Key` for 24 hours; the same
 * key with the same params replays it, with different params or another endpoint it is a 400
 * `idempotency_error`. Stripe saves a result only once the endpoint has started executing, so a
 * request rejected by validation can be retried under the same key; the sandbox saves successes.
 */
import { Errors } from './errors';
import type { FormObject } from './form';

interface Saved {
  endpoint: string;
  fingerprint: string;
  status: number;
  body: string;
  savedAt: number;
}

const TTL_MS = 24 * 60 * 60 * 1000;

export class IdempotencyStore {
  private readonly saved = new Map<string, Saved>();

  /** The saved response for this key, undefined if none, or Stripe's error if the key is misused. */
  replay(key: string, endpoint: string, params: FormObject): { status: number; body: string } | undefined {
    const saved = this.saved.get(key);
    if (!saved) return undefined;
    if (Date.now() - saved.savedAt > TTL_MS) {
      this.saved.delete(key);
      return undefined;
    }
    if (saved.endpoint !== endpoint) throw Errors.idempotencyEndpoint(key);
    if (saved.fingerprint !== fingerprint(params)) throw Errors.idempotencyMismatch(key);
    return { status: saved.status, body: saved.body };
  }

  save(key: string, endpoint: string, params: FormObject, status: number, body: string): void {
    this.saved.set(key, { endpoint, fingerprint: fingerprint(params), status, body, savedAt: Date.now() });
  }
}

/** Params compared by value, whatever order the client encoded them in. */
function fingerprint(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(fingerprint).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${fingerprint((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}
