import pino, { type Logger } from 'pino';
import { currentContext } from './context';

export type { Logger };

/** JSON logs; the request id of the current call is on every line. Secrets are redacted by path. */
export function createLogger(service: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: () => {
      const ctx = currentContext();
      return ctx ? { request_id: ctx.requestId } : {};
    },
    redact: {
      paths: [
        'api_key',
        'apiKey',
        '*.api_key',
        '*.apiKey',
        'authorization',
        '*.authorization',
        'secret',
        '*.secret',
        'password',
        '*.password',
      ],
      censor: '[redacted]',
    },
  });
}
