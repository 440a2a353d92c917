import type { Queryable } from '@atelier/kit';

export interface ReservationRow {
  id: string;
  version_id: string;
  amount: number;
  status: 'open' | 'settled' | 'released';
  settled: number;
}

const COLUMNS = 'id, version_id, amount, status, settled';

/** billing.credit_reservations: a prompt's hold on credits, closed exactly once. */
export class CreditReservationRepository {
  constructor(private readonly db: Queryable) {}

  async find(id: string): Promise<ReservationRow | undefined> {
    const { rows } = await this.db.query<ReservationRow>(
      `SELECT ${COLUMNS} FROM billing.credit_reservations WHERE id = $1`,
      [id],
    );
    return rows[0];
  }

  /** Throws a unique violation when the id exists (a concurrent duplicate of the same reservation). */
  async insert(id: string, versionId: string, amount: number): Promise<void> {
    await this.db.query(
      'INSERT INTO billing.credit_reservations (id, version_id, amount) VALUES ($1, $2, $3)',
      [id, versionId, amount],
    );
  }

  /**
   * Closes an open reservation, keeping `settled` of it; undefined when it is not open (closed
   * already: the second settle or release of a race) or `settled` exceeds it.
   */
  async close(
    id: string,
    status: 'settled' | 'released',
    settled: number,
  ): Promise<ReservationRow | undefined> {
    const { rows } = await this.db.query<ReservationRow>(
      `UPDATE billing.credit_reservations SET status = $2, settled = $3, closed_at = now()
        WHERE id = $1 AND status = 'open' AND $3 <= amount
        RETURNING ${COLUMNS}`,
      [id, status, settled],
    );
    return rows[0];
  }

  /** Seconds since the oldest open reservation was made; 0 when none is open. */
  async oldestOpenAgeSeconds(): Promise<number> {
    const { rows } = await this.db.query<{ age: string | null }>(
      `SELECT EXTRACT(EPOCH FROM now() - min(created_at)) AS age FROM billing.credit_reservations WHERE status = 'open'`,
    );
    return Number(rows[0]?.age ?? 0);
  }
}
