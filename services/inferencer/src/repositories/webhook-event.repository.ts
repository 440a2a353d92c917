import type { Queryable } from '@atelier/kit';

/** inferencer.webhook_events: each Replicate webhook-id is applied once. */
export class WebhookEventRepository {
  constructor(private readonly db: Queryable) {}

  /** False when the webhook-id was recorded before (a redelivery). */
  async record(webhookId: string, runId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'INSERT INTO inferencer.webhook_events (webhook_id, run_id) VALUES ($1, $2) ON CONFLICT (webhook_id) DO NOTHING',
      [webhookId, runId],
    );
    return rowCount === 1;
  }

  /** Undoes record() when applying the webhook failed, so Replicate's redelivery can apply it. */
  async forget(webhookId: string): Promise<void> {
    await this.db.query('DELETE FROM inferencer.webhook_events WHERE webhook_id = $1', [webhookId]);
  }
}
