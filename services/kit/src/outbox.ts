import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { billing } from '@atelier/protos';
import { env } from './config';
import type { Queryable } from './store';

/** The events Atelier announces to its customers' servers (PRODUCT.md, "Callbacks"). */
export const EVENT_TYPES = [
  'payment.paid',
  'payment.refunded',
  'version.processing',
  'version.succeeded',
  'version.failed',
  'version.canceled',
  'prompt.succeeded',
  'prompt.failed',
  'prompt.canceled',
  'webhook_endpoint.disabled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** One event about to be announced: written in the transaction of the change it announces. */
export interface OutboxEvent {
  id: string;
  accountId: string;
  type: EventType;
  createdAt: Date;
  /** The resource as the REST API's GET returns it. */
  data: unknown;
  /** The resource's own per-request callback URL, if it was given one. */
  callbackUrl: string | null;
}

export const newEvent = (
  accountId: string,
  type: EventType,
  data: unknown,
  callbackUrl: string | null = null,
  now: Date = new Date(),
): OutboxEvent => ({ id: randomUUID(), accountId, type, createdAt: now, data, callbackUrl });

interface OutboxRow {
  id: string;
  account_id: string;
  type: EventType;
  data: string;
  callback_url: string | null;
  created_at: Date;
}

/**
 * `<schema>.outbox` of the service that owns the schema (trainer, inferencer: see
 * docs/architecture.md, "Callbacks"). The table shape is the same in every schema, so the
 * repository and the relay are written once, here. One statement per method.
 */
export class OutboxRepository {
  private readonly table: string;

  constructor(
    private readonly db: Queryable,
    schema: 'trainer' | 'inferencer',
  ) {
    this.table = `${schema}.outbox`;
  }

  /** Call it on the transaction's client that makes the change. */
  async insert(e: OutboxEvent): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.table} (id, account_id, type, data, callback_url, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [e.id, e.accountId, e.type, JSON.stringify(e.data), e.callbackUrl, e.createdAt],
    );
  }

  /** Leases up to `limit` due events for `leaseMs`: other replicas skip them meanwhile. */
  async claim(limit: number, leaseMs: number): Promise<OutboxEvent[]> {
    const { rows } = await this.db.query<OutboxRow>(
      `UPDATE ${this.table} o SET due_at = now() + $2 * interval '1 millisecond'
        WHERE o.id IN (SELECT id FROM ${this.table} WHERE due_at <= now()
                        ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING o.id, o.account_id, o.type, o.data, o.callback_url, o.created_at`,
      [limit, leaseMs],
    );
    return rows.map((r) => ({
      id: r.id,
      accountId: r.account_id,
      type: r.type,
      createdAt: r.created_at,
      data: JSON.parse(r.data) as unknown,
      callbackUrl: r.callback_url,
    }));
  }

  async remove(id: string): Promise<void> {
    await this.db.query(`DELETE FROM ${this.table} WHERE id = $1`, [id]);
  }

  async oldestDue(): Promise<Date | null> {
    const { rows } = await this.db.query<{ due: Date | null }>(
      `SELECT min(due_at) AS due FROM ${this.table} WHERE due_at <= now()`,
    );
    return rows[0]?.due ?? null;
  }
}

/** Where the relay hands events: billing's PublishEvents, idempotent per event id. */
export type PublishEvents = (events: OutboxEvent[]) => Promise<void>;

/**
 * The outbox relay as a claim-loop job: claim (lease) due events, publish each, delete it. A
 * crash between publish and delete publishes again, which the receiver ignores (event id).
 */
export function outboxRelayJob(outbox: OutboxRepository, publish: PublishEvents, leaseMs = 30_000) {
  return {
    name: 'outbox_relay',
    claim: (limit: number) => outbox.claim(limit, leaseMs),
    handle: async (e: OutboxEvent) => {
      await publish([e]);
      await outbox.remove(e.id);
    },
    idOf: (e: OutboxEvent) => e.id,
    oldestDue: () => outbox.oldestDue(),
  };
}

/** The settings of a service's outbox relay, spread into its config schema. */
export const outboxEnv = {
  /** How often the relay looks for events to hand to billing. */
  OUTBOX_INTERVAL_MS: env.ms(250),
  OUTBOX_BATCH: z.coerce.number().int().positive().default(50),
  OUTBOX_CONCURRENCY: z.coerce.number().int().positive().default(8),
};

/** An event on the wire to billing's PublishEvents. */
export const toOutboundEvent = (e: OutboxEvent): billing.OutboundEvent => ({
  eventId: e.id,
  accountId: e.accountId,
  type: e.type,
  createdAt: e.createdAt,
  dataJson: JSON.stringify(e.data),
  callbackUrl: e.callbackUrl ?? '',
});
