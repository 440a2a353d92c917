/** The attempts of one retry schedule grow as `baseMs · 2^(attempt − 1)`, up to `maxMs`. */
export interface Backoff {
  baseMs: number;
  /** Unbounded when left out (the caller bounds the attempts instead). */
  maxMs?: number;
}

/**
 * How long to wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed:
 * exponential and capped, with jitter so that the callers of one outage do not all come back in
 * the same instant. `spread` varies the step by ±25 %; `equal` keeps half of it fixed and
 * randomises the other half, so a wait is never shorter than half the step.
 */
export function backoffMs(
  attempt: number,
  { baseMs, maxMs = Infinity }: Backoff,
  jitter: 'spread' | 'equal' = 'spread',
  random: () => number = Math.random,
): number {
  // 2^40 steps past any real schedule; the bound keeps the product finite whatever attempt says.
  const step = Math.min(maxMs, baseMs * 2 ** Math.min(40, Math.max(0, attempt - 1)));
  return jitter === 'equal' ? step / 2 + random() * (step / 2) : step * (0.75 + random() * 0.5);
}

/** An HTTP Retry-After (delay-seconds or an HTTP-date) in milliseconds from `now`; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
