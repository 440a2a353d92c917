import type { Queryable } from '@atelier/kit';

/** billing.stripe_events: the ids of the events already applied. */
export class StripeEventRepository {
  constructor(private readonly db: Queryable) {}

  async exists(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query('SELECT 1 FROM billing.stripe_events WHERE id = $1', [id]);
    return rowCount === 1;
  }

  /**
   * False when the event was recorded before. A concurrent transaction inserting the same id
   * makes this wait for it, then answer false once it commits.
   */
  async insert(id: string, type: string, paymentId: string | null): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'INSERT INTO billing.stripe_events (id, type, payment_id) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING',
      [id, type, paymentId],
    );
    return rowCount === 1;
  }
}
