import { createHmac, timingSafeEqual } from 'node:crypto';
import Replicate from 'replicate';
import { retryAfterMs } from './backoff';
import { AppError, Errors } from './errors';
import type { Metrics } from './metrics';

export { Replicate };

/**
 * The official client, with what it lacks. replicate@1.4 retries 429s back to back (it never
 * reads Retry-After) and retries *any* thrown fetch error, creates included — so a timed-out
 * create could start a second training. This fetch therefore:
 * - honours Retry-After on 429 itself (bounded), before the client sees the answer;
 * - turns a network error or timeout on a non-GET into a 503 answer, which the client does not
 *   retry, so a create is sent at most once per call;
 * - puts a timeout on every request, keeping the caller's abort signal;
 * - counts every request per operation and outcome.
 */
export function createReplicateClient(opts: {
  token: string;
  baseUrl?: string;
  timeoutMs?: number;
  metrics?: Metrics;
  /** Longest Retry-After we are willing to wait out, and how often. */
  maxRetryAfterMs?: number;
  max429Retries?: number;
}): Replicate {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxRetryAfterMs = opts.maxRetryAfterMs ?? 10_000;
  const max429Retries = opts.max429Retries ?? 3;
  const business = opts.metrics?.business;

  const once = async (
    input: Parameters<typeof fetch>[0],
    init: RequestInit | undefined,
    operation: string,
  ) => {
    const started = process.hrtime.bigint();
    const signals = [AbortSignal.timeout(timeoutMs), ...(init?.signal ? [init.signal] : [])];
    try {
      const res = await fetch(input, { ...init, signal: AbortSignal.any(signals) });
      business?.replicateRequests.inc({
        operation,
        outcome: res.status === 429 ? 'throttled' : res.ok ? 'ok' : 'error',
      });
      return res;
    } catch (err) {
      business?.replicateRequests.inc({ operation, outcome: 'error' });
      if ((init?.method ?? 'GET') === 'GET') throw err;
      const detail =
        (err as Error).name === 'TimeoutError'
          ? 'request timed out'
          : `network error: ${(err as Error).message}`;
      return new Response(JSON.stringify({ detail, status: 503, title: 'Unavailable' }), {
        status: 503,
        headers: { 'content-type': 'application/json' },
      });
    } finally {
      business?.replicateDuration.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };

  const instrumentedFetch: typeof fetch = async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const operation = operationOf(init?.method ?? 'GET', url.pathname);
    for (let attempt = 0; ; attempt++) {
      const res = await once(input, init, operation);
      const waitMs = res.status === 429 ? (retryAfterMs(res.headers.get('retry-after')) ?? 1_000) : undefined;
      if (waitMs === undefined || attempt >= max429Retries || waitMs > maxRetryAfterMs) return res;
      await res.arrayBuffer().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  };
  return new Replicate({
    auth: opts.token,
    baseUrl: opts.baseUrl,
    fetch: instrumentedFetch,
    useFileOutput: false,
  });
}

/** A bounded label: the path with ids removed. */
function operationOf(method: string, pathname: string): string {
  const parts = pathname.replace(/^\/v1\//, '').split('/');
  const kind = parts[0] ?? 'unknown';
  if (kind === 'models' && parts.includes('trainings')) return `${method} trainings.create`;
  if (kind === 'models' && parts.includes('predictions')) return `${method} predictions.create`;
  if (parts.at(-1) === 'cancel') return `${method} ${kind}.cancel`;
  if (kind === 'webhooks') return `${method} webhooks.secret`;
  return `${method} ${kind}${parts.length > 1 ? '.get' : ''}`;
}

/**
 * A thrown client error as the status the API should answer: 504 for Replicate's silence, 503 for
 * its trouble (5xx, 429, the network), 404 for something it does not know (the caller decides
 * what that means), and 500 for any other refusal: a 4xx is about the request we built (an input
 * the model does not take, a token it does not accept), never about the customer's.
 */
export function replicateError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { name?: string; response?: { status?: number }; message?: string };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return Errors.timeout('replicate');
  const status = e.response?.status;
  if (status === 404) return Errors.notFound('replicate resource', '');
  if (status !== undefined && status >= 400 && status < 500 && status !== 429)
    return Errors.internal(`Replicate refused the request (${status}): ${e.message ?? ''}`);
  return Errors.unavailable('replicate', err);
}

/**
 * Verifies a Replicate (Standard Webhooks) signature on the raw body: HMAC-SHA256 of
 * `${id}.${timestamp}.${body}` keyed with the base64 secret after `whsec_`, compared in constant
 * time, timestamp within the tolerance. The official `validateWebhook` does neither of the last two.
 */
export function verifyReplicateWebhook(
  webhook: { webhookId: string; webhookTimestamp: string; webhookSignature: string; body: Buffer },
  secret: string,
  toleranceS = 300,
  now = Date.now(),
): void {
  const timestamp = Number(webhook.webhookTimestamp);
  if (!webhook.webhookId || !Number.isInteger(timestamp))
    throw Errors.invalidSignature('missing webhook-id or webhook-timestamp');
  if (Math.abs(now / 1000 - timestamp) > toleranceS)
    throw Errors.invalidSignature('webhook-timestamp is outside the tolerance');
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key)
    .update(`${webhook.webhookId}.${webhook.webhookTimestamp}.`)
    .update(webhook.body)
    .digest();
  const candidates = webhook.webhookSignature
    .split(' ')
    .map((part) => part.split(','))
    .filter(([version, sig]) => version === 'v1' && sig)
    .map(([, sig]) => Buffer.from(sig!, 'base64'));
  if (!candidates.some((sig) => sig.length === expected.length && timingSafeEqual(sig, expected))) {
    throw Errors.invalidSignature('webhook-signature does not match');
  }
}
