import type { Queryable } from '@atelier/kit';

export interface BalanceRow {
  version_id: string;
  account_id: string;
  granted: number;
  used: number;
  forfeited_at: Date | null;
}

const COLUMNS = 'version_id, account_id, granted, used, forfeited_at';

/**
 * billing.credit_balances, one row per version. `used <= granted` is a CHECK in the table, and
 * every change of `used` upwards is one conditional UPDATE, so no interleaving can overspend.
 */
export class CreditBalanceRepository {
  constructor(private readonly db: Queryable) {}

  /** Creates the version's row when it has none yet. */
  async ensure(versionId: string, accountId: string): Promise<void> {
    await this.db.query(
      'INSERT INTO billing.credit_balances (version_id, account_id) VALUES ($1, $2) ON CONFLICT (version_id) DO NOTHING',
      [versionId, accountId],
    );
  }

  async find(versionId: string): Promise<BalanceRow | undefined> {
    const { rows } = await this.db.query<BalanceRow>(
      `SELECT ${COLUMNS} FROM billing.credit_balances WHERE version_id = $1`,
      [versionId],
    );
    return rows[0];
  }

  /** The account's balances among `versionIds` (a listing's page): one statement. */
  async findMany(accountId: string, versionIds: string[]): Promise<BalanceRow[]> {
    const { rows } = await this.db.query<BalanceRow>(
      `SELECT ${COLUMNS} FROM billing.credit_balances WHERE account_id = $1 AND version_id = ANY($2::uuid[])`,
      [accountId, versionIds],
    );
    return rows;
  }

  /** NO KEY UPDATE: enough to change counts, and no wait for inserts that merely reference the row. */
  async lock(versionId: string): Promise<BalanceRow | undefined> {
    const { rows } = await this.db.query<BalanceRow>(
      `SELECT ${COLUMNS} FROM billing.credit_balances WHERE version_id = $1 FOR NO KEY UPDATE`,
      [versionId],
    );
    return rows[0];
  }

  async addGranted(versionId: string, amount: number): Promise<BalanceRow> {
    const { rows } = await this.db.query<BalanceRow>(
      `UPDATE billing.credit_balances SET granted = granted + $2, updated_at = now() WHERE version_id = $1 RETURNING ${COLUMNS}`,
      [versionId, amount],
    );
    return rows[0]!;
  }

  /** Takes back granted credits; the table's CHECK (used <= granted) refuses taking what is used. */
  async removeGranted(versionId: string, amount: number): Promise<BalanceRow> {
    const { rows } = await this.db.query<BalanceRow>(
      `UPDATE billing.credit_balances SET granted = granted - $2, updated_at = now() WHERE version_id = $1 RETURNING ${COLUMNS}`,
      [versionId, amount],
    );
    return rows[0]!;
  }

  /** The atomic reservation: undefined when the account's version lacks `amount` remaining credits. */
  async reserve(versionId: string, accountId: string, amount: number): Promise<BalanceRow | undefined> {
    const { rows } = await this.db.query<BalanceRow>(
      `UPDATE billing.credit_balances SET used = used + $3, updated_at = now()
        WHERE version_id = $1 AND account_id = $2 AND granted - used >= $3
        RETURNING ${COLUMNS}`,
      [versionId, accountId, amount],
    );
    return rows[0];
  }

  /** Gives reserved credits back (a release, or the unused part of a settle). */
  async unreserve(versionId: string, amount: number): Promise<BalanceRow> {
    const { rows } = await this.db.query<BalanceRow>(
      `UPDATE billing.credit_balances SET used = used - $2, updated_at = now() WHERE version_id = $1 RETURNING ${COLUMNS}`,
      [versionId, amount],
    );
    return rows[0]!;
  }

  /** A deleted version keeps what it used and nothing more; later grants add nothing. */
  async forfeit(versionId: string): Promise<BalanceRow | undefined> {
    const { rows } = await this.db.query<BalanceRow>(
      `UPDATE billing.credit_balances SET granted = used, forfeited_at = now(), updated_at = now()
        WHERE version_id = $1 AND forfeited_at IS NULL
        RETURNING ${COLUMNS}`,
      [versionId],
    );
    return rows[0];
  }
}
