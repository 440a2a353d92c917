/**
 * The sweep of orphaned credit reservations, against a real Postgres: a reservation whose owner
 * never came back is released once past its maximum age, by exactly one of two replicas, and
 * nothing younger or already closed is touched.
 */
import { randomUUID } from 'node:crypto';
import {
  createClaimLoop,
  createLogger,
  createMetrics,
  createPool,
  createStore,
  type Pool,
} from '@atelier/kit';
import { createTestDatabase, type TestDatabase } from '@atelier/infra/testing';
import { paymentRepositories } from '../src/repositories';
import { CreditService } from '../src/domain/credit.service';
import { reservationSweepJob } from '../src/domain/reservation-sweep.job';

let db: TestDatabase;
let pool: Pool;
let credits: CreditService;
const logger = createLogger('billing-test', process.env.TEST_LOG_LEVEL ?? 'silent');
const HOUR = 3600_000;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool(db.url);
  credits = new CreditService(createStore(pool, paymentRepositories));
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

/** One replica's sweep (its own metrics registry, as its own process would have). */
const sweepLoop = () =>
  createClaimLoop({
    ...reservationSweepJob(
      { store: createStore(pool, paymentRepositories), credits, logger },
      { maxAgeMs: 24 * HOUR, leaseMs: 60_000 },
    ),
    intervalMs: 60_000,
    batch: 10,
    concurrency: 2,
    logger,
    metrics: createMetrics('billing-test'),
  });

async function versionWithCredits(granted: number): Promise<{ accountId: string; versionId: string }> {
  const accountId = randomUUID();
  const versionId = randomUUID();
  await pool.query('INSERT INTO billing.accounts (id, email) VALUES ($1, $2)', [
    accountId,
    `${accountId}@example.com`,
  ]);
  await pool.query(
    'INSERT INTO billing.credit_balances (version_id, account_id, granted) VALUES ($1, $2, $3)',
    [versionId, accountId, granted],
  );
  return { accountId, versionId };
}

const age = (reservationId: string, hours: number) =>
  pool.query(
    `UPDATE billing.credit_reservations SET created_at = now() - make_interval(hours => $2) WHERE id = $1`,
    [reservationId, hours],
  );

const reservation = async (id: string) =>
  (
    await pool.query<{ status: string; settled: number }>(
      'SELECT status, settled FROM billing.credit_reservations WHERE id = $1',
      [id],
    )
  ).rows[0];

const releases = async (id: string) =>
  (
    await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM billing.credit_ledger WHERE reservation_id = $1 AND reason = 'release'`,
      [id],
    )
  ).rows[0]!.n;

it('releases a reservation open past its maximum age, once across two replicas, and leaves younger and closed ones alone', async () => {
  const { accountId, versionId } = await versionWithCredits(10);
  const orphan = randomUUID();
  const young = randomUUID();
  const settled = randomUUID();
  await credits.reserve(accountId, versionId, orphan, 3);
  await credits.reserve(accountId, versionId, young, 2);
  await credits.reserve(accountId, versionId, settled, 4);
  await credits.settle(settled, 4);
  await age(orphan, 25);
  await age(young, 23);
  await age(settled, 48);

  const [a, b] = await Promise.all([sweepLoop().runOnce(), sweepLoop().runOnce()]);
  expect(a + b).toBeGreaterThanOrEqual(1);

  expect(await reservation(orphan)).toEqual({ status: 'released', settled: 0 });
  expect(await releases(orphan)).toBe(1);
  expect(await reservation(young)).toEqual({ status: 'open', settled: 0 });
  expect(await reservation(settled)).toEqual({ status: 'settled', settled: 4 });
  // The orphan's 3 credits are back: 4 spent, 2 still held by the young reservation.
  const balance = await pool.query(
    'SELECT granted, used FROM billing.credit_balances WHERE version_id = $1',
    [versionId],
  );
  expect(balance.rows[0]).toEqual({ granted: 10, used: 6 });
  // Nothing left to sweep; the late settle of the orphan's owner changes nothing.
  expect(await sweepLoop().runOnce()).toBe(0);
  await credits.settle(orphan, 3);
  expect(await reservation(orphan)).toEqual({ status: 'released', settled: 0 });
});
