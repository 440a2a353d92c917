/**
 * The lifecycle shared by trainings and predictions:
 *
 *   starting ──(short queue delay)──▶ processing ──(durationMs after creation)──▶ succeeded
 *                                        │  work() rejects, or an injected fault ─▶ failed
 *                              cancel() at any non-terminal point ───────────────▶ canceled
 *
 * Webhook events: `start` (+`logs`) on entering processing, `logs` on each log line, `output`
 * when the output appears, `completed` on the terminal state.
 */
import { deferred, errorMessage, pause } from './async';
import { RunFailure } from './dataset';
import type { FileStore } from './files';
import { now } from './ids';
import type { WebhookSender } from './webhooks';
import {
  TERMINAL,
  type PredictionObject,
  type RunKind,
  type RunObject,
  type RunRecord,
  type TrainingDataset,
  type WebhookEvent,
} from './types';

export interface RunEnv {
  webhooks: WebhookSender;
  files: FileStore;
  log: (m: string) => void;
}

export interface RunSpec<O extends RunObject> {
  durationMs: number;
  /** Number of steps the progress log lines count to. */
  steps: number;
  /** What the model does while processing. A rejection (RunFailure's message) fails the run at once. */
  work(signal: AbortSignal, log: (line: string) => void): Promise<void>;
  /** Produces the output when the run succeeds. */
  output(): O['output'];
}

export interface Outcome {
  status?: 'succeeded' | 'failed';
  error?: string;
}

// Long enough to observe `starting`, short enough not to matter in tests.
const MAX_QUEUE_MS = 250;

export class Run<O extends RunObject = RunObject> {
  /** Aborted by cancel(), by stop(), and once the run ends: releases its timers and downloads. */
  private readonly control = new AbortController();
  /** Aborted by complete(): skips the remaining wait. */
  private readonly hurry = new AbortController();
  private readonly ended = deferred<void>();
  private readonly createdMs = Date.now();
  private startedMs: number | null = null;
  private forced: Outcome | null = null;
  dataset?: TrainingDataset;

  constructor(
    readonly kind: RunKind,
    private readonly object: O,
    private readonly body: unknown,
    private readonly filter: ReadonlySet<WebhookEvent>,
    private readonly injectedError: string | null,
    private readonly env: RunEnv,
  ) {}

  get id(): string {
    return this.object.id;
  }

  get status(): O['status'] {
    return this.object.status;
  }

  /** Resolves once the run is terminal (or the sandbox stopped). */
  get settled(): Promise<void> {
    return this.ended.promise;
  }

  start(spec: RunSpec<O>): void {
    void this.drive(spec);
  }

  cancel(): void {
    if (TERMINAL.has(this.object.status)) return;
    this.end('canceled', null);
  }

  /** Ends the run now instead of after its duration (still after its work, e.g. rendering). */
  async complete(outcome: Outcome = {}): Promise<void> {
    if (!TERMINAL.has(this.object.status)) {
      this.forced = outcome;
      this.hurry.abort();
    }
    await this.ended.promise;
  }

  /** Sandbox shutdown: drop everything in flight without changing the public state. */
  halt(): void {
    this.control.abort(new Error('sandbox stopped'));
    this.ended.resolve();
  }

  view(): O {
    const copy = structuredClone(this.object);
    if (this.kind === 'prediction')
      (copy as PredictionObject).data_removed = this.env.files.isRemoved(this.id);
    return copy;
  }

  record(): RunRecord<O> {
    const record: RunRecord<O> = { kind: this.kind, object: this.view(), body: structuredClone(this.body) };
    if (this.dataset) record.dataset = structuredClone(this.dataset);
    return record;
  }

  private async drive(spec: RunSpec<O>): Promise<void> {
    const signal = this.control.signal;
    const deadline = this.createdMs + spec.durationMs;
    try {
      await pause(Math.min(MAX_QUEUE_MS, spec.durationMs / 5), signal, this.hurry.signal);
      this.object.status = 'processing';
      this.object.started_at = now();
      this.startedMs = Date.now();
      this.object.logs += `Starting ${this.kind} ${this.id}\n`;
      this.emit(['start', 'logs']);

      // Progress is reported once the work (download, rendering) is done, then the run waits out
      // the rest of its duration.
      await spec.work(signal, (line) => this.log(line));
      await pause((this.createdMs + deadline) / 2 - Date.now(), signal, this.hurry.signal);
      this.log(progress(0.5, spec.steps, this.startedMs));
      await pause(deadline - Date.now(), signal, this.hurry.signal);

      if (this.forced?.status === 'failed') throw new RunFailure(this.forced.error ?? 'Run failed (sandbox)');
      if (this.injectedError !== null && this.forced?.status !== 'succeeded')
        throw new RunFailure(this.injectedError);
      this.log(progress(1, spec.steps, this.startedMs));
      this.object.output = spec.output();
      if (this.object.output !== null) this.emit(['output']);
      this.end('succeeded', null);
    } catch (err) {
      // Canceled, halted, or already ended: the state is settled elsewhere.
      if (TERMINAL.has(this.object.status) || signal.aborted) return;
      const message = err instanceof RunFailure ? err.message : `Internal error: ${errorMessage(err)}`;
      this.object.logs += `Traceback (most recent call last):\n  ...\n${message}\n`;
      this.end('failed', message);
    }
  }

  private end(status: 'succeeded' | 'failed' | 'canceled', error: string | null): void {
    const endMs = Date.now();
    this.object.status = status;
    this.object.error = error;
    this.object.completed_at = now();
    this.object.metrics = {
      ...(this.startedMs !== null ? { predict_time: (endMs - this.startedMs) / 1000 } : {}),
      total_time: (endMs - this.createdMs) / 1000,
    };
    this.env.log(`${this.kind} ${this.id} ${status}${error ? `: ${error}` : ''}`);
    this.emit(['completed']);
    this.control.abort(new Error(`run ${status}`));
    this.ended.resolve();
  }

  private log(line: string): void {
    if (TERMINAL.has(this.object.status)) return;
    this.object.logs += `${line}\n`;
    this.emit(['logs']);
  }

  private emit(events: WebhookEvent[]): void {
    const url = this.object.webhook;
    if (!url || !events.some((e) => this.filter.has(e))) return;
    this.env.webhooks.send({
      kind: this.kind,
      runId: this.id,
      url,
      events,
      body: JSON.stringify(this.view()),
    });
  }
}

/** A tqdm-style line, which `parseProgressFromLogs` in the replicate client understands. */
function progress(fraction: number, steps: number, sinceMs: number): string {
  const done = Math.round(steps * fraction);
  const bar = '█'.repeat(Math.round(fraction * 20)).padEnd(20, ' ');
  const secs = Math.max(0.001, (Date.now() - sinceMs) / 1000);
  const elapsed = `00:${String(Math.floor(secs)).padStart(2, '0')}`;
  return `${String(Math.round(fraction * 100)).padStart(3)}%|${bar}| ${done}/${steps} [${elapsed}<00:00, ${(done / secs).toFixed(2)}it/s]`;
}
