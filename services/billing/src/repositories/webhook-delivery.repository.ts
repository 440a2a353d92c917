import { createdKeySql, type Cursor, type Queryable } from '@atelier/kit';

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface DeliveryRow {
  id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  endpoint_kind: 'endpoint' | 'callback';
  account_id: string;
  url: string;
  status: DeliveryStatus;
  attempts: number;
  last_http_status: number | null;
  last_error: string | null;
  next_attempt_at: Date;
  created_at: Date;
  delivered_at: Date | null;
}

/** A claimed attempt: the delivery, the exact body and the secrets to sign it with. */
export interface ClaimedDelivery extends DeliveryRow {
  payload: string;
  event_created_at: Date;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  disabled_at: Date | null;
}

const COLUMNS = `d.id, d.event_id, e.type AS event_type, d.endpoint_id, p.kind AS endpoint_kind, d.account_id,
  d.url, d.status, d.attempts, d.last_http_status, d.last_error, d.next_attempt_at, d.created_at, d.delivered_at`;

/** billing.webhook_deliveries. An attempt's outcome is written only by the claim that made it. */
export class WebhookDeliveryRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Claims up to `limit` due deliveries and leases them for `leaseMs`, in one statement: the
   * attempt count goes up here, so each claim is its own attempt and concurrent claims (any
   * number of replicas) take disjoint rows (SKIP LOCKED); the lease keeps every other claim away
   * until it ends, after which a replica that died mid-attempt is simply retried.
   */
  async claimDue(now: Date, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    const { rows } = await this.db.query<ClaimedDelivery>(
      `WITH due AS (
         SELECT id FROM billing.webhook_deliveries
          WHERE status = 'pending' AND next_attempt_at <= $1
          ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
       )
       UPDATE billing.webhook_deliveries d
          SET attempts = d.attempts + 1, next_attempt_at = $1::timestamptz + $3 * interval '1 millisecond'
         FROM due, billing.webhook_events e, billing.webhook_endpoints p
        WHERE d.id = due.id AND e.id = d.event_id AND p.id = d.endpoint_id
       RETURNING ${COLUMNS}, e.payload, e.created_at AS event_created_at, p.secret, p.previous_secret,
                 p.previous_secret_expires_at, p.disabled_at`,
      [now, limit, leaseMs],
    );
    return rows;
  }

  async markDelivered(id: string, attempt: number, httpStatus: number, now: Date): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE billing.webhook_deliveries
          SET status = 'delivered', delivered_at = $4, last_http_status = $3, last_error = NULL
        WHERE id = $1 AND attempts = $2 AND status = 'pending'`,
      [id, attempt, httpStatus, now],
    );
    return rowCount === 1;
  }

  /** A failed attempt: due again at `nextAt`, or failed for good when it is null. */
  async markAttemptFailed(
    id: string,
    attempt: number,
    outcome: { httpStatus: number | null; error: string; nextAt: Date | null },
  ): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE billing.webhook_deliveries
          SET last_http_status = $3, last_error = $4,
              status = CASE WHEN $5::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
              next_attempt_at = COALESCE($5::timestamptz, next_attempt_at)
        WHERE id = $1 AND attempts = $2 AND status = 'pending'`,
      [id, attempt, outcome.httpStatus, outcome.error.slice(0, 500), outcome.nextAt],
    );
    return rowCount === 1;
  }

  async listByAccount(
    accountId: string,
    status: DeliveryStatus | undefined,
    after: Cursor | undefined,
    limit: number,
  ): Promise<Array<DeliveryRow & { createdKey: string }>> {
    const { rows } = await this.db.query<DeliveryRow & { created_key: string }>(
      `SELECT ${COLUMNS}, ${createdKeySql('d.created_at')} AS created_key
         FROM billing.webhook_deliveries d
         JOIN billing.webhook_events e ON e.id = d.event_id
         JOIN billing.webhook_endpoints p ON p.id = d.endpoint_id
        WHERE d.account_id = $1 AND ($2::text IS NULL OR d.status = $2)
          AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3::timestamptz, $4::uuid))
        ORDER BY d.created_at DESC, d.id DESC
        LIMIT $5`,
      [accountId, status ?? null, after?.createdKey ?? null, after?.id ?? null, limit],
    );
    return rows.map(({ created_key, ...row }) => ({ ...row, createdKey: created_key }));
  }

  /** Due at `now` again, whatever it was; undefined when not the account's. */
  async redeliver(accountId: string, id: string, now: Date): Promise<DeliveryRow | undefined> {
    const { rows } = await this.db.query<DeliveryRow>(
      `UPDATE billing.webhook_deliveries d SET status = 'pending', next_attempt_at = $3, delivered_at = NULL
         FROM billing.webhook_events e, billing.webhook_endpoints p
        WHERE d.id = $1 AND d.account_id = $2 AND e.id = d.event_id AND p.id = d.endpoint_id
       RETURNING ${COLUMNS}`,
      [id, accountId, now],
    );
    return rows[0];
  }

  /** When the oldest delivery still pending was created (the backlog's age), or null. */
  async oldestPending(): Promise<Date | null> {
    const { rows } = await this.db.query<{ oldest: Date | null }>(
      `SELECT min(created_at) AS oldest FROM billing.webhook_deliveries WHERE status = 'pending'`,
    );
    return rows[0]?.oldest ?? null;
  }
}
