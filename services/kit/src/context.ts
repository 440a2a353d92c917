import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** What travels with one request through every service it touches. */
export interface CallContext {
  requestId: string;
  /** Absolute deadline (epoch ms) of the incoming call, when it had one. */
  deadline?: number;
}

const storage = new AsyncLocalStorage<CallContext>();

export function currentContext(): CallContext | undefined {
  return storage.getStore();
}

export function runWithContext<T>(ctx: CallContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps a caller's request id when it is sane, otherwise makes a new one. */
export function requestIdFrom(incoming: unknown): string {
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}
