import type { Logger } from 'pino';

declare global {
  namespace Express {
    interface Request {
      requestId: string;
      log: Logger;
      accountId?: string;
      keyPrefix?: string;
      /** The account's tier and what it allows, as billing said when the key was checked. */
      tier?: string;
      limits?: import('./middleware/auth').Limits;
      rawBody?: Buffer;
    }
  }
}
export {};
