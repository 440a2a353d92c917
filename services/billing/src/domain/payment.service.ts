import { randomUUID } from 'node:crypto';
import { decodeCursor, Errors, pageOf, pageSize, requireUuid, type Logger } from '@atelier/kit';
import type { PaymentProvider, SessionFacts } from './ports';
import type { Store } from '../repositories';
import type { PaymentRow, PaymentStatus } from '../repositories/payment.repository';
import type { PlanRow } from '../repositories/plan.repository';
import type { Balance, CreditService } from './credit.service';
import { decideTrainingOutcome, type TrainingOutcome } from './payment.rules';
import type { PlanService } from './plan.service';

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
    private readonly credits: CreditService,
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
      // Snapshot: what this payment grants and trains with, whatever happens to the plan later.
      plan: {
        price: plan.price,
        images: plan.images,
        minImages: plan.min_images,
        maxImages: plan.max_images,
      },
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
    // Trainer reports each version's outcome here, so billing answers from its own rows.
    const version = await this.store.repos.trainedVersions.find(id);
    if (!version || version.account_id !== accountId) throw Errors.notFound('version', versionId);
    // Billing hears of a deletion only as the forfeit of the version's credits (the first step of
    // trainer's deletion job): an add-on paid now would take money for credits it can never grant.
    if ((await this.store.repos.balances.find(id))?.forfeited_at) throw Errors.versionDeleted(versionId);
    if (!version.ready_at)
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

  /** GetPayment: another account's payment is as unknown as a missing one. */
  async get(accountId: string, paymentId: string): Promise<PaymentRow> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('payment_id', paymentId);
    const row = await this.store.repos.payments.find(id);
    if (!row || row.account_id !== account) throw Errors.notFound('payment', paymentId);
    return row;
  }

  /**
   * ClaimInitPayment: one atomic UPDATE binds a paid, unused init payment to the version it trains,
   * and the version is recorded as billing's. When the UPDATE matches nothing, the row says why.
   * Claiming again for the same version is a success, so a caller retrying after a lost answer is
   * not told its own claim is "already used". The plan comes back as it was bought.
   */
  async claimInit(
    accountId: string,
    paymentId: string,
    versionId: string,
  ): Promise<{ payment: PaymentRow; plan: PlanRow }> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('payment_id', paymentId);
    const version = requireUuid('version_id', versionId);
    // version_already_trained (from the repository) when another payment is bound to the version.
    const claimed = await this.store.transaction(async (repos) => {
      const row = await repos.payments.claimInit(id, account, version);
      if (row) await repos.trainedVersions.insert(version, account, id);
      return row;
    });
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
    return { payment, plan: await this.planAsBought(payment) };
  }

  /** The payment's plan with the price, images and photo limits it was bought with. */
  private async planAsBought(payment: PaymentRow): Promise<PlanRow> {
    const plan = await this.plans.find(payment.plan_id);
    if (!plan) throw new Error(`plan ${payment.plan_id} of payment ${payment.id} does not exist`);
    return {
      ...plan,
      price: payment.plan_price,
      images: payment.plan_images,
      min_images: payment.plan_min_images,
      max_images: payment.plan_max_images,
    };
  }

  /**
   * ReleaseInitPayment: gives the payment back when starting the training failed (the training
   * never existed); only its own claim, and never once credits were granted.
   */
  async releaseInit(paymentId: string, versionId: string): Promise<boolean> {
    const id = requireUuid('payment_id', paymentId);
    const version = requireUuid('version_id', versionId);
    return this.store.transaction(async (repos) => {
      const released = await repos.payments.releaseInit(id, version);
      if (released) await repos.trainedVersions.deleteUnstarted(version, id);
      return released;
    });
  }

  /**
   * ReportTrainingOutcome: trainer says what happened; what it means for the payment is decided
   * here (payment.rules decideTrainingOutcome), in one transaction holding the payment's lock, so
   * a refund is entirely before or after it. Repeating a report changes nothing.
   */
  async reportTraining(
    accountId: string,
    paymentId: string,
    versionId: string,
    outcome: TrainingOutcome,
  ): Promise<{ status: PaymentStatus; keepTraining: boolean; balance: Balance }> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('payment_id', paymentId);
    const version = requireUuid('version_id', versionId);
    return this.store.transaction(async (repos) => {
      const payment = await repos.payments.lock(id);
      if (!payment || payment.account_id !== account) throw Errors.notFound('payment', paymentId);
      if (!payment.is_init) throw Errors.paymentNotForTraining(payment.id);
      const decision = decideTrainingOutcome(
        { status: payment.status, bound: payment.version_id === version },
        outcome,
      );
      if (outcome === 'ready') await repos.trainedVersions.markReady(version);
      if (outcome === 'failed') await repos.trainedVersions.markFailed(version);
      if (decision.grant) await this.credits.grantInTransaction(repos, payment);
      if (decision.giveBack && (await repos.payments.releaseInit(id, version)))
        this.logger.info({ payment_id: id, version_id: version }, 'training never ready: payment given back');
      return {
        status: payment.status,
        keepTraining: decision.keepTraining,
        balance: await this.credits.balanceIn(repos, version),
      };
    });
  }
}
