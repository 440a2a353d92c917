import type { Request, Response } from 'express';
import { AppError, ERROR_TABLE, asAppError, type ErrorCode } from '@atelier/kit';

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

function toProblem(err: unknown, requestId: string): Problem {
  const appError = asAppError(err);
  const entry = ERROR_TABLE[appError.code];
  // 5xx details may name hosts, SQL or stack frames: the client gets the title only.
  const detail = entry.http >= 500 ? entry.title : appError.message;
  const extra = entry.http >= 500 ? {} : (appError.extra ?? {});
  return {
    type: problemType(appError.code),
    title: entry.title,
    status: entry.http,
    detail,
    request_id: requestId,
    ...extra,
  };
}

export function sendProblem(req: Request, res: Response, err: unknown): void {
  const problem = toProblem(err, req.requestId ?? '');
  if (problem.status >= 500 && !(err instanceof AppError && err.code !== 'internal')) {
    req.log?.error({ err }, 'request failed');
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}
