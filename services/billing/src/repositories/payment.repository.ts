import {
  createdKeySql,
  Errors,
  PG_UNIQUE_VIOLATION,
  pgCode,
  type Cursor,
  type Queryable,
} from '@atelier/kit';

export type PaymentStatus = 'pending' | 'paid' | 'failed' | 'expired' | 'refunded';

export interface PaymentRow {
  id: string;
  account_id: string;
  plan_id: string;
  is_init: boolean;
  status: PaymentStatus;
  amount: number;
  currency: string;
  promocode_id: string | null;
  promocode_applied: boolean;
  stripe_session_id: string | null;
  stripe_payment_intent: string | null;
  checkout_url: string | null;
  expires_at: Date | null;
  version_id: string | null;
  claimed_at: Date | null;
  created_at: Date;
  paid_at: Date | null;
  refunded_at: Date | null;
  /** The plan as it was bought: what the payment grants and the photos its training takes. */
  plan_price: number;
  plan_images: number;
  plan_min_images: number;
  plan_max_images: number;
}

const COLUMNS = `id, account_id, plan_id, is_init, status, amount, currency, promocode_id, promocode_applied,
  stripe_session_id, stripe_payment_intent, checkout_url, expires_at, version_id, claimed_at, created_at,
  paid_at, refunded_at, plan_price, plan_images, plan_min_images, plan_max_images`;

/** billing.payments. Every status change is a guarded UPDATE: it only moves from the state it expects. */
export class PaymentRepository {
  constructor(private readonly db: Queryable) {}

  /** A page of the account's payments, newest first, after the cursor's (created_at, id): one statement. */
  async listByAccount(
    accountId: string,
    after: Cursor | undefined,
    limit: number,
  ): Promise<Array<PaymentRow & { createdKey: string }>> {
    const { rows } = await this.db.query<PaymentRow & { created_key: string }>(
      `SELECT ${COLUMNS}, ${createdKeySql('created_at')} AS created_key FROM billing.payments
        WHERE account_id = $1
          AND ($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $4`,
      [accountId, after?.createdKey ?? null, after?.id ?? null, limit],
    );
    return rows.map(({ created_key, ...row }) => ({ ...row, createdKey: created_key }));
  }

  async insert(p: {
    id: string;
    accountId: string;
    planId: string;
    isInit: boolean;
    amount: number;
    currency: string;
    promocodeId: string | null;
    promocodeApplied: boolean;
    versionId: string | null;
    plan: { price: number; images: number; minImages: number; maxImages: number };
  }): Promise<PaymentRow> {
    const { rows } = await this.db.query<PaymentRow>(
      `INSERT INTO billing.payments (id, account_id, plan_id, is_init, amount, currency, promocode_id, promocode_applied, version_id,
         plan_price, plan_images, plan_min_images, plan_max_images)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING ${COLUMNS}`,
      [
        p.id,
        p.accountId,
        p.planId,
        p.isInit,
        p.amount,
        p.currency,
        p.promocodeId,
        p.promocodeApplied,
        p.versionId,
        p.plan.price,
        p.plan.images,
        p.plan.minImages,
        p.plan.maxImages,
      ],
    );
    return rows[0]!;
  }

  /** Records the Checkout Session of a payment still pending; undefined when it is not. */
  async attachSession(
    id: string,
    s: { sessionId: string; url: string | null; expiresAt: Date; amount: number; promocodeApplied: boolean },
  ): Promise<PaymentRow | undefined> {
    const { rows } = await this.db.query<PaymentRow>(
      `UPDATE billing.payments
          SET stripe_session_id = $2, checkout_url = $3, expires_at = $4, amount = $5, promocode_applied = $6, updated_at = now()
        WHERE id = $1 AND status = 'pending'
        RETURNING ${COLUMNS}`,
      [id, s.sessionId, s.url, s.expiresAt, s.amount, s.promocodeApplied],
    );
    return rows[0];
  }

  /** The best tier among the plans of the account's paid payments (refunded ones no longer count). */
  async bestPaidTier(accountId: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ tier: string }>(
      `SELECT pl.tier FROM billing.payments p JOIN billing.plans pl ON pl.id = p.plan_id
        WHERE p.account_id = $1 AND p.status = 'paid'
        ORDER BY array_position(ARRAY['free', 'standard', 'pro'], pl.tier) DESC LIMIT 1`,
      [accountId],
    );
    return rows[0]?.tier;
  }

  async find(id: string): Promise<PaymentRow | undefined> {
    const { rows } = await this.db.query<PaymentRow>(
      `SELECT ${COLUMNS} FROM billing.payments WHERE id = $1`,
      [id],
    );
    return rows[0];
  }

  async findBySession(sessionId: string): Promise<PaymentRow | undefined> {
    const { rows } = await this.db.query<PaymentRow>(
      `SELECT ${COLUMNS} FROM billing.payments WHERE stripe_session_id = $1`,
      [sessionId],
    );
    return rows[0];
  }

  async findByPaymentIntent(paymentIntentId: string): Promise<PaymentRow | undefined> {
    const { rows } = await this.db.query<PaymentRow>(
      `SELECT ${COLUMNS} FROM billing.payments WHERE stripe_payment_intent = $1`,
      [paymentIntentId],
    );
    return rows[0];
  }

  /** Locks the row for the rest of the transaction: webhooks, grants and refunds of one payment queue here. */
  async lock(id: string): Promise<PaymentRow | undefined> {
    const { rows } = await this.db.query<PaymentRow>(
      `SELECT ${COLUMNS} FROM billing.payments WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return rows[0];
  }

  async markPaid(id: string, paymentIntentId: string | null): Promise<PaymentRow | undefined> {
    const { rows } = await this.db.query<PaymentRow>(
      `UPDATE billing.payments
          SET status = 'paid', paid_at = now(), stripe_payment_intent = COALESCE($2, stripe_payment_intent), updated_at = now()
        WHERE id = $1 AND status = 'pending'
        RETURNING ${COLUMNS}`,
      [id, paymentIntentId],
    );
    return rows[0];
  }

  /** pending → failed or expired; both are terminal. */
  async close(id: string, status: 'failed' | 'expired'): Promise<PaymentRow | undefined> {
    const { rows } = await this.db.query<PaymentRow>(
      `UPDATE billing.payments SET status = $2, updated_at = now() WHERE id = $1 AND status = 'pending' RETURNING ${COLUMNS}`,
      [id, status],
    );
    return rows[0];
  }

  async markRefunded(id: string): Promise<PaymentRow | undefined> {
    const { rows } = await this.db.query<PaymentRow>(
      `UPDATE billing.payments SET status = 'refunded', refunded_at = now(), updated_at = now()
        WHERE id = $1 AND status = 'paid'
        RETURNING ${COLUMNS}`,
      [id],
    );
    return rows[0];
  }

  /**
   * The one statement that lets a paid, unused init payment of this account train this version;
   * version_already_trained when another init payment is bound to the version (its unique index).
   */
  async claimInit(id: string, accountId: string, versionId: string): Promise<PaymentRow | undefined> {
    try {
      const { rows } = await this.db.query<PaymentRow>(
        `UPDATE billing.payments SET version_id = $3, claimed_at = now(), updated_at = now()
          WHERE id = $1 AND account_id = $2 AND status = 'paid' AND is_init AND version_id IS NULL
          RETURNING ${COLUMNS}`,
        [id, accountId, versionId],
      );
      return rows[0];
    } catch (err) {
      if (pgCode(err) === PG_UNIQUE_VIOLATION) throw Errors.versionAlreadyTrained(versionId);
      throw err;
    }
  }

  /** Undoes a claim, only while this version still holds it and has not been granted credits by it. */
  async releaseInit(id: string, versionId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE billing.payments SET version_id = NULL, claimed_at = NULL, updated_at = now()
        WHERE id = $1 AND version_id = $2 AND is_init AND claimed_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM billing.credit_grants g WHERE g.payment_id = $1)`,
      [id, versionId],
    );
    return rowCount === 1;
  }
}
