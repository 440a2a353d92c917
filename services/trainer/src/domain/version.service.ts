import { randomUUID } from 'node:crypto';
import {
  AppError,
  checkCallbackUrl,
  currentContext,
  decodeCursor,
  Errors,
  pageOf,
  pageSize,
  requireUuid,
  runWithContext,
  type Logger,
  type Metrics,
} from '@atelier/kit';
import type { Store, VersionRow } from '../repositories';
import type { BillingPort, ObjectsPort, PlanAsBought, ReplicatePort, ReplicateTraining } from './ports';
import type { VersionTransitions } from './version-transition.service';
import { destinationModel, isTerminal, type VersionStatus } from './version.rules';

/** What a start launches: the packed dataset and the training's labels (checked by the caller). */
export interface LaunchInput {
  datasetKey: string;
  datasetUrl: string;
  imageCount: number;
  className: string;
  triggerWord: string;
  callbackUrl?: string;
  /** Trainings the account may have running at once (its tier's); 0 or unset = the default. */
  maxRunning?: number;
}

export interface VersionServiceOptions {
  /** Owner of the destination models. */
  owner: string;
  trainer: { model: string; version: string };
  /** The trainer model's input names for our values. */
  inputs: { images: string; trigger_word: string; steps?: string; class?: string };
  steps: number;
  /** PUBLIC_WEBHOOK_URL; `?kind=training` routes the events to trainer. */
  webhookUrl: string;
  /** Trainings an account may have running at once when the caller names no tier limit. */
  maxRunningPerAccount: number;
  timeoutMs: number;
  startGraceMs: number;
  /** When the reconciler first polls a new training (webhooks are the fast path). */
  firstCheckMs: number;
  /** WEBHOOK_ALLOW_PRIVATE: a callback_url may be http or a private address (development and tests). */
  allowPrivateCallbacks: boolean;
  /** How long a failed start's cleanup waits for imager to delete its dataset (IMAGER_TIMEOUT_MS). */
  datasetDeleteTimeoutMs: number;
}

/** What a start has done so far: exactly what compensate undoes. */
export interface StartProgress {
  accountId: string;
  paymentId: string;
  versionId: string;
  claimed: boolean;
  rowInserted: boolean;
  /** A training created but not recorded: canceled when the start fails. */
  trainingId?: string;
  /** The packed dataset this start stored, once imager stored it. */
  datasetKey?: string;
  /** A training may read the dataset: it is not deleted. */
  datasetInUse: boolean;
}

export const newProgress = (accountId: string, paymentId: string, versionId: string): StartProgress => ({
  accountId,
  paymentId,
  versionId,
  claimed: false,
  rowInserted: false,
  datasetInUse: false,
});

export interface VersionServiceDeps {
  store: Store;
  billing: BillingPort;
  replicate: ReplicatePort;
  /** Deletes the datasets of failed starts. */
  objects: Pick<ObjectsPort, 'deleteDataset'>;
  transitions: VersionTransitions;
  metrics: Metrics['business'];
  logger: Logger;
}

// Failures after which a call may still have taken effect.
const AMBIGUOUS = new Set(['timeout', 'unavailable', 'internal']);

/** Runs fn without the caller's deadline: cleanups must finish even when the caller gave up. */
function detached<T>(fn: () => Promise<T>): Promise<T> {
  return runWithContext({ requestId: currentContext()?.requestId ?? randomUUID() }, fn);
}

/**
 * A training's start in steps TrainingService drives (refuseAtCap, claim, launch, compensate),
 * and GetVersion, ListVersions, CancelTraining.
 */
export class VersionService {
  constructor(
    private readonly d: VersionServiceDeps,
    private readonly o: VersionServiceOptions,
  ) {}

  /**
   * A request's callback_url as it will be stored (normalised), or undefined when it has none;
   * a URL callbacks may not go to is a 400 here, before anything is claimed or read.
   */
  callbackUrl(raw: string | undefined): string | undefined {
    return raw ? checkCallbackUrl(raw, this.o.allowPrivateCallbacks, 'callback_url') : undefined;
  }

  /**
   * Refuses early (before a payment is claimed or a photo read) when the account already has as
   * many trainings running as it may; `launch` enforces the cap again, atomically.
   */
  async refuseAtCap(accountId: string, maxRunning: number | undefined): Promise<void> {
    const max = maxRunning || this.o.maxRunningPerAccount;
    if ((await this.d.store.repos.versions.countRunningOf(accountId)) >= max)
      throw Errors.tooManyRunningTrainings(max);
  }

  /**
   * Binds the payment to the version; answers the plan as bought. Billing answers 404 (not the
   * caller's), 402 (not paid) and 409 (add-on, or used) itself.
   */
  async claim(progress: StartProgress): Promise<PlanAsBought> {
    const { accountId, paymentId, versionId } = progress;
    // An account being deleted trains nothing new (its deletion would have to chase it).
    if (await this.d.store.repos.accountDeletions.find(accountId)) throw Errors.accountDeleted(accountId);
    try {
      const plan = await this.d.billing.claimInitPayment(accountId, paymentId, versionId);
      progress.claimed = true;
      return plan;
    } catch (err) {
      // No answer is not "no": the claim may have been made. Releasing is safe either way, since
      // billing only releases a claim this version holds.
      if (err instanceof AppError && AMBIGUOUS.has(err.code)) {
        progress.claimed = true;
        await this.compensate(progress, err);
      }
      throw err;
    }
  }

  /**
   * Records the version, makes sure its destination model exists and starts the training; its
   * labels and callback URL were checked by the caller, before the claim. Throws
   * with `progress` telling compensate what to undo; once the training exists the version stands
   * and what is left (billing's part) is a follow-up the reconciler retries.
   */
  async launch(progress: StartProgress, input: LaunchInput, signal?: AbortSignal): Promise<VersionRow> {
    const { accountId, paymentId, versionId } = progress;
    if (!(input.imageCount > 0)) throw Errors.invalid('image_count must be positive');
    const { store, replicate, transitions, logger } = this.d;
    const log = logger.child({ version_id: versionId, payment_id: paymentId });
    const model = destinationModel(this.o.owner, versionId);
    const maxRunning = input.maxRunning || this.o.maxRunningPerAccount;
    const versions = store.repos.versions;
    let row = await versions.insertUnderCap(
      {
        id: versionId,
        accountId,
        paymentId,
        className: input.className,
        triggerWord: input.triggerWord,
        model,
        datasetKey: input.datasetKey,
        imageCount: input.imageCount,
        timeoutMs: this.o.timeoutMs,
        startGraceMs: this.o.startGraceMs,
        callbackUrl: input.callbackUrl || null,
      },
      maxRunning,
    );
    // As inferencer's prompts: no lock (uploads take minutes); racers for the last slot count
    // again once their rows are committed, and whoever sees the cap passed steps back. The last
    // to commit sees every row, so the cap is never passed (at worst both step back).
    if (row && (await versions.countRunningOf(accountId)) > maxRunning) {
      await versions.deleteUnstarted(versionId);
      row = undefined;
    }
    // Refused: compensate gives the payment back and deletes the dataset.
    if (!row) throw Errors.tooManyRunningTrainings(maxRunning);
    progress.rowInserted = true;

    await replicate.ensureModel(model);
    // Nothing runs at Replicate yet: a caller that went away gets its payment back.
    if (signal?.aborted) throw Errors.timedOut('the caller went away before the training was created');
    let training: ReplicateTraining;
    try {
      training = await replicate.createTraining({
        trainer: this.o.trainer,
        destination: model,
        input: this.trainingInput(input.datasetUrl, input.triggerWord, input.className),
        webhook: withKind(this.o.webhookUrl),
        webhookEventsFilter: ['start', 'completed'],
      });
    } catch (err) {
      // No answer: the training may exist and will download the dataset, so the dataset stays.
      if (err instanceof AppError && err.code === 'timeout') progress.datasetInUse = true;
      throw err;
    }
    progress.trainingId = training.id;

    const stored = await store.repos.versions.setTraining(versionId, training.id, this.o.firstCheckMs);
    if (!stored) {
      // The reconciler took this start for dead (past the start grace) and fenced the row; it gives
      // the payment back and removes the row. This training is canceled (compensate).
      progress.claimed = false;
      progress.rowInserted = false;
      throw Errors.unavailable('trainer (the start took too long)');
    }
    progress.trainingId = undefined;
    progress.datasetInUse = true;
    this.d.metrics.trainings.inc({ status: 'starting' });
    log.info({ training_id: training.id, model }, 'training started');
    // The create answer rarely says more than `starting`, but when it does it counts.
    const current =
      training.status === 'starting'
        ? stored
        : ((await transitions.apply(versionId, training, 'replicate')).row ?? stored);
    return transitions.followUp(current);
  }

  /**
   * The one place a failed start is undone, from what `progress` says was done: a training we
   * cannot keep is canceled, the payment given back, the unstarted row removed, and the dataset
   * deleted unless a training may read it. The payment is released before the row goes, so a
   * billing outage leaves the row for the reconciler (which releases and removes it) instead of a
   * claim on a version nobody knows.
   */
  async compensate(progress: StartProgress, cause: unknown): Promise<void> {
    const log = this.d.logger.child({ version_id: progress.versionId, payment_id: progress.paymentId });
    log.warn({ err: (cause as Error).message }, 'could not start the training; undoing what was done');
    await detached(async () => {
      if (progress.trainingId) {
        const trainingId = progress.trainingId;
        await this.d.replicate.cancelTraining(trainingId).catch((err: unknown) => {
          log.error(
            { err: (err as Error).message, training_id: trainingId },
            'could not cancel an abandoned training',
          );
        });
      }
      let released = !progress.claimed;
      if (progress.claimed) {
        try {
          await this.d.billing.releaseInitPayment(progress.paymentId, progress.versionId);
          released = true;
        } catch (err) {
          log.error(
            { err: (err as Error).message },
            'could not release the payment; the reconciler will once the start grace passed',
          );
        }
      }
      if (released && progress.rowInserted) {
        await this.d.store.repos.versions.deleteUnstarted(progress.versionId).catch((err: unknown) => {
          log.error(
            { err: (err as Error).message },
            'could not remove the unstarted version; the reconciler will',
          );
        });
      }
      if (progress.datasetKey && !progress.datasetInUse) {
        const call = { timeoutMs: this.o.datasetDeleteTimeoutMs };
        await this.d.objects.deleteDataset(progress.datasetKey, call).catch((err: unknown) => {
          log.error(
            { err: (err as Error).message, dataset_key: progress.datasetKey },
            'could not delete the dataset',
          );
        });
      }
    });
  }

  /** The version this payment already started under this id, if any (a retried upload). */
  async startedWith(
    accountId: string,
    paymentId: string,
    versionId: string,
  ): Promise<VersionRow | undefined> {
    const row = await this.d.store.repos.versions.find(versionId);
    if (!row) return undefined;
    if (row.account_id !== accountId || row.payment_id !== paymentId)
      throw Errors.idReused('version', versionId);
    return row;
  }

  async get(accountId: string, versionId: string): Promise<VersionRow> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('version_id', versionId);
    const row = await this.d.store.repos.versions.find(id);
    // Another account's version is as unknown as a missing one.
    if (!row || row.account_id !== account) throw Errors.notFound('version', id);
    if (row.deleted_at) throw Errors.versionDeleted(id);
    return row;
  }

  /** A page of the account's versions, newest first, optionally of one status. */
  async list(
    accountId: string,
    status: VersionStatus | undefined,
    limit: number,
    cursor: string,
  ): Promise<{ versions: VersionRow[]; nextCursor: string }> {
    const account = requireUuid('account_id', accountId);
    const size = pageSize(limit);
    const rows = await this.d.store.repos.versions.listByAccount(
      account,
      status,
      decodeCursor(cursor),
      size + 1,
    );
    const { items, nextCursor } = pageOf(rows, size);
    return { versions: items, nextCursor };
  }

  /** Cancels at Replicate, then records `canceled`; a finished training is a 409. */
  async cancel(accountId: string, versionId: string): Promise<VersionRow> {
    const row = await this.get(accountId, versionId);
    if (isTerminal(row.status)) throw Errors.trainingFinished(row.status);
    if (!row.replicate_training_id) throw Errors.trainingStarting();
    const { row: after = row } = await this.d.transitions.cancelAtReplicate(
      row.id,
      row.replicate_training_id,
      'cancel',
    );
    if (after.status !== 'canceled') {
      await this.d.transitions.followUp(after);
      throw Errors.trainingFinished(after.status);
    }
    return this.d.transitions.followUp(after);
  }

  private trainingInput(datasetUrl: string, triggerWord: string, className: string): Record<string, unknown> {
    const names = this.o.inputs;
    const input: Record<string, unknown> = { [names.images]: datasetUrl, [names.trigger_word]: triggerWord };
    if (names.steps) input[names.steps] = this.o.steps;
    if (names.class) input[names.class] = className;
    return input;
  }
}

function withKind(webhookUrl: string): string {
  const url = new URL(webhookUrl);
  url.searchParams.set('kind', 'training');
  return url.toString();
}
