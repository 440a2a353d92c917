/** The reconciler's loop on its own (fake storage, fake clock): it stops cleanly. */
import { createLogger, createMetrics } from '@atelier/kit';
import { VersionReconciler, type ReconcilerDeps } from '../src/domain/version.reconciler';
import type { VersionRow } from '../src/repositories';

function setup() {
  let finishPass!: (rows: VersionRow[]) => void;
  const claimDue = jest.fn(() => new Promise<VersionRow[]>((resolve) => (finishPass = resolve)));
  const deps = {
    store: { repos: { versions: { claimDue, countInFlight: async () => 0 } } },
    metrics: createMetrics('trainer-test').business,
    logger: createLogger('trainer-test', 'silent'),
  } as unknown as ReconcilerDeps;
  const reconciler = new VersionReconciler(deps, {
    intervalMs: 1000,
    maxGapMs: 60_000,
    batch: 10,
    concurrency: 2,
    timeoutMs: 3_600_000,
    startGraceMs: 900_000,
  });
  return { reconciler, claimDue, finishPass: (rows: VersionRow[] = []) => finishPass(rows) };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

it('runs a pass every interval, one at a time', async () => {
  const { reconciler, claimDue, finishPass } = setup();
  reconciler.start();
  await jest.advanceTimersByTimeAsync(0);
  expect(claimDue).toHaveBeenCalledTimes(1);
  // A slow pass is not overlapped by the next one.
  await jest.advanceTimersByTimeAsync(5_000);
  expect(claimDue).toHaveBeenCalledTimes(1);
  finishPass();
  await jest.advanceTimersByTimeAsync(1_000);
  expect(claimDue).toHaveBeenCalledTimes(2);
  finishPass();
  await reconciler.stop();
});

it('stop() waits for the pass in flight and schedules no other', async () => {
  const { reconciler, claimDue, finishPass } = setup();
  reconciler.start();
  await jest.advanceTimersByTimeAsync(0);
  let stopped = false;
  const stopping = reconciler.stop().then(() => (stopped = true));
  await jest.advanceTimersByTimeAsync(0);
  expect(stopped).toBe(false);
  finishPass();
  await stopping;
  await jest.advanceTimersByTimeAsync(60_000);
  expect(claimDue).toHaveBeenCalledTimes(1);
});
