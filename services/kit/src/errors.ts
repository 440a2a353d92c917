import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * The one error table: every failure the product reports has a code here, bound to one gRPC
 * status (between services) and one HTTP status (at the gateway). Codes cross gRPC in the
 * `x-error-code` trailer so the gateway can tell 402 from 409 although both are
 * FAILED_PRECONDITION.
 */
export const ERROR_TABLE = {
  // The request itself.
  invalid_argument: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, title: 'Invalid request' },
  malformed_id: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, title: 'Malformed id' },
  invalid_cursor: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, title: 'Unknown page cursor' },
  invalid_signature: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, title: 'Invalid webhook signature' },
  unauthenticated: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401, title: 'Unauthenticated' },
  permission_denied: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403, title: 'Forbidden' },
  not_found: { grpc: GrpcStatus.NOT_FOUND, http: 404, title: 'Not found' },
  payload_too_large: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 413, title: 'Payload too large' },
  unsupported_media_type: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 415, title: 'Unsupported media type' },
  photos_rejected: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 422, title: 'Photos rejected' },
  // Payments and credits.
  payment_not_paid: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 402, title: 'Payment not paid' },
  insufficient_credits: {
    grpc: GrpcStatus.FAILED_PRECONDITION,
    http: 402,
    title: 'Not enough image credits',
  },
  // Deleted at the customer's request: the resource existed and will never answer again.
  version_deleted: { grpc: GrpcStatus.NOT_FOUND, http: 410, title: 'Version deleted' },
  prompt_deleted: { grpc: GrpcStatus.NOT_FOUND, http: 410, title: 'Prompt deleted' },
  account_deleted: { grpc: GrpcStatus.NOT_FOUND, http: 410, title: 'Account deleted' },
  addon_needs_version: {
    grpc: GrpcStatus.INVALID_ARGUMENT,
    http: 400,
    title: 'An add-on payment names the version it tops up',
  },
  payment_already_used: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, title: 'Payment already used' },
  payment_not_for_training: {
    grpc: GrpcStatus.FAILED_PRECONDITION,
    http: 409,
    title: 'The payment is for extra images, not a training',
  },
  payment_not_bound: {
    grpc: GrpcStatus.FAILED_PRECONDITION,
    http: 409,
    title: 'The payment is not bound to this version',
  },
  reservation_mismatch: {
    grpc: GrpcStatus.FAILED_PRECONDITION,
    http: 409,
    title: 'The reservation was made for another version or amount',
  },
  reservation_exceeded: {
    grpc: GrpcStatus.INVALID_ARGUMENT,
    http: 400,
    title: 'More used than reserved',
  },
  // Models, trainings and prompts.
  version_not_ready: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, title: 'Version not ready' },
  version_already_trained: {
    grpc: GrpcStatus.FAILED_PRECONDITION,
    http: 409,
    title: 'Version already trained by another payment',
  },
  version_of_another_account: {
    grpc: GrpcStatus.FAILED_PRECONDITION,
    http: 409,
    title: 'The version belongs to another account',
  },
  no_ready_version: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, title: 'No ready model' },
  training_finished: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, title: 'Training already finished' },
  training_starting: {
    grpc: GrpcStatus.FAILED_PRECONDITION,
    http: 409,
    title: 'Training still being started',
  },
  prompt_finished: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, title: 'Prompt already finished' },
  offer_gone: {
    grpc: GrpcStatus.FAILED_PRECONDITION,
    http: 409,
    title: 'The pack names an offer that is gone',
  },
  // Another request made or holds the same thing.
  account_exists: { grpc: GrpcStatus.ALREADY_EXISTS, http: 409, title: 'Account already exists' },
  id_reused: {
    grpc: GrpcStatus.ALREADY_EXISTS,
    http: 409,
    title: 'The id exists with other inputs',
  },
  locked: { grpc: GrpcStatus.ABORTED, http: 409, title: 'Resource is busy' },
  idempotency_in_flight: {
    grpc: GrpcStatus.ABORTED,
    http: 409,
    title: 'A request with this Idempotency-Key is in progress',
  },
  idempotency_mismatch: {
    grpc: GrpcStatus.INVALID_ARGUMENT,
    http: 422,
    title: 'Idempotency-Key reused with another request',
  },
  // Limits.
  rate_limited: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 429, title: 'Too many requests' },
  too_many_running_prompts: {
    grpc: GrpcStatus.RESOURCE_EXHAUSTED,
    http: 429,
    title: 'Too many prompts running',
  },
  too_many_running_trainings: {
    grpc: GrpcStatus.RESOURCE_EXHAUSTED,
    http: 429,
    title: 'Too many trainings running',
  },
  too_many_failed_key_checks: {
    grpc: GrpcStatus.RESOURCE_EXHAUSTED,
    http: 429,
    title: 'Too many failed API key checks',
  },
  // Failures.
  internal: { grpc: GrpcStatus.INTERNAL, http: 500, title: 'Internal error' },
  unimplemented: { grpc: GrpcStatus.UNIMPLEMENTED, http: 501, title: 'Not implemented yet' },
  prediction_failed: { grpc: GrpcStatus.ABORTED, http: 502, title: 'The prediction failed' },
  unavailable: { grpc: GrpcStatus.UNAVAILABLE, http: 503, title: 'Service unavailable' },
  timeout: { grpc: GrpcStatus.DEADLINE_EXCEEDED, http: 504, title: 'Upstream timed out' },
  // Only for a FAILED_PRECONDITION / ALREADY_EXISTS status that arrives without our code (no factory).
  conflict: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, title: 'Conflict' },
  already_exists: { grpc: GrpcStatus.ALREADY_EXISTS, http: 409, title: 'Already exists' },
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

/**
 * One factory per code, the only place an AppError is made (lint forbids `new AppError` elsewhere):
 * domain code throws these, so a client branches on the problem's `type`, never on its prose.
 */
export const Errors = {
  invalid: (detail: string, extra?: Record<string, unknown>) =>
    new AppError('invalid_argument', detail, extra),
  malformedId: (what: string, value: string) =>
    new AppError('malformed_id', `${what} must be a UUID, got ${JSON.stringify(value.slice(0, 64))}`),
  /** A path parameter that failed its shape check (`errors` names it). */
  malformedPath: (detail: string, extra?: Record<string, unknown>) =>
    new AppError('malformed_id', detail, extra),
  invalidCursor: () => new AppError('invalid_cursor', 'cursor is not one this API returned'),
  invalidSignature: (detail: string) => new AppError('invalid_signature', detail),
  unauthenticated: (detail = 'missing, unknown or revoked API key') =>
    new AppError('unauthenticated', detail),
  notFound: (what: string, id: string) => new AppError('not_found', `${what} ${id} not found`),
  versionDeleted: (id: string) => new AppError('version_deleted', `version ${id} was deleted`),
  promptDeleted: (id: string) => new AppError('prompt_deleted', `prompt ${id} was deleted with its version`),
  accountDeleted: (id: string) => new AppError('account_deleted', `account ${id} was deleted`),
  /** Gone at a source we read from (an output URL that expired). */
  goneAtSource: (detail: string) => new AppError('not_found', detail),
  payloadTooLarge: (detail: string) => new AppError('payload_too_large', detail),
  unsupportedMediaType: (detail: string) => new AppError('unsupported_media_type', detail),
  photosRejected: (count: number, extra: Record<string, unknown>) =>
    new AppError('photos_rejected', `${count} problem(s) with the photos`, extra),

  paymentNotPaid: (paymentId: string, status: string) =>
    new AppError('payment_not_paid', `payment ${paymentId} is ${status}, not paid`),
  insufficientCredits: (remaining: number, requested: number) =>
    new AppError('insufficient_credits', `${requested} images requested, ${remaining} remaining`, {
      remaining,
    }),
  addonNeedsVersion: (detail: string) => new AppError('addon_needs_version', detail),
  paymentAlreadyUsed: (paymentId: string, versionId?: string) =>
    new AppError(
      'payment_already_used',
      `payment ${paymentId} already trained ${versionId ? `version ${versionId}` : 'a version'}`,
    ),
  paymentNotForTraining: (paymentId: string) =>
    new AppError('payment_not_for_training', `payment ${paymentId} is for extra images, not for training`),
  paymentNotBound: (paymentId: string, versionId?: string) =>
    new AppError(
      'payment_not_bound',
      versionId
        ? `payment ${paymentId} is not bound to version ${versionId}`
        : `payment ${paymentId} is not bound to a version yet`,
    ),
  reservationMismatch: (reservationId: string) =>
    new AppError(
      'reservation_mismatch',
      `reservation ${reservationId} was made for another version or amount`,
    ),
  reservationExceeded: (used: number, reserved: number) =>
    new AppError('reservation_exceeded', `used ${used} exceeds the reservation of ${reserved}`),

  versionNotReady: (versionId: string, detail = '') =>
    new AppError('version_not_ready', `version ${versionId} is not ready${detail}`),
  versionAlreadyTrained: (versionId: string) =>
    new AppError('version_already_trained', `version ${versionId} is already trained by another payment`),
  versionOfAnotherAccount: (versionId: string) =>
    new AppError('version_of_another_account', `version ${versionId} belongs to another account`),
  noReadyVersion: () => new AppError('no_ready_version', 'no ready model: train one first'),
  trainingFinished: (status: string) => new AppError('training_finished', `the training already ${status}`),
  trainingStarting: () =>
    new AppError('training_starting', 'the training is still being started; try again in a moment'),
  promptFinished: (promptId: string, status: string) =>
    new AppError('prompt_finished', `prompt ${promptId} is already ${status}`),
  offerGone: (packId: string) => new AppError('offer_gone', `pack ${packId} names an offer that is gone`),

  accountExists: (email: string) => new AppError('account_exists', `an account for ${email} exists`),
  idReused: (what: string, id: string) => new AppError('id_reused', `${what} ${id} exists with other inputs`),
  idempotencyInFlight: (detail: string) => new AppError('idempotency_in_flight', detail),
  idempotencyMismatch: () =>
    new AppError('idempotency_mismatch', 'this Idempotency-Key was used with a different request'),

  rateLimited: (detail: string, extra?: Record<string, unknown>) =>
    new AppError('rate_limited', detail, extra),
  tooManyRunningPrompts: (max: number) =>
    new AppError(
      'too_many_running_prompts',
      `${max} prompts are already running on this account (the most its tier allows at once); retry when one finishes`,
      { limit: 'prompts_running', max },
    ),
  tooManyRunningTrainings: (max: number) =>
    new AppError(
      'too_many_running_trainings',
      `${max} trainings are already running on this account (the most its tier allows at once); retry when one finishes`,
      { limit: 'trainings_running', max },
    ),
  tooManyFailedKeyChecks: (detail: string) =>
    new AppError('too_many_failed_key_checks', detail, { limit: 'auth_failures' }),

  internal: (detail: string) => new AppError('internal', detail),
  /** A prediction that ended failed or canceled where the caller waited for its images. */
  predictionFailed: (promptId: string) =>
    new AppError('prediction_failed', `prompt ${promptId} did not succeed`, { prompt_id: promptId }),
  unavailable: (dependency: string, cause?: unknown) =>
    new AppError(
      'unavailable',
      `${dependency} is unavailable${cause instanceof Error ? `: ${cause.message}` : ''}`,
    ),
  /** A source we download from kept failing (the detail says which and how). */
  sourceUnavailable: (detail: string) => new AppError('unavailable', detail),
  /** A dependency that did not answer in time. */
  timeout: (dependency: string) => new AppError('timeout', `${dependency} did not answer in time`),
  /** A wait of our own that ran out (the caller left, the images were not ready in time). */
  timedOut: (detail: string, extra?: Record<string, unknown>) => new AppError('timeout', detail, extra),
  /** An error received from another service, as it sent it (kit's gRPC client only). */
  fromWire: (code: ErrorCode, detail: string, extra?: Record<string, unknown>) =>
    new AppError(code, detail, extra),
};

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

export function requireUuid(what: string, value: string): string {
  if (!UUID_RE.test(value)) throw Errors.malformedId(what, value);
  return value.toLowerCase();
}
