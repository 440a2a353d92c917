import {
  createClaimLoop,
  createLogger,
  outboxRelayJob,
  toPromptJson,
  createMetrics,
  dependencyReadiness,
  createPool,
  createReplicate,
  createStore,
  implement,
  pingDatabase,
  serve,
  type Logger,
  type Metrics,
  type Pool,
  type ReplicateAdapter,
  type RunningService,
} from '@atelier/kit';
import { inferencer } from '@atelier/protos';
import type { InferencerConfig } from './config';
import { createBillingCredits } from './clients/billing.client';
import { createImagerOutputs } from './clients/imager.client';
import { createReplicatePredictions } from './clients/replicate.client';
import { createTrainerVersions } from './clients/trainer.client';
import type { Credits, OutputStore, VersionDirectory } from './domain/ports';
import { OfferService } from './domain/offer.service';
import { parsePrediction } from './domain/prompt.rules';
import { PredictionEventService } from './domain/prediction-event.service';
import { PromptCompletion } from './domain/prompt-completion.service';
import { createPromptReconciler } from './domain/prompt.job';
import { PromptErasureService } from './domain/prompt-erasure.service';
import { PromptService } from './domain/prompt.service';
import { PromptWaiter } from './domain/prompt-waiter.service';
import { inferencerHandlers } from './grpc/inferencer.handlers';
import { toProtoPrompt } from './grpc/inferencer.mappers';
import { repositories } from './repositories';

export const INFERENCER_SERVICE_NAME = 'atelier.inferencer.v1.InferencerService';

type DomainSettings = Pick<
  InferencerConfig,
  | 'PREDICTION_TIMEOUT_MS'
  | 'PREDICTION_CHECK_INTERVAL_MS'
  | 'PREDICTION_CREATE_GRACE_MS'
  | 'RECONCILE_INTERVAL_MS'
  | 'RECONCILE_BATCH'
  | 'RECONCILE_CONCURRENCY'
  | 'PREDICTION_PRICE_PER_SECOND_MICROS'
  | 'TRANSFER_TIMEOUT_MS'
  | 'MAX_RUNNING_PROMPTS_PER_ACCOUNT'
  | 'DUPLICATE_RUN_WINDOW_MS'
  | 'WEBHOOK_ALLOW_PRIVATE'
>;

/**
 * Repositories → domain, from dependencies the caller made: the real ones in startInferencer,
 * stand-ins in tests that exercise the domain against a real database and Replicate sandbox.
 */
export function buildInferencerDomain(deps: {
  pool: Pool;
  versions: VersionDirectory;
  credits: Credits;
  outputs: OutputStore;
  replicate: ReplicateAdapter;
  logger: Logger;
  metrics: Metrics;
  config: DomainSettings;
}) {
  const { config, logger, credits, replicate } = deps;
  const predictions = createReplicatePredictions(replicate);
  const store = createStore(deps.pool, repositories);
  const business = deps.metrics.business;
  const waiter = new PromptWaiter();
  const completion = new PromptCompletion({
    store,
    credits,
    outputs: deps.outputs,
    waiter,
    metrics: business,
    logger,
    pricePerSecondMicros: config.PREDICTION_PRICE_PER_SECOND_MICROS,
    completionLeaseMs: config.TRANSFER_TIMEOUT_MS + 30_000,
    // The reconciler is made below (it needs the completion); a webhook only comes once it exists.
    wake: () => reconciler.wake(),
    view: (prompt, urls) => toPromptJson(toProtoPrompt(prompt), urls),
  });
  const prompts = new PromptService({
    store,
    versions: deps.versions,
    credits,
    predictions,
    completion,
    waiter,
    metrics: business,
    logger,
    settings: {
      webhookUrl: replicate.webhookUrl('prediction'),
      timeoutMs: config.PREDICTION_TIMEOUT_MS,
      checkIntervalMs: config.PREDICTION_CHECK_INTERVAL_MS,
      createGraceMs: config.PREDICTION_CREATE_GRACE_MS,
      maxRunningPerAccount: config.MAX_RUNNING_PROMPTS_PER_ACCOUNT,
      allowPrivateCallbacks: config.WEBHOOK_ALLOW_PRIVATE,
    },
  });
  const events = new PredictionEventService({ inbox: replicate.inbox(parsePrediction, logger), completion });
  const reconciler = createPromptReconciler({
    store,
    predictions,
    completion,
    metrics: deps.metrics,
    logger,
    settings: {
      intervalMs: config.RECONCILE_INTERVAL_MS,
      batch: config.RECONCILE_BATCH,
      concurrency: config.RECONCILE_CONCURRENCY,
      checkIntervalMs: config.PREDICTION_CHECK_INTERVAL_MS,
      timeoutMs: config.PREDICTION_TIMEOUT_MS,
    },
  });
  const offers = new OfferService({
    store,
    credits,
    prompts,
    logger,
    settings: { duplicateWindowMs: config.DUPLICATE_RUN_WINDOW_MS },
  });
  const erasure = new PromptErasureService({ store, completion, predictions, outputs: deps.outputs, logger });
  return { store, completion, prompts, events, reconciler, offers, erasure };
}

/** Wires inferencer by hand: config → pools and clients → repositories → domain → handlers → server. */
export async function startInferencer(config: InferencerConfig): Promise<RunningService> {
  const logger = createLogger('inferencer', config.LOG_LEVEL);
  const metrics = createMetrics('inferencer');
  const db = createPool(config.DATABASE_URL);
  const grpcOpts = { timeoutMs: config.GRPC_TIMEOUT_MS, metrics };
  const versions = createTrainerVersions(config.TRAINER_ADDR, grpcOpts);
  const credits = createBillingCredits(config.BILLING_ADDR, grpcOpts);
  const outputs = createImagerOutputs(config.IMAGER_ADDR, {
    ...grpcOpts,
    transferTimeoutMs: config.TRANSFER_TIMEOUT_MS,
  });
  const replicate = createReplicate({
    token: config.REPLICATE_API_TOKEN,
    baseUrl: config.REPLICATE_BASE_URL,
    timeoutMs: config.REPLICATE_TIMEOUT_MS,
    webhookSecret: config.REPLICATE_WEBHOOK_SECRET,
    publicWebhookUrl: config.PUBLIC_WEBHOOK_URL,
    metrics,
  });

  const domain = buildInferencerDomain({
    pool: db,
    versions,
    credits,
    outputs,
    replicate,
    logger,
    metrics,
    config,
  });

  // Hands the events of inferencer.outbox to billing, which delivers them.
  const relay = createClaimLoop({
    ...outboxRelayJob(domain.store.repos.outbox, (events) => credits.publishEvents(events)),
    intervalMs: config.OUTBOX_INTERVAL_MS,
    batch: config.OUTBOX_BATCH,
    concurrency: config.OUTBOX_CONCURRENCY,
    logger,
    metrics,
  });

  const service = await serve({
    logger,
    metrics,
    serviceNames: [INFERENCER_SERVICE_NAME],
    services: [
      implement(inferencer.InferencerServiceService, inferencerHandlers(domain), { logger, metrics }),
    ],
    config,
    readiness: dependencyReadiness(metrics, { postgres: () => pingDatabase(db) }),
    // The reconciler stops before the pool closes under it; clients close after the calls drained.
    close: [
      () => domain.reconciler.stop(),
      () => relay.stop(),
      () => versions.close(),
      () => credits.close(),
      () => outputs.close(),
      () => db.end(),
    ],
  });
  domain.reconciler.start();
  relay.start();
  return service;
}
