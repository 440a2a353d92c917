import { randomUUID } from 'node:crypto';
import {
  checkCallbackUrl,
  decodeCursor,
  Errors,
  pageOf,
  pageSize,
  requireUuid,
  type Clock,
  type OutboxEvent,
} from '@atelier/kit';
import type { PaymentRepositories, Store } from '../repositories';
import type { DeliveryRow, DeliveryStatus } from '../repositories/webhook-delivery.repository';
import type { EndpointRow } from '../repositories/webhook-endpoint.repository';
import { checkEventTypes, newSecret } from './webhook.rules';

export interface WebhookOptions {
  /** http and private destinations allowed (local development and tests). */
  allowPrivate: boolean;
  /** How long a rotated-out secret keeps signing. */
  rotationOverlapMs: number;
}

const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed'];

/**
 * The account's webhook endpoints, the events announced to it and their deliveries. Billing owns
 * them all (docs/architecture.md, "Callbacks"): its own changes announce their events through
 * `announce` in their own transaction; trainer's and inferencer's reach `publish` from their
 * outboxes.
 */
export class WebhookService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly o: WebhookOptions,
  ) {}

  async createEndpoint(input: {
    accountId: string;
    endpointId: string;
    url: string;
    events: string[];
    description: string;
  }): Promise<{ endpoint: EndpointRow; secret: string }> {
    const accountId = requireUuid('account_id', input.accountId);
    const id = requireUuid('endpoint_id', input.endpointId);
    const url = checkCallbackUrl(input.url, this.o.allowPrivate);
    const events = checkEventTypes(input.events);
    if (input.description.length > 500) throw Errors.invalid('description must be at most 500 characters');
    const secret = newSecret();
    const repo = this.store.repos.webhookEndpoints;
    const created = await repo.insert({ id, accountId, url, events, description: input.description, secret });
    if (created) return { endpoint: created, secret };
    // The id is derived from the Idempotency-Key: a replay after the first answer was lost.
    const existing = await repo.find(accountId, id);
    if (!existing) throw Errors.idReused('endpoint', id);
    return { endpoint: existing, secret: existing.secret };
  }

  async listEndpoints(accountId: string): Promise<EndpointRow[]> {
    return this.store.repos.webhookEndpoints.list(requireUuid('account_id', accountId));
  }

  async deleteEndpoint(accountId: string, endpointId: string): Promise<void> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('endpoint_id', endpointId);
    if (!(await this.store.repos.webhookEndpoints.delete(account, id))) throw Errors.notFound('endpoint', id);
  }

  /** A new secret; the old one keeps signing (a second signature) for the overlap. */
  async rotateSecret(
    accountId: string,
    endpointId: string,
  ): Promise<{ endpoint: EndpointRow; secret: string }> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('endpoint_id', endpointId);
    const secret = newSecret();
    const until = new Date(this.clock.now().getTime() + this.o.rotationOverlapMs);
    const endpoint = await this.store.repos.webhookEndpoints.rotate(account, id, secret, until);
    if (!endpoint) throw Errors.notFound('endpoint', id);
    return { endpoint, secret };
  }

  /** The secret of per-request callback URLs: made on first call, rotated on every later one. */
  async rotateCallbackSecret(accountId: string): Promise<{ secret: string; previousUntil: Date | null }> {
    const account = requireUuid('account_id', accountId);
    const secret = newSecret();
    const until = new Date(this.clock.now().getTime() + this.o.rotationOverlapMs);
    const row = await this.store.repos.webhookEndpoints.rotateCallback(account, randomUUID(), secret, until);
    return { secret, previousUntil: row.previous_secret ? row.previous_secret_expires_at : null };
  }

  /** Events from another service's outbox; each id is applied once however often it comes. */
  async publish(events: OutboxEvent[]): Promise<number> {
    for (const e of events) {
      requireUuid('event_id', e.id);
      requireUuid('account_id', e.accountId);
      checkEventTypes([e.type]);
      if (e.callbackUrl) checkCallbackUrl(e.callbackUrl, true);
    }
    // One transaction for the batch: one commit instead of one per event.
    return this.store.transaction(async (repos) => {
      let accepted = 0;
      for (const e of events) if (await this.announce(repos, e)) accepted++;
      return accepted;
    });
  }

  /**
   * Records the event and its deliveries on the caller's transaction, so the event exists if and
   * only if the change it announces committed. False when the event id was recorded before.
   */
  async announce(repos: PaymentRepositories, e: OutboxEvent): Promise<boolean> {
    const payload = JSON.stringify({
      id: e.id,
      type: e.type,
      created_at: e.createdAt.toISOString(),
      data: e.data,
    });
    const fresh = await repos.webhookEvents.insert({
      id: e.id,
      accountId: e.accountId,
      type: e.type,
      payload,
      createdAt: e.createdAt,
    });
    if (!fresh) return false;
    await repos.webhookEvents.fanOut({
      eventId: e.id,
      accountId: e.accountId,
      type: e.type,
      callbackUrl: e.callbackUrl,
      newCallbackId: randomUUID(),
      newCallbackSecret: newSecret(),
      now: this.clock.now(),
    });
    return true;
  }

  async listDeliveries(
    accountId: string,
    status: string,
    limit: number,
    cursor: string,
  ): Promise<{ deliveries: DeliveryRow[]; nextCursor: string }> {
    const account = requireUuid('account_id', accountId);
    if (status && !(DELIVERY_STATUSES as readonly string[]).includes(status))
      throw Errors.invalid(`status must be one of ${DELIVERY_STATUSES.join(', ')}`);
    const size = pageSize(limit);
    const rows = await this.store.repos.webhookDeliveries.listByAccount(
      account,
      (status || undefined) as DeliveryStatus | undefined,
      decodeCursor(cursor),
      size + 1,
    );
    const { items, nextCursor } = pageOf(rows, size);
    return { deliveries: items, nextCursor };
  }

  /** Due now again, with the same webhook-id; a disabled endpoint is enabled again by it. */
  async redeliver(accountId: string, deliveryId: string): Promise<DeliveryRow> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('delivery_id', deliveryId);
    const row = await this.store.transaction(async (repos) => {
      const delivery = await repos.webhookDeliveries.redeliver(account, id, this.clock.now());
      if (delivery) await repos.webhookEndpoints.enable(account, delivery.endpoint_id);
      return delivery;
    });
    if (!row) throw Errors.notFound('delivery', id);
    return row;
  }
}
