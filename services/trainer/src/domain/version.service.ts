import { randomUUID } from 'node:crypto';
import {
  AppError,
  currentContext,
  decodeCursor,
  Errors,
  pageOf,
  pageSize,
  PG_UNIQUE_VIOLATION,
  pgCode,
  requireUuid,
  runWithContext,
  type Logger,
  type Metrics,
} from '@atelier/kit';
import type { Store, VersionRow } from '../repositories';
import type { BillingPort, ReplicatePort, ReplicateTraining } from './ports';
import type { VersionTransitions } from './version.transitions';
import { destinationModel, isTerminal, type VersionStatus } from './version.rules';

export interface StartTrainingInput {
  accountId: string;
  paymentId: string;
  versionId: string;
  datasetKey: string;
  datasetUrl: string;
  imageCount: number;
  className: string;
  triggerWord: string;
  callbackUrl?: string;
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
  timeoutMs: number;
  startGraceMs: number;
  /** When the reconciler first polls a new training (webhooks are the fast path). */
  firstCheckMs: number;
}

export interface VersionServiceDeps {
  store: Store;
  billing: BillingPort;
  replicate: ReplicatePort;
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

/** StartTraining, GetVersion, CancelTraining. */
export class VersionService {
  constructor(
    private readonly d: VersionServiceDeps,
    private readonly o: VersionServiceOptions,
  ) {}

  /**
   * Claims the payment, records the version, makes sure its destination model exists and starts
   * the training. Until the training exists every failure gives the payment back and removes the
   * row, so the customer can simply retry; once it exists, the version stands and what is left
   * (the credits) is a follow-up the reconciler retries.
   */
  async start(input: StartTrainingInput, signal?: AbortSignal): Promise<VersionRow> {
    const accountId = requireUuid('account_id', input.accountId);
    const paymentId = requireUuid('payment_id', input.paymentId);
    const versionId = requireUuid('version_id', input.versionId);
    if (!/^https?:\/\//.test(input.datasetUrl)) throw Errors.invalid('dataset_url must be an http(s) URL');
    if (!input.datasetKey) throw Errors.invalid('dataset_key is required');
    if (!(input.imageCount > 0)) throw Errors.invalid('image_count must be positive');
    const className = input.className.trim();
    const triggerWord = input.triggerWord.trim();
    if (!className || className.length > 64) throw Errors.invalid('class_name must be 1–64 characters');
    if (!triggerWord || triggerWord.length > 64) throw Errors.invalid('trigger_word must be 1–64 characters');
    if (input.callbackUrl && !/^https?:\/\/\S{1,2000}$/.test(input.callbackUrl))
      throw Errors.invalid('callback_url must be an http(s) URL');
    const { store, billing, replicate, transitions, logger } = this.d;
    const log = logger.child({ version_id: versionId, payment_id: paymentId });
    const model = destinationModel(this.o.owner, versionId);
    // An account being deleted trains nothing new (its deletion would have to chase it).
    if (await store.repos.accountDeletions.find(accountId)) throw Errors.accountDeleted(accountId);

    // Billing answers 404 (not the caller's), 402 (not paid) and 409 (add-on, or used) itself.
    try {
      await billing.claimInitPayment(accountId, paymentId, versionId);
    } catch (err) {
      // No answer is not "no": the claim may have been made. Releasing is safe either way, since
      // billing only releases a claim this version holds.
      if (err instanceof AppError && AMBIGUOUS.has(err.code)) {
        await this.release(paymentId, versionId).catch((releaseErr: unknown) =>
          log.error(
            { err: (releaseErr as Error).message },
            'the claim may have been made and could not be released: the payment may stay claimed',
          ),
        );
      }
      throw err;
    }
    try {
      await store.repos.versions.insert({
        id: versionId,
        accountId,
        paymentId,
        className,
        triggerWord,
        model,
        datasetKey: input.datasetKey,
        imageCount: input.imageCount,
        timeoutMs: this.o.timeoutMs,
        startGraceMs: this.o.startGraceMs,
        callbackUrl: input.callbackUrl || null,
      });
    } catch (err) {
      await this.giveBack(paymentId, versionId, log);
      if (pgCode(err) === PG_UNIQUE_VIOLATION) throw Errors.paymentAlreadyUsed(paymentId);
      throw err;
    }

    let training: ReplicateTraining;
    try {
      await replicate.ensureModel(model);
      // Nothing runs at Replicate yet: a caller that went away gets its payment back.
      if (signal?.aborted) throw Errors.timedOut('the caller went away before the training was created');
      training = await replicate.createTraining({
        trainer: this.o.trainer,
        destination: model,
        input: this.trainingInput(input.datasetUrl, triggerWord, className),
        webhook: withKind(this.o.webhookUrl),
        webhookEventsFilter: ['start', 'completed'],
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not start the training; payment released');
      await this.giveBack(paymentId, versionId, log);
      throw err;
    }

    let stored: VersionRow | undefined;
    try {
      stored = await store.repos.versions.setTraining(versionId, training.id, this.o.firstCheckMs);
    } catch (err) {
      await this.abandon(training.id, log);
      await this.giveBack(paymentId, versionId, log);
      throw err;
    }
    if (!stored) {
      // The reconciler took this start for dead (past the start grace) and released the payment.
      await this.abandon(training.id, log);
      throw Errors.unavailable('trainer (the start took too long)');
    }
    this.d.metrics.trainings.inc({ status: 'starting' });
    log.info({ training_id: training.id, model }, 'training started');
    // The create answer rarely says more than `starting`, but when it does it counts.
    const current =
      training.status === 'starting'
        ? stored
        : ((await transitions.apply(versionId, training, 'replicate')).row ?? stored);
    // Grants the credits now; if billing does not answer, the reconciler grants them later.
    return transitions.followUp(current);
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
    const reported = await this.d.replicate.cancelTraining(row.replicate_training_id);
    // Replicate answers `canceled`, or the state it had already reached; a non-final answer means
    // the cancel is under way, and we stop waiting for this training now.
    const obs = isTerminal(reported.status) ? reported : { status: 'canceled' as const };
    const { row: after = row } = await this.d.transitions.apply(row.id, obs, 'cancel');
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

  /**
   * Before the training exists: the payment is released first and the row removed only then, so
   * a billing outage leaves the row for the reconciler (which releases and removes it) instead of
   * a claim on a version nobody knows.
   */
  private async giveBack(paymentId: string, versionId: string, log: Logger): Promise<void> {
    try {
      await this.release(paymentId, versionId);
    } catch (err) {
      log.error(
        { err: (err as Error).message },
        'could not release the payment; the reconciler will once the start grace passed',
      );
      return;
    }
    await this.d.store.repos.versions.deleteUnstarted(versionId).catch((err: unknown) => {
      log.error(
        { err: (err as Error).message },
        'could not remove the unstarted version; the reconciler will',
      );
    });
  }

  private release(paymentId: string, versionId: string): Promise<boolean> {
    return detached(() => this.d.billing.releaseInitPayment(paymentId, versionId));
  }

  /** A training we cannot keep: stop it so it neither bills nor pushes. */
  private async abandon(trainingId: string, log: Logger): Promise<void> {
    await detached(() => this.d.replicate.cancelTraining(trainingId)).catch((err: unknown) => {
      log.error(
        { err: (err as Error).message, training_id: trainingId },
        'could not cancel an abandoned training',
      );
    });
  }
}

function withKind(webhookUrl: string): string {
  const url = new URL(webhookUrl);
  url.searchParams.set('kind', 'training');
  return url.toString();
}
