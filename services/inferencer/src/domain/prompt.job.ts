import { createClaimLoop, type ClaimLoop, type Logger, type Metrics } from '@atelier/kit';
import type { Store } from '../repositories';
import type { Predictions } from './ports';
import type { PromptCompletion } from './prompt-completion.service';
import type { Prediction, Prompt } from './prompt.model';
import { outcomeOf } from './prompt.rules';

export interface ReconcilerDeps {
  store: Store;
  predictions: Predictions;
  completion: PromptCompletion;
  metrics: Metrics;
  logger: Logger;
  settings: {
    intervalMs: number;
    batch: number;
    concurrency: number;
    checkIntervalMs: number;
    timeoutMs: number;
  };
}

/**
 * The safety net under the webhooks, on the kit's claim loop: due unfinished prompts are claimed
 * (their next check pushed out by the check interval, which is the lease), Replicate is asked about
 * each and what it says goes through the same completion as the webhook. A success a webhook
 * recorded is copied and settled here (the webhook wakes the loop), retried until the deadline. A prompt past its
 * deadline is canceled at Replicate and failed; a prompt that never got a prediction (its
 * CreatePrompt died) is failed. Both release every reserved credit.
 */
export function createPromptReconciler(d: ReconcilerDeps): ClaimLoop {
  const prompts = d.store.repos.prompts;
  const { settings } = d;
  return createClaimLoop({
    name: 'prompt-reconciler',
    claim: (limit) => prompts.claimDue(limit, settings.checkIntervalMs),
    handle: (prompt) => reconcile(d, prompt),
    idOf: (prompt) => prompt.id,
    oldestDue: () => prompts.oldestDue(),
    afterPass: async () => {
      d.metrics.business.inFlight.set({ kind: 'prompt' }, await prompts.countActive());
    },
    intervalMs: settings.intervalMs,
    batch: settings.batch,
    concurrency: settings.concurrency,
    logger: d.logger,
    metrics: d.metrics,
  });
}

async function reconcile(d: ReconcilerDeps, prompt: Prompt): Promise<void> {
  const { completion, predictions } = d;
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
  // A success the webhook recorded needs no question to Replicate: only its outputs copied.
  let prediction: Prediction | undefined;
  if (!prompt.reportedSuccess) {
    try {
      prediction = await predictions.get(prompt.predictionId);
    } catch (err) {
      if (!overdue) throw err;
      d.logger.warn({ err, prompt_id: prompt.id }, 'Replicate unreachable for an overdue prompt');
    }
  }
  const outcome = prompt.reportedSuccess ?? (prediction && outcomeOf(prediction));
  if (outcome) {
    try {
      await completion.finish(prompt, outcome);
    } catch (err) {
      if (!overdue) throw err;
      // Past its deadline and still not copyable: give up, the customer pays nothing.
      d.logger.warn({ err, prompt_id: prompt.id }, 'completion kept failing past the deadline');
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
        d.logger.warn({ err, prompt_id: prompt.id }, 'could not cancel an overdue prediction'),
      );
    await completion.finish(prompt, {
      status: 'failed',
      error: `the prediction did not finish within ${Math.round(d.settings.timeoutMs / 1000)} s`,
      predictTime: null,
      reason: 'timeout',
    });
    return;
  }
  if (prediction) await completion.applyTo(prompt, prediction);
}
