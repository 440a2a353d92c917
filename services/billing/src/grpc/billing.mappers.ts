import { billing } from '@atelier/protos';
import type { AccountRow } from '../repositories/account.repository';
import type { PaymentRow, PaymentStatus } from '../repositories/payment.repository';
import type { PlanRow } from '../repositories/plan.repository';
import type { UsageReportRow } from '../repositories/usage.repository';
import type { Balance } from '../domain/credit.service';

export const toPlan = (p: PlanRow): billing.Plan => ({
  id: p.id,
  name: p.name,
  description: p.description,
  price: p.price,
  currency: p.currency,
  images: p.images,
  isInit: p.is_init,
  minImages: p.min_images,
  maxImages: p.max_images,
  deprecated: p.deprecated,
});

export const fromPlan = (p: billing.Plan): PlanRow => ({
  id: p.id,
  name: p.name,
  description: p.description,
  price: p.price,
  currency: p.currency,
  images: p.images,
  is_init: p.isInit,
  min_images: p.minImages || 5,
  max_images: p.maxImages || 30,
  deprecated: p.deprecated,
});

export const toAccount = (a: AccountRow): billing.Account => ({
  accountId: a.id,
  email: a.email,
  createdAt: a.created_at,
  activeKeys: a.active_keys,
});

const PAYMENT_STATUS: Record<PaymentStatus, billing.PaymentStatus> = {
  pending: billing.PaymentStatus.PAYMENT_STATUS_PENDING,
  paid: billing.PaymentStatus.PAYMENT_STATUS_PAID,
  failed: billing.PaymentStatus.PAYMENT_STATUS_FAILED,
  expired: billing.PaymentStatus.PAYMENT_STATUS_EXPIRED,
  refunded: billing.PaymentStatus.PAYMENT_STATUS_REFUNDED,
};

export const toPayment = (p: PaymentRow): billing.Payment => ({
  paymentId: p.id,
  accountId: p.account_id,
  planId: p.plan_id,
  status: PAYMENT_STATUS[p.status],
  checkoutUrl: p.checkout_url ?? '',
  versionId: p.version_id ?? undefined,
  amount: p.amount,
  currency: p.currency,
  promocodeApplied: p.promocode_applied,
  expiresAt: p.expires_at ?? undefined,
  createdAt: p.created_at,
  paidAt: p.paid_at ?? undefined,
  isInit: p.is_init,
});

export const toBalance = (b: Balance): billing.CreditBalance => ({
  versionId: b.versionId,
  granted: b.granted,
  used: b.used,
  remaining: b.remaining,
});

export const toUsageLine = (r: UsageReportRow): billing.UsageLine => ({
  accountId: r.account_id,
  currency: r.currency,
  revenue: Number(r.revenue),
  payments: Number(r.payments),
  predictSeconds: Number(r.predict_seconds),
  costMicros: Number(r.cost_micros),
});
