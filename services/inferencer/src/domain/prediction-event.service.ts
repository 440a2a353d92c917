import type { SignedWebhook, WebhookInbox } from '@atelier/kit';
import type { PromptCompletion } from './prompt-completion.service';
import type { Prediction } from './prompt.model';

/**
 * Replicate's prediction webhooks: the kit's inbox verifies and parses; the completion applies the
 * prediction and records the webhook-id in the transaction that changes the prompt.
 */
export class PredictionEventService {
  constructor(private readonly d: { inbox: WebhookInbox<Prediction>; completion: PromptCompletion }) {}

  async handle(webhook: SignedWebhook): Promise<{ applied: boolean; runId: string }> {
    const { outcome, event } = await this.d.inbox.receive(webhook, (prediction, webhookId) =>
      this.d.completion.apply(prediction, webhookId),
    );
    return { applied: outcome === 'applied', runId: event?.id ?? '' };
  }
}
