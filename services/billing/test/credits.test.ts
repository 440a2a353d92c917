/**
 * The credit ledger against real Postgres through billing's gRPC API (grants are
 * training-outcome.test.ts's and addon.test.ts's): reservations that can never overspend under concurrency, settle/release exactly once.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { AppError } from '@atelier/kit';
import { trainedVersion, type Mesh } from '@atelier/infra/testing';
import {
  balanceRow,
  expectLedgerMatchesBalance,
  ledger,
  startBillingSuite,
  stopBillingSuite,
} from './helpers';

let mesh: Mesh;
let db: Client;
let account: { accountId: string; apiKey: string };
const billing = () => mesh.gateway.deps.mesh.billing;

beforeAll(async () => {
  ({ mesh, db, account } = await startBillingSuite());
});
afterAll(() => stopBillingSuite({ mesh, db }));

const errorOf = async (p: Promise<unknown>): Promise<AppError> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
};

describe('ReserveCredits', () => {
  it('100 concurrent reservations of 1 against 10 remaining: exactly 10 succeed, the balance ends at 0, never below', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    await billing().reserveCredits({
      accountId: account.accountId,
      versionId,
      reservationId: randomUUID(),
      amount: 90,
    });

    const results = await Promise.allSettled(
      Array.from({ length: 100 }, () =>
        billing().reserveCredits({
          accountId: account.accountId,
          versionId,
          reservationId: randomUUID(),
          amount: 1,
        }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(10);
    expect(refused).toHaveLength(90);
    for (const r of refused)
      expect(r.reason).toMatchObject({ code: 'insufficient_credits', extra: { remaining: 0 } });
    // Every successful answer saw a balance that was never negative.
    for (const r of ok)
      expect(
        (r as PromiseFulfilledResult<{ balance?: { remaining: number } }>).value.balance!.remaining,
      ).toBeGreaterThanOrEqual(0);

    const { balance } = await billing().getCreditBalance({ accountId: account.accountId, versionId });
    expect(balance).toEqual({ versionId, granted: 100, used: 100, remaining: 0 });
    const { rows } = await db.query(
      "SELECT count(*)::int AS n FROM billing.credit_reservations WHERE version_id = $1 AND status = 'open'",
      [versionId],
    );
    expect(rows[0]).toEqual({ n: 11 });
    await expectLedgerMatchesBalance(db, versionId);
  });

  it('says how many credits remain when it refuses (402 at the gateway)', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const err = await errorOf(
      billing().reserveCredits({
        accountId: account.accountId,
        versionId,
        reservationId: randomUUID(),
        amount: 101,
      }),
    );
    expect(err).toMatchObject({ code: 'insufficient_credits', extra: { remaining: 100 } });
    expect((await balanceRow(db, versionId))!.used).toBe(0);
  });

  it('reserves once per reservation id, even when the same reservation arrives 20 times at once', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const reservationId = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        billing().reserveCredits({ accountId: account.accountId, versionId, reservationId, amount: 3 }),
      ),
    );
    for (const r of results) expect(r.balance!.granted).toBe(100);
    expect(await balanceRow(db, versionId)).toEqual({ granted: 100, used: 3 });
    expect((await ledger(db, versionId)).filter((r) => r.reason === 'reserve')).toHaveLength(1);
    // The same id for another amount is a caller bug, not a replay.
    expect(
      (
        await errorOf(
          billing().reserveCredits({ accountId: account.accountId, versionId, reservationId, amount: 4 }),
        )
      ).code,
    ).toBe('reservation_mismatch');
  });

  it("answers 404 for another account's version, and 'none remaining' for a version without credits", async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const other = await mesh.createAccount();
    expect(
      (
        await errorOf(
          billing().reserveCredits({
            accountId: other.accountId,
            versionId,
            reservationId: randomUUID(),
            amount: 1,
          }),
        )
      ).code,
    ).toBe('not_found');
    expect((await errorOf(billing().getCreditBalance({ accountId: other.accountId, versionId }))).code).toBe(
      'not_found',
    );
    const fresh = randomUUID();
    expect(
      await errorOf(
        billing().reserveCredits({
          accountId: account.accountId,
          versionId: fresh,
          reservationId: randomUUID(),
          amount: 1,
        }),
      ),
    ).toMatchObject({
      code: 'insufficient_credits',
      extra: { remaining: 0 },
    });
    expect(
      (await billing().getCreditBalance({ accountId: account.accountId, versionId: fresh })).balance,
    ).toEqual({ versionId: fresh, granted: 0, used: 0, remaining: 0 });
  });

  it('refuses a zero amount and malformed ids (400)', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    expect(
      (
        await errorOf(
          billing().reserveCredits({
            accountId: account.accountId,
            versionId,
            reservationId: randomUUID(),
            amount: 0,
          }),
        )
      ).code,
    ).toBe('invalid_argument');
    expect(
      (
        await errorOf(
          billing().reserveCredits({
            accountId: account.accountId,
            versionId,
            reservationId: 'nope',
            amount: 1,
          }),
        )
      ).code,
    ).toBe('malformed_id');
  });
});

describe('SettleCredits and ReleaseCredits', () => {
  it('settle keeps the images produced and gives the rest back; a second settle or a late release changes nothing', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const reservationId = randomUUID();
    await billing().reserveCredits({ accountId: account.accountId, versionId, reservationId, amount: 4 });
    const settled = await billing().settleCredits({ reservationId, used: 3 });
    expect(settled.balance).toEqual({ versionId, granted: 100, used: 3, remaining: 97 });
    expect((await billing().settleCredits({ reservationId, used: 3 })).balance).toEqual(settled.balance);
    expect((await billing().settleCredits({ reservationId, used: 0 })).balance).toEqual(settled.balance);
    expect((await billing().releaseCredits({ reservationId })).balance).toEqual(settled.balance);
    expect((await ledger(db, versionId)).map((r) => [r.reason, r.used_delta])).toEqual([
      ['grant', 0],
      ['reserve', 4],
      ['settle', -1],
    ]);
    await expectLedgerMatchesBalance(db, versionId);
  });

  it('release gives the whole reservation back, once, even when settle and release race', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const ids = Array.from({ length: 10 }, () => randomUUID());
    for (const reservationId of ids)
      await billing().reserveCredits({ accountId: account.accountId, versionId, reservationId, amount: 2 });
    expect((await balanceRow(db, versionId))!.used).toBe(20);
    // The webhook settles while the reconciler releases, several times over.
    await Promise.all(
      ids.flatMap((reservationId) => [
        billing().settleCredits({ reservationId, used: 1 }),
        billing().releaseCredits({ reservationId }),
        billing().settleCredits({ reservationId, used: 1 }),
        billing().releaseCredits({ reservationId }),
      ]),
    );
    const { rows } = await db.query<{ status: string; settled: number }>(
      'SELECT status, settled FROM billing.credit_reservations WHERE id = ANY($1)',
      [ids],
    );
    const expectedUsed = rows.reduce((sum, r) => sum + (r.status === 'settled' ? r.settled : 0), 0);
    expect(rows.every((r) => r.status !== 'open')).toBe(true);
    expect((await balanceRow(db, versionId))!.used).toBe(expectedUsed);
    await expectLedgerMatchesBalance(db, versionId);
  });

  it('refuses to settle more than was reserved (400) and an unknown reservation (404)', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const reservationId = randomUUID();
    await billing().reserveCredits({ accountId: account.accountId, versionId, reservationId, amount: 2 });
    expect((await errorOf(billing().settleCredits({ reservationId, used: 3 }))).code).toBe(
      'reservation_exceeded',
    );
    expect((await errorOf(billing().settleCredits({ reservationId: randomUUID(), used: 1 }))).code).toBe(
      'not_found',
    );
    expect((await errorOf(billing().releaseCredits({ reservationId: randomUUID() }))).code).toBe('not_found');
    expect((await balanceRow(db, versionId))!.used).toBe(2);
  });
});

describe('ForfeitCredits', () => {
  it('forfeits what prompts still running give back after it: a deleted version never has credits again', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const [settling, releasing] = [randomUUID(), randomUUID()];
    for (const reservationId of [settling, releasing])
      await billing().reserveCredits({ accountId: account.accountId, versionId, reservationId, amount: 4 });
    await billing().forfeitCredits({ accountId: account.accountId, versionId });
    expect(await balanceRow(db, versionId)).toEqual({ granted: 8, used: 8 });

    expect((await billing().settleCredits({ reservationId: settling, used: 1 })).balance).toEqual({
      versionId,
      granted: 5,
      used: 5,
      remaining: 0,
    });
    expect((await billing().releaseCredits({ reservationId: releasing })).balance).toEqual({
      versionId,
      granted: 1,
      used: 1,
      remaining: 0,
    });
    expect((await ledger(db, versionId)).map((r) => [r.reason, r.granted_delta, r.used_delta])).toEqual([
      ['grant', 100, 0],
      ['reserve', 0, 4],
      ['reserve', 0, 4],
      ['forfeit', -92, 0],
      ['settle', 0, -3],
      ['forfeit', -3, 0],
      ['release', 0, -4],
      ['forfeit', -4, 0],
    ]);
    await expectLedgerMatchesBalance(db, versionId);
  });
});
