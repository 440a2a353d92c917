import { AppError, createClaimLoop, type ClaimLoop, type Logger, type Metrics } from '@atelier/kit';
import type { Store, VersionRow } from '../repositories';
import type { BillingPort, ReplicatePort } from './ports';
import type { VersionTransitions } from './version-transition.service';
import { isTerminal } from './version.rules';

export interface ReconcilerOptions {
  intervalMs: number;
  maxGapMs: number;
  batch: number;
  concurrency: number;
  timeoutMs: number;
  /** A row without a training younger than this may belong to a start still running. */
  startGraceMs: number;
}

export interface ReconcilerDeps {
  store: Store;
  billing: BillingPort;
  replicate: ReplicatePort;
  transitions: VersionTransitions;
  metrics: Metrics;
  logger: Logger;
}

/**
 * The safety net under webhooks, on the kit's claim loop: due versions are claimed (the claim
 * reschedules each by a gap that grows with its age, which is its lease), Replicate is asked about
 * each, and the answer goes through the same transition code as a webhook. A training past its
 * deadline is failed and canceled; follow-ups left undone (credits, usage, pushed weights) are
 * retried; a version whose training was never created is removed and its payment released.
 */
export function createVersionReconciler(d: ReconcilerDeps, o: ReconcilerOptions): ClaimLoop {
  const { store, replicate, transitions, logger } = d;
  const versions = store.repos.versions;
  // One Replicate outage spares it the checks of the next interval: those versions are due again later.
  let replicateDownUntil = 0;

  const reconcile = async (row: VersionRow): Promise<void> => {
    const log = logger.child({ version_id: row.id });
    if (!row.replicate_training_id) return dropUnstarted(row, log);

    let v = row;
    if (!isTerminal(v.status) && Date.now() >= replicateDownUntil) {
      try {
        const training = await replicate.getTraining(row.replicate_training_id);
        v = (await transitions.apply(v.id, training, 'replicate')).row ?? v;
      } catch (err) {
        if (err instanceof AppError && (err.code === 'unavailable' || err.code === 'timeout'))
          replicateDownUntil = Date.now() + o.intervalMs;
        log.warn({ err: (err as Error).message }, 'could not ask Replicate about the training');
      }
    }
    if (!isTerminal(v.status) && Date.now() >= v.deadline_at.getTime()) {
      const minutes = Math.round(o.timeoutMs / 60_000);
      const timedOut = await transitions.apply(
        v.id,
        { status: 'failed', error: `training timed out after ${minutes} min` },
        'timeout',
      );
      v = timedOut.row ?? v;
      if (timedOut.changed) {
        // Stop it at Replicate too, so it neither bills on nor pushes weights nobody will use.
        await replicate.cancelTraining(row.replicate_training_id).catch((err: unknown) => {
          log.warn({ err: (err as Error).message }, 'could not cancel the timed-out training');
        });
      }
    }
    await transitions.followUp(v);
  };

  /**
   * A start that died between inserting the row and creating the training: give the
   * payment back. Fenced first: the row turns `failed` (committed under its row lock) before
   * billing hears of it, so a start whose Replicate create answers late cannot record a training
   * on a payment already given back. A fenced row whose release failed comes back `failed`.
   */
  const dropUnstarted = async (row: VersionRow, log: Logger): Promise<void> => {
    if (row.status === 'starting') {
      if (Date.now() - row.created_at.getTime() < o.startGraceMs) return;
      if (!(await versions.abandonUnstarted(row.id, 'the training was never created'))) return;
    } else if (row.status !== 'failed') return;
    await d.billing.releaseInitPayment(row.payment_id, row.id);
    if (await versions.deleteUnstarted(row.id)) {
      log.warn(
        { payment_id: row.payment_id },
        'removed a version whose training was never created; payment released',
      );
    }
  };

  return createClaimLoop({
    name: 'training-reconciler',
    claim: (limit) => versions.claimDue(limit, o.intervalMs, o.maxGapMs),
    handle: reconcile,
    idOf: (row) => row.id,
    oldestDue: () => versions.oldestDue(),
    afterPass: async () => {
      d.metrics.business.inFlight.set({ kind: 'training' }, await versions.countInFlight());
    },
    intervalMs: o.intervalMs,
    batch: o.batch,
    concurrency: o.concurrency,
    logger,
    metrics: d.metrics,
  });
}
