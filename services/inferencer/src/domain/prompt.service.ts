import {
  AppError,
  checkCallbackUrl,
  Errors,
  replicateError,
  requireUuid,
  type ErrorCode,
  type Logger,
  type Metrics,
} from '@atelier/kit';
import type { Store } from '../repositories';
import type { PromptCompletion } from './prompt-completion.service';
import { isActive, type Outcome, type Prediction, type Prompt, type PromptParams } from './prompt.model';
import type { Credits, Predictions, VersionDirectory, VersionFacts } from './ports';
import {
  decodeCursor,
  encodeCursor,
  outcomeOf,
  pageSize,
  toModelInput,
  validateParams,
  versionIdOf,
} from './prompt.rules';
import type { PromptWaiter } from './prompt-waiter.service';

/** Billing answers that mean it reserved nothing: the prompt's (or the run's) row can simply go. */
const RESERVE_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'insufficient_credits',
  'not_found',
  'reservation_mismatch',
  'invalid_argument',
  'malformed_id',
  'payment_not_paid',
  'permission_denied',
]);

const PARAM_FIELDS = [
  'prompt',
  'negativePrompt',
  'numOutputs',
  'width',
  'height',
  'numInferenceSteps',
  'guidanceScale',
  'seed',
] as const satisfies ReadonlyArray<keyof PromptParams>;
const sameParams = (a: PromptParams, b: PromptParams) =>
  PARAM_FIELDS.every((k) => (a[k] ?? null) === (b[k] ?? null));

export const isReserveRefusal = (err: unknown): boolean =>
  err instanceof AppError && RESERVE_REFUSALS.has(err.code);

/** A version the caller owns and can run prompts on. */
export type ReadyVersion = VersionFacts & { isReady: true };

/** Time kept back from the caller's deadline to answer it. */
const ANSWER_MARGIN_MS = 500;

export interface PromptServiceDeps {
  store: Store;
  versions: VersionDirectory;
  credits: Credits;
  predictions: Predictions;
  completion: PromptCompletion;
  waiter: PromptWaiter;
  metrics: Metrics['business'];
  logger: Logger;
  settings: {
    /** Replicate's webhook target for predictions (the gateway route with `?kind=prediction`). */
    webhookUrl: string;
    timeoutMs: number;
    checkIntervalMs: number;
    createGraceMs: number;
    /** Prompts an account may have running at once when the caller does not say (tiers do). */
    maxRunningPerAccount: number;
    /** WEBHOOK_ALLOW_PRIVATE: a callback_url may be http or a private address (development and tests). */
    allowPrivateCallbacks: boolean;
  };
}

export interface CreatePromptInput {
  accountId: string;
  versionId: string;
  promptId: string;
  params: PromptParams;
  waitSeconds: number;
  callbackUrl?: string;
  /** Prompts the account may have running at once; 0 = the configured default. */
  maxRunning?: number;
  /** An offer or pack run that reserved the credits already (one reservation for all its prompts). */
  runId?: string;
  /** The version as the run found it ready, so a run of N prompts asks trainer once, not N + 1 times. */
  version?: ReadyVersion;
}

/** The caller's limits: its absolute deadline (epoch ms) and a signal for when it goes away. */
export interface CallLimits {
  deadline?: number;
  signal?: AbortSignal;
}

export class PromptService {
  constructor(private readonly d: PromptServiceDeps) {}

  /** The account's cap on prompts running at once: its tier's, or the configured one. */
  runningCap(tierCap?: number): number {
    return tierCap || this.d.settings.maxRunningPerAccount;
  }

  /** The caller's version, ready to run prompts on: not_found for a foreign one, version_not_ready. */
  async readyVersion(accountId: string, versionId: string): Promise<ReadyVersion> {
    const version = await this.d.versions.getVersion(accountId, versionId);
    // trainer answers 404 for a foreign version itself; this guards against a trainer that does not.
    if (version.accountId !== accountId) throw Errors.notFound('version', versionId);
    if (!version.isReady || !version.replicateVersion) throw Errors.versionNotReady(versionId);
    return { ...version, isReady: true };
  }

  /**
   * Version check (trainer) → prompt row → credit reservation (billing) → prediction (Replicate).
   * Each later step that fails undoes the earlier ones: a refused reservation removes the row; a
   * failed prediction releases the reservation and fails the prompt. A step whose outcome is
   * unknown (billing or Replicate did not answer in time) leaves the prompt to the reconciler,
   * which releases whatever was reserved.
   */
  async create(
    input: CreatePromptInput,
    call: CallLimits = {},
  ): Promise<{ prompt: Prompt; imagesRemaining: number }> {
    const accountId = requireUuid('account_id', input.accountId);
    const versionId = requireUuid('version_id', input.versionId);
    const promptId = requireUuid('prompt_id', input.promptId);
    const params = validateParams(input.params);
    if (!Number.isInteger(input.waitSeconds) || input.waitSeconds < 0 || input.waitSeconds > 60) {
      throw Errors.invalid(`wait_seconds must be in 0..60, got ${input.waitSeconds}`);
    }
    const callbackUrl = input.callbackUrl
      ? checkCallbackUrl(input.callbackUrl, this.d.settings.allowPrivateCallbacks, 'callback_url')
      : null;

    const version = input.version ?? (await this.readyVersion(accountId, versionId));

    const { prompts } = this.d.store.repos;
    // The id is derived from the client's Idempotency-Key: a retry finds the first attempt's prompt.
    const existing = await prompts.find(promptId);
    if (existing) return this.existing(existing, accountId, versionId, params);
    const maxRunning = this.runningCap(input.maxRunning);
    const inserted = await prompts.insertUnderCap(
      {
        id: promptId,
        accountId,
        versionId,
        params,
        timeoutMs: this.d.settings.timeoutMs,
        graceMs: this.d.settings.createGraceMs,
        callbackUrl,
        runId: input.runId,
      },
      maxRunning,
    );
    if (inserted === 'id_taken') {
      // The same retry raced us to the insert.
      const raced = await prompts.find(promptId);
      if (!raced) throw Errors.idReused('prompt', promptId);
      return this.existing(raced, accountId, versionId, params);
    }
    if (inserted === 'at_cap') throw Errors.tooManyRunningPrompts(maxRunning);
    // No lock (a queue of creates would hold a connection each): racers for the last slot
    // count again once their rows are committed; whoever sees the cap passed steps back. The
    // last to commit sees every row, so the cap is never passed (at worst both step back).
    if ((await prompts.countActiveOf(accountId)) > maxRunning) {
      await prompts.deleteUnstarted(promptId);
      throw Errors.tooManyRunningPrompts(maxRunning);
    }

    let remaining = 0;
    try {
      if (!input.runId)
        ({ remaining } = await this.d.credits.reserve(accountId, versionId, promptId, params.numOutputs));
    } catch (err) {
      if (isReserveRefusal(err)) await prompts.deleteUnstarted(promptId);
      else
        await prompts
          .scheduleNow(promptId)
          .catch((e: unknown) =>
            this.d.logger.error({ err: e, prompt_id: promptId }, 'could not schedule an orphaned prompt'),
          );
      throw err;
    }
    this.d.metrics.prompts.inc({ status: 'starting' });

    let prediction: Prediction;
    try {
      prediction = await this.createPrediction(promptId, version.replicateVersion, params, call.deadline);
    } catch (err) {
      const appError = replicateError(err);
      await this.abandon(
        promptId,
        `the prediction could not be created: ${appError.code === 'timeout' ? 'Replicate did not answer in time' : 'Replicate is unavailable'}`,
      );
      // Replicate's own 4xx words are about our request to it, not the customer's: 503, or 504 for silence.
      throw appError.code === 'timeout' ? appError : Errors.unavailable('replicate');
    }

    if (!(await prompts.attachPrediction(promptId, prediction.id, this.d.settings.checkIntervalMs))) {
      // Canceled (or given up on) while Replicate answered: stop the run and free the credits.
      await this.d.predictions
        .cancel(prediction.id)
        .catch((err: unknown) =>
          this.d.logger.warn(
            { err, prompt_id: promptId },
            'could not cancel the prediction of a canceled prompt',
          ),
        );
      await this.d.credits.release(promptId);
    } else if (outcomeOf(prediction)) {
      // Finished within the create call already; the webhook would do the same.
      const created = await prompts.find(promptId);
      if (created)
        await this.d.completion
          .applyTo(created, prediction)
          .catch((err: unknown) =>
            this.d.logger.warn(
              { err, prompt_id: promptId },
              'completion failed; the webhook or reconciler will retry',
            ),
          );
    }

    if (input.waitSeconds > 0) {
      const until = Math.min(
        Date.now() + input.waitSeconds * 1000,
        (call.deadline ?? Infinity) - ANSWER_MARGIN_MS,
      );
      await this.d.waiter.wait(
        promptId,
        until,
        async () => !isActive((await prompts.find(promptId))?.status ?? 'failed'),
        call.signal,
      );
    }
    const prompt = await prompts.find(promptId);
    if (!prompt) throw new Error(`prompt ${promptId} vanished`);
    return { prompt, imagesRemaining: remaining };
  }

  /** A create whose id names a prompt already: the same request again is answered with it. */
  private async existing(
    prompt: Prompt,
    accountId: string,
    versionId: string,
    params: PromptParams,
  ): Promise<{ prompt: Prompt; imagesRemaining: number }> {
    if (
      prompt.accountId !== accountId ||
      prompt.versionId !== versionId ||
      !sameParams(prompt.params, params)
    )
      throw Errors.idReused('prompt', prompt.id);
    const { remaining } = await this.d.credits.balance(accountId, versionId);
    return { prompt, imagesRemaining: remaining };
  }

  async get(accountId: string, promptId: string): Promise<Prompt> {
    return this.mine(requireUuid('account_id', accountId), requireUuid('prompt_id', promptId));
  }

  /** A page of the version's succeeded prompts with their images: one SQL statement. */
  async list(
    accountId: string,
    versionId: string,
    limit: number,
    cursor: string,
  ): Promise<{ prompts: Prompt[]; nextCursor: string }> {
    const account = requireUuid('account_id', accountId);
    const version = requireUuid('version_id', versionId);
    const size = pageSize(limit);
    const after = decodeCursor(cursor);
    // One row more than the page tells whether another page follows, without a count.
    const rows = await this.d.store.repos.prompts.listSucceeded(account, version, after, size + 1);
    // Rows exist only for the caller's own versions; an empty page (first or later: a cursor
    // proves nothing) may mean a foreign or unknown version, which is a 404 — trainer knows which.
    if (!rows.length) await this.d.versions.getVersion(account, version);
    const page = rows.slice(0, size);
    const last = page.at(-1);
    return {
      prompts: page,
      nextCursor:
        rows.length > size && last ? encodeCursor({ createdKey: last.createdKey, id: last.id }) : '',
    };
  }

  /** Cancels a running prompt at Replicate and releases every credit it reserved. */
  async cancel(accountId: string, promptId: string): Promise<Prompt> {
    const prompt = await this.mine(requireUuid('account_id', accountId), requireUuid('prompt_id', promptId));
    if (!isActive(prompt.status)) throw Errors.promptFinished(promptId, prompt.status);
    let outcome: Outcome = { status: 'canceled', error: 'canceled', predictTime: null, reason: 'canceled' };
    if (prompt.predictionId) {
      let prediction: Prediction;
      try {
        prediction = await this.d.predictions.cancel(prompt.predictionId);
      } catch (err) {
        throw replicateError(err);
      }
      const ended = outcomeOf(prediction);
      if (ended && ended.status !== 'canceled') {
        // It finished before the cancel reached it: completion (webhook or reconciler) owns it now.
        await this.d.store.repos.prompts.scheduleNow(prompt.id);
        throw Errors.promptFinished(promptId, ended.status);
      }
      if (ended) outcome = ended;
    }
    await this.d.completion.finish(prompt, outcome);
    const after = await this.mine(prompt.accountId, prompt.id);
    if (after.status !== 'canceled') throw Errors.promptFinished(promptId, after.status);
    return after;
  }

  /**
   * Fails a prompt whose prediction was never made and releases its credits. If billing cannot be
   * reached now, the reconciler retries (the prompt stays unfinished and due).
   */
  private async abandon(promptId: string, error: string): Promise<void> {
    try {
      const prompt = await this.d.store.repos.prompts.find(promptId);
      if (prompt)
        await this.d.completion.finish(prompt, {
          status: 'failed',
          error,
          predictTime: null,
          reason: 'replicate',
        });
      // Also when someone else finished it meanwhile (a cancel): a reservation made after its release is freed here.
      await this.d.credits.release(promptId);
    } catch (err) {
      this.d.logger.error(
        { err, prompt_id: promptId },
        'could not release an abandoned prompt; the reconciler will',
      );
      await this.d.store.repos.prompts.scheduleNow(promptId).catch(() => undefined);
    }
  }

  /**
   * Creates the prediction within the caller's deadline. A create that answers after we gave up
   * made a run nobody will pay for or collect: it is canceled as soon as it answers.
   */
  private async createPrediction(
    promptId: string,
    replicateVersion: string,
    params: PromptParams,
    deadline: number | undefined,
  ): Promise<Prediction> {
    const creating = this.d.predictions.create({
      version: versionIdOf(replicateVersion),
      input: toModelInput(params),
      webhook: this.d.settings.webhookUrl,
      webhookEventsFilter: ['completed'],
    });
    if (deadline === undefined) return creating;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(Errors.timeout('replicate')),
        Math.max(0, deadline - ANSWER_MARGIN_MS - Date.now()),
      );
    });
    try {
      return await Promise.race([creating, late]);
    } catch (err) {
      creating.then(
        (p) => this.d.predictions.cancel(p.id).catch(() => undefined),
        () => undefined,
      );
      this.d.logger.warn({ err, prompt_id: promptId }, 'prediction create failed or answered too late');
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async mine(accountId: string, promptId: string): Promise<Prompt> {
    const prompt = await this.d.store.repos.prompts.find(promptId);
    // Another account's prompt is as unknown as a missing one.
    if (!prompt || prompt.accountId !== accountId) throw Errors.notFound('prompt', promptId);
    if (prompt.erasedAt) throw Errors.promptDeleted(promptId);
    return prompt;
  }
}
