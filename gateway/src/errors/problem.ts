import type { Request, Response } from 'express';
import { AppError, ERROR_TABLE, asAppError, type ErrorCode } from '@atelier/kit';
import { IdempotencyInFlightError } from '../middleware/idempotency';
import { LockHeldError } from '../middleware/lock';

/** RFC 9457 problem details; `type` is a stable URI per error code. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  request_id: string;
  errors?: unknown[];
  [extra: string]: unknown;
}

export const problemType = (code: ErrorCode) => `https://atelier.dev/problems/${code.replace(/_/g, '-')}`;

/** What a client refused by a cap on running work is told to wait before trying again. */
const RUNNING_CAP_RETRY_S = 2;

/** When a refusal that passes with time may be retried (Retry-After, seconds); undefined for others. */
function retryAfterS(err: unknown): number | undefined {
  if (err instanceof LockHeldError || err instanceof IdempotencyInFlightError) return err.retryAfterS;
  // A cap that frees when something finishes (prompts or trainings running at once) has no reset time.
  if (
    err instanceof AppError &&
    (err.code === 'too_many_running_prompts' || err.code === 'too_many_running_trainings')
  )
    return RUNNING_CAP_RETRY_S;
  return undefined;
}

/** What a client may be told of an error, whatever the shape of the body that carries it. */
export interface PublicError {
  code: ErrorCode;
  status: number;
  title: string;
  /** The message of a refusal; a 5xx's title only, as its details may name hosts, SQL or stack frames. */
  detail: string;
  /**
   * The error's extra fields (`errors`, `remaining`, a 504's `prompt_id`): made by kit's factories
   * for the client, never a message, so a 5xx keeps them too.
   */
  extra: Record<string, unknown>;
}

/**
 * The one way an error becomes an answer, for problem+json here and A1111's shape in
 * routes/sdapi: the status its code is bound to, no internals in a 5xx, an unexpected failure
 * logged once, and Retry-After on a refusal that passes with time (unless a limiter already set
 * its own).
 */
export function prepareErrorAnswer(req: Request, res: Response, err: unknown): PublicError {
  const appError = asAppError(err);
  const entry = ERROR_TABLE[appError.code];
  const internal = entry.http >= 500;
  // A failure we raised on purpose (a dependency down, a timeout) is not a bug to log.
  if (internal && !(err instanceof AppError && err.code !== 'internal')) {
    req.log?.error({ err }, 'request failed');
  }
  const retryS = retryAfterS(err);
  if (retryS !== undefined && !res.headersSent && !res.getHeader('Retry-After'))
    res.setHeader('Retry-After', String(retryS));
  return {
    code: appError.code,
    status: entry.http,
    title: entry.title,
    detail: internal ? entry.title : appError.message,
    extra: appError.extra ?? {},
  };
}

export function sendProblem(req: Request, res: Response, err: unknown): void {
  const e = prepareErrorAnswer(req, res, err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const problem: Problem = {
    type: problemType(e.code),
    title: e.title,
    status: e.status,
    detail: e.detail,
    request_id: req.requestId ?? '',
    ...e.extra,
  };
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}
