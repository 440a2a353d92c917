import { Errors, PG_FOREIGN_KEY_VIOLATION, pgCode, type Queryable } from '@atelier/kit';

export interface UsageReportRow {
  account_id: string;
  currency: string;
  revenue: number;
  payments: number;
  predict_seconds: number;
  cost_micros: number;
}

export interface VersionUsageRow {
  /** null on the total line (is_total) and for payments not bound to a version yet. */
  version_id: string | null;
  is_total: boolean;
  images: number;
  trainings: number;
  predict_seconds: number;
  amount_paid: number;
  currency: string | null;
}

/** billing.usage: Replicate time and estimated cost per training or prediction, recorded once. */
export class UsageRepository {
  constructor(private readonly db: Queryable) {}

  /** False when this training or prediction was recorded before. */
  async insert(u: {
    kind: 'training' | 'prediction';
    refId: string;
    accountId: string;
    versionId: string;
    predictSeconds: number;
    costMicros: number;
  }): Promise<boolean> {
    try {
      const { rowCount } = await this.db.query(
        `INSERT INTO billing.usage (kind, ref_id, account_id, version_id, predict_seconds, cost_micros)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (kind, ref_id) DO NOTHING`,
        [u.kind, u.refId, u.accountId, u.versionId, u.predictSeconds, u.costMicros],
      );
      return rowCount === 1;
    } catch (err) {
      if (pgCode(err) === PG_FOREIGN_KEY_VIOLATION) throw Errors.notFound('account', u.accountId);
      throw err;
    }
  }

  /**
   * One account's usage in [from, to) per version and in total (the grouping set's empty line):
   * images settled, trainings and predict seconds recorded, money paid and not refunded.
   */
  async perVersion(accountId: string, from: Date | null, to: Date | null): Promise<VersionUsageRow[]> {
    const { rows } = await this.db.query<VersionUsageRow>(
      `SELECT version_id, GROUPING(version_id) = 1 AS is_total,
              COALESCE(sum(images), 0)::bigint AS images, COALESCE(sum(trainings), 0)::int AS trainings,
              COALESCE(sum(predict_seconds), 0)::float8 AS predict_seconds,
              COALESCE(sum(amount), 0)::bigint AS amount_paid, max(currency) AS currency
         FROM (SELECT r.version_id, r.settled AS images, 0 AS trainings, 0::float8 AS predict_seconds,
                      0 AS amount, NULL::text AS currency
                 FROM billing.credit_reservations r JOIN billing.credit_balances b ON b.version_id = r.version_id
                WHERE b.account_id = $1 AND r.status = 'settled'
                  AND ($2::timestamptz IS NULL OR r.closed_at >= $2) AND ($3::timestamptz IS NULL OR r.closed_at < $3)
               UNION ALL
               SELECT u.version_id, 0, (u.kind = 'training')::int, u.predict_seconds, 0, NULL
                 FROM billing.usage u
                WHERE u.account_id = $1
                  AND ($2::timestamptz IS NULL OR u.recorded_at >= $2) AND ($3::timestamptz IS NULL OR u.recorded_at < $3)
               UNION ALL
               SELECT p.version_id, 0, 0, 0, p.amount, p.currency
                 FROM billing.payments p
                WHERE p.account_id = $1 AND p.status = 'paid'
                  AND ($2::timestamptz IS NULL OR p.paid_at >= $2) AND ($3::timestamptz IS NULL OR p.paid_at < $3)) t
        GROUP BY GROUPING SETS ((version_id), ())
        ORDER BY is_total, version_id NULLS LAST`,
      [accountId, from, to],
    );
    return rows;
  }

  /**
   * Revenue (payments paid in the period and not refunded) against recorded cost, per account and
   * currency. Cost is kept in the billing currency, so it goes on each account's first currency line
   * (accounts without payments get the plans' currency).
   */
  async report(accountId: string | null, from: Date | null, to: Date | null): Promise<UsageReportRow[]> {
    const { rows } = await this.db.query<UsageReportRow>(
      `WITH revenue AS (
         SELECT account_id, currency, sum(amount)::bigint AS revenue, count(*)::int AS payments,
                row_number() OVER (PARTITION BY account_id ORDER BY currency) AS rank
           FROM billing.payments
          WHERE status = 'paid' AND ($1::uuid IS NULL OR account_id = $1)
            AND ($2::timestamptz IS NULL OR paid_at >= $2) AND ($3::timestamptz IS NULL OR paid_at < $3)
          GROUP BY account_id, currency
       ), cost AS (
         SELECT account_id, sum(predict_seconds) AS predict_seconds, sum(cost_micros)::bigint AS cost_micros
           FROM billing.usage
          WHERE ($1::uuid IS NULL OR account_id = $1)
            AND ($2::timestamptz IS NULL OR recorded_at >= $2) AND ($3::timestamptz IS NULL OR recorded_at < $3)
          GROUP BY account_id
       )
       SELECT COALESCE(r.account_id, c.account_id) AS account_id,
              COALESCE(r.currency, (SELECT currency FROM billing.plans ORDER BY deprecated, is_init DESC, id LIMIT 1), 'usd') AS currency,
              COALESCE(r.revenue, 0) AS revenue, COALESCE(r.payments, 0) AS payments,
              COALESCE(c.predict_seconds, 0) AS predict_seconds, COALESCE(c.cost_micros, 0) AS cost_micros
         FROM revenue r FULL JOIN cost c ON c.account_id = r.account_id AND r.rank = 1
        ORDER BY 1, 2`,
      [accountId, from, to],
    );
    return rows;
  }
}
