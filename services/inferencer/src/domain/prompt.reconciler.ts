import { randomUUID } from 'node:crypto';
import { runWithContext, type Logger, type Metrics } from '@atelier/kit';
import type { Store } from '../repositories';
import type { Predictions } from './ports';
import type { PromptCompletion } from './prompt.completion';
import type { Prediction, Prompt } from './prompt.model';
import { outcomeOf } from './prompt.rules';

/** Prompts checked at once within one pass: Replicate and imager see a bounded burst. */
const CONCURRENCY = 5;

export interface ReconcilerDeps {
  store: Store;
  predictions: Predictions;
  completion: PromptCompletion;
  metrics: Metrics['business'];
  logger: Logger;
  settings: { intervalMs: number; batch: number; checkIntervalMs: number; timeoutMs: number };
}

/**
 * The safety net under the webhooks. Each pass claims due unfinished prompts with
 * `FOR UPDATE SKIP LOCKED` (so replicas never check the same prompt at once), pushes their next
 * check out by the check interval, asks Replicate about each and applies what it says through
 * the same completion as the webhook. A prompt past its deadline is canceled at Replicate and
 * failed; a prompt that never got a prediction (its CreatePrompt died) is failed. Both release
 * every reserved credit.
 */
export class PromptReconciler {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(private readonly d: ReconcilerDeps) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /** Stops scheduling and waits for the pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass; returns how many prompts it claimed. */
  async tick(): Promise<number> {
    const claimed = await this.d.store.repos.prompts.claimDue(
      this.d.settings.batch,
      this.d.settings.checkIntervalMs,
    );
    if (claimed.length) this.d.metrics.reconcilerClaims.inc({ kind: 'prediction' }, claimed.length);
    for (let i = 0; i < claimed.length; i += CONCURRENCY) {
      await Promise.all(
        claimed
          .slice(i, i + CONCURRENCY)
          .map((prompt) =>
            this.reconcile(prompt).catch((err: unknown) =>
              this.d.logger.warn(
                { err, prompt_id: prompt.id },
                'reconcile failed; retried at the next check',
              ),
            ),
          ),
      );
    }
    this.d.metrics.inFlight.set({ kind: 'prediction' }, await this.d.store.repos.prompts.countActive());
    return claimed.length;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = runWithContext({ requestId: `reconcile-${randomUUID()}` }, () => this.tick())
        .then(
          () => undefined,
          (err: unknown) => this.d.logger.error({ err }, 'reconciler pass failed'),
        )
        .finally(() => this.schedule());
    }, this.d.settings.intervalMs);
    this.timer.unref();
  }

  private async reconcile(prompt: Prompt): Promise<void> {
    const { completion, predictions } = this.d;
    const overdue = Date.now() >= prompt.deadlineAt.getTime();
    if (!prompt.predictionId) {
      // Due without a prediction: its CreatePrompt crashed or could not release; free the credits.
      await completion.finish(prompt, {
        status: 'failed',
        error: 'the prediction was never created',
        predictTime: null,
        reason: 'replicate',
      });
      return;
    }
    let prediction: Prediction | undefined;
    try {
      prediction = await predictions.get(prompt.predictionId);
    } catch (err) {
      if (!overdue) throw err;
      this.d.logger.warn({ err, prompt_id: prompt.id }, 'Replicate unreachable for an overdue prompt');
    }
    const outcome = prediction && outcomeOf(prediction);
    if (outcome) {
      try {
        await completion.finish(prompt, outcome);
      } catch (err) {
        if (!overdue) throw err;
        // Past its deadline and still not copyable: give up, the customer pays nothing.
        this.d.logger.warn({ err, prompt_id: prompt.id }, 'completion kept failing past the deadline');
        await completion.finish(prompt, {
          status: 'failed',
          error: 'the outputs could not be copied in time',
          predictTime: outcome.predictTime,
          reason: 'transfer',
        });
      }
      return;
    }
    if (overdue) {
      await predictions
        .cancel(prompt.predictionId)
        .catch((err: unknown) =>
          this.d.logger.warn({ err, prompt_id: prompt.id }, 'could not cancel an overdue prediction'),
        );
      await completion.finish(prompt, {
        status: 'failed',
        error: `the prediction did not finish within ${Math.round(this.d.settings.timeoutMs / 1000)} s`,
        predictTime: null,
        reason: 'timeout',
      });
      return;
    }
    if (prediction) await completion.applyTo(prompt, prediction);
  }
}
