import type { Queryable } from '@atelier/kit';

/** A deletion request: a row of trainer.version_deletions (`id` = version id) or trainer.account_deletions (`id` = account id). */
export interface DeletionRow {
  id: string;
  account_id: string;
  requested_at: Date;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  completed_at: Date | null;
}

type Table =
  | { name: 'trainer.version_deletions'; key: 'version_id' }
  | { name: 'trainer.account_deletions'; key: 'account_id' };

/**
 * The two deletion queues share their shape and their claim: one statement per method, a claim
 * with FOR UPDATE SKIP LOCKED that leases the row (next_attempt_at moves past the lease), so a
 * replica that dies mid-way leaves the row to whoever claims after the lease. Times are passed
 * in, so a test can move the clock instead of waiting.
 */
class DeletionQueue {
  constructor(
    protected readonly db: Queryable,
    protected readonly table: Table,
  ) {}

  private columns(alias = ''): string {
    const names = ['account_id', 'requested_at', 'attempts', 'next_attempt_at', 'last_error', 'completed_at'];
    return [`${alias}${this.table.key} AS id`, ...names.map((n) => `${alias}${n}`)].join(', ');
  }

  async find(id: string): Promise<DeletionRow | undefined> {
    const { rows } = await this.db.query<DeletionRow>(
      `SELECT ${this.columns()} FROM ${this.table.name} WHERE ${this.table.key} = $1`,
      [id],
    );
    return rows[0];
  }

  async claimDue(limit: number, now: Date, leaseUntil: Date): Promise<DeletionRow[]> {
    const { name, key } = this.table;
    const { rows } = await this.db.query<DeletionRow>(
      `WITH due AS (
         SELECT ${key} FROM ${name}
          WHERE completed_at IS NULL AND next_attempt_at <= $2
          ORDER BY next_attempt_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED
       )
       UPDATE ${name} d SET next_attempt_at = $3, attempts = d.attempts + 1
         FROM due WHERE d.${key} = due.${key}
        RETURNING ${this.columns('d.')}`,
      [limit, now, leaseUntil],
    );
    return rows;
  }

  /** Done: never claimed again. */
  async complete(id: string): Promise<void> {
    await this.db.query(
      `UPDATE ${this.table.name} SET completed_at = COALESCE(completed_at, now()), last_error = NULL WHERE ${this.table.key} = $1`,
      [id],
    );
  }

  /** Not done yet: tried again at `at`; `error` null when waiting is the plan (not a failure). */
  async retryAt(id: string, at: Date, error: string | null): Promise<void> {
    await this.db.query(
      `UPDATE ${this.table.name} SET next_attempt_at = $2, last_error = $3 WHERE ${this.table.key} = $1 AND completed_at IS NULL`,
      [id, at, error],
    );
  }

  async countPending(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${this.table.name} WHERE completed_at IS NULL`,
    );
    return rows[0]?.n ?? 0;
  }
}

/** trainer.version_deletions. */
export class VersionDeletionRepository extends DeletionQueue {
  constructor(db: Queryable) {
    super(db, { name: 'trainer.version_deletions', key: 'version_id' });
  }

  /** Records the request; false when it was recorded before. */
  async insert(versionId: string, accountId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO trainer.version_deletions (version_id, account_id) VALUES ($1, $2)
       ON CONFLICT (version_id) DO NOTHING`,
      [versionId, accountId],
    );
    return rowCount === 1;
  }

  /** A request for every version of the account that has none yet; how many were added. */
  async insertForAccount(accountId: string): Promise<number> {
    const { rowCount } = await this.db.query(
      `INSERT INTO trainer.version_deletions (version_id, account_id)
       SELECT id, account_id FROM trainer.versions WHERE account_id = $1
       ON CONFLICT (version_id) DO NOTHING`,
      [accountId],
    );
    return rowCount ?? 0;
  }

  /** The account's version deletions not finished yet. */
  async countPendingForAccount(accountId: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM trainer.version_deletions WHERE account_id = $1 AND completed_at IS NULL`,
      [accountId],
    );
    return rows[0]?.n ?? 0;
  }
}

/** trainer.account_deletions. */
export class AccountDeletionRepository extends DeletionQueue {
  constructor(db: Queryable) {
    super(db, { name: 'trainer.account_deletions', key: 'account_id' });
  }

  /** Records the request; false when it was recorded before. */
  async insert(accountId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO trainer.account_deletions (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING`,
      [accountId],
    );
    return rowCount === 1;
  }
}
