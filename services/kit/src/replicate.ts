import { createHmac, timingSafeEqual } from 'node:crypto';
import Replicate from 'replicate';
import { AppError, Errors } from './errors';
import type { Metrics } from './metrics';

export { Replicate };

/**
 * The official client, with what it lacks: a timeout on every request, metrics per operation,
 * and errors as AppError. It already retries 429 (honouring Retry-After) and 5xx on GETs;
 * a failed create is not retried here because it is not idempotent — the caller decides.
 */
export function createReplicateClient(opts: { token: string; baseUrl?: string; timeoutMs?: number; metrics?: Metrics }): Replicate {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const business = opts.metrics?.business;
  const instrumentedFetch: typeof fetch = async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const operation = operationOf(init?.method ?? 'GET', url.pathname);
    const started = process.hrtime.bigint();
    try {
      const res = await fetch(input, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      business?.replicateRequests.inc({ operation, outcome: res.status === 429 ? 'throttled' : res.ok ? 'ok' : 'error' });
      return res;
    } catch (err) {
      business?.replicateRequests.inc({ operation, outcome: 'error' });
      throw err;
    } finally {
      business?.replicateDuration.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
  return new Replicate({ auth: opts.token, baseUrl: opts.baseUrl, fetch: instrumentedFetch, useFileOutput: false });
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

/** A thrown client error as the status the API should answer: 503 for Replicate trouble, 504 for its silence. */
export function replicateError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { name?: string; response?: { status?: number }; message?: string };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return Errors.timeout('replicate');
  const status = e.response?.status;
  if (status === 404) return Errors.notFound('replicate resource', '');
  if (status === 422 || status === 400) return Errors.invalid(`replicate refused the request: ${e.message ?? ''}`);
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
  if (!webhook.webhookId || !Number.isInteger(timestamp)) throw Errors.invalidSignature('missing webhook-id or webhook-timestamp');
  if (Math.abs(now / 1000 - timestamp) > toleranceS) throw Errors.invalidSignature('webhook-timestamp is outside the tolerance');
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

/** The webhook signing secret: configured, or asked of Replicate once at boot. */
export async function webhookSecret(client: Replicate, configured?: string): Promise<string> {
  if (configured) return configured;
  const { key } = await client.webhooks.default.secret.get();
  return key;
}
