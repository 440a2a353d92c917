/**
 * Injected failures. Each fault is a counter consumed by the calls or runs it matches, so a test
 * says "the next 2 prediction creates answer 429" and everything after that behaves normally.
 */
import type { RunKind } from './types';

export type FaultStatus = 429 | 500 | 502 | 503;

export interface ApiFault {
  /** How many matching calls answer with the fault (default 1). */
  count?: number;
  /** Default 429. */
  status?: FaultStatus;
  /** `Retry-After` on a 429, in seconds (default 1). */
  retryAfterSeconds?: number;
  /** Only calls with this HTTP method (any when absent). */
  method?: string;
  /** Only calls whose path starts with this string, or matches this pattern (any when absent). */
  path?: string | RegExp;
}

export interface RunFault {
  /** How many runs created from now on fail (default 1). */
  count?: number;
  /** Only trainings or only predictions (both when absent). */
  kind?: RunKind;
  /** The run's `error` (default: a CUDA out-of-memory message). */
  error?: string;
}

export interface FaultSnapshot {
  api: Array<
    Required<Pick<ApiFault, 'count' | 'status' | 'retryAfterSeconds'>> & {
      method: string | null;
      path: string | null;
    }
  >;
  runs: Array<{ count: number; kind: RunKind | null; error: string }>;
  /** Webhook messages still to drop; 'all' until cleared. */
  dropWebhooks: number | 'all';
}

/** The fault-injection API on a running sandbox. */
export interface SandboxFaults {
  /** The next `count` trainings/predictions created fail (status `failed`, `error` set) when they would have finished. */
  failNextRuns(fault?: RunFault): void;
  /** The next `count` matching `/v1` calls answer `status` (429 with `Retry-After`, or 5xx) instead of being served. */
  failNextApiCalls(fault?: ApiFault): void;
  /** The next `count` webhook messages are never sent (recorded as `dropped`); all of them when `count` is absent. */
  dropWebhooks(count?: number): void;
  /** Output files of one run (or of every run) vanish now: they answer 404 and `data_removed` turns true. */
  expireOutputs(runId?: string): void;
  /** Removes every pending fault. */
  clear(): void;
  snapshot(): FaultSnapshot;
}

export interface TakenApiFault {
  status: FaultStatus;
  retryAfterSeconds: number;
}

const DEFAULT_RUN_ERROR = 'CUDA out of memory. Tried to allocate 2.00 GiB (sandbox fault)';

interface ApiCounter {
  left: number;
  status: FaultStatus;
  retryAfterSeconds: number;
  method?: string;
  path?: string | RegExp;
}

interface RunCounter {
  left: number;
  kind?: RunKind;
  error: string;
}

export class Faults {
  private apiFaults: ApiCounter[] = [];
  private runs: RunCounter[] = [];
  private drops = 0;

  constructor(private readonly expire: (runId?: string) => void) {}

  failNextApiCalls(f: ApiFault = {}): void {
    this.apiFaults.push({
      left: f.count ?? 1,
      status: f.status ?? 429,
      retryAfterSeconds: f.retryAfterSeconds ?? 1,
      method: f.method?.toUpperCase(),
      path: f.path,
    });
  }

  failNextRuns(f: RunFault = {}): void {
    this.runs.push({ left: f.count ?? 1, kind: f.kind, error: f.error ?? DEFAULT_RUN_ERROR });
  }

  dropWebhooks(count = Number.POSITIVE_INFINITY): void {
    this.drops = count;
  }

  expireOutputs(runId?: string): void {
    this.expire(runId);
  }

  clear(): void {
    this.apiFaults = [];
    this.runs = [];
    this.drops = 0;
  }

  snapshot(): FaultSnapshot {
    return {
      api: this.apiFaults.map((c) => ({
        count: c.left,
        status: c.status,
        retryAfterSeconds: c.retryAfterSeconds,
        method: c.method ?? null,
        path: c.path === undefined ? null : String(c.path),
      })),
      runs: this.runs.map((c) => ({ count: c.left, kind: c.kind ?? null, error: c.error })),
      dropWebhooks: this.drops === Number.POSITIVE_INFINITY ? 'all' : this.drops,
    };
  }

  takeApiFault(method: string, path: string): TakenApiFault | null {
    const hit = this.apiFaults.find(
      (c) =>
        c.left > 0 &&
        (!c.method || c.method === method) &&
        (c.path === undefined || (typeof c.path === 'string' ? path.startsWith(c.path) : c.path.test(path))),
    );
    if (!hit) return null;
    hit.left--;
    this.apiFaults = this.apiFaults.filter((c) => c.left > 0);
    return { status: hit.status, retryAfterSeconds: hit.retryAfterSeconds };
  }

  /** The error the new run must end with, or null when it should succeed. */
  takeRunFailure(kind: RunKind): string | null {
    const hit = this.runs.find((c) => c.left > 0 && (!c.kind || c.kind === kind));
    if (!hit) return null;
    hit.left--;
    this.runs = this.runs.filter((c) => c.left > 0);
    return hit.error;
  }

  takeDrop(): boolean {
    if (this.drops <= 0) return false;
    this.drops--;
    return true;
  }

  /** The public face: only the methods a test should call. */
  facade(): SandboxFaults {
    return {
      failNextRuns: (f) => this.failNextRuns(f),
      failNextApiCalls: (f) => this.failNextApiCalls(f),
      dropWebhooks: (n) => this.dropWebhooks(n),
      expireOutputs: (id) => this.expireOutputs(id),
      clear: () => this.clear(),
      snapshot: () => this.snapshot(),
    };
  }
}
