import { Errors, PG_UNIQUE_VIOLATION, pgCode, type Queryable } from '@atelier/kit';

export interface AccountRow {
  id: string;
  /** Null once the account was deleted. */
  email: string | null;
  created_at: Date;
  active_keys: number;
}

export class AccountRepository {
  constructor(private readonly db: Queryable) {}

  /** already_exists when an account has this email (case-insensitively). */
  async insert(id: string, email: string): Promise<AccountRow> {
    try {
      const { rows } = await this.db.query<AccountRow>(
        `INSERT INTO billing.accounts (id, email) VALUES ($1, $2)
         RETURNING id, email, created_at, 0 AS active_keys`,
        [id, email],
      );
      return rows[0]!;
    } catch (err) {
      if (pgCode(err) === PG_UNIQUE_VIOLATION) throw Errors.accountExists(email);
      throw err;
    }
  }

  async list(): Promise<AccountRow[]> {
    const { rows } = await this.db.query<AccountRow>(
      `SELECT a.id, a.email, a.created_at,
              (SELECT count(*)::int FROM billing.api_keys k WHERE k.account_id = a.id AND k.revoked_at IS NULL) AS active_keys
         FROM billing.accounts a ORDER BY a.created_at, a.id`,
    );
    return rows;
  }

  /** The account with its credits summed over every version: one statement. */
  async summary(id: string): Promise<(AccountRow & { granted: number; used: number }) | undefined> {
    const { rows } = await this.db.query<AccountRow & { granted: number; used: number }>(
      `SELECT a.id, a.email, a.created_at,
              (SELECT count(*)::int FROM billing.api_keys k WHERE k.account_id = a.id AND k.revoked_at IS NULL) AS active_keys,
              COALESCE(b.granted, 0)::bigint AS granted, COALESCE(b.used, 0)::bigint AS used
         FROM billing.accounts a
         LEFT JOIN LATERAL (SELECT sum(granted) AS granted, sum(used) AS used
                              FROM billing.credit_balances WHERE account_id = a.id) b ON true
        WHERE a.id = $1`,
      [id],
    );
    return rows[0];
  }

  async exists(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query('SELECT 1 FROM billing.accounts WHERE id = $1', [id]);
    return rowCount === 1;
  }

  async findDeletedAt(id: string): Promise<{ deleted_at: Date | null } | undefined> {
    const { rows } = await this.db.query<{ deleted_at: Date | null }>(
      'SELECT deleted_at FROM billing.accounts WHERE id = $1',
      [id],
    );
    return rows[0];
  }

  /**
   * The end of an account's deletion, in one statement so it is all or nothing: every key
   * revoked, the email erased. The row stays (payments and usage refer to it). Idempotent.
   */
  async erase(id: string): Promise<{ keysRevoked: number } | undefined> {
    const { rows } = await this.db.query<{ keys_revoked: number }>(
      `WITH revoked AS (
         UPDATE billing.api_keys SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL RETURNING 1
       )
       UPDATE billing.accounts SET email = NULL, deleted_at = COALESCE(deleted_at, now())
        WHERE id = $1
        RETURNING (SELECT count(*) FROM revoked)::int AS keys_revoked`,
      [id],
    );
    return rows[0] && { keysRevoked: rows[0].keys_revoked };
  }
}
