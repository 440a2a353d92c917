import type { Queryable } from '@atelier/kit';

export class ApiKeyRepository {
  constructor(private readonly db: Queryable) {}

  async insert(key: { id: string; accountId: string; prefix: string; hash: Buffer }): Promise<void> {
    await this.db.query(
      'INSERT INTO billing.api_keys (id, account_id, prefix, key_hash) VALUES ($1, $2, $3, $4)',
      [key.id, key.accountId, key.prefix, key.hash],
    );
  }

  async findActiveByHash(hash: Buffer): Promise<{ account_id: string; prefix: string } | undefined> {
    const { rows } = await this.db.query<{ account_id: string; prefix: string }>(
      'SELECT account_id, prefix FROM billing.api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
      [hash],
    );
    return rows[0];
  }

  /** True when a key with this prefix was active and is now revoked. */
  async revoke(prefix: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'UPDATE billing.api_keys SET revoked_at = now() WHERE prefix = $1 AND revoked_at IS NULL',
      [prefix],
    );
    return rowCount === 1;
  }
}
