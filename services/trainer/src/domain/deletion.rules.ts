import { backoffMs } from '@atelier/kit';

/** How a deletion job waits between attempts and how long a claim holds a row. */
export interface DeletionSchedule {
  /** Rows claimed per pass. */
  batch: number;
  /** A claimed row is left alone this long; a replica that died mid-way frees it after that. */
  leaseMs: number;
  /** First retry after a failure; doubles per attempt up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
}

/** When a deletion that failed on its `attempts`-th try is tried again: exponential, with ±25 % jitter. */
export function retryDelayMs(
  attempts: number,
  s: Pick<DeletionSchedule, 'retryBaseMs' | 'retryMaxMs'>,
  random = Math.random,
): number {
  return Math.round(backoffMs(attempts, { baseMs: s.retryBaseMs, maxMs: s.retryMaxMs }, 'spread', random));
}

const DAY_MS = 24 * 3600 * 1000;

/** The moment before which a finished training's zip has outlived its retention. */
export function retentionCutoff(now: Date, retentionDays: number): Date {
  return new Date(now.getTime() - retentionDays * DAY_MS);
}
