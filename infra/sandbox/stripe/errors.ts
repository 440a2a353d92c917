/**
 * Stripe's error envelope: `{ error: { type, message, code?, param?, doc_url? } }`. The `stripe`
 * client picks its error class from the HTTP status and `type` (400/404 → StripeInvalidRequestError,
 * 401 → StripeAuthenticationError, `idempotency_error` → StripeIdempotencyError, 5xx → StripeAPIError),
 * so status and type must match Stripe's exactly; messages follow Stripe's wording where known.
 */
export type StripeErrorType = 'invalid_request_error' | 'idempotency_error' | 'api_error' | 'card_error';

export interface StripeErrorBody {
  type: StripeErrorType;
  message: string;
  code?: string;
  param?: string;
  doc_url?: string;
}

export class StripeApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: StripeErrorBody,
  ) {
    super(body.message);
  }

  toJSON(): { error: StripeErrorBody } {
    return { error: this.body };
  }
}

function coded(status: number, code: string, message: string, param?: string): StripeApiError {
  return new StripeApiError(status, {
    type: 'invalid_request_error',
    code,
    message,
    ...(param !== undefined ? { param } : {}),
    doc_url: `https://stripe.com/docs/error-codes/${code.replace(/_/g, '-')}`,
  });
}

export const Errors = {
  noApiKey: () =>
    new StripeApiError(401, {
      type: 'invalid_request_error',
      message:
        "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
    }),
  invalidApiKey: (key: string) =>
    new StripeApiError(401, {
      type: 'invalid_request_error',
      code: 'api_key_invalid',
      message: `Invalid API Key provided: ${redact(key)}`,
    }),
  missingParam: (param: string) =>
    coded(400, 'parameter_missing', `Missing required param: ${param}.`, param),
  unknownParam: (param: string) =>
    coded(400, 'parameter_unknown', `Received unknown parameter: ${param}`, param),
  invalidInteger: (param: string, value: string) =>
    coded(400, 'parameter_invalid_integer', `Invalid integer: ${value}`, param),
  emptyString: (param: string) =>
    coded(
      400,
      'parameter_invalid_empty',
      `You passed an empty string for '${param}'. We assume empty values are an attempt to unset a parameter; however '${param}' cannot be unset. You should remove '${param}' from your request or supply a non-empty value.`,
      param,
    ),
  /** An invalid request that Stripe reports without a more specific code. */
  invalid: (param: string | undefined, message: string) =>
    new StripeApiError(400, {
      type: 'invalid_request_error',
      message,
      ...(param !== undefined ? { param } : {}),
    }),
  chargeAlreadyRefunded: (chargeId: string) =>
    coded(400, 'charge_already_refunded', `Charge ${chargeId} has already been refunded.`, 'charge'),
  resourceMissing: (kind: string, id: string, param: string) =>
    coded(404, 'resource_missing', `No such ${kind}: '${id}'`, param),
  idempotencyMismatch: (key: string) =>
    new StripeApiError(400, {
      type: 'idempotency_error',
      message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
    }),
  idempotencyEndpoint: (key: string) =>
    new StripeApiError(400, {
      type: 'idempotency_error',
      message: `Keys for idempotent requests can only be used for the same endpoint they were first used for. Try using a key other than '${key}' if you meant to execute a different request.`,
    }),
  unrecognizedUrl: (method: string, path: string) =>
    new StripeApiError(404, {
      type: 'invalid_request_error',
      message: `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
    }),
  injected: (status: number) =>
    status === 429
      ? new StripeApiError(429, {
          type: 'invalid_request_error',
          code: 'rate_limit',
          message: 'Too many requests hit the API too quickly (sandbox fault injection).',
        })
      : new StripeApiError(status, {
          type: 'api_error',
          message: `Sandbox fault injection: this request answered ${status}.`,
        }),
};

function redact(key: string): string {
  return key.length <= 8
    ? key
    : `${key.slice(0, 8)}${'*'.repeat(Math.max(4, key.length - 12))}${key.slice(-4)}`;
}
