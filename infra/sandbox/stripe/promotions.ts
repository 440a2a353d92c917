/**
 * Coupons and promotion codes. Since API 2025-09-30 a promotion code points at its coupon through
 * `promotion: { type: 'coupon', coupon: 'coupon_id' }` — an id unless the caller expands
 * `promotion.coupon` — and that is the shape stripe@23 declares, so the sandbox serves it.
 */
import { Errors } from './errors';
import { nowSeconds, type CouponObject, type PromotionCodeObject } from './objects';

export interface NewPromotionCode {
  id: string;
  code: string;
  percent_off?: number;
  amount_off?: number;
  /** Currency of `amount_off`; default usd. */
  currency?: string;
  active?: boolean;
  expires_at?: number | null;
  max_redemptions?: number | null;
}

export class Promotions {
  readonly coupons: Map<string, CouponObject> = new Map();
  private readonly codes = new Map<string, PromotionCodeObject>();

  constructor() {
    const created = nowSeconds();
    this.add({ id: 'promo_sandbox_active10', code: 'WELCOME10', percent_off: 10 }, created);
    this.add({ id: 'promo_sandbox_active500', code: 'FIVEOFF', amount_off: 500, currency: 'usd' }, created);
    this.add({ id: 'promo_sandbox_inactive', code: 'RETIRED10', percent_off: 10, active: false }, created);
    // 2024-01-01T00:00:00Z: long past, so the code reads as expired whenever the sandbox runs.
    this.add(
      { id: 'promo_sandbox_expired', code: 'EXPIRED10', percent_off: 10, expires_at: 1704067200 },
      1701388800,
    );
  }

  add(input: NewPromotionCode, created = nowSeconds()): PromotionCodeObject {
    if ((input.percent_off === undefined) === (input.amount_off === undefined)) {
      throw new Error('a promotion code needs exactly one of percent_off and amount_off');
    }
    const coupon: CouponObject = {
      id: `coupon_${input.id.replace(/^promo_/, '')}`,
      object: 'coupon',
      amount_off: input.amount_off ?? null,
      created,
      currency: input.amount_off !== undefined ? (input.currency ?? 'usd') : null,
      duration: 'once',
      duration_in_months: null,
      livemode: false,
      max_redemptions: null,
      metadata: {},
      name: input.percent_off !== undefined ? `${input.percent_off}% off` : `${input.amount_off} off`,
      percent_off: input.percent_off ?? null,
      redeem_by: null,
      times_redeemed: 0,
      valid: true,
    };
    const code: PromotionCodeObject = {
      id: input.id,
      object: 'promotion_code',
      active: input.active ?? true,
      code: input.code,
      created,
      customer: null,
      customer_account: null,
      expires_at: input.expires_at ?? null,
      livemode: false,
      max_redemptions: input.max_redemptions ?? null,
      metadata: {},
      promotion: { type: 'coupon', coupon: coupon.id },
      restrictions: { first_time_transaction: false, minimum_amount: null, minimum_amount_currency: null },
      times_redeemed: 0,
    };
    this.coupons.set(coupon.id, coupon);
    this.codes.set(code.id, code);
    return this.view(code);
  }

  get(id: string): PromotionCodeObject | undefined {
    const code = this.codes.get(id);
    return code && this.view(code);
  }

  /** Newest first, as Stripe lists (later additions first among equal `created`). */
  list(): PromotionCodeObject[] {
    return [...this.codes.values()]
      .reverse()
      .sort((a, b) => b.created - a.created)
      .map((c) => this.view(c));
  }

  couponOf(code: PromotionCodeObject): CouponObject {
    const ref = code.promotion.coupon;
    const id = typeof ref === 'string' ? ref : (ref?.id ?? '');
    const coupon = this.coupons.get(id);
    if (!coupon) throw new Error(`promotion code ${code.id} has no coupon`);
    return coupon;
  }

  /**
   * The coupon a session may redeem through `discounts[i][promotion_code]`, or Stripe's 400.
   * Checked at session creation, as Stripe does, not again at payment.
   */
  redeemable(
    id: string,
    currency: string,
    param: string,
  ): { code: PromotionCodeObject; coupon: CouponObject } {
    const stored = this.codes.get(id);
    if (!stored) throw Errors.resourceMissing('promotion code', id, param);
    const coupon = this.couponOf(stored);
    const why = this.unusableBecause(stored, coupon);
    if (why) throw Errors.invalid(param, `This promotion code cannot be redeemed because ${why}.`);
    if (coupon.amount_off !== null && coupon.currency !== currency) {
      throw Errors.invalid(
        param,
        `The promotion code's coupon is in ${coupon.currency}, but this Checkout Session is in ${currency}.`,
      );
    }
    return { code: this.view(stored), coupon };
  }

  redeemed(codeId: string): void {
    const code = this.codes.get(codeId);
    if (!code) return;
    code.times_redeemed += 1;
    this.couponOf(code).times_redeemed += 1;
  }

  /**
   * `active` as served: the stored flag, and only while the code can still be redeemed. Stripe
   * documents `active` as "currently active … only active if the coupon is also valid"; the sandbox
   * also reports an expired or used-up code inactive. Callers should still check `expires_at`.
   */
  private view(code: PromotionCodeObject): PromotionCodeObject {
    return { ...code, active: this.unusableBecause(code, this.couponOf(code)) === null };
  }

  private unusableBecause(code: PromotionCodeObject, coupon: CouponObject): string | null {
    if (!code.active) return 'it is inactive';
    if (code.expires_at !== null && code.expires_at <= nowSeconds()) return 'it has expired';
    if (code.max_redemptions !== null && code.times_redeemed >= code.max_redemptions) {
      return 'it has reached its maximum number of redemptions';
    }
    if (!coupon.valid) return 'its coupon is no longer valid';
    return null;
  }
}
