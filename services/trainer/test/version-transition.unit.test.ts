/**
 * What trainer does when billing refuses a training's outcome: a refusal billing would repeat is
 * heard once (the version settles and leaves the reconciler's queue); anything else is asked again
 * on the next pass. The store is a stand-in holding the one version row.
 */
import { createLogger, createMetrics, Errors, type AppError } from '@atelier/kit';
import type { Store, VersionRow } from '../src/repositories';
import type { BillingPort, ReplicatePort } from '../src/domain/ports';
import { VersionTransitions } from '../src/domain/version-transition.service';

const failedTraining = (): VersionRow =>
  ({
    id: '00000000-0000-4000-8000-000000000001',
    account_id: '00000000-0000-4000-8000-000000000002',
    payment_id: '00000000-0000-4000-8000-000000000003',
    status: 'failed',
    model: 'atelier/v-1',
    replicate_training_id: 'r8_training',
    created_at: new Date(),
    completed_at: new Date(),
    pushed_at: null,
    grant_settled_at: null,
    usage_recorded_at: new Date(),
    settled_at: null,
  }) as VersionRow;

/** followUp on a failed training whose outcome billing answers with `error`; what the row became. */
async function followUpRefused(error: AppError): Promise<{ row: VersionRow; reports: number }> {
  let row = failedTraining();
  let reports = 0;
  const set = (patch: Partial<VersionRow>) => (row = { ...row, ...patch });
  const store = {
    repos: {
      versions: {
        markGrantSettled: async () => set({ grant_settled_at: new Date() }),
        markSettled: async () => set({ settled_at: new Date() }),
      },
    },
  } as unknown as Store;
  const billing = {
    reportOutcome: async () => {
      reports++;
      throw error;
    },
  } as unknown as BillingPort;
  const transitions = new VersionTransitions({
    store,
    billing,
    replicate: {} as ReplicatePort,
    metrics: createMetrics('trainer-transition-unit').business,
    logger: createLogger('trainer-transition-unit', 'silent'),
    pricePerSecondMicros: 1_000,
    pushPatienceMs: 60_000,
    view: (v) => v,
  });
  row = await transitions.followUp(row);
  return { row, reports };
}

const ids = failedTraining();
it.each([
  Errors.paymentNotForTraining(ids.payment_id),
  Errors.notFound('payment', ids.payment_id),
  Errors.versionOfAnotherAccount(ids.id),
  Errors.malformedId('payment_id', 'x'),
  Errors.invalid('outcome must be RUNNING, READY or FAILED'),
])('billing refusing the outcome with $code for good: heard once, the version settles', async (error) => {
  const { row, reports } = await followUpRefused(error);
  expect(reports).toBe(1);
  expect(row.grant_settled_at).toEqual(expect.any(Date));
  expect(row.settled_at).toEqual(expect.any(Date));
});

it.each([Errors.unavailable('billing'), Errors.timeout('billing'), Errors.internal('a bug')])(
  'billing failing with $code: the version stays on the queue to be reported again',
  async (error) => {
    const { row, reports } = await followUpRefused(error);
    expect(reports).toBe(1);
    expect(row.grant_settled_at).toBeNull();
    expect(row.settled_at).toBeNull();
  },
);
