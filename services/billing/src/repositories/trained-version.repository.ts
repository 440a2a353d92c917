import type { Queryable } from '@atelier/kit';

export interface TrainedVersionRow {
  version_id: string;
  account_id: string;
  payment_id: string;
  ready_at: Date | null;
  failed_at: Date | null;
}

const COLUMNS = 'version_id, account_id, payment_id, ready_at, failed_at';

/** billing.trained_versions: the versions init payments paid for, as trainer reported them. */
export class TrainedVersionRepository {
  constructor(private readonly db: Queryable) {}

  /** Recorded when a payment is claimed for the version; a repeated claim changes nothing. */
  async insert(versionId: string, accountId: string, paymentId: string): Promise<void> {
    await this.db.query(
      `INSERT INTO billing.trained_versions (version_id, account_id, payment_id) VALUES ($1, $2, $3)
       ON CONFLICT (version_id) DO NOTHING`,
      [versionId, accountId, paymentId],
    );
  }

  async find(versionId: string): Promise<TrainedVersionRow | undefined> {
    const { rows } = await this.db.query<TrainedVersionRow>(
      `SELECT ${COLUMNS} FROM billing.trained_versions WHERE version_id = $1`,
      [versionId],
    );
    return rows[0];
  }

  /** Terminal either way: a version is ready or failed once, never both. */
  async markReady(versionId: string): Promise<void> {
    await this.db.query(
      `UPDATE billing.trained_versions SET ready_at = now()
        WHERE version_id = $1 AND ready_at IS NULL AND failed_at IS NULL`,
      [versionId],
    );
  }

  async markFailed(versionId: string): Promise<void> {
    await this.db.query(
      `UPDATE billing.trained_versions SET failed_at = now()
        WHERE version_id = $1 AND ready_at IS NULL AND failed_at IS NULL`,
      [versionId],
    );
  }

  /** A claim undone before its training existed: the version never existed either. */
  async deleteUnstarted(versionId: string, paymentId: string): Promise<void> {
    await this.db.query(
      `DELETE FROM billing.trained_versions
        WHERE version_id = $1 AND payment_id = $2 AND ready_at IS NULL AND failed_at IS NULL`,
      [versionId, paymentId],
    );
  }
}
