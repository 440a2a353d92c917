export { startReplicateSandbox, type ReplicateSandbox, type ReplicateSandboxOptions } from './server';
export type { ApiFault, FaultSnapshot, FaultStatus, RunFault, SandboxFaults } from './faults';
export type { Outcome } from './runs';
export { DEFAULT_WEBHOOK_SECRET, signWebhook } from './signing';
export type {
  ApiCall,
  Delivery,
  DeliveryAttempt,
  ModelObject,
  ModelVersionObject,
  PredictionObject,
  RunKind,
  RunMetrics,
  RunRecord,
  RunStatus,
  TrainingDataset,
  TrainingObject,
  WebhookEvent,
} from './types';
