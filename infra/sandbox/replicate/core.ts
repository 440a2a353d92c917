/**
 * The sandbox's state, shared by the API routes, the admin routes and the object tests hold.
 */
import { setMaxListeners } from 'node:events';
import { Faults } from './faults';
import { FileStore } from './files';
import { ModelStore } from './models';
import { Problems } from './errors';
import { createPrediction } from './predictions';
import type { Outcome, Run } from './runs';
import { createTraining } from './trainings';
import type { ApiCall, PredictionObject, RunKind, RunObject, RunRecord, TrainingObject } from './types';
import { WebhookSender } from './webhooks';

const HISTORY = 10_000;

export interface CoreOptions {
  token: string;
  webhookSecret: string;
  trainingMs: number;
  predictionMs: number;
  outputTtlMs: number;
  trainingZipInput: string;
  webhookRetryDelaysMs: readonly number[];
  webhookTimeoutMs: number;
  account: string;
  log: (m: string) => void;
}

export class Core {
  /** Aborted by stop(): webhook deliveries and held `Prefer: wait` requests listen to it (runs are halted one by one). */
  readonly stopper = new AbortController();
  readonly files: FileStore;
  readonly faults: Faults;
  readonly webhooks: WebhookSender;
  readonly models = new ModelStore();
  private readonly callLog: ApiCall[] = [];
  private readonly runs = new Map<string, Run>();
  private base = '';

  constructor(readonly o: CoreOptions) {
    // Many concurrent webhook retries and held requests listen on this one signal.
    setMaxListeners(0, this.stopper.signal);
    this.files = new FileStore(o.outputTtlMs);
    this.faults = new Faults((id) => this.files.expire(id));
    this.webhooks = new WebhookSender({
      secret: o.webhookSecret,
      retryDelaysMs: o.webhookRetryDelaysMs,
      timeoutMs: o.webhookTimeoutMs,
      faults: this.faults,
      stop: this.stopper.signal,
      log: o.log,
    });
  }

  /** The latest `/v1` calls (capped, so a long-running dev sandbox does not grow forever). */
  get calls(): ApiCall[] {
    return this.callLog;
  }

  recordCall(call: ApiCall): void {
    this.callLog.push(call);
    if (this.callLog.length > HISTORY) this.callLog.splice(0, this.callLog.length - HISTORY);
  }

  /** Base of every URL the sandbox hands out (`urls.get`, output files, weights). */
  get publicUrl(): string {
    return this.base;
  }

  set publicUrl(url: string) {
    this.base = url.replace(/\/+$/, '');
  }

  createTraining(
    trainer: { owner: string; name: string; version: string },
    body: unknown,
  ): Run<TrainingObject> {
    const run = createTraining(
      this.env({ trainingMs: this.o.trainingMs, zipKey: this.o.trainingZipInput }),
      trainer,
      body,
    );
    this.runs.set(run.id, run);
    return run;
  }

  createPrediction(body: unknown, model?: { owner: string; name: string }): Run<PredictionObject> {
    const run = createPrediction(this.env({ predictionMs: this.o.predictionMs }), body, model);
    this.runs.set(run.id, run);
    return run;
  }

  /** The run of that kind, or a 404 like Replicate's. */
  run<K extends RunKind>(kind: K, id: string): Run<K extends 'training' ? TrainingObject : PredictionObject> {
    const run = this.runs.get(id);
    if (!run || run.kind !== kind) throw Problems.notFound();
    return run as unknown as Run<K extends 'training' ? TrainingObject : PredictionObject>;
  }

  /**
   * A deleted version takes its predictions and their output files with it, as at Replicate
   * ("all associated predictions, including all output files").
   */
  deleteModelVersion(owner: string, name: string, id: string): void {
    this.models.deleteVersion(owner, name, id);
    for (const [runId, run] of this.runs) {
      if (run.kind === 'prediction' && (run.view() as PredictionObject).version === id) {
        run.halt();
        this.runs.delete(runId);
        this.files.expire(runId);
      }
    }
  }

  list(kind: RunKind): Run[] {
    return [...this.runs.values()].filter((r) => r.kind === kind).reverse();
  }

  async complete(id: string, outcome?: Outcome): Promise<RunRecord> {
    const run = this.runs.get(id);
    if (!run) throw Problems.notFound();
    await run.complete(outcome);
    return run.record();
  }

  async settled(id: string): Promise<RunRecord> {
    const run = this.runs.get(id);
    if (!run) throw Problems.notFound();
    await run.settled;
    return run.record();
  }

  record(id: string): RunRecord<RunObject> | undefined {
    return this.runs.get(id)?.record();
  }

  halt(): void {
    this.stopper.abort(new Error('sandbox stopped'));
    for (const run of this.runs.values()) run.halt();
  }

  private env<T extends object>(extra: T) {
    return {
      ...extra,
      models: this.models,
      faults: this.faults,
      files: this.files,
      webhooks: this.webhooks,
      log: this.o.log,
      publicUrl: () => this.base,
    };
  }
}
