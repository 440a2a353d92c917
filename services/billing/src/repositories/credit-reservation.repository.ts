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

  /**
   * False when the id exists: a concurrent duplicate of the same reservation committed first (the
   * insert waits for it, so false means it is there to be read).
   */
  async insert(id: string, versionId: string, amount: number): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO billing.credit_reservations (id, version_id, amount) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO NOTHING`,
      [id, versionId, amount],
    );
    return rowCount === 1;
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

  /**
   * Claims up to `limit` reservations open for longer than `olderThanMs` that no sweep holds,
   * oldest first, and leases them for `leaseMs` (the claim loop's contract: one statement).
   */
  async claimStale(limit: number, olderThanMs: number, leaseMs: number): Promise<ReservationRow[]> {
    const { rows } = await this.db.query<ReservationRow>(
      `WITH due AS (
         SELECT id FROM billing.credit_reservations
          WHERE status = 'open' AND created_at < now() - make_interval(secs => $2 / 1000.0)
            AND (sweep_lease_until IS NULL OR sweep_lease_until < now())
          ORDER BY created_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED
       )
       UPDATE billing.credit_reservations r SET sweep_lease_until = now() + make_interval(secs => $3 / 1000.0)
         FROM due WHERE r.id = due.id
       RETURNING r.id, r.version_id, r.amount, r.status, r.settled`,
      [limit, olderThanMs, leaseMs],
    );
    return rows;
  }

  /** When the oldest reservation a sweep would take became stale; null when none is. */
  async oldestStale(olderThanMs: number): Promise<Date | null> {
    const { rows } = await this.db.query<{ due: Date | null }>(
      `SELECT min(created_at) + make_interval(secs => $1 / 1000.0) AS due
         FROM billing.credit_reservations
        WHERE status = 'open' AND created_at < now() - make_interval(secs => $1 / 1000.0)`,
      [olderThanMs],
    );
    return rows[0]?.due ?? null;
  }

  /** Seconds since the oldest open reservation was made; 0 when none is open. */
  async oldestOpenAgeSeconds(): Promise<number> {
    const { rows } = await this.db.query<{ age: string | null }>(
      `SELECT EXTRACT(EPOCH FROM now() - min(created_at)) AS age FROM billing.credit_reservations WHERE status = 'open'`,
    );
    return Number(rows[0]?.age ?? 0);
  }
}
