import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, Errors, replicateError, webhookSecret, type Replicate } from '@atelier/kit';
import type { ReplicatePort, ReplicateTraining } from '../domain/ports';
import { parseTraining } from '../domain/version.rules';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 300, maxDelayMs: 3_000 };

/**
 * Who retries what, so no layer multiplies another: the kit's fetch waits out Retry-After on a
 * 429; the official client re-sends a GET that failed with 5xx or a network error; nobody re-sends
 * a create, since a create that failed may have started a run and a second would train (and bill)
 * twice. What is left is an idempotent POST (cancel, creating a model by name), which this retries
 * with backoff on 5xx and network failures. Failures are thrown as AppError (503, 504, 404, 400)
 * carrying Replicate's HTTP status as `replicateStatus`.
 */
export async function withReplicateRetries<T>(
  op: () => Promise<T>,
  opts: { idempotent: boolean; policy?: RetryPolicy; wait?: (ms: number) => Promise<unknown> },
): Promise<T> {
  const policy = opts.policy ?? DEFAULT_RETRY;
  const wait = opts.wait ?? ((ms: number) => sleep(ms));
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      const delay = attempt < policy.attempts ? retryDelayMs(err, attempt, opts.idempotent, policy) : null;
      if (delay === null) throw Object.assign(replicateError(err), { replicateStatus: statusOf(err) });
      await wait(delay);
    }
  }
}

/** How long to wait before retrying after `err`, or null when it must not be retried. */
export function retryDelayMs(
  err: unknown,
  attempt: number,
  idempotent: boolean,
  policy: RetryPolicy,
): number | null {
  const status = statusOf(err);
  const transient = status === undefined ? isNetworkError(err) : status >= 500;
  if (!transient || !idempotent) return null;
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { response?: { status?: unknown } } | null)?.response?.status;
  return typeof status === 'number' ? status : undefined;
}

function isNetworkError(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name;
  return name === 'TypeError' || name === 'TimeoutError' || name === 'AbortError';
}

const replicateStatusOf = (err: unknown): number | undefined =>
  (err as { replicateStatus?: number } | null)?.replicateStatus;

/**
 * Replicate refusing what we send (a trainer version that does not exist, an input it does not
 * take, a destination it will not create) is our configuration's fault, not the customer's: a 500
 * for them (never "404 not found" about their payment) and an error in our logs.
 */
function refusedIsOurs(err: unknown): never {
  const status = replicateStatusOf(err);
  if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
    throw new AppError('internal', `Replicate refused the request (${status}): ${(err as Error).message}`);
  }
  throw err;
}

function splitModel(model: string): [string, string] {
  const [owner, name, ...rest] = model.split('/');
  if (!owner || !name || rest.length)
    throw Errors.invalid(`model must be owner/name, got ${JSON.stringify(model)}`);
  return [owner, name];
}

function training(body: unknown): ReplicateTraining {
  const parsed = parseTraining(body);
  if (!parsed) throw Errors.unavailable('replicate (unexpected training object)');
  return parsed;
}

/** Trainer's use of Replicate through the kit's official client; `retry(op, true)` marks the idempotent POSTs. */
export function createReplicateTrainings(
  client: Replicate,
  opts: { hardware: string; webhookSecret?: string; retry?: RetryPolicy },
): ReplicatePort {
  const retry = <T>(op: () => Promise<T>, idempotent: boolean) =>
    withReplicateRetries(op, { idempotent, policy: opts.retry });
  let secret: Promise<string> | undefined;
  return {
    async ensureModel(model) {
      const [owner, name] = splitModel(model);
      try {
        await retry(() => client.models.get(owner, name), false);
        return;
      } catch (err) {
        if (replicateStatusOf(err) !== 404) throw err;
      }
      try {
        // Safe to retry: a second create of one name answers 409, which means it exists.
        await retry(
          () =>
            client.models.create(owner, name, {
              visibility: 'private',
              hardware: opts.hardware,
              description: 'Atelier fine-tune',
            }),
          true,
        );
      } catch (err) {
        if (replicateStatusOf(err) !== 409) refusedIsOurs(err);
      }
    },
    async createTraining(req) {
      const [owner, name] = splitModel(req.trainer.model);
      const created = await retry(
        () =>
          client.trainings.create(owner, name, req.trainer.version, {
            destination: req.destination as `${string}/${string}`,
            input: req.input,
            webhook: req.webhook,
            webhook_events_filter: req.webhookEventsFilter,
          }),
        false,
      ).catch(refusedIsOurs);
      return training(created);
    },
    async getTraining(id) {
      return training(await retry(() => client.trainings.get(id), false));
    },
    async cancelTraining(id) {
      return training(await retry(() => client.trainings.cancel(id), true));
    },
    async latestVersion(model) {
      const [owner, name] = splitModel(model);
      const found = await retry(() => client.models.get(owner, name), false);
      return found.latest_version?.id ?? null;
    },
    webhookSecret() {
      secret ??= retry(() => webhookSecret(client, opts.webhookSecret), false).catch((err: unknown) => {
        secret = undefined; // asked again on the next webhook
        throw err;
      });
      return secret;
    },
  };
}
