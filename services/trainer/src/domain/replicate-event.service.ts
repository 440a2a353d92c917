import type { Logger, SignedWebhook, WebhookInbox } from '@atelier/kit';
import type { ReplicateTraining } from './ports';
import type { VersionTransitions } from './version-transition.service';

/** Replicate's training webhooks: the kit's inbox verifies and parses; the transition records the webhook-id. */
export class ReplicateEventService {
  constructor(
    private readonly d: {
      inbox: WebhookInbox<ReplicateTraining>;
      transitions: VersionTransitions;
      logger: Logger;
    },
  ) {}

  async handle(webhook: SignedWebhook): Promise<{ applied: boolean; runId: string }> {
    const { outcome, event } = await this.d.inbox.receive(webhook, async (training, webhookId) => {
      const { outcome } = await this.d.transitions.applyWebhook(webhookId, training);
      if (outcome === 'unknown')
        this.d.logger.info(
          { training_id: training.id, webhook_id: webhookId },
          'webhook for an unknown training; ignored',
        );
      return outcome === 'applied' || outcome === 'duplicate' ? outcome : 'ignored';
    });
    return { applied: outcome === 'applied', runId: event?.id ?? '' };
  }
}
