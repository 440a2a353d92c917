import type { Queryable } from '@atelier/kit';

/** billing.webhook_events and their fan-out into deliveries. */
export class WebhookEventRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * False when the event id was published before (a relay's retry) or the account is erased (an
   * event its deletion announced after the end): nothing to do.
   */
  async insert(e: {
    id: string;
    accountId: string;
    type: string;
    payload: string;
    createdAt: Date;
  }): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO billing.webhook_events (id, account_id, type, payload, created_at)
       SELECT $1, $2, $3, $4, $5
        WHERE NOT EXISTS (SELECT 1 FROM billing.accounts WHERE id = $2 AND deleted_at IS NOT NULL)
       ON CONFLICT (id) DO NOTHING`,
      [e.id, e.accountId, e.type, e.payload, e.createdAt],
    );
    return rowCount === 1;
  }

  /** An erased account's events; run after its endpoints (and so its deliveries) are gone. */
  async deleteOfAccount(accountId: string): Promise<number> {
    const { rowCount } = await this.db.query(`DELETE FROM billing.webhook_events WHERE account_id = $1`, [
      accountId,
    ]);
    return rowCount ?? 0;
  }

  /**
   * One delivery per enabled endpoint of the account subscribed to the type, and one to the
   * resource's callback URL (signed with the account's callback secret, created here on first
   * use), due at `now`. One statement; the no-op DO UPDATE returns the callback row's id even
   * when another transaction created it meanwhile.
   */
  async fanOut(f: {
    eventId: string;
    accountId: string;
    type: string;
    callbackUrl: string | null;
    newCallbackId: string;
    newCallbackSecret: string;
    now: Date;
  }): Promise<number> {
    const { rowCount } = await this.db.query(
      `WITH cb AS (
         INSERT INTO billing.webhook_endpoints (id, account_id, kind, secret)
         SELECT $5, $2, 'callback', $6 WHERE $4::text IS NOT NULL
         ON CONFLICT (account_id) WHERE kind = 'callback' DO UPDATE SET kind = EXCLUDED.kind
         RETURNING id
       ), targets AS (
         SELECT id, url FROM billing.webhook_endpoints
          WHERE account_id = $2 AND kind = 'endpoint' AND disabled_at IS NULL
            AND (cardinality(events) = 0 OR $3 = ANY(events) OR $3 = 'webhook_endpoint.disabled')
         UNION ALL
         SELECT cb.id, $4::text FROM cb
       )
       INSERT INTO billing.webhook_deliveries (id, event_id, endpoint_id, account_id, url, next_attempt_at)
       SELECT gen_random_uuid(), $1, t.id, $2, t.url, $7 FROM targets t
       ON CONFLICT (event_id, endpoint_id, url) DO NOTHING`,
      [f.eventId, f.accountId, f.type, f.callbackUrl, f.newCallbackId, f.newCallbackSecret, f.now],
    );
    return rowCount ?? 0;
  }
}
