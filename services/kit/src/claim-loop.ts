import { randomUUID } from 'node:crypto';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { runWithContext } from './context';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

/**
 * What a reconciler or a job gives the claim loop. The loop owns scheduling, concurrency,
 * stopping, request ids and metrics; the caller owns what is due and what to do with it.
 */
export interface ClaimLoopOptions<T> {
  /** Names the loop in logs and in the `loop` label of its metrics: a fixed word, never an id. */
  name: string;
  /**
   * Claims up to `limit` due rows and leases them, in ONE statement of the caller's repository:
   * select due rows `ORDER BY <due column> LIMIT $1 FOR UPDATE SKIP LOCKED`, and in the same
   * statement push their due time past now by a lease longer than `handle` can take. The rows
   * are returned; the row locks end with the statement, the lease keeps other replicas away.
   */
  claim(limit: number): Promise<T[]>;
  /**
   * Works one claimed row. Must be idempotent: delivery is at least once. It either finishes the
   * row (takes it off the queue or sets its next due time) or throws; a throw is logged and counted,
   * and the row comes due again when its lease ends — that is the retry and its back-off.
   */
  handle(item: T): Promise<void>;
  /** The row's id, for log lines. */
  idOf(item: T): string;
  /** The due time of the oldest row due now, or null: feeds the lag gauge. Optional. */
  oldestDue?(): Promise<Date | null>;
  /** Runs after each pass (a gauge refresh, say); a throw is logged. Optional. */
  afterPass?(): Promise<void>;
  /** Pause between two passes. */
  intervalMs: number;
  /** Rows claimed per pass. */
  batch: number;
  /** Rows of one pass worked at once. */
  concurrency: number;
  logger: Logger;
  metrics: Pick<Metrics, 'registry'>;
}

export interface ClaimLoop {
  /**
   * Schedules the first pass now and one every `intervalMs` after the previous one ended — at once
   * after a pass that claimed a full batch.
   */
  start(): void;
  /**
   * Schedules no more passes and waits for the rows in hand: rows being worked finish, claimed
   * rows not started yet are left to their lease (due again when it ends).
   */
  stop(): Promise<void>;
  /** One pass (claim, work every claimed row, afterPass); the number of rows claimed. For tests. */
  runOnce(): Promise<number>;
  /**
   * Something just came due (a webhook recorded work for the loop): run a pass now instead of at
   * the next interval, or right after the pass under way (which may have claimed before the row
   * was due). Wake-ups while one is pending coalesce. Does nothing unless the loop is started.
   */
  wake(): void;
}

/**
 * The one loop every reconciler and background job runs on.
 *
 * Contract:
 * - At least once. A row may be worked again after a crash, a throw, or a lease that ran out
 *   while it was still being worked; `handle` must tolerate that (guard each write by the state
 *   it expects, dedupe side effects at their target).
 * - Lease, not lock. The claim statement's `FOR UPDATE SKIP LOCKED` makes concurrent claims (any
 *   number of replicas, or loops in one process) take disjoint rows; the lease it writes keeps a
 *   row invisible to every claim until it ends. So no two replicas work one row at once as long
 *   as the lease is longer than `handle` takes — size it from the handler's own deadlines.
 * - Bounded. At most `batch` rows per pass and `concurrency` handlers at once per loop; passes
 *   never overlap. A pass that claimed a full batch is followed at once by the next one. A
 *   failing `claim` is logged and retried at the next interval.
 * - Observable. Each pass and each row runs under its own request id (`<name>-<uuid>`), so every
 *   log line of a row, including those of the gRPC calls it makes, can be followed. Metrics,
 *   labelled `loop`: atelier_claim_loop_items_total{outcome=ok|failed},
 *   atelier_claim_loop_item_duration_seconds, atelier_claim_loop_passes_total{outcome},
 *   atelier_claim_loop_oldest_due_seconds (when `oldestDue` is given).
 */
export function createClaimLoop<T>(o: ClaimLoopOptions<T>): ClaimLoop {
  const m = loopMetrics(o.metrics.registry);
  const log = o.logger.child({ loop: o.name });
  let timer: NodeJS.Timeout | undefined;
  // Every pass under way, whether the timer or a caller started it: stop() waits for them all.
  const passes = new Set<Promise<unknown>>();
  let stopping = false;
  let started = false;
  // A scheduled pass is under way (not one a caller started with runOnce), and whether a wake-up
  // came in meanwhile.
  let inPass = false;
  let wokenDuringPass = false;

  const work = async (item: T): Promise<void> => {
    const end = m.duration.startTimer({ loop: o.name });
    try {
      await runWithContext({ requestId: `${o.name}-${randomUUID()}` }, () => o.handle(item));
      m.items.inc({ loop: o.name, outcome: 'ok' });
    } catch (err) {
      m.items.inc({ loop: o.name, outcome: 'failed' });
      log.warn({ item: o.idOf(item), err }, 'item failed; retried when its lease ends');
    } finally {
      end();
    }
  };

  const runOnce = (): Promise<number> => {
    const running = runWithContext({ requestId: `${o.name}-${randomUUID()}` }, () => pass());
    passes.add(running);
    void running.finally(() => passes.delete(running)).catch(() => undefined);
    return running;
  };

  const pass = async (): Promise<number> => {
    let items: T[];
    try {
      if (o.oldestDue) {
        const due = await o.oldestDue();
        m.oldestDue.set({ loop: o.name }, due ? Math.max(0, (Date.now() - due.getTime()) / 1000) : 0);
      }
      items = await o.claim(o.batch);
      m.passes.inc({ loop: o.name, outcome: 'ok' });
    } catch (err) {
      m.passes.inc({ loop: o.name, outcome: 'failed' });
      throw err;
    }
    let next = 0;
    const worker = async () => {
      while (!stopping && next < items.length) await work(items[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, items.length) }, worker));
    if (o.afterPass) await o.afterPass().catch((err: unknown) => log.warn({ err }, 'afterPass failed'));
    return items.length;
  };

  const schedule = (ms: number): void => {
    if (stopping) return;
    timer = setTimeout(() => {
      inPass = true;
      let claimed = 0;
      void runOnce()
        .then((n) => (claimed = n))
        .catch((err: unknown) => log.warn({ err }, 'pass failed; retried at the next interval'))
        .finally(() => {
          inPass = false;
          // A full batch means more rows are probably due: a backlog drains at the loop's full
          // speed instead of one batch per interval (the interval is for waiting on new work).
          const again = wokenDuringPass || claimed >= o.batch;
          wokenDuringPass = false;
          schedule(again ? 0 : o.intervalMs);
        });
    }, ms);
    // The server keeps the process alive, not this timer.
    timer.unref();
  };

  return {
    start() {
      stopping = false;
      started = true;
      schedule(0);
    },
    async stop() {
      stopping = true;
      started = false;
      clearTimeout(timer);
      await Promise.allSettled(passes);
    },
    runOnce,
    wake() {
      if (!started || stopping) return;
      if (inPass) {
        wokenDuringPass = true;
        return;
      }
      clearTimeout(timer);
      schedule(0);
    },
  };
}

type LoopMetrics = ReturnType<typeof createLoopMetrics>;
const byRegistry = new WeakMap<Registry, LoopMetrics>();

/** One set per registry: every loop of a process shares it, told apart by the `loop` label. */
function loopMetrics(registry: Registry): LoopMetrics {
  let m = byRegistry.get(registry);
  if (!m) byRegistry.set(registry, (m = createLoopMetrics(registry)));
  return m;
}

function createLoopMetrics(registry: Registry) {
  const registers = [registry];
  return {
    items: new Counter({
      name: 'atelier_claim_loop_items_total',
      help: 'Rows a claim loop worked, by loop and outcome (ok, failed)',
      labelNames: ['loop', 'outcome'] as const,
      registers,
    }),
    duration: new Histogram({
      name: 'atelier_claim_loop_item_duration_seconds',
      help: 'Time a claim loop spent on one row',
      labelNames: ['loop'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    passes: new Counter({
      name: 'atelier_claim_loop_passes_total',
      help: 'Passes of a claim loop, by loop and outcome (ok, failed: the claim itself failed)',
      labelNames: ['loop', 'outcome'] as const,
      registers,
    }),
    oldestDue: new Gauge({
      name: 'atelier_claim_loop_oldest_due_seconds',
      help: 'How long the oldest due row had waited when the last pass began (the loop lag)',
      labelNames: ['loop'] as const,
      registers,
    }),
  };
}
