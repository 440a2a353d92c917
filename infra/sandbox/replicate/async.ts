/**
 * Cancellable waiting. Every delay in the sandbox goes through `pause`, so aborting the signal it
 * was given clears its timer: that is how `stop()` leaves no timer behind.
 */

/**
 * Resolves after `ms`, or as soon as `skip` aborts; rejects with `stop.reason` when `stop` aborts.
 */
export function pause(ms: number, stop: AbortSignal, skip?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stop.aborted) return reject(stop.reason);
    if (ms <= 0 || skip?.aborted) return resolve();
    const settle = (fn: () => void) => {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
      skip?.removeEventListener('abort', onSkip);
      fn();
    };
    const onStop = () => settle(() => reject(stop.reason));
    const onSkip = () => settle(resolve);
    const timer = setTimeout(() => settle(resolve), ms);
    stop.addEventListener('abort', onStop, { once: true });
    skip?.addEventListener('abort', onSkip, { once: true });
  });
}

/** `fetch` that gives up after `ms` and when `stop` aborts. */
export async function fetchWithin(
  url: string,
  init: RequestInit,
  ms: number,
  stop: AbortSignal,
): Promise<Response> {
  const ac = new AbortController();
  const onStop = () => ac.abort(stop.reason);
  if (stop.aborted) onStop();
  stop.addEventListener('abort', onStop, { once: true });
  const timer = setTimeout(() => ac.abort(new Error(`no answer within ${ms} ms`)), ms);
  try {
    const res = await fetch(url, { ...init, signal: ac.signal });
    // Read the body under the same deadline, so a stalled body cannot outlive the timer.
    const body = await res.arrayBuffer();
    return new Response(body.byteLength ? body : null, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  } finally {
    clearTimeout(timer);
    stop.removeEventListener('abort', onStop);
  }
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}
