import { common } from '@atelier/protos';

// The resources' REST shapes live in the kit: the services announce events in the same shape.
export { runStatus, toPaymentJson, toPromptJson, toVersionJson } from '@atelier/kit';

const FINISHED: ReadonlySet<common.RunStatus> = new Set([
  common.RunStatus.RUN_STATUS_SUCCEEDED,
  common.RunStatus.RUN_STATUS_FAILED,
  common.RunStatus.RUN_STATUS_CANCELED,
]);

/** A run (prompt or training) that will not change any more: a waiting client can stop waiting. */
export const isFinished = (status: common.RunStatus) => FINISHED.has(status);
