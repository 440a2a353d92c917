import { newEvent, type Clock, type Logger, type Metrics } from '@atelier/kit';
import type { Store } from '../repositories';
import type { ClaimedDelivery } from '../repositories/webhook-delivery.repository';
import type { EndpointRow } from '../repositories/webhook-endpoint.repository';
import type { WebhookService } from './webhook.service';
import {
  failedTooLong,
  liveSecrets,
  nextAttemptAt,
  signatureHeader,
  type RetryPolicy,
} from './webhook.rules';

/** One HTTP attempt: the status the customer's server answered, or why there was none. */
export type SendResult = { status: number } | { error: string };

/** The HTTP client of deliveries (src/clients/webhook.client.ts): SSRF guard, timeout, no redirects. */
export interface WebhookSender {
  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult>;
}

export interface DeliveryJobOptions {
  retry: RetryPolicy;
  /** An endpoint failing for this long is disabled. */
  disableAfterMs: number;
  /** Longer than one attempt can take (its timeout plus the bookkeeping). */
  leaseMs: number;
}

export interface DeliveryJobDeps {
  store: Store;
  clock: Clock;
  sender: WebhookSender;
  webhooks: WebhookService;
  /** The endpoint as GET /api/v1/webhook-endpoints shows it: the data of webhook_endpoint.disabled. */
  endpointView: (row: EndpointRow) => unknown;
  logger: Logger;
  metrics: Metrics['business'];
  random?: () => number;
}

/**
 * Delivery of callbacks as a claim-loop job: claim due deliveries (one statement; the claim is
 * the attempt), sign with every live secret of the endpoint, POST once, and record the outcome
 * guarded by the attempt number. A replica that dies mid-attempt leaves the delivery leased; it
 * is attempted again, with the same webhook-id, when the lease ends.
 */
export function webhookDeliveryJob(d: DeliveryJobDeps, o: DeliveryJobOptions) {
  const repos = d.store.repos;
  const random = d.random ?? Math.random;

  const failed = async (row: ClaimedDelivery, httpStatus: number | null, error: string, now: Date) => {
    const nextAt = nextAttemptAt(o.retry, row.attempts, row.event_created_at, now, random);
    const disabled = await d.store.transaction(async (tx) => {
      if (
        !(await tx.webhookDeliveries.markAttemptFailed(row.id, row.attempts, { httpStatus, error, nextAt }))
      )
        return undefined;
      if (row.endpoint_kind !== 'endpoint') return undefined;
      const endpoint = await tx.webhookEndpoints.markFailing(row.endpoint_id, now);
      if (!endpoint || !failedTooLong(endpoint.failing_since, now, o.disableAfterMs)) return undefined;
      const off = await tx.webhookEndpoints.disable(
        endpoint.id,
        now,
        `failing since ${endpoint.failing_since!.toISOString()}`,
      );
      // Told on its other endpoints (this one is disabled now, so the fan-out skips it).
      if (off)
        await d.webhooks.announce(
          tx,
          newEvent(off.account_id, 'webhook_endpoint.disabled', d.endpointView(off), null, now),
        );
      return off;
    });
    d.metrics.callbacks.inc({ outcome: nextAt ? 'retry' : 'failed' });
    if (disabled)
      d.logger.warn(
        { endpoint_id: disabled.id, account_id: disabled.account_id },
        'webhook endpoint disabled',
      );
  };

  const handle = async (row: ClaimedDelivery): Promise<void> => {
    const now = d.clock.now();
    if (row.disabled_at) {
      await repos.webhookDeliveries.markAttemptFailed(row.id, row.attempts, {
        httpStatus: null,
        error: 'the endpoint is disabled',
        nextAt: null,
      });
      d.metrics.callbacks.inc({ outcome: 'skipped' });
      return;
    }
    const timestamp = Math.floor(now.getTime() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Atelier-Webhooks/1',
      // The event id: the same on every attempt and every redelivery, so receivers dedupe on it.
      'webhook-id': row.event_id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader(liveSecrets(row, now), row.event_id, timestamp, row.payload),
    };
    const result = await d.sender.send(row.url, headers, row.payload);
    const done = d.clock.now();
    if ('status' in result && result.status >= 200 && result.status < 300) {
      await d.store.transaction(async (tx) => {
        if (await tx.webhookDeliveries.markDelivered(row.id, row.attempts, result.status, done))
          await tx.webhookEndpoints.markHealthy(row.endpoint_id);
      });
      d.metrics.callbacks.inc({ outcome: 'delivered' });
      return;
    }
    const status = 'status' in result ? result.status : null;
    await failed(row, status, 'status' in result ? `HTTP ${result.status}` : result.error, done);
  };

  return {
    name: 'webhook_delivery',
    claim: (limit: number) => repos.webhookDeliveries.claimDue(d.clock.now(), limit, o.leaseMs),
    handle,
    idOf: (row: ClaimedDelivery) => row.id,
    afterPass: async () => {
      const oldest = await repos.webhookDeliveries.oldestPending();
      d.metrics.callbackBacklogAge.set(
        oldest ? Math.max(0, (d.clock.now().getTime() - oldest.getTime()) / 1000) : 0,
      );
    },
  };
}
