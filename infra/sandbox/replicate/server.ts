/**
 * The Replicate sandbox: a local stand-in for api.replicate.com that the official `replicate`
 * client talks to unchanged (`new Replicate({ auth: sandbox.token, baseUrl: sandbox.baseUrl })`).
 * State lives in memory; runs finish on timers; webhooks are signed like Replicate's.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { adminRoutes } from './admin';
import { apiRoutes } from './api';
import { Core } from './core';
import { ApiProblem, Problems } from './errors';
import type { SandboxFaults } from './faults';
import { problemReply, readJson, sendJson, type Router } from './http';
import { now } from './ids';
import type { Outcome } from './runs';
import { DEFAULT_WEBHOOK_SECRET } from './signing';
import type { ApiCall, Delivery, PredictionObject, RunRecord, TrainingObject } from './types';

export interface ReplicateSandboxOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The API token the sandbox accepts (`Authorization: Bearer <token>`). Default `r8_sandbox`. */
  token?: string;
  /** `whsec_<base64>`; the default is fixed, so restarts keep it. */
  webhookSecret?: string;
  /** Creation to `succeeded` of a training. Default 5000. */
  trainingMs?: number;
  /** Creation to `succeeded` of a prediction. Default 1500. */
  predictionMs?: number;
  /** Output files answer 404 this long after the run succeeded. Default 1 hour, as Replicate. */
  outputTtlMs?: number;
  /** Base of the URLs handed out (`urls.get`, outputs, weights) when clients reach the sandbox by another address. */
  publicUrl?: string;
  /** The training input that carries the zip URL. Default `input_images`. */
  trainingZipInput?: string;
  /** Delays before webhook retries on a non-2xx answer or a network error. Default [200, 1000, 5000]. */
  webhookRetryDelaysMs?: number[];
  /** Per-attempt webhook timeout. Default 10000. */
  webhookTimeoutMs?: number;
  /** Username `GET /v1/account` reports. Default `atelier-sandbox`. */
  account?: string;
  log?: (m: string) => void;
}

export interface ReplicateSandbox {
  /** `http://host:port` */
  readonly url: string;
  /** `url + '/v1'` — pass as the client's `baseUrl`. */
  readonly baseUrl: string;
  readonly token: string;
  readonly webhookSecret: string;
  readonly faults: SandboxFaults;
  /** Ends held requests, clears every timer, abandons pending webhooks, closes the server. */
  stop(): Promise<void>;
  /** Webhook messages so far (the latest 10 000), with each delivery attempt. */
  deliveries(): Delivery[];
  /** Resolves when no webhook is queued or waiting to be retried. */
  webhooksIdle(): Promise<void>;
  /** `/v1` requests so far (the latest 10 000), faults included. */
  calls(): ApiCall[];
  training(id: string): RunRecord<TrainingObject> | undefined;
  trainings(): RunRecord<TrainingObject>[];
  prediction(id: string): RunRecord<PredictionObject> | undefined;
  predictions(): RunRecord<PredictionObject>[];
  /** `owner/name` of every model that exists (deleted ones are gone). */
  models(): string[];
  /** Finishes a run now (succeeded unless `outcome.status` says failed) and resolves with its final record. */
  complete(id: string, outcome?: Outcome): Promise<RunRecord>;
  /** Resolves with the record once the run is terminal. */
  settled(id: string): Promise<RunRecord>;
}

export async function startReplicateSandbox(opts: ReplicateSandboxOptions = {}): Promise<ReplicateSandbox> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => {});
  const core = new Core({
    token: opts.token ?? 'r8_sandbox',
    webhookSecret: opts.webhookSecret ?? DEFAULT_WEBHOOK_SECRET,
    trainingMs: opts.trainingMs ?? 5000,
    predictionMs: opts.predictionMs ?? 1500,
    outputTtlMs: opts.outputTtlMs ?? 60 * 60 * 1000,
    trainingZipInput: opts.trainingZipInput ?? 'input_images',
    webhookRetryDelaysMs: opts.webhookRetryDelaysMs ?? [200, 1000, 5000],
    webhookTimeoutMs: opts.webhookTimeoutMs ?? 10_000,
    account: opts.account ?? 'atelier-sandbox',
    log,
  });
  const api = apiRoutes(core);
  const admin = adminRoutes(core);
  const server = createServer((req, res) => {
    handle(core, api, admin, req, res).catch((err: unknown) => {
      log(`replicate sandbox: ${req.method} ${req.url} crashed: ${String(err)}`);
      sendJson(res, problemReply(Problems.server(500)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  core.publicUrl = opts.publicUrl ?? url;
  log(`replicate sandbox listening on ${url}`);

  let stopping: Promise<void> | null = null;
  const records = (kind: 'training' | 'prediction') => core.list(kind).map((r) => r.record());
  return {
    url,
    baseUrl: `${url}/v1`,
    token: core.o.token,
    webhookSecret: core.o.webhookSecret,
    faults: core.faults.facade(),
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        core.halt();
        server.close(() => resolve());
        server.closeAllConnections();
      })),
    deliveries: () => core.webhooks.list(),
    webhooksIdle: () => core.webhooks.idle(),
    calls: () => structuredClone(core.calls),
    training: (id) => trainingRecord(core.record(id)),
    trainings: () => records('training') as RunRecord<TrainingObject>[],
    prediction: (id) => predictionRecord(core.record(id)),
    predictions: () => records('prediction') as RunRecord<PredictionObject>[],
    models: () => core.models.names(),
    complete: (id, outcome) => core.complete(id, outcome),
    settled: (id) => core.settled(id),
  };
}

function trainingRecord(r: RunRecord | undefined): RunRecord<TrainingObject> | undefined {
  return r?.kind === 'training' ? (r as RunRecord<TrainingObject>) : undefined;
}

function predictionRecord(r: RunRecord | undefined): RunRecord<PredictionObject> | undefined {
  return r?.kind === 'prediction' ? (r as RunRecord<PredictionObject>) : undefined;
}

async function handle(
  core: Core,
  api: Router,
  admin: Router,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const method = req.method ?? 'GET';
  const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
  if (path.startsWith('/files/')) return serveFile(core, method, path, res);
  const isApi = path === '/v1' || path.startsWith('/v1/');
  let fault = false;
  if (isApi) {
    res.on('finish', () => core.recordCall({ at: now(), method, path, status: res.statusCode, fault }));
  }
  try {
    if (isApi) {
      const injected = core.faults.takeApiFault(method, path);
      if (injected) {
        fault = true;
        req.resume();
        throw injected.status === 429
          ? Problems.throttled(injected.retryAfterSeconds)
          : Problems.server(injected.status);
      }
      authenticate(req.headers.authorization, core.o.token);
    } else if (!path.startsWith('/sandbox/')) {
      throw Problems.notFound();
    }
    const { handler, params } = (isApi ? api : admin).resolve(method, path);
    const body = await readJson(req);
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    sendJson(res, await handler({ method, path, params, headers: req.headers, body, gone: gone.signal }));
  } catch (err) {
    if (!(err instanceof ApiProblem)) throw err;
    sendJson(res, problemReply(err));
  }
}

function authenticate(header: string | undefined, token: string): void {
  if (!header) throw new ApiProblem(401, 'Unauthenticated', 'You did not pass an authentication token');
  // Replicate accepts both schemes; the JS client sends Bearer, older docs show Token.
  const m = /^(?:Bearer|Token)\s+(.+)$/i.exec(header.trim());
  if (!m || m[1] !== token) throw Problems.unauthenticated();
}

function serveFile(core: Core, method: string, path: string, res: ServerResponse): void {
  const [, , runId = '', name = '', ...rest] = path.split('/');
  const file =
    rest.length === 0 && (method === 'GET' || method === 'HEAD') ? core.files.get(runId, name) : undefined;
  if (!file) {
    sendJson(res, problemReply(Problems.notFound()));
    return;
  }
  res.writeHead(200, {
    'content-type': file.contentType,
    'content-length': file.body.length,
    'cache-control': 'private, max-age=3600',
  });
  res.end(method === 'HEAD' ? undefined : file.body);
}
