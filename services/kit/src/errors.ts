import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * The one error table: every failure the product reports has a code here, bound to one gRPC
 * status (between services) and one HTTP status (at the gateway). Codes cross gRPC in the
 * `x-error-code` trailer so the gateway can tell 402 from 409 although both are
 * FAILED_PRECONDITION.
 */
export const ERROR_TABLE = {
  invalid_argument: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, title: 'Invalid request' },
  malformed_id: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, title: 'Malformed id' },
  invalid_signature: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, title: 'Invalid webhook signature' },
  unauthenticated: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401, title: 'Unauthenticated' },
  payment_required: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 402, title: 'Payment required' },
  insufficient_credits: {
    grpc: GrpcStatus.FAILED_PRECONDITION,
    http: 402,
    title: 'Not enough image credits',
  },
  permission_denied: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403, title: 'Forbidden' },
  not_found: { grpc: GrpcStatus.NOT_FOUND, http: 404, title: 'Not found' },
  // Deleted at the customer's request: the resource existed and will never answer again.
  version_deleted: { grpc: GrpcStatus.NOT_FOUND, http: 410, title: 'Version deleted' },
  prompt_deleted: { grpc: GrpcStatus.NOT_FOUND, http: 410, title: 'Prompt deleted' },
  account_deleted: { grpc: GrpcStatus.NOT_FOUND, http: 410, title: 'Account deleted' },
  conflict: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, title: 'Conflict' },
  already_exists: { grpc: GrpcStatus.ALREADY_EXISTS, http: 409, title: 'Already exists' },
  locked: { grpc: GrpcStatus.ABORTED, http: 409, title: 'Resource is busy' },
  idempotency_in_flight: {
    grpc: GrpcStatus.ABORTED,
    http: 409,
    title: 'A request with this Idempotency-Key is in progress',
  },
  payload_too_large: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 413, title: 'Payload too large' },
  unsupported_media_type: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 415, title: 'Unsupported media type' },
  photos_rejected: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 422, title: 'Photos rejected' },
  idempotency_mismatch: {
    grpc: GrpcStatus.INVALID_ARGUMENT,
    http: 422,
    title: 'Idempotency-Key reused with another request',
  },
  rate_limited: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 429, title: 'Too many requests' },
  internal: { grpc: GrpcStatus.INTERNAL, http: 500, title: 'Internal error' },
  prediction_failed: { grpc: GrpcStatus.ABORTED, http: 502, title: 'The prediction failed' },
  unimplemented: { grpc: GrpcStatus.UNIMPLEMENTED, http: 501, title: 'Not implemented yet' },
  unavailable: { grpc: GrpcStatus.UNAVAILABLE, http: 503, title: 'Service unavailable' },
  timeout: { grpc: GrpcStatus.DEADLINE_EXCEEDED, http: 504, title: 'Upstream timed out' },
} as const satisfies Record<string, { grpc: GrpcStatus; http: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_TABLE, value);
}

/** A failure the caller should hear about. `extra` travels to the client (e.g. `remaining`). */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

/** Factories keep messages consistent; domain code throws these and nothing else on purpose. */
export const Errors = {
  invalid: (detail: string, extra?: Record<string, unknown>) =>
    new AppError('invalid_argument', detail, extra),
  malformedId: (what: string, value: string) =>
    new AppError('malformed_id', `${what} must be a UUID, got ${JSON.stringify(value.slice(0, 64))}`),
  notFound: (what: string, id: string) => new AppError('not_found', `${what} ${id} not found`),
  versionDeleted: (id: string) => new AppError('version_deleted', `version ${id} was deleted`),
  promptDeleted: (id: string) => new AppError('prompt_deleted', `prompt ${id} was deleted with its version`),
  accountDeleted: (id: string) => new AppError('account_deleted', `account ${id} was deleted`),
  conflict: (detail: string) => new AppError('conflict', detail),
  alreadyExists: (detail: string) => new AppError('already_exists', detail),
  paymentRequired: (detail: string) => new AppError('payment_required', detail),
  insufficientCredits: (remaining: number, requested: number) =>
    new AppError('insufficient_credits', `${requested} images requested, ${remaining} remaining`, {
      remaining,
    }),
  invalidSignature: (detail: string) => new AppError('invalid_signature', detail),
  unauthenticated: (detail = 'missing, unknown or revoked API key') =>
    new AppError('unauthenticated', detail),
  unavailable: (dependency: string, cause?: unknown) =>
    new AppError(
      'unavailable',
      `${dependency} is unavailable${cause instanceof Error ? `: ${cause.message}` : ''}`,
    ),
  timeout: (dependency: string) => new AppError('timeout', `${dependency} did not answer in time`),
  /** A run that ended failed or canceled where the caller waited for its images. */
  predictionFailed: (promptId: string) =>
    new AppError('prediction_failed', `prompt ${promptId} did not succeed`, { prompt_id: promptId }),
};

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

export function requireUuid(what: string, value: string): string {
  if (!UUID_RE.test(value)) throw Errors.malformedId(what, value);
  return value.toLowerCase();
}
