import { AppError, Errors, newEvent, type Logger, type Metrics, type WebhookOutcome } from '@atelier/kit';
import type { Repositories, Store } from '../repositories';
import { isActive, type Outcome, type Prediction, type Prompt, type PromptImage } from './prompt.model';
import type { Credits, OutputStore } from './ports';
import { costMicros, outcomeOf, outputKeyPrefix } from './prompt.rules';
import type { PromptWaiter } from './prompt-waiter.service';
import { settleRunIfDone } from './offer.service';

/** imager answers that mean "these outputs will never copy": retrying would not help. */
const PERMANENT_TRANSFER_ERRORS: ReadonlySet<string> = new Set([
  'invalid_argument',
  'not_found',
  'photos_rejected',
  'payload_too_large',
  'unsupported_media_type',
]);

/**
 * Promise.all that waits for every promise before it rejects (with the first failure): a
 * transaction must not roll back while one of its statements is still on the way, or that
 * statement would run after the rollback, outside any transaction.
 */
async function allSettled<T extends readonly unknown[]>(
  promises: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}

/** The webhook delivery a change comes from, when it comes from one. */
interface Delivery {
  webhookId: string;
  runId: string;
  /** Set when the webhook-id was recorded before: a redelivery, which changes nothing. */
  duplicate: boolean;
}

/** Records the delivery's webhook-id in the caller's transaction; false for a redelivery. */
async function firstDelivery(repos: Repositories, delivery: Delivery | undefined): Promise<boolean> {
  if (!delivery) return true;
  if (await repos.webhookEvents.record(delivery.webhookId, delivery.runId)) return true;
  delivery.duplicate = true;
  return false;
}

export interface CompletionDeps {
  store: Store;
  credits: Credits;
  outputs: OutputStore;
  waiter: PromptWaiter;
  metrics: Metrics['business'];
  logger: Logger;
  pricePerSecondMicros: number;
  /** How long a completer may take to copy outputs before another may try; beyond the transfer deadline. */
  completionLeaseMs: number;
  /**
   * Wakes the claim loop (the prompt reconciler), which copies the outputs of a success a webhook
   * recorded: the copy begins at once, not at the loop's next interval.
   */
  wake: () => void;
  /** The prompt as GET returns it, for the data of the event announcing how it finished. */
  view: (prompt: Prompt, urls: string[]) => unknown;
}

/**
 * The one way a prompt finishes, shared by the webhook, the reconciler, CancelPrompt and
 * CreatePrompt's failure paths, so a race between any two of them settles once. A webhook's
 * success is only recorded (outputs and predict time, with its webhook-id) and the reconciler
 * woken: copying outputs takes seconds, longer than the gateway's deadline allows the webhook,
 * so the claim loop copies and settles, and a copy that fails is retried there.
 *
 * 1. Outputs are copied into the bucket first, outside the row lock (it takes seconds), under a
 *    completion lease: only one racer copies to the prompt's keys, so a loser that fails can
 *    never clean up keys the winner stored. A racer that finds the lease held steps aside; the
 *    reconciler comes back if the holder fails.
 * 2. Then, in one transaction holding the prompt's row lock and only if it is still unfinished:
 *    settle or release the reservation and record usage in billing (both idempotent per
 *    prompt), store the images, set the terminal status. The loser of a race finds the row
 *    finished once it gets the lock and does nothing.
 *
 * Billing is called before the commit on purpose: if the commit is lost after billing answered,
 * the prompt is still unfinished and the next attempt repeats calls billing treats as no-ops;
 * the reverse order could leave a finished prompt with an open reservation forever.
 */
export class PromptCompletion {
  constructor(private readonly d: CompletionDeps) {}

  /**
   * A webhook's prediction, applied to the prompt that owns it. Its webhook-id is recorded in the
   * transaction that changes the prompt, so it is kept exactly when the change is: a delivery
   * that failed leaves nothing behind, and Replicate's redelivery applies it.
   */
  async apply(prediction: Prediction, webhookId: string): Promise<WebhookOutcome> {
    const prompt = await this.d.store.repos.prompts.findByPrediction(prediction.id);
    if (!prompt) {
      // CreatePrompt has not recorded this prediction yet (Replicate answered it after calling
      // us): an error makes Replicate deliver again, by when the prompt knows its prediction.
      throw Errors.notFound('prompt for prediction', prediction.id);
    }
    const delivery: Delivery = { webhookId, runId: prediction.id, duplicate: false };
    const outcome = outcomeOf(prediction);
    const changed =
      outcome?.status === 'succeeded' && outcome.outputs.length > 0 && isActive(prompt.status)
        ? await this.recordSuccess(prompt, outcome, delivery)
        : await this.applyTo(prompt, prediction, delivery);
    return delivery.duplicate ? 'duplicate' : changed ? 'applied' : 'ignored';
  }

  /** A webhook's success, kept for the claim loop (which it wakes); false when nothing changed. */
  private async recordSuccess(
    prompt: Prompt,
    outcome: Extract<Outcome, { status: 'succeeded' }>,
    delivery: Delivery,
  ): Promise<boolean> {
    const recorded = await this.d.store.transaction(
      async (repos) =>
        (await firstDelivery(repos, delivery)) &&
        repos.prompts.recordSuccess(prompt.id, outcome.outputs, outcome.predictTime),
    );
    if (recorded) this.d.wake();
    return recorded;
  }

  /** Applies a prediction's current state to the prompt; true when the prompt changed. */
  async applyTo(prompt: Prompt, prediction: Prediction, delivery?: Delivery): Promise<boolean> {
    if (!isActive(prompt.status)) return false;
    const outcome = outcomeOf(prediction);
    if (outcome) return this.finish(prompt, outcome, delivery);
    if (prediction.status === 'processing' && prompt.status === 'starting') {
      return this.d.store.transaction(async (repos) => {
        if (!(await firstDelivery(repos, delivery))) return false;
        await repos.prompts.markProcessing(prompt.id);
        return true;
      });
    }
    return false;
  }

  /**
   * Ends an unfinished prompt with `outcome`; false when it had finished already. Throws when the
   * outputs could not be copied for a reason that may pass (the caller retries later); outputs
   * that can never be copied fail the prompt and release its credits.
   */
  async finish(prompt: Prompt, outcome: Outcome, delivery?: Delivery): Promise<boolean> {
    let images: PromptImage[] = [];
    if (outcome.status === 'succeeded') {
      if (!(await this.d.store.repos.prompts.takeCompletionLease(prompt.id, this.d.completionLeaseMs)))
        return false;
      try {
        // Never more than were reserved: billing refuses to settle more than the reservation.
        images = await this.transfer(prompt, outcome.outputs.slice(0, prompt.params.numOutputs));
      } catch (err) {
        if (!(err instanceof AppError && PERMANENT_TRANSFER_ERRORS.has(err.code))) {
          await this.d.store.repos.prompts.dropCompletionLease(prompt.id).catch(() => undefined);
          throw err;
        }
        this.d.logger.warn(
          { err: err.message, prompt_id: prompt.id },
          'outputs cannot be copied: failing the prompt',
        );
        return this.finish(
          prompt,
          {
            status: 'failed',
            error: 'the outputs could not be copied',
            predictTime: outcome.predictTime,
            reason: 'transfer',
          },
          delivery,
        );
      }
    }
    const cost = costMicros(outcome.predictTime, this.d.pricePerSecondMicros);
    // Signed while the transaction below settles (imageUrls never rejects).
    const signing = this.imageUrls(prompt.id, images);
    const finished = await this.d.store.transaction(async (repos) => {
      if (!(await firstDelivery(repos, delivery))) return false;
      if (!(await repos.prompts.lockActive(prompt.id))) return false;
      // Billing's two calls and this transaction's own statements do not depend on one another,
      // so they run at once; the commit still comes only after billing has answered both.
      const billing = async (): Promise<void> => {
        await allSettled([
          // A run's prompts share the run's one reservation: it is settled once the last of them ends.
          prompt.runId
            ? undefined
            : outcome.status === 'succeeded'
              ? this.d.credits.settle(prompt.id, images.length)
              : this.d.credits.release(prompt.id),
          outcome.predictTime !== null && cost !== null
            ? this.d.credits.recordUsage(
                prompt.accountId,
                prompt.id,
                prompt.versionId,
                outcome.predictTime,
                cost,
              )
            : undefined,
        ]);
      };
      const rows = async (): Promise<boolean> => {
        await repos.images.insertAll(prompt.id, images);
        const ended = await repos.prompts.finish(prompt.id, {
          status: outcome.status,
          error: outcome.status === 'succeeded' ? null : outcome.error,
          predictTime: outcome.predictTime,
          costMicros: cost,
        });
        if (!ended) return false;
        const after = { ...ended, images };
        // Announced in the same transaction as the change: both commit, or neither.
        await repos.outbox.insert(
          newEvent(
            after.accountId,
            `prompt.${outcome.status}`,
            this.d.view(after, await signing),
            after.callbackUrl,
          ),
        );
        return true;
      };
      const [, done] = await allSettled([billing(), rows()]);
      if (done && prompt.runId) await settleRunIfDone(repos, this.d.credits, prompt.runId);
      return done;
    });
    if (!finished) return false;
    const business = this.d.metrics;
    business.prompts.inc({ status: outcome.status });
    if (outcome.status !== 'succeeded') business.runFailures.inc({ kind: 'prompt', reason: outcome.reason });
    if (cost) business.costEstimate.inc({ kind: 'prompt' }, cost);
    this.d.logger.info(
      { prompt_id: prompt.id, status: outcome.status, images: images.length },
      'prompt finished',
    );
    this.d.waiter.notify(prompt.id);
    return true;
  }

  /** Best effort: an event without image URLs beats a prompt that cannot finish; GET signs afresh. */
  private async imageUrls(promptId: string, images: PromptImage[]): Promise<string[]> {
    if (!images.length || !this.d.outputs.signUrls) return [];
    try {
      return await this.d.outputs.signUrls(images.map((i) => i.key));
    } catch (err) {
      this.d.logger.warn(
        { err: (err as Error).message, prompt_id: promptId },
        'could not sign the image URLs',
      );
      return [];
    }
  }

  private async transfer(prompt: Prompt, urls: string[]): Promise<PromptImage[]> {
    if (!urls.length) return [];
    return this.d.outputs.transfer(outputKeyPrefix(prompt.accountId, prompt.versionId, prompt.id), urls);
  }
}
