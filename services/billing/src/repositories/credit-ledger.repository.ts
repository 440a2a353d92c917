import type { Queryable } from '@atelier/kit';

export type LedgerReason = 'grant' | 'reserve' | 'settle' | 'release' | 'revoke' | 'forfeit';

export interface LedgerEntry {
  versionId: string;
  reason: LedgerReason;
  grantedDelta?: number;
  usedDelta?: number;
  paymentId?: string | null;
  reservationId?: string | null;
}

/** billing.credit_ledger: append-only, one row per change of a balance, with its reason. */
export class CreditLedgerRepository {
  constructor(private readonly db: Queryable) {}

  async append(e: LedgerEntry): Promise<void> {
    await this.db.query(
      `INSERT INTO billing.credit_ledger (version_id, reason, granted_delta, used_delta, payment_id, reservation_id)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [
        e.versionId,
        e.reason,
        e.grantedDelta ?? 0,
        e.usedDelta ?? 0,
        e.paymentId ?? null,
        e.reservationId ?? null,
      ],
    );
  }
}
