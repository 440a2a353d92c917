import { randomUUID } from 'node:crypto';
import {
  decodeCursor,
  Errors,
  pageOf,
  pageSize,
  PG_UNIQUE_VIOLATION,
  pgCode,
  requireUuid,
  type Logger,
} from '@atelier/kit';
import type {
  ChargeFacts,
  CheckoutSessionInput,
  PromotionCodeFacts,
  SessionFacts,
  VerifiedEvent,
} from '../clients/stripe.client';
import type { Store } from '../repositories';
import type { PaymentRow } from '../repositories/payment.repository';
import type { PlanRow } from '../repositories/plan.repository';
import type { PlanService } from './plan.service';

/** What billing needs from Stripe (the official client behind it, or the sandbox). */
export interface PaymentProvider {
  checkPromotionCode(idOrCode: string, currency: string): Promise<PromotionCodeFacts>;
  createCheckoutSession(input: CheckoutSessionInput): Promise<SessionFacts>;
  /** Stripe refused the session because of its discount. */
  isDiscountRefusal(err: unknown): boolean;
  expireSession(id: string): Promise<void>;
  retrieveSession(id: string): Promise<SessionFacts | undefined>;
  retrieveCharge(id: string): Promise<ChargeFacts | undefined>;
  verifyEvent(payload: Buffer, signature: string): VerifiedEvent;
}

/** Trainer's answer about a version: undefined or a NOT_FOUND error when it is not the caller's. */
export interface VersionDirectory {
  getVersion(
    accountId: string,
    versionId: string,
  ): Promise<{ versionId: string; accountId: string; isReady: boolean } | undefined>;
}

export interface CheckoutUrls {
  /** May contain `{PAYMENT_ID}` (ours) and `{CHECKOUT_SESSION_ID}` (Stripe fills it in). */
  success: string;
  cancel: string;
}

export interface CreatePaymentInput {
  accountId: string;
  planId: string;
  promocodeId?: string;
  versionId?: string;
  /** Derived from the client's Idempotency-Key: a retry finds the first attempt's payment. */
  paymentId?: string;
}

export class PaymentService {
  constructor(
    private readonly store: Store,
    private readonly plans: PlanService,
    private readonly stripe: PaymentProvider,
    private readonly versions: VersionDirectory,
    private readonly urls: CheckoutUrls,
    private readonly logger: Logger,
  ) {}

  /**
   * CreatePayment. The row is written first (pending) so the session can carry its id; if Stripe
   * then fails the row is marked failed — it never stays a payable-looking pending payment.
   */
  async create(input: CreatePaymentInput): Promise<PaymentRow> {
    const accountId = requireUuid('account_id', input.accountId);
    const paymentId = input.paymentId ? requireUuid('payment_id', input.paymentId) : randomUUID();
    if (input.paymentId) {
      const existing = await this.store.repos.payments.find(paymentId);
      if (existing) {
        if (existing.account_id !== accountId || existing.plan_id !== input.planId)
          throw Errors.idReused('payment', paymentId);
        if (existing.checkout_url) return existing;
        throw Errors.idempotencyInFlight(
          'the first request with this Idempotency-Key has not finished; retry shortly',
        );
      }
    }
    const plan = await this.plans.purchasable(input.planId);
    const versionId = await this.versionFor(plan, accountId, input.versionId);

    const promoInput = input.promocodeId?.trim() || undefined;
    // An unknown, inactive or expired code does not fail the purchase: the session goes without it.
    const promo = promoInput ? await this.stripe.checkPromotionCode(promoInput, plan.currency) : undefined;
    if (promo && !promo.usable)
      this.logger.info({ promocode: promoInput, reason: promo.reason }, 'promotion code not applied');

    await this.store.repos.payments.insert({
      id: paymentId,
      accountId,
      planId: plan.id,
      isInit: plan.is_init,
      amount: plan.price,
      currency: plan.currency,
      promocodeId: promoInput ?? null,
      promocodeApplied: false,
      versionId,
    });

    let session: SessionFacts;
    let applied = promo?.usable === true;
    try {
      try {
        session = await this.openSession(
          paymentId,
          accountId,
          plan,
          applied ? promo?.id : undefined,
          'checkout',
        );
      } catch (err) {
        // The code died between our look and the session: sell without it, as for any dead code.
        if (!applied || !this.stripe.isDiscountRefusal(err)) throw err;
        this.logger.info(
          { promocode: promoInput },
          'Stripe refused the promotion code; session made without it',
        );
        applied = false;
        session = await this.openSession(paymentId, accountId, plan, undefined, 'checkout-no-discount');
      }
    } catch (err) {
      await this.store.repos.payments
        .close(paymentId, 'failed')
        .catch((closeErr: unknown) =>
          this.logger.error(
            { err: closeErr, payment_id: paymentId },
            'could not mark the payment failed after Stripe failed',
          ),
        );
      throw err;
    }

    try {
      const row = await this.store.repos.payments.attachSession(paymentId, {
        sessionId: session.id,
        url: session.url,
        expiresAt: session.expiresAt,
        amount: session.amountTotal,
        promocodeApplied: applied,
      });
      if (!row) throw new Error(`payment ${paymentId} left pending before its session was recorded`);
      return row;
    } catch (err) {
      // Nobody will get this session's URL: close it so it can never take money we did not record.
      await this.stripe
        .expireSession(session.id)
        .catch((expireErr: unknown) =>
          this.logger.error(
            { err: expireErr, session_id: session.id },
            'could not expire an unrecorded Checkout Session',
          ),
        );
      throw err;
    }
  }

  private async versionFor(
    plan: PlanRow,
    accountId: string,
    versionId: string | undefined,
  ): Promise<string | null> {
    if (plan.is_init) {
      if (versionId)
        throw Errors.invalid(
          `version_id is not accepted for ${plan.id}: an init plan pays for training a new model`,
        );
      return null;
    }
    if (!versionId)
      throw Errors.invalid(`version_id is required for ${plan.id}: an add-on tops up an existing model`);
    const id = requireUuid('version_id', versionId);
    const version = await this.versions.getVersion(accountId, id);
    if (!version || version.accountId !== accountId) throw Errors.notFound('version', versionId);
    if (!version.isReady)
      throw Errors.versionNotReady(versionId, ': credits can be added once it is trained');
    return id;
  }

  private openSession(
    paymentId: string,
    accountId: string,
    plan: PlanRow,
    promotionCodeId: string | undefined,
    purpose: string,
  ) {
    const fill = (template: string) => template.replaceAll('{PAYMENT_ID}', paymentId);
    return this.stripe.createCheckoutSession({
      paymentId,
      accountId,
      planId: plan.id,
      productName: plan.name,
      productDescription: plan.description,
      amount: plan.price,
      currency: plan.currency,
      promotionCodeId,
      successUrl: fill(this.urls.success),
      cancelUrl: fill(this.urls.cancel),
      // Derived from the payment, so the client's own retries can never open a second session.
      idempotencyKey: `atelier-${purpose}-${paymentId}`,
    });
  }

  /** GetPayment: another account's payment is as unknown as a missing one. */
  /** A page of the account's payments, newest first. */
  async list(
    accountId: string,
    limit: number,
    cursor: string,
  ): Promise<{ payments: PaymentRow[]; nextCursor: string }> {
    const account = requireUuid('account_id', accountId);
    const size = pageSize(limit);
    const rows = await this.store.repos.payments.listByAccount(account, decodeCursor(cursor), size + 1);
    const { items, nextCursor } = pageOf(rows, size);
    return { payments: items, nextCursor };
  }

  async get(accountId: string, paymentId: string): Promise<PaymentRow> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('payment_id', paymentId);
    const row = await this.store.repos.payments.find(id);
    if (!row || row.account_id !== account) throw Errors.notFound('payment', paymentId);
    return row;
  }

  /**
   * ClaimInitPayment: one atomic UPDATE binds a paid, unused init payment to the version it trains.
   * When it matches nothing, the row says why. Claiming again for the same version is a success,
   * so a caller retrying after a lost answer is not told its own claim is "already used".
   */
  async claimInit(
    accountId: string,
    paymentId: string,
    versionId: string,
  ): Promise<{ payment: PaymentRow; plan: PlanRow }> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('payment_id', paymentId);
    const version = requireUuid('version_id', versionId);
    let claimed: PaymentRow | undefined;
    try {
      claimed = await this.store.repos.payments.claimInit(id, account, version);
    } catch (err) {
      if (pgCode(err) === PG_UNIQUE_VIOLATION) throw Errors.versionAlreadyTrained(versionId);
      throw err;
    }
    const payment = claimed ?? (await this.store.repos.payments.find(id));
    if (!payment || payment.account_id !== account) throw Errors.notFound('payment', paymentId);
    if (!claimed) {
      if (!payment.is_init) throw Errors.paymentNotForTraining(payment.id);
      const sameClaim = payment.version_id === version && payment.status === 'paid';
      if (!sameClaim) {
        if (payment.version_id) throw Errors.paymentAlreadyUsed(payment.id, payment.version_id);
        throw Errors.paymentNotPaid(payment.id, payment.status);
      }
    }
    const plan = await this.plans.find(payment.plan_id);
    if (!plan) throw new Error(`plan ${payment.plan_id} of payment ${payment.id} does not exist`);
    return { payment, plan };
  }

  /** ReleaseInitPayment: gives the payment back when starting the training failed; only its own claim. */
  async releaseInit(paymentId: string, versionId: string): Promise<boolean> {
    const id = requireUuid('payment_id', paymentId);
    const version = requireUuid('version_id', versionId);
    return this.store.repos.payments.releaseInit(id, version);
  }
}
