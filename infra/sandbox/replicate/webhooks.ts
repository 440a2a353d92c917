/**
 * Signed webhook delivery. Messages of one run go out one after another (a retrying `start` holds
 * back that run's `completed`), each message keeps its `webhook-id` across retries while the
 * timestamp and signature are fresh per attempt — as with Replicate's (Svix) sender.
 */
import { errorMessage, fetchWithin, pause } from './async';
import type { Faults } from './faults';
import { now, webhookId } from './ids';
import { signWebhook } from './signing';
import type { Delivery, RunKind, WebhookEvent } from './types';

const MAX_RECORDS = 10_000;

export interface WebhookMessage {
  kind: RunKind;
  runId: string;
  url: string;
  events: WebhookEvent[];
  body: string;
}

export interface WebhookSenderOptions {
  secret: string;
  /** Delays before each retry; one attempt plus one per entry. */
  retryDelaysMs: readonly number[];
  timeoutMs: number;
  faults: Faults;
  stop: AbortSignal;
  log: (m: string) => void;
}

export class WebhookSender {
  private readonly deliveries: Delivery[] = [];
  private readonly queues = new Map<string, Promise<void>>();

  constructor(private readonly o: WebhookSenderOptions) {}

  send(m: WebhookMessage): void {
    const d: Delivery = {
      webhookId: webhookId(),
      ...m,
      events: [...m.events],
      status: 'pending',
      attempts: [],
    };
    this.deliveries.push(d);
    // Only the record is forgotten; a message still in flight is delivered all the same.
    if (this.deliveries.length > MAX_RECORDS) this.deliveries.splice(0, this.deliveries.length - MAX_RECORDS);
    if (this.o.faults.takeDrop()) {
      d.status = 'dropped';
      this.o.log(`webhook ${d.webhookId} for ${m.kind} ${m.runId} [${m.events.join(',')}] dropped (fault)`);
      return;
    }
    const queued = (this.queues.get(m.runId) ?? Promise.resolve()).then(() => this.deliver(d));
    this.queues.set(m.runId, queued);
    void queued.then(() => {
      if (this.queues.get(m.runId) === queued) this.queues.delete(m.runId);
    });
  }

  list(): Delivery[] {
    return structuredClone(this.deliveries);
  }

  /** Resolves when every queued message has been delivered or given up on. */
  async idle(): Promise<void> {
    while (this.queues.size) await Promise.all([...this.queues.values()]);
  }

  // Never rejects: a failure is recorded on the delivery.
  private async deliver(d: Delivery): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.o.stop.aborted) {
        d.status = 'aborted';
        return;
      }
      const timestamp = Math.floor(Date.now() / 1000);
      const signature = signWebhook(this.o.secret, d.webhookId, timestamp, d.body);
      const record: Delivery['attempts'][number] = { at: now(), timestamp, signature };
      d.attempts.push(record);
      try {
        const res = await fetchWithin(
          d.url,
          {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'user-agent': 'replicate-sandbox-webhooks/1.0',
              'webhook-id': d.webhookId,
              'webhook-timestamp': String(timestamp),
              'webhook-signature': signature,
            },
            body: d.body,
          },
          this.o.timeoutMs,
          this.o.stop,
        );
        record.httpStatus = res.status;
        if (res.ok) {
          d.status = 'delivered';
          return;
        }
      } catch (err) {
        record.error = errorMessage(err);
      }
      const delay = this.o.retryDelaysMs[attempt];
      if (delay === undefined || this.o.stop.aborted) {
        d.status = this.o.stop.aborted ? 'aborted' : 'failed';
        this.o.log(`webhook ${d.webhookId} to ${d.url} gave up after ${d.attempts.length} attempt(s)`);
        return;
      }
      try {
        await pause(delay, this.o.stop);
      } catch {
        d.status = 'aborted';
        return;
      }
    }
  }
}
