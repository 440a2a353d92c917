import { AppError, verifyReplicateWebhook, type Logger, type Metrics } from '@atelier/kit';
import type { ReplicatePort } from './ports';
import type { VersionTransitions } from './version.transitions';
import { parseTraining } from './version.rules';

export interface ReplicateWebhookInput {
  webhookId: string;
  webhookTimestamp: string;
  webhookSignature: string;
  body: Buffer;
}

/** Replicate's training webhooks: verified, each webhook-id applied once, through the shared transition code. */
export class ReplicateEventService {
  constructor(
    private readonly d: {
      replicate: ReplicatePort;
      transitions: VersionTransitions;
      metrics: Metrics['business'];
      logger: Logger;
    },
  ) {}

  async handle(webhook: ReplicateWebhookInput): Promise<{ applied: boolean; runId: string }> {
    const { metrics, logger } = this.d;
    const secret = await this.d.replicate.webhookSecret();
    try {
      verifyReplicateWebhook(webhook, secret);
    } catch (err) {
      if (err instanceof AppError) metrics.webhooks.inc({ source: 'replicate', outcome: 'rejected' });
      throw err;
    }
    let body: unknown;
    try {
      body = JSON.parse(webhook.body.toString('utf8'));
    } catch {
      body = undefined;
    }
    const training = parseTraining(body);
    // Signed by Replicate but not a training we can read: answering 200 stops its retries, which
    // could never succeed; the reconciler polls the training anyway.
    if (!training) {
      logger.warn(
        { webhook_id: webhook.webhookId },
        'signed Replicate webhook without a training object; ignored',
      );
      metrics.webhooks.inc({ source: 'replicate', outcome: 'ignored' });
      return { applied: false, runId: '' };
    }
    const { outcome } = await this.d.transitions.applyWebhook(webhook.webhookId, training);
    metrics.webhooks.inc({
      source: 'replicate',
      outcome: outcome === 'applied' || outcome === 'duplicate' ? outcome : 'ignored',
    });
    if (outcome === 'unknown')
      logger.info(
        { training_id: training.id, webhook_id: webhook.webhookId },
        'webhook for an unknown training; ignored',
      );
    return { applied: outcome === 'applied', runId: training.id };
  }
}
