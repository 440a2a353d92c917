/**
 * Replicate's error bodies: `{detail, status, title}` (plus `invalid_fields` on input validation).
 * The texts are the ones Replicate sends, so code that matches on them behaves the same here.
 */

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(`${status} ${title}: ${detail}`);
  }

  body(): Record<string, unknown> {
    return { detail: this.detail, status: this.status, title: this.title, ...this.extra };
  }
}

export interface InvalidField {
  field: string;
  description: string;
  type?: string;
}

export const Problems = {
  unauthenticated: () => new ApiProblem(401, 'Unauthenticated', 'Invalid token.'),
  notFound: (detail = 'The requested resource could not be found.') =>
    new ApiProblem(404, 'Not found', detail),
  methodNotAllowed: (method: string) =>
    new ApiProblem(405, 'Method not allowed', `Method "${method}" not allowed.`),
  badJson: (detail: string) => new ApiProblem(400, 'Invalid JSON', detail),
  conflict: (detail: string) => new ApiProblem(409, 'Conflict', detail),
  // Replicate lists every problem as a "- field: description" line plus a structured copy.
  invalid: (fields: InvalidField[]) =>
    new ApiProblem(
      422,
      'Input validation failed',
      fields.map((f) => `- ${f.field}: ${f.description}\n`).join(''),
      {
        invalid_fields: fields.map((f) => ({
          type: f.type ?? 'invalid',
          field: f.field,
          description: f.description,
        })),
      },
    ),
  invalidVersion: () =>
    new ApiProblem(
      422,
      'Invalid version or not permitted',
      "The specified version does not exist (or perhaps you don't have permission to use it?)",
    ),
  destinationMissing: () =>
    new ApiProblem(404, 'Not found', 'The specified training destination does not exist'),
  throttled: (seconds: number) =>
    new ApiProblem(
      429,
      'Request was throttled.',
      `Request was throttled. Expected available in ${seconds} second${seconds === 1 ? '' : 's'}.`,
      {},
      { 'Retry-After': String(seconds) },
    ),
  server: (status: number) =>
    status === 500
      ? new ApiProblem(500, 'Internal Server Error', 'An unexpected error occurred.')
      : new ApiProblem(
          status,
          status === 502 ? 'Bad Gateway' : 'Service Unavailable',
          'Service temporarily unavailable, please try again.',
        ),
};
