import { AppError, newEvent, type ErrorCode, type Logger, type Metrics } from '@atelier/kit';
import type { Store, TrainerRepositories, VersionRow } from '../repositories';
import type { BillingPort, ReplicatePort, ReplicateTraining, TrainingOutcome } from './ports';
import { isTerminal, planTransition, type TrainingObservation } from './version.rules';

/** Who decided a change: Replicate (webhook, poll, cancel answer), our timeout, the customer, or a refund. */
export type TransitionCause = 'replicate' | 'timeout' | 'cancel' | 'refund';

export type WebhookOutcome = 'applied' | 'duplicate' | 'unknown' | 'unchanged';

export interface TransitionDeps {
  store: Store;
  billing: BillingPort;
  replicate: ReplicatePort;
  metrics: Metrics['business'];
  logger: Logger;
  pricePerSecondMicros: number;
  /** After a training succeeded, how long to keep looking for its pushed weights. */
  pushPatienceMs: number;
  /** The version as GET returns it: the data of the events announcing its changes. */
  view: (row: VersionRow) => unknown;
}

/**
 * Billing answered, and asking again would get the same answer: every refusal ReportTrainingOutcome
 * (an unknown payment, one that is not an init payment, a version of another account) and
 * RecordUsage (an unknown account) can answer, and ids or values it cannot read. Anything else
 * (billing down or slow) is retried by the reconciler, at most every RECONCILE_MAX_BACKOFF_MS, for
 * as long as it lasts: the version stays unsettled until billing hears it.
 */
const FINAL_BILLING_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'not_found',
  'payment_not_for_training',
  'version_of_another_account',
  'invalid_argument',
  'malformed_id',
]);
const isFinal = (err: unknown) => err instanceof AppError && FINAL_BILLING_ERRORS.has(err.code);

/**
 * The one place a version changes status — webhooks, the reconciler and cancel all come here —
 * and the follow-ups a change calls for (pushed weights, credits, usage), each retried by the
 * reconciler until done.
 */
export class VersionTransitions {
  constructor(private readonly d: TransitionDeps) {}

  /** A signed Replicate event: its webhook-id is recorded in the same transaction as the change. */
  async applyWebhook(
    webhookId: string,
    training: ReplicateTraining,
  ): Promise<{ outcome: WebhookOutcome; row?: VersionRow }> {
    const result = await this.d.store.transaction(async (repos) => {
      const row = await repos.versions.lockByTraining(training.id);
      // Unknown (not ours, or its id not stored yet): record nothing, the reconciler will see it.
      if (!row) return { outcome: 'unknown' as const };
      if (!(await repos.webhookEvents.record(webhookId, training.id)))
        return { outcome: 'duplicate' as const, row };
      const t = await this.transitionLocked(repos, row, training);
      return { outcome: t.changed ? ('applied' as const) : ('unchanged' as const), row: t.row };
    });
    if (result.outcome !== 'applied' || !result.row) return result;
    this.recorded(result.row, 'replicate');
    return { outcome: 'applied', row: await this.followUp(result.row) };
  }

  /**
   * Cancels the version's training at Replicate and records the answer: `canceled`, or the final
   * state Replicate had already reached. A non-final answer means the cancel is under way, and we
   * stop waiting for this training now; a training Replicate no longer knows runs nowhere either.
   */
  async cancelAtReplicate(
    versionId: string,
    trainingId: string,
    cause: TransitionCause,
  ): Promise<{ changed: boolean; row?: VersionRow }> {
    let reported: ReplicateTraining | undefined;
    try {
      reported = await this.d.replicate.cancelTraining(trainingId);
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'not_found')) throw err;
    }
    const obs = reported && isTerminal(reported.status) ? reported : { status: 'canceled' as const };
    return this.apply(versionId, obs, cause);
  }

  /** A change decided by polling, a cancel or a timeout. `row` is undefined when the version is gone. */
  async apply(
    versionId: string,
    obs: TrainingObservation,
    cause: TransitionCause,
  ): Promise<{ changed: boolean; row?: VersionRow }> {
    const result = await this.d.store.transaction(async (repos) => {
      const row = await repos.versions.lock(versionId);
      return row ? this.transitionLocked(repos, row, obs) : { changed: false, row: undefined };
    });
    if (result.changed && result.row) this.recorded(result.row, cause);
    return result;
  }

  /**
   * What a version still needs once it exists at Replicate, each step idempotent and retried by
   * the reconciler until done. Trainer only reports what happened; billing decides what it means
   * (payment.rules decideTrainingOutcome):
   * - while it runs: is the payment still paying for it? A refunded payment's training is canceled;
   * - succeeded and its weights exist: `ready` is reported (billing grants the credits as bought)
   *   before pushed_at makes the version ready, so a ready version never shows 0 credits;
   * - failed, canceled, or succeeded without weights past its patience: `failed` is reported
   *   (billing gives the payment back, so it can train again);
   * - the usage is recorded once finished; then off the reconciler's queue.
   * grant_settled_at records that billing heard the final outcome.
   */
  async followUp(row: VersionRow): Promise<VersionRow> {
    const { store, replicate, logger, metrics } = this.d;
    const versions = store.repos.versions;
    let v = row;
    const log = logger.child({ version_id: v.id });

    if (!isTerminal(v.status) && v.replicate_training_id) {
      try {
        const { keepTraining } = await this.report(v, 'running');
        if (!keepTraining) v = await this.stopUnpaid(v, log);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not ask billing about the payment; retried');
      }
    }

    if (v.status === 'succeeded' && !v.pushed_at) {
      try {
        const latest = await replicate.latestVersion(v.model);
        if (latest) {
          if (!v.grant_settled_at) v = await this.settleWithBilling(v, 'ready', log);
          // Billing did not hear it (it is down): not ready yet, the reconciler tries both again.
          const pushed = v.grant_settled_at ? await versions.markPushed(v.id, latest) : undefined;
          if (pushed?.pushed_at) {
            v = pushed;
            metrics.timeToReady.observe((pushed.pushed_at.getTime() - pushed.created_at.getTime()) / 1000);
            log.info({ replicate_version: pushed.replicate_version }, 'trained version pushed: ready');
          }
        }
      } catch (err) {
        log.warn(
          { err: (err as Error).message },
          'could not check the pushed version; the reconciler retries',
        );
      }
    }

    const givingUpOnPush =
      v.status === 'succeeded' &&
      !v.pushed_at &&
      Date.now() > (v.completed_at ?? v.created_at).getTime() + this.d.pushPatienceMs;
    if (!v.grant_settled_at) {
      if (v.status === 'succeeded' && v.pushed_at) v = await this.settleWithBilling(v, 'ready', log);
      else if (v.status === 'failed' || v.status === 'canceled' || givingUpOnPush)
        v = await this.settleWithBilling(v, 'failed', log);
    }

    if (isTerminal(v.status) && !v.usage_recorded_at) {
      try {
        await this.d.billing.recordUsage({
          accountId: v.account_id,
          versionId: v.id,
          predictSeconds: v.predict_time ?? 0,
          costMicros: v.cost_micros ?? 0,
        });
        const recorded = await versions.markUsageRecorded(v.id);
        if (recorded) {
          v = recorded;
          if (v.cost_micros) metrics.costEstimate.inc({ kind: 'training' }, v.cost_micros);
        }
      } catch (err) {
        if (isFinal(err)) {
          log.error({ err: (err as Error).message }, 'billing refused the usage record; not asking again');
          v = (await versions.markUsageRecorded(v.id)) ?? v;
        } else {
          log.warn({ err: (err as Error).message }, 'could not record the usage; the reconciler retries');
        }
      }
    }

    if (isTerminal(v.status) && v.grant_settled_at && v.usage_recorded_at && !v.settled_at) {
      if (givingUpOnPush)
        log.error(
          { model: v.model },
          'the training succeeded but its weights never appeared; the version stays not ready',
        );
      v = (await versions.markSettled(v.id, givingUpOnPush)) ?? v;
    }
    return v;
  }

  private report(v: VersionRow, outcome: TrainingOutcome) {
    return this.d.billing.reportOutcome(
      { accountId: v.account_id, paymentId: v.payment_id, versionId: v.id },
      outcome,
    );
  }

  /** Tells billing the final outcome; the version remembers it was heard (or refused for good). */
  private async settleWithBilling(
    v: VersionRow,
    outcome: 'ready' | 'failed',
    log: Logger,
  ): Promise<VersionRow> {
    try {
      await this.report(v, outcome);
    } catch (err) {
      if (!isFinal(err)) {
        log.warn({ err: (err as Error).message, outcome }, 'billing did not hear the outcome; retried');
        return v;
      }
      log.error(
        { err: (err as Error).message, payment_id: v.payment_id, outcome },
        'billing refused the outcome; not asking again',
      );
    }
    if (outcome === 'failed') log.info({ payment_id: v.payment_id }, 'training never ready: billing told');
    return (await this.d.store.repos.versions.markGrantSettled(v.id)) ?? v;
  }

  /** The payment stopped paying for this training (refunded): cancel it so it neither bills nor pushes. */
  private async stopUnpaid(v: VersionRow, log: Logger): Promise<VersionRow> {
    const { row = v } = await this.cancelAtReplicate(v.id, v.replicate_training_id!, 'refund');
    log.warn({ payment_id: v.payment_id, status: row.status }, 'payment refunded: training canceled');
    return row;
  }

  private async transitionLocked(repos: TrainerRepositories, row: VersionRow, obs: TrainingObservation) {
    const patch = planTransition(row, obs, {
      now: new Date(),
      pricePerSecondMicros: this.d.pricePerSecondMicros,
    });
    if (!patch) return { changed: false, row };
    // The row is locked, so the guard on its status always matches; it is there for safety.
    const updated = await repos.versions.transition(row.id, row.status, patch);
    // Announced in the same transaction as the change: both commit, or neither.
    if (updated && updated.status !== 'starting')
      await repos.outbox.insert(
        newEvent(updated.account_id, `version.${updated.status}`, this.d.view(updated), updated.callback_url),
      );
    return { changed: updated !== undefined, row: updated ?? row };
  }

  private recorded(row: VersionRow, cause: TransitionCause): void {
    const { metrics, logger } = this.d;
    metrics.trainings.inc({ status: row.status });
    if (row.status === 'failed')
      metrics.runFailures.inc({ kind: 'training', reason: cause === 'timeout' ? 'timeout' : 'replicate' });
    if (row.status === 'canceled') metrics.runFailures.inc({ kind: 'training', reason: 'canceled' });
    logger.info(
      { version_id: row.id, status: row.status, cause, error: row.error ?? undefined },
      'training status changed',
    );
  }
}
