import type { Logger } from 'pino';

declare global {
  namespace Express {
    interface Request {
      requestId: string;
      log: Logger;
      accountId?: string;
      keyPrefix?: string;
      rawBody?: Buffer;
    }
  }
}
export {};
