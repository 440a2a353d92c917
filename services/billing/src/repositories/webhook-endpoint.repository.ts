import type { Queryable } from '@atelier/kit';

export interface EndpointRow {
  id: string;
  account_id: string;
  kind: 'endpoint' | 'callback';
  url: string | null;
  events: string[];
  description: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  failing_since: Date | null;
  disabled_at: Date | null;
  disabled_reason: string | null;
}

const COLUMNS = `id, account_id, kind, url, events, description, secret, previous_secret,
  previous_secret_expires_at, created_at, failing_since, disabled_at, disabled_reason`;

/** billing.webhook_endpoints: one statement per method, every read and write scoped to the account. */
export class WebhookEndpointRepository {
  constructor(private readonly db: Queryable) {}

  /** Undefined when the id exists already (a replayed create): the caller reads it back. */
  async insert(e: {
    id: string;
    accountId: string;
    url: string;
    events: string[];
    description: string;
    secret: string;
  }): Promise<EndpointRow | undefined> {
    const { rows } = await this.db.query<EndpointRow>(
      `INSERT INTO billing.webhook_endpoints (id, account_id, url, events, description, secret)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}`,
      [e.id, e.accountId, e.url, e.events, e.description, e.secret],
    );
    return rows[0];
  }

  async find(accountId: string, id: string): Promise<EndpointRow | undefined> {
    const { rows } = await this.db.query<EndpointRow>(
      `SELECT ${COLUMNS} FROM billing.webhook_endpoints WHERE id = $1 AND account_id = $2 AND kind = 'endpoint'`,
      [id, accountId],
    );
    return rows[0];
  }

  async list(accountId: string): Promise<EndpointRow[]> {
    const { rows } = await this.db.query<EndpointRow>(
      `SELECT ${COLUMNS} FROM billing.webhook_endpoints WHERE account_id = $1 AND kind = 'endpoint'
        ORDER BY created_at, id`,
      [accountId],
    );
    return rows;
  }

  /** An erased account's endpoints and callback secret; their deliveries go with them (ON DELETE CASCADE). */
  async deleteOfAccount(accountId: string): Promise<number> {
    const { rowCount } = await this.db.query(`DELETE FROM billing.webhook_endpoints WHERE account_id = $1`, [
      accountId,
    ]);
    return rowCount ?? 0;
  }

  /** Its deliveries go with it (ON DELETE CASCADE). */
  async delete(accountId: string, id: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `DELETE FROM billing.webhook_endpoints WHERE id = $1 AND account_id = $2 AND kind = 'endpoint'`,
      [id, accountId],
    );
    return rowCount === 1;
  }

  /** The current secret becomes the previous one, signing alongside the new one until `previousUntil`. */
  async rotate(
    accountId: string,
    id: string,
    secret: string,
    previousUntil: Date,
  ): Promise<EndpointRow | undefined> {
    const { rows } = await this.db.query<EndpointRow>(
      `UPDATE billing.webhook_endpoints
          SET previous_secret = secret, secret = $3, previous_secret_expires_at = $4
        WHERE id = $1 AND account_id = $2 AND kind = 'endpoint' RETURNING ${COLUMNS}`,
      [id, accountId, secret, previousUntil],
    );
    return rows[0];
  }

  /** The account's callback secret: created, or rotated like an endpoint's. */
  async rotateCallback(
    accountId: string,
    newId: string,
    secret: string,
    previousUntil: Date,
  ): Promise<EndpointRow> {
    const { rows } = await this.db.query<EndpointRow>(
      `INSERT INTO billing.webhook_endpoints (id, account_id, kind, secret) VALUES ($1, $2, 'callback', $3)
       ON CONFLICT (account_id) WHERE kind = 'callback' DO UPDATE
          SET previous_secret = billing.webhook_endpoints.secret, secret = EXCLUDED.secret,
              previous_secret_expires_at = $4
       RETURNING ${COLUMNS}`,
      [newId, accountId, secret, previousUntil],
    );
    return rows[0]!;
  }

  async markHealthy(id: string): Promise<void> {
    await this.db.query(
      'UPDATE billing.webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL',
      [id],
    );
  }

  /** Notes a failure; returns the endpoint as it is now (failing_since kept from the first failure). */
  async markFailing(id: string, now: Date): Promise<EndpointRow | undefined> {
    const { rows } = await this.db.query<EndpointRow>(
      `UPDATE billing.webhook_endpoints SET failing_since = COALESCE(failing_since, $2)
        WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, now],
    );
    return rows[0];
  }

  /** A redelivery is the customer saying the endpoint works again. */
  async enable(accountId: string, id: string): Promise<void> {
    await this.db.query(
      `UPDATE billing.webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, failing_since = NULL
        WHERE id = $1 AND account_id = $2 AND disabled_at IS NOT NULL`,
      [id, accountId],
    );
  }

  /** Undefined when it was disabled already (so the account is told once). */
  async disable(id: string, now: Date, reason: string): Promise<EndpointRow | undefined> {
    const { rows } = await this.db.query<EndpointRow>(
      `UPDATE billing.webhook_endpoints SET disabled_at = $2, disabled_reason = $3
        WHERE id = $1 AND kind = 'endpoint' AND disabled_at IS NULL RETURNING ${COLUMNS}`,
      [id, now, reason],
    );
    return rows[0];
  }
}
