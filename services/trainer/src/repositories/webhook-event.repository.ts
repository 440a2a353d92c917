import type { Queryable } from '@atelier/kit';

/** trainer.webhook_events: each Replicate webhook-id is applied once. */
export class WebhookEventRepository {
  constructor(private readonly db: Queryable) {}

  /** False when this webhook-id was recorded before. */
  async insert(webhookId: string, runId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'INSERT INTO trainer.webhook_events (webhook_id, run_id) VALUES ($1, $2) ON CONFLICT (webhook_id) DO NOTHING',
      [webhookId, runId],
    );
    return rowCount === 1;
  }
}
