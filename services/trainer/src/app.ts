import {
  createClaimLoop,
  outboxRelayJob,
  toVersionJson,
  createLogger,
  createMetrics,
  dependencyReadiness,
  createPool,
  createStore,
  createReplicate,
  implement,
  pingDatabase,
  serve,
  type ClaimLoop,
  type RunningService,
} from '@atelier/kit';
import { trainer } from '@atelier/protos';
import { createBillingClient } from './clients/billing.client';
import { createImagerClient } from './clients/imager.client';
import { createInferencerClient } from './clients/inferencer.client';
import { createReplicateTrainings } from './clients/replicate.client';
import type { TrainerConfig } from './config';
import { AccountDeletionJob } from './domain/account-deletion.job';
import { DatasetRetentionJob } from './domain/dataset-retention.job';
import { DeletionService } from './domain/deletion.service';
import { ReplicateEventService } from './domain/replicate-event.service';
import { TrainingService } from './domain/training.service';
import { createVersionReconciler } from './domain/version.job';
import { VersionDeletionJob } from './domain/version-deletion.job';
import { VersionService } from './domain/version.service';
import { parseTraining } from './domain/version.rules';
import { VersionTransitions } from './domain/version-transition.service';
import { trainerHandlers } from './grpc/trainer.handlers';
import { toVersion } from './grpc/trainer.mappers';
import { trainerRepositories } from './repositories';

export const TRAINER_SERVICE_NAME = 'atelier.trainer.v1.TrainerService';

export interface RunningTrainer extends RunningService {
  reconciler: ClaimLoop;
  /** Work for the claim loop: deletions and the training zips' retention. */
  jobs: {
    versionDeletion: VersionDeletionJob;
    accountDeletion: AccountDeletionJob;
    datasetRetention: DatasetRetentionJob;
  };
}

/** Wires trainer by hand: config → pools and clients → repositories → domain → handlers → server → reconciler. */
export async function startTrainer(
  config: TrainerConfig,
  // The deletion jobs' clock: a test moves it past a retention or a lease instead of waiting.
  opts: { now?: () => Date } = {},
): Promise<RunningTrainer> {
  const logger = createLogger('trainer', config.LOG_LEVEL);
  const metrics = createMetrics('trainer');
  const db = createPool(config.DATABASE_URL);
  const billing = createBillingClient(config.BILLING_ADDR, { timeoutMs: config.BILLING_TIMEOUT_MS, metrics });
  const replicateAdapter = createReplicate({
    token: config.REPLICATE_API_TOKEN,
    baseUrl: config.REPLICATE_BASE_URL,
    timeoutMs: config.REPLICATE_TIMEOUT_MS,
    webhookSecret: config.REPLICATE_WEBHOOK_SECRET,
    publicWebhookUrl: config.PUBLIC_WEBHOOK_URL,
    metrics,
  });
  const replicate = createReplicateTrainings(replicateAdapter, { hardware: config.REPLICATE_MODEL_HARDWARE });

  const deletionCalls = { timeoutMs: config.DELETION_CALL_TIMEOUT_MS, metrics };
  const inferencer = createInferencerClient(config.INFERENCER_ADDR, deletionCalls);
  // Its calls are the deletion jobs' unless they say otherwise: the upload's PackTrainingImages
  // (UPLOAD_TIMEOUT_MS) and a failed start's dataset deletion (IMAGER_TIMEOUT_MS) do.
  const imager = createImagerClient(config.IMAGER_ADDR, {
    ...deletionCalls,
    packTimeoutMs: config.UPLOAD_TIMEOUT_MS,
  });

  const store = createStore(db, trainerRepositories);
  const business = metrics.business;
  const transitions = new VersionTransitions({
    store,
    billing,
    replicate,
    metrics: business,
    logger,
    pricePerSecondMicros: config.TRAINING_PRICE_PER_SECOND_MICROS,
    pushPatienceMs: config.TRAINING_TIMEOUT_MS,
    view: (row) => toVersionJson(toVersion(row), undefined),
  });
  const versions = new VersionService(
    { store, billing, replicate, objects: imager, transitions, metrics: business, logger },
    {
      owner: config.REPLICATE_OWNER,
      trainer: { model: config.REPLICATE_TRAINER_MODEL, version: config.REPLICATE_TRAINER_VERSION },
      inputs: config.REPLICATE_TRAINER_INPUTS,
      steps: config.TRAINING_STEPS,
      webhookUrl: config.PUBLIC_WEBHOOK_URL,
      maxRunningPerAccount: config.MAX_RUNNING_TRAININGS_PER_ACCOUNT,
      timeoutMs: config.TRAINING_TIMEOUT_MS,
      startGraceMs: config.START_GRACE_MS,
      firstCheckMs: config.RECONCILE_INTERVAL_MS,
      allowPrivateCallbacks: config.WEBHOOK_ALLOW_PRIVATE,
      datasetDeleteTimeoutMs: config.IMAGER_TIMEOUT_MS,
    },
  );
  const training = new TrainingService({ versions, datasets: imager });
  const events = new ReplicateEventService({
    inbox: replicateAdapter.inbox(parseTraining, logger),
    transitions,
    logger,
  });
  const reconciler = createVersionReconciler(
    { store, billing, replicate, transitions, metrics, logger },
    {
      intervalMs: config.RECONCILE_INTERVAL_MS,
      maxGapMs: config.RECONCILE_MAX_BACKOFF_MS,
      batch: config.RECONCILE_BATCH,
      concurrency: config.RECONCILE_CONCURRENCY,
      timeoutMs: config.TRAINING_TIMEOUT_MS,
      startGraceMs: config.START_GRACE_MS,
    },
  );

  // Hands the events of trainer.outbox to billing, which delivers them.
  const relay = createClaimLoop({
    ...outboxRelayJob(store.repos.outbox, (events) => billing.publishEvents(events)),
    intervalMs: config.OUTBOX_INTERVAL_MS,
    batch: config.OUTBOX_BATCH,
    concurrency: config.OUTBOX_CONCURRENCY,
    logger,
    metrics,
  });
  const now = opts.now ?? (() => new Date());
  const schedule = {
    batch: config.DELETION_BATCH,
    leaseMs: config.DELETION_LEASE_MS,
    retryBaseMs: config.DELETION_RETRY_BASE_MS,
    retryMaxMs: config.DELETION_RETRY_MAX_MS,
  };
  const deletionLog = logger.child({ component: 'deletion' });
  const deletions = new DeletionService({ store, logger: deletionLog });
  const jobs = {
    versionDeletion: new VersionDeletionJob(
      {
        store,
        billing,
        replicate,
        prompts: inferencer,
        objects: imager,
        transitions,
        metrics: business,
        logger: deletionLog,
        now,
      },
      schedule,
    ),
    accountDeletion: new AccountDeletionJob(
      { store, billing, metrics: business, logger: deletionLog, now },
      schedule,
    ),
    datasetRetention: new DatasetRetentionJob(
      { store, objects: imager, metrics: business, logger: deletionLog, now },
      { ...schedule, retentionDays: config.DATASET_RETENTION_DAYS },
    ),
  };

  // Each job on its own kit claim loop: any number of replicas share the rows (SKIP LOCKED and a
  // lease), a dead replica's rows come back when their lease ends.
  const loopOf = <T>(
    name: string,
    job: {
      claim(limit: number): Promise<T[]>;
      handle(row: T): Promise<void>;
      idOf(row: T): string;
      afterPass(): Promise<void>;
    },
  ) =>
    createClaimLoop<T>({
      name,
      claim: (limit) => job.claim(limit),
      handle: (row) => job.handle(row),
      idOf: (row) => job.idOf(row),
      afterPass: () => job.afterPass(),
      intervalMs: config.DELETION_INTERVAL_MS,
      batch: config.DELETION_BATCH,
      concurrency: config.DELETION_CONCURRENCY,
      logger: deletionLog,
      metrics,
    });
  const deletionLoops = [
    loopOf('version_deletion', jobs.versionDeletion),
    loopOf('account_deletion', jobs.accountDeletion),
    loopOf('dataset_retention', jobs.datasetRetention),
  ];

  const service = await serve({
    logger,
    metrics,
    serviceNames: [TRAINER_SERVICE_NAME],
    services: [
      implement(trainer.TrainerServiceService, trainerHandlers({ versions, training, events, deletions }), {
        logger,
        metrics,
      }),
    ],
    config,
    readiness: dependencyReadiness(metrics, { postgres: () => pingDatabase(db) }),
    // After the calls in flight drained: the reconciler finishes its pass, then the pools close.
    close: [
      () => reconciler.stop(),
      () => relay.stop(),
      ...deletionLoops.map((loop) => () => loop.stop()),
      () => billing.close(),
      () => inferencer.close(),
      () => imager.close(),
      () => db.end(),
    ],
  });
  reconciler.start();
  relay.start();
  for (const loop of deletionLoops) loop.start();
  return Object.assign(service, { reconciler, jobs });
}
