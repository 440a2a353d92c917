import type { Queryable } from './store';

/**
 * `<schema>.webhook_events` (webhook_id primary key, run_id, received_at), the table each service
 * that receives Replicate webhooks keeps in its own schema. Used inside the transaction that
 * applies a webhook, so a webhook-id is kept exactly when its change is.
 */
export class WebhookEventRepository {
  private readonly table: string;

  constructor(
    private readonly db: Queryable,
    schema: string,
  ) {
    if (!/^[a-z_]+$/.test(schema)) throw new Error(`not a schema name: ${schema}`);
    this.table = `${schema}.webhook_events`;
  }

  /** False when this webhook-id was recorded before (a redelivery). */
  async record(webhookId: string, runId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO ${this.table} (webhook_id, run_id) VALUES ($1, $2) ON CONFLICT (webhook_id) DO NOTHING`,
      [webhookId, runId],
    );
    return rowCount === 1;
  }
}
