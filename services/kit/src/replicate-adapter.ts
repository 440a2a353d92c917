import { setTimeout as sleep } from 'node:timers/promises';
import type Replicate from 'replicate';
import { backoffMs } from './backoff';
import { AppError, Errors } from './errors';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { createReplicateClient, replicateError, verifyReplicateWebhook } from './replicate';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 300, maxDelayMs: 3_000 };

/** A Replicate failure as the AppError the API answers with, carrying Replicate's HTTP status. */
export type ReplicateFailure = AppError & { replicateStatus?: number };

/**
 * The one retry policy, so no layer multiplies another: the kit's fetch waits out Retry-After on
 * a 429; the official client re-sends a GET that failed with 5xx or a network error; nobody
 * re-sends a create, since a create that failed may have started a run and a second would train
 * (and bill) twice. What is left is an idempotent POST (cancel, creating a model by name), retried
 * here with backoff on 5xx and network failures. Failures are thrown as AppError (503, 504, 404,
 * 500) carrying Replicate's HTTP status as `replicateStatus`.
 */
export async function withReplicateRetries<T>(
  op: () => Promise<T>,
  opts: { idempotent: boolean; policy?: RetryPolicy; wait?: (ms: number) => Promise<unknown> },
): Promise<T> {
  const policy = opts.policy ?? DEFAULT_RETRY;
  const wait = opts.wait ?? ((ms: number) => sleep(ms));
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      const delay = attempt < policy.attempts ? retryDelayMs(err, attempt, opts.idempotent, policy) : null;
      if (delay === null) throw Object.assign(replicateError(err), { replicateStatus: statusOf(err) });
      await wait(delay);
    }
  }
}

/** How long to wait before retrying after `err`, or null when it must not be retried. */
export function retryDelayMs(
  err: unknown,
  attempt: number,
  idempotent: boolean,
  policy: RetryPolicy,
): number | null {
  const status = statusOf(err);
  const transient = status === undefined ? isNetworkError(err) : status >= 500;
  if (!transient || !idempotent) return null;
  return backoffMs(attempt, { baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs });
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { response?: { status?: unknown } } | null)?.response?.status;
  return typeof status === 'number' ? status : undefined;
}

function isNetworkError(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name;
  return name === 'TypeError' || name === 'TimeoutError' || name === 'AbortError';
}

/** Replicate's HTTP status behind a failure thrown by `ReplicateAdapter.call`. */
export const replicateStatusOf = (err: unknown): number | undefined =>
  (err as { replicateStatus?: number } | null)?.replicateStatus;

/** A Replicate webhook as the gateway forwards it: the Standard Webhooks headers and the raw body. */
export interface SignedWebhook {
  webhookId: string;
  webhookTimestamp: string;
  webhookSignature: string;
  body: Buffer;
}

export type WebhookOutcome = 'applied' | 'duplicate' | 'ignored';

/**
 * The webhook inbox of one kind of run. `receive` verifies the signature (timestamp tolerance,
 * constant time) against the signing secret, parses the body, and hands the event to `apply`,
 * which must dedupe by webhook-id IN ITS OWN TRANSACTION — record the id with
 * `WebhookEventRepository.record` in the transaction that applies the change, so the id is kept
 * if and only if the change is — and say what happened. A body that is signed but not a readable
 * run is `ignored` (answered 200: Replicate's retries could never succeed; the reconciler polls
 * the run anyway). Every outcome is counted in atelier_webhook_deliveries_total{source=replicate}.
 */
export interface WebhookInbox<E> {
  receive(
    webhook: SignedWebhook,
    apply: (event: E, webhookId: string) => Promise<WebhookOutcome>,
  ): Promise<{ outcome: WebhookOutcome; event?: E }>;
}

export interface ReplicateSettings {
  token: string;
  /** Points the official client at the sandbox (must end in /v1); unset in production. */
  baseUrl?: string;
  timeoutMs: number;
  /** Unset: asked of Replicate on the first webhook (and again after a failure). */
  webhookSecret?: string;
  /** The gateway's public /api/v1/webhooks/replicate; `webhookUrl(kind)` adds the routing kind. */
  publicWebhookUrl: string;
  metrics?: Metrics;
  retry?: RetryPolicy;
}

/** Everything a service does with Replicate goes through this one adapter. */
export interface ReplicateAdapter {
  /** The official client, behind the kit's fetch (Retry-After, timeouts, metrics, creates sent once). */
  client: Replicate;
  /** Runs one client call under the retry policy; `idempotent` marks the POSTs safe to repeat. */
  call: <T>(op: (client: Replicate) => Promise<T>, opts?: { idempotent?: boolean }) => Promise<T>;
  /** Where Replicate should send a run's webhooks; the gateway routes them by `kind`. */
  webhookUrl(kind: 'training' | 'prediction'): string;
  /** The inbox for webhooks about one kind of run, `parse` reading its run object. */
  inbox<E>(parse: (body: unknown) => E | undefined, logger: Logger): WebhookInbox<E>;
}

export function createReplicate(s: ReplicateSettings): ReplicateAdapter {
  const client = createReplicateClient({
    token: s.token,
    baseUrl: s.baseUrl,
    timeoutMs: s.timeoutMs,
    metrics: s.metrics,
  });
  const call = <T>(op: (c: Replicate) => Promise<T>, opts: { idempotent?: boolean } = {}) =>
    withReplicateRetries(() => op(client), { idempotent: opts.idempotent ?? false, policy: s.retry });

  let secret: Promise<string> | undefined;
  const signingSecret = (): Promise<string> => {
    secret ??= s.webhookSecret
      ? Promise.resolve(s.webhookSecret)
      : call((c) => c.webhooks.default.secret.get()).then(
          ({ key }) => key,
          (err: unknown) => {
            secret = undefined; // asked again on the next webhook
            throw Errors.unavailable('replicate', err);
          },
        );
    return secret;
  };

  const count = (outcome: WebhookOutcome | 'rejected') =>
    s.metrics?.business.webhooks.inc({ source: 'replicate', outcome });

  return {
    client,
    call,
    webhookUrl(kind) {
      const url = new URL(s.publicWebhookUrl);
      url.searchParams.set('kind', kind);
      return url.toString();
    },
    inbox<E>(parse: (body: unknown) => E | undefined, logger: Logger): WebhookInbox<E> {
      return {
        async receive(webhook, apply) {
          try {
            verifyReplicateWebhook(webhook, await signingSecret());
          } catch (err) {
            if (err instanceof AppError && err.code === 'invalid_signature') count('rejected');
            throw err;
          }
          let body: unknown;
          try {
            body = JSON.parse(webhook.body.toString('utf8'));
          } catch {
            body = undefined;
          }
          const event = parse(body);
          if (event === undefined) {
            logger.warn(
              { webhook_id: webhook.webhookId },
              'signed Replicate webhook without a readable run; ignored',
            );
            count('ignored');
            return { outcome: 'ignored' };
          }
          const outcome = await apply(event, webhook.webhookId);
          count(outcome);
          return { outcome, event };
        },
      };
    },
  };
}
