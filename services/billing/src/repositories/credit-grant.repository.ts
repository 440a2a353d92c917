import type { Queryable } from '@atelier/kit';

export interface GrantRow {
  payment_id: string;
  version_id: string;
  amount: number;
  revoked: number;
}

/** billing.credit_grants: at most one grant per payment (its primary key). */
export class CreditGrantRepository {
  constructor(private readonly db: Queryable) {}

  /** False when this payment already granted its credits. */
  async insert(paymentId: string, versionId: string, amount: number): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'INSERT INTO billing.credit_grants (payment_id, version_id, amount) VALUES ($1, $2, $3) ON CONFLICT (payment_id) DO NOTHING',
      [paymentId, versionId, amount],
    );
    return rowCount === 1;
  }

  async lock(paymentId: string): Promise<GrantRow | undefined> {
    const { rows } = await this.db.query<GrantRow>(
      'SELECT payment_id, version_id, amount, revoked FROM billing.credit_grants WHERE payment_id = $1 FOR UPDATE',
      [paymentId],
    );
    return rows[0];
  }

  /**
   * Grants of refunded payments on this version that still hold credits: what a refund could not
   * take back while those credits were reserved. Locked, to be revoked as the credits come back.
   */
  async lockOutstandingRefunded(versionId: string): Promise<GrantRow[]> {
    const { rows } = await this.db.query<GrantRow>(
      `SELECT g.payment_id, g.version_id, g.amount, g.revoked
         FROM billing.credit_grants g JOIN billing.payments p ON p.id = g.payment_id
        WHERE g.version_id = $1 AND g.revoked < g.amount AND p.status = 'refunded'
        ORDER BY g.created_at, g.payment_id
          FOR UPDATE OF g`,
      [versionId],
    );
    return rows;
  }

  async addRevoked(paymentId: string, amount: number): Promise<void> {
    await this.db.query('UPDATE billing.credit_grants SET revoked = revoked + $2 WHERE payment_id = $1', [
      paymentId,
      amount,
    ]);
  }
}
