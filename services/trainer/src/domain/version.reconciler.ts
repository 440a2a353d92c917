import { AppError, type Logger, type Metrics } from '@atelier/kit';
import type { Store, VersionRow } from '../repositories';
import type { BillingPort, ReplicatePort } from './ports';
import type { VersionTransitions } from './version.transitions';
import { isTerminal } from './version.rules';

export interface ReconcilerOptions {
  intervalMs: number;
  maxGapMs: number;
  batch: number;
  concurrency: number;
  timeoutMs: number;
  /** A row without a training younger than this may belong to a StartTraining still running. */
  startGraceMs: number;
}

export interface ReconcilerDeps {
  store: Store;
  billing: BillingPort;
  replicate: ReplicatePort;
  transitions: VersionTransitions;
  metrics: Metrics['business'];
  logger: Logger;
}

/**
 * The safety net under webhooks. Every pass claims due versions with FOR UPDATE SKIP LOCKED (so
 * replicas share the work and never check one version twice at once), asks Replicate about each,
 * and applies the answer through the same transition code as a webhook. A training past its
 * deadline is failed and canceled; follow-ups left undone (credits, usage, pushed weights) are
 * retried; a version whose training was never created is removed and its payment released.
 */
export class VersionReconciler {
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly d: ReconcilerDeps,
    private readonly o: ReconcilerOptions,
  ) {}

  start(): void {
    this.stopping = false;
    this.schedule(0);
  }

  /** Waits for the pass in progress (it stops between versions) and schedules no more. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.pass;
  }

  /** One pass; the number of versions claimed. Public for tests. */
  async runOnce(): Promise<number> {
    const { store, metrics } = this.d;
    const rows = await store.repos.versions.claimDue(this.o.batch, this.o.intervalMs, this.o.maxGapMs);
    if (rows.length) metrics.reconcilerClaims.inc({ kind: 'training' }, rows.length);
    // One Replicate failure in a pass spares it the rest of the pass: they are due again later.
    const pass = { replicateDown: false };
    let next = 0;
    const worker = async () => {
      while (!this.stopping && next < rows.length) {
        const row = rows[next++]!;
        await this.reconcile(row, pass).catch((err: unknown) =>
          this.d.logger.warn(
            { version_id: row.id, err: (err as Error).message },
            'reconcile failed; retried when due',
          ),
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, rows.length) }, worker));
    metrics.inFlight.set({ kind: 'training' }, await store.repos.versions.countInFlight());
    return rows.length;
  }

  private schedule(ms: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.pass = this.runOnce()
        .then(
          () => undefined,
          (err: unknown) => this.d.logger.warn({ err: (err as Error).message }, 'reconciler pass failed'),
        )
        .finally(() => {
          this.pass = undefined;
          this.schedule(this.o.intervalMs);
        });
    }, ms);
    // The gRPC server keeps the process alive, not this timer.
    this.timer.unref();
  }

  private async reconcile(row: VersionRow, pass: { replicateDown: boolean }): Promise<void> {
    const { replicate, transitions, logger } = this.d;
    const log = logger.child({ version_id: row.id });
    if (!row.replicate_training_id) return this.dropUnstarted(row, log);

    let v = row;
    if (!isTerminal(v.status) && !pass.replicateDown) {
      try {
        const training = await replicate.getTraining(row.replicate_training_id);
        v = (await transitions.apply(v.id, training, 'replicate')).row ?? v;
      } catch (err) {
        if (err instanceof AppError && (err.code === 'unavailable' || err.code === 'timeout'))
          pass.replicateDown = true;
        log.warn({ err: (err as Error).message }, 'could not ask Replicate about the training');
      }
    }
    if (!isTerminal(v.status) && Date.now() >= v.deadline_at.getTime()) {
      const minutes = Math.round(this.o.timeoutMs / 60_000);
      const timedOut = await transitions.apply(
        v.id,
        { status: 'failed', error: `training timed out after ${minutes} min` },
        'timeout',
      );
      v = timedOut.row ?? v;
      if (timedOut.changed) {
        // Stop it at Replicate too, so it neither bills on nor pushes weights nobody will use.
        await replicate.cancelTraining(row.replicate_training_id).catch((err: unknown) => {
          log.warn({ err: (err as Error).message }, 'could not cancel the timed-out training');
        });
      }
    }
    await transitions.followUp(v);
  }

  /** A StartTraining that died between inserting the row and creating the training: give the payment back. */
  private async dropUnstarted(row: VersionRow, log: Logger): Promise<void> {
    if (row.status !== 'starting' || Date.now() - row.created_at.getTime() < this.o.startGraceMs) return;
    await this.d.billing.releaseInitPayment(row.payment_id, row.id);
    if (await this.d.store.repos.versions.deleteUnstarted(row.id)) {
      log.warn(
        { payment_id: row.payment_id },
        'removed a version whose training was never created; payment released',
      );
    }
  }
}
