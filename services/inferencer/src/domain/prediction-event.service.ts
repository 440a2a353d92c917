import { AppError, Errors, verifyReplicateWebhook, type Logger, type Metrics } from '@atelier/kit';
import type { Store } from '../repositories';
import type { Predictions } from './ports';
import type { PromptCompletion } from './prompt.completion';
import type { Prediction } from './prompt.model';
import { parsePrediction } from './prompt.rules';

export interface SignedWebhook {
  webhookId: string;
  webhookTimestamp: string;
  webhookSignature: string;
  body: Buffer;
}

/**
 * Replicate's prediction webhooks: signature checked on the raw body, each webhook-id applied
 * once, then the same completion the reconciler uses.
 */
export class PredictionEventService {
  private secret?: Promise<string>;

  constructor(
    private readonly d: {
      store: Store;
      predictions: Predictions;
      completion: PromptCompletion;
      metrics: Metrics['business'];
      logger: Logger;
    },
  ) {}

  async handle(webhook: SignedWebhook): Promise<{ applied: boolean; runId: string }> {
    const outcome = (o: string) => this.d.metrics.webhooks.inc({ source: 'replicate', outcome: o });
    try {
      verifyReplicateWebhook(webhook, await this.signingSecret());
    } catch (err) {
      if (err instanceof AppError && err.code === 'invalid_signature') outcome('rejected');
      throw err;
    }
    let body: unknown;
    try {
      body = JSON.parse(webhook.body.toString('utf8'));
    } catch {
      body = undefined;
    }
    const prediction = parsePrediction(body);
    if (!prediction) {
      outcome('rejected');
      throw Errors.invalid('the webhook body is not a prediction');
    }

    const events = this.d.store.repos.webhookEvents;
    // Recorded before it is applied, so a redelivery racing the first delivery does nothing.
    if (!(await events.record(webhook.webhookId, prediction.id))) {
      outcome('duplicate');
      return { applied: false, runId: prediction.id };
    }
    let applied: boolean;
    try {
      applied = await this.apply(prediction);
    } catch (err) {
      // Not applied: forget the id so Replicate's redelivery (after our error answer) can apply it.
      await events.forget(webhook.webhookId).catch(() => undefined);
      throw err;
    }
    outcome(applied ? 'applied' : 'ignored');
    return { applied, runId: prediction.id };
  }

  private async apply(prediction: Prediction): Promise<boolean> {
    const prompt = await this.d.store.repos.prompts.findByPrediction(prediction.id);
    if (!prompt) {
      // CreatePrompt has not recorded this prediction yet (Replicate answered it after calling
      // us): an error makes Replicate deliver again, by when the prompt knows its prediction.
      throw Errors.notFound('prompt for prediction', prediction.id);
    }
    return this.d.completion.applyTo(prompt, prediction);
  }

  /** Configured, or asked of Replicate on first use (and again if that failed). */
  private signingSecret(): Promise<string> {
    this.secret ??= this.d.predictions.webhookSecret().catch((err: unknown) => {
      this.secret = undefined;
      throw Errors.unavailable('replicate', err);
    });
    return this.secret;
  }
}
