import { Metadata, status as GrpcStatus, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { AppError, ERROR_TABLE, Errors, type ErrorCode, isErrorCode } from './errors';
import { isDatabaseUnavailable } from './db';

const CODE_KEY = 'x-error-code';
const EXTRA_KEY = 'x-error-extra';

/** A thrown error as the gRPC status the caller receives. Internal details never leave. */
export function toGrpcStatus(err: unknown): Partial<StatusObject> & { code: GrpcStatus } {
  const appError = asAppError(err);
  const metadata = new Metadata();
  metadata.set(CODE_KEY, appError.code);
  if (appError.extra) metadata.set(EXTRA_KEY, JSON.stringify(appError.extra));
  const details = appError.code === 'internal' ? 'internal error' : appError.message;
  return { code: ERROR_TABLE[appError.code].grpc, details, metadata };
}

/** Anything thrown, as an AppError: ours as is, a lost database as `unavailable`, the rest `internal`. */
export function asAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isDatabaseUnavailable(err)) return Errors.unavailable('postgres');
  if (isServiceError(err)) return fromServiceError(err);
  return Errors.internal(err instanceof Error ? err.message : String(err));
}

const STATUS_TO_CODE: Partial<Record<GrpcStatus, ErrorCode>> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'invalid_argument',
  [GrpcStatus.UNAUTHENTICATED]: 'unauthenticated',
  [GrpcStatus.PERMISSION_DENIED]: 'permission_denied',
  [GrpcStatus.NOT_FOUND]: 'not_found',
  [GrpcStatus.ALREADY_EXISTS]: 'already_exists',
  [GrpcStatus.ABORTED]: 'locked',
  [GrpcStatus.FAILED_PRECONDITION]: 'conflict',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'rate_limited',
  [GrpcStatus.UNIMPLEMENTED]: 'unimplemented',
  [GrpcStatus.UNAVAILABLE]: 'unavailable',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'timeout',
  [GrpcStatus.CANCELLED]: 'unavailable',
};

/** A failed call as the AppError the downstream service meant, so errors cross hops intact. */
export function fromServiceError(err: ServiceError): AppError {
  const tagged = err.metadata?.get(CODE_KEY)[0];
  const code: ErrorCode = isErrorCode(tagged) ? tagged : (STATUS_TO_CODE[err.code] ?? 'internal');
  const extraRaw = err.metadata?.get(EXTRA_KEY)[0];
  let extra: Record<string, unknown> | undefined;
  if (typeof extraRaw === 'string') {
    try {
      extra = JSON.parse(extraRaw) as Record<string, unknown>;
    } catch {
      extra = undefined;
    }
  }
  const error = Errors.fromWire(code, err.details || err.message, extra);
  return Object.assign(error, { grpcCode: err.code });
}

export function isServiceError(err: unknown): err is ServiceError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as ServiceError).code === 'number' &&
    'metadata' in err
  );
}
