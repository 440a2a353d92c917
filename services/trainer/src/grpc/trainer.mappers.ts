import { common, type trainer } from '@atelier/protos';
import type { VersionRow } from '../repositories';
import { isReady, trainingSeconds, type VersionStatus } from '../domain/version.rules';

const STATUS: Record<VersionStatus, common.RunStatus> = {
  starting: common.RunStatus.RUN_STATUS_STARTING,
  processing: common.RunStatus.RUN_STATUS_PROCESSING,
  succeeded: common.RunStatus.RUN_STATUS_SUCCEEDED,
  failed: common.RunStatus.RUN_STATUS_FAILED,
  canceled: common.RunStatus.RUN_STATUS_CANCELED,
};

/** UNSPECIFIED (or an unknown value) means "any status". */
export const fromRunStatus = (s: common.RunStatus): VersionStatus | undefined =>
  (Object.keys(STATUS) as VersionStatus[]).find((k) => STATUS[k] === s);

export const toVersion = (v: VersionRow): trainer.Version => ({
  versionId: v.id,
  accountId: v.account_id,
  status: STATUS[v.status],
  isReady: isReady(v),
  className: v.class_name,
  triggerWord: v.trigger_word,
  model: v.model,
  replicateVersion: v.replicate_version ?? '',
  createdAt: v.created_at,
  startedAt: v.started_at ?? undefined,
  completedAt: v.completed_at ?? undefined,
  pushedAt: v.pushed_at ?? undefined,
  trainingSeconds: trainingSeconds(v) ?? undefined,
  error: v.error ?? '',
  paymentId: v.payment_id,
  imageCount: v.image_count,
});
