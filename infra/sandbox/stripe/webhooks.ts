/**
 * Webhook delivery as Stripe does it: the event JSON (pretty-printed, as Stripe sends it) POSTed to
 * the endpoint with `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, a fresh
 * timestamp and signature per attempt, any non-2xx (redirects included) or network error retried
 * with exponential backoff. Stripe retries for days; the sandbox's schedule is short and set by
 * `RetryPolicy` so tests can watch retries happen.
 */
import { createHmac } from 'node:crypto';
import type { EventObject } from './objects';

export interface RetryPolicy {
  /** Attempts per event, the first included. */
  attempts: number;
  /** Delay before the second attempt; doubles each time up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** How long one attempt waits for the endpoint's answer. */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 5000,
  timeoutMs: 10_000,
};

/** One POST to the webhook endpoint (or one that could not be made). */
export interface Delivery {
  eventId: string;
  eventType: string;
  attempt: number;
  url: string;
  /** HTTP status, or null when the endpoint could not be reached or timed out. */
  status: number | null;
  ok: boolean;
  error: string | null;
  signature: string;
  startedAt: number;
  durationMs: number;
}

export function signatureHeader(
  payload: string,
  secret: string,
  timestamp = Math.floor(Date.now() / 1000),
): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

export interface SendOptions {
  /** Unix seconds to sign with (a stale one tests tolerance checks). */
  timestamp?: number;
  /** Sent verbatim instead of a computed signature. */
  signature?: string;
  /** Sign with this secret instead of the sandbox's. */
  secret?: string;
}

export class WebhookDispatcher {
  private readonly log: Delivery[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<AbortController>();
  // First attempts go out one after another in event order, so a healthy endpoint sees events in
  // the order they happened; retries then run on their own clocks, so order is not guaranteed —
  // as with Stripe.
  private firstAttempts: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    private url: string | null,
    private readonly secret: string,
    private readonly policy: RetryPolicy,
    private readonly onDelivered: (eventId: string) => void,
    private readonly logLine: (msg: string) => void,
  ) {}

  setUrl(url: string | null): void {
    this.url = url;
  }

  hasEndpoint(): boolean {
    return this.url !== null;
  }

  deliveries(): Delivery[] {
    return this.log.map((d) => ({ ...d }));
  }

  enqueue(event: EventObject): void {
    if (this.url === null || this.stopped) return;
    const first = this.firstAttempts.then(() => this.attemptWithRetries(event, 1));
    this.firstAttempts = first.catch(() => undefined);
  }

  /** One attempt, no retries: for tests that forge or replay deliveries. */
  sendOnce(event: EventObject, opts: SendOptions = {}): Promise<Delivery> {
    if (this.url === null) return Promise.reject(new Error('the Stripe sandbox has no webhook URL'));
    return this.post(this.url, event, 1, opts);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.inFlight) c.abort();
    await this.firstAttempts;
  }

  private async attemptWithRetries(event: EventObject, attempt: number): Promise<void> {
    if (this.url === null || this.stopped) return;
    const delivery = await this.post(this.url, event, attempt, {});
    if (delivery.ok) return this.onDelivered(event.id);
    if (attempt >= this.policy.attempts || this.stopped) return;
    const delay = Math.min(this.policy.baseDelayMs * 2 ** (attempt - 1), this.policy.maxDelayMs);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attemptWithRetries(event, attempt + 1);
    }, delay);
    this.timers.add(timer);
  }

  private async post(url: string, event: EventObject, attempt: number, opts: SendOptions): Promise<Delivery> {
    const payload = JSON.stringify(event, null, 2);
    const signature = opts.signature ?? signatureHeader(payload, opts.secret ?? this.secret, opts.timestamp);
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timeout = setTimeout(() => controller.abort(), this.policy.timeoutMs);
    const startedAt = Date.now();
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'Stripe-Signature': signature,
        },
        body: payload,
        redirect: 'manual',
        signal: controller.signal,
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (status < 200 || status >= 300) error = `endpoint answered ${status}`;
    } catch (err) {
      error = controller.signal.aborted ? 'timed out or aborted' : describe(err);
    } finally {
      clearTimeout(timeout);
      this.inFlight.delete(controller);
    }
    const delivery: Delivery = {
      eventId: event.id,
      eventType: event.type,
      attempt,
      url,
      status,
      ok: error === null,
      error,
      signature,
      startedAt,
      durationMs: Date.now() - startedAt,
    };
    this.log.push(delivery);
    this.logLine(`webhook ${event.type} ${event.id} attempt ${attempt} → ${status ?? error}`);
    return delivery;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
