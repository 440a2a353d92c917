import { Errors, requireUuid } from '@atelier/kit';
import type { PaymentRepositories, Store } from '../repositories';
import type { BalanceRow } from '../repositories/credit-balance.repository';
import type { GrantRow } from '../repositories/credit-grant.repository';
import type { PaymentRow } from '../repositories/payment.repository';

export interface Balance {
  versionId: string;
  granted: number;
  used: number;
  remaining: number;
}

/** The same reservation committed by a concurrent call first: roll this one back, answer that one. */
class ReservationRaced extends Error {}

const toBalance = (versionId: string, row: BalanceRow | undefined): Balance => ({
  versionId,
  granted: row?.granted ?? 0,
  used: row?.used ?? 0,
  remaining: row ? row.granted - row.used : 0,
});

function requireCount(what: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min)
    throw Errors.invalid(`${what} must be an integer >= ${min}, got ${value}`);
  return value;
}

/**
 * The per-version credit ledger. `remaining = granted − used` never goes below zero: reserving is
 * one conditional UPDATE (and the table CHECKs `used <= granted`), and every change writes a
 * ledger row with its reason in the same transaction. Grants are once per payment; settling and
 * releasing close a reservation once, so a webhook and a reconciler racing cannot double-count.
 */
export class CreditService {
  constructor(private readonly store: Store) {}

  /** The balance as the caller's transaction sees it. */
  async balanceIn(repos: PaymentRepositories, versionId: string): Promise<Balance> {
    return toBalance(versionId, await repos.balances.find(versionId));
  }

  async balance(accountId: string, versionId: string): Promise<Balance> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('version_id', versionId);
    const row = await this.store.repos.balances.find(id);
    // No row: nothing was ever granted, which is true of any version the caller may ask about.
    if (row && row.account_id !== account) throw Errors.notFound('version', versionId);
    return toBalance(id, row);
  }

  /** The balances of a page of the caller's versions; a version without a row has none granted. */
  async balances(accountId: string, versionIds: string[]): Promise<Balance[]> {
    const account = requireUuid('account_id', accountId);
    if (versionIds.length > 100) throw Errors.invalid('at most 100 version ids');
    const ids = versionIds.map((v) => requireUuid('version_id', v));
    const rows = await this.store.repos.balances.findMany(account, ids);
    return rows.map((r) => toBalance(r.version_id, r));
  }

  /**
   * A deleted version's remaining credits are gone for good (billing rows stay for accounting):
   * granted drops to what was used, recorded in the ledger. How many were forfeited; idempotent.
   */
  async forfeit(accountId: string, versionId: string): Promise<number> {
    const account = requireUuid('account_id', accountId);
    const version = requireUuid('version_id', versionId);
    return this.store.transaction(async (repos) => {
      await repos.balances.ensure(version, account);
      const before = await repos.balances.lock(version);
      if (!before || before.account_id !== account) throw Errors.notFound('version', versionId);
      if (before.forfeited_at) return 0;
      const forfeited = before.granted - before.used;
      await repos.balances.forfeit(version);
      await repos.ledger.append({ versionId: version, reason: 'forfeit', grantedDelta: -forfeited });
      return forfeited;
    });
  }

  /**
   * Grants a paid payment's images — as bought, from its snapshot, not the plan's current row —
   * to its version inside the caller's transaction (which holds the payment's lock). False when
   * this payment granted before.
   */
  async grantInTransaction(repos: PaymentRepositories, payment: PaymentRow): Promise<boolean> {
    const versionId = payment.version_id;
    if (!versionId) throw Errors.paymentNotBound(payment.id);
    const images = payment.plan_images;
    await repos.balances.ensure(versionId, payment.account_id);
    // A deleted version's credits were forfeited: an add-on paid afterwards grants nothing to it.
    if ((await repos.balances.lock(versionId))?.forfeited_at) return false;
    if (!(await repos.grants.insert(payment.id, versionId, images))) return false;
    const balance = await repos.balances.addGranted(versionId, images);
    // A version belongs to one account; anything else is a bug we must not turn into free credits.
    if (balance.account_id !== payment.account_id) throw Errors.versionOfAnotherAccount(versionId);
    await repos.ledger.append({
      versionId,
      reason: 'grant',
      grantedDelta: images,
      paymentId: payment.id,
    });
    return true;
  }

  /**
   * A refund takes back what is left of the payment's grant: never more than it granted minus what
   * was revoked before, and never credits already used or held by open reservations (those are
   * taken back as they are released, see `close`). Returns the number revoked. Runs in the
   * caller's transaction, which holds the payment's lock.
   */
  async revokeInTransaction(repos: PaymentRepositories, payment: PaymentRow): Promise<number> {
    if (!payment.version_id) return 0;
    // Balance before grant, in every path that locks both, so two transactions never wait on each other in a circle.
    const balance = await repos.balances.lock(payment.version_id);
    if (!balance) return 0;
    const grant = await repos.grants.lock(payment.id);
    if (!grant) return 0;
    const { revoked } = await this.takeBack(repos, balance, grant);
    return revoked;
  }

  private async takeBack(
    repos: PaymentRepositories,
    balance: BalanceRow,
    grant: GrantRow,
  ): Promise<{ revoked: number; balance: BalanceRow }> {
    const revoke = Math.max(0, Math.min(grant.amount - grant.revoked, balance.granted - balance.used));
    if (revoke === 0) return { revoked: 0, balance };
    const after = await repos.balances.removeGranted(grant.version_id, revoke);
    await repos.grants.addRevoked(grant.payment_id, revoke);
    await repos.ledger.append({
      versionId: grant.version_id,
      reason: 'revoke',
      grantedDelta: -revoke,
      paymentId: grant.payment_id,
    });
    return { revoked: revoke, balance: after };
  }

  /** ReserveCredits: idempotent per reservation id; short → insufficient_credits with what remains. */
  async reserve(
    accountId: string,
    versionId: string,
    reservationId: string,
    amount: number,
  ): Promise<Balance> {
    const account = requireUuid('account_id', accountId);
    const version = requireUuid('version_id', versionId);
    const id = requireUuid('reservation_id', reservationId);
    requireCount('amount', amount, 1);

    const replay = await this.replay(this.store.repos, account, version, id, amount);
    if (replay) return replay;
    try {
      return await this.store.transaction(async (repos) => {
        const row = await repos.balances.reserve(version, account, amount);
        if (!row) {
          // A duplicate that committed while this one waited for the row is still a success.
          const again = await this.replay(repos, account, version, id, amount);
          if (again) return again;
          const current = await repos.balances.find(version);
          if (current && current.account_id !== account) throw Errors.notFound('version', versionId);
          throw Errors.insufficientCredits(current ? current.granted - current.used : 0, amount);
        }
        if (!(await repos.reservations.insert(id, version, amount))) throw new ReservationRaced();
        await repos.ledger.append({
          versionId: version,
          reason: 'reserve',
          usedDelta: amount,
          reservationId: id,
        });
        return toBalance(version, row);
      });
    } catch (err) {
      if (!(err instanceof ReservationRaced)) throw err;
      // This transaction rolled back; the other one stands (gone only if erased since).
      const winner = await this.replay(this.store.repos, account, version, id, amount);
      if (winner) return winner;
      throw Errors.internal(`reservation ${id} was made concurrently and is gone`);
    }
  }

  private async replay(
    repos: PaymentRepositories,
    account: string,
    version: string,
    id: string,
    amount: number,
  ): Promise<Balance | undefined> {
    const existing = await repos.reservations.find(id);
    if (!existing) return undefined;
    if (existing.version_id !== version || existing.amount !== amount) {
      throw Errors.reservationMismatch(id);
    }
    const balance = await repos.balances.find(version);
    if (!balance || balance.account_id !== account) throw Errors.notFound('version', version);
    return toBalance(version, balance);
  }

  /** SettleCredits: keeps `used` images of the reservation and gives the rest back; once. */
  settle(reservationId: string, used: number): Promise<Balance> {
    requireCount('used', used, 0);
    return this.close(reservationId, 'settled', used);
  }

  /** ReleaseCredits: gives the whole reservation back; once. */
  release(reservationId: string): Promise<Balance> {
    return this.close(reservationId, 'released', 0);
  }

  private close(reservationId: string, status: 'settled' | 'released', keep: number): Promise<Balance> {
    const id = requireUuid('reservation_id', reservationId);
    return this.store.transaction(async (repos) => {
      const closed = await repos.reservations.close(id, status, keep);
      if (!closed) {
        const existing = await repos.reservations.find(id);
        if (!existing) throw Errors.notFound('reservation', reservationId);
        if (existing.status === 'open') throw Errors.reservationExceeded(keep, existing.amount);
        // Closed already (a retry, or the other side of a race won): nothing changes.
        return toBalance(existing.version_id, await repos.balances.find(existing.version_id));
      }
      const giveBack = closed.amount - keep;
      let balance =
        giveBack > 0
          ? await repos.balances.unreserve(closed.version_id, giveBack)
          : await repos.balances.find(closed.version_id);
      await repos.ledger.append({
        versionId: closed.version_id,
        reason: status === 'settled' ? 'settle' : 'release',
        usedDelta: -giveBack,
        reservationId: id,
      });
      // Credits a refund could not take back while reserved are taken back now that they return.
      if (giveBack > 0 && balance) {
        for (const grant of await repos.grants.lockOutstandingRefunded(closed.version_id)) {
          ({ balance } = await this.takeBack(repos, balance, grant));
        }
      }
      // A deleted version's prompts may still be running when its credits are forfeited (the
      // deletion forfeits first): what they give back is forfeited too, never usable again.
      const left = balance ? balance.granted - balance.used : 0;
      if (balance?.forfeited_at && left > 0) {
        balance = await repos.balances.removeGranted(closed.version_id, left);
        await repos.ledger.append({ versionId: closed.version_id, reason: 'forfeit', grantedDelta: -left });
      }
      return toBalance(closed.version_id, balance);
    });
  }
}
