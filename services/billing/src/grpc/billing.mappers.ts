import { Errors, type OutboxEvent } from '@atelier/kit';
import type { VersionUsageRow } from '../repositories/usage.repository';
import type { AccountTierLimits } from '../domain/tier.service';
import { billing } from '@atelier/protos';
import type { DeliveryRow } from '../repositories/webhook-delivery.repository';
import type { EndpointRow } from '../repositories/webhook-endpoint.repository';
import type { AccountRow } from '../repositories/account.repository';
import type { PaymentRow, PaymentStatus } from '../repositories/payment.repository';
import type { PlanRow } from '../repositories/plan.repository';
import type { UsageReportRow } from '../repositories/usage.repository';
import type { Balance } from '../domain/credit.service';
import type { TrainingOutcome } from '../domain/payment.rules';
import { PHOTO_LIMIT_DEFAULTS } from '../domain/plan.rules';

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
  tier: p.tier,
});

export const fromPlan = (p: billing.Plan): PlanRow => ({
  id: p.id,
  name: p.name,
  description: p.description,
  price: p.price,
  currency: p.currency,
  images: p.images,
  is_init: p.isInit,
  min_images: p.minImages || PHOTO_LIMIT_DEFAULTS.minImages,
  max_images: p.maxImages || PHOTO_LIMIT_DEFAULTS.maxImages,
  deprecated: p.deprecated,
  tier: p.tier || 'standard',
});

export const toVersionUsage = (u: VersionUsageRow): billing.VersionUsage => ({
  versionId: u.version_id ?? '',
  images: u.images,
  trainings: u.trainings,
  predictSeconds: u.predict_seconds,
  amountPaid: u.amount_paid,
  currency: u.currency ?? '',
});

export const toTierLimits = (l: AccountTierLimits): billing.TierLimits => ({
  tier: l.tier,
  readsPerMinute: l.readsPerMinute,
  writesPerMinute: l.writesPerMinute,
  createsPerDay: l.createsPerDay,
  promptsRunning: l.promptsRunning,
  trainingsRunning: l.trainingsRunning,
});

export const toAccount = (a: AccountRow): billing.Account => ({
  accountId: a.id,
  email: a.email ?? '',
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
  revenue: r.revenue,
  payments: r.payments,
  predictSeconds: r.predict_seconds,
  costMicros: r.cost_micros,
});

export const toWebhookEndpoint = (e: EndpointRow): billing.WebhookEndpoint => ({
  endpointId: e.id,
  url: e.url ?? '',
  events: e.events,
  description: e.description,
  createdAt: e.created_at,
  disabledAt: e.disabled_at ?? undefined,
  disabledReason: e.disabled_reason ?? '',
  failingSince: e.failing_since ?? undefined,
  previousSecretExpiresAt:
    e.previous_secret && e.previous_secret_expires_at ? e.previous_secret_expires_at : undefined,
});

export const toWebhookDelivery = (d: DeliveryRow): billing.WebhookDelivery => ({
  deliveryId: d.id,
  eventId: d.event_id,
  eventType: d.event_type,
  endpointId: d.endpoint_kind === 'endpoint' ? d.endpoint_id : '',
  url: d.url,
  status: d.status,
  attempts: d.attempts,
  lastHttpStatus: d.last_http_status ?? undefined,
  lastError: d.last_error ?? '',
  nextAttemptAt: d.status === 'pending' ? d.next_attempt_at : undefined,
  createdAt: d.created_at,
  deliveredAt: d.delivered_at ?? undefined,
});

export const fromOutboundEvent = (e: billing.OutboundEvent): OutboxEvent => {
  let data: unknown;
  try {
    data = JSON.parse(e.dataJson);
  } catch {
    throw Errors.invalid(`event ${e.eventId}: data_json is not JSON`);
  }
  return {
    id: e.eventId,
    accountId: e.accountId,
    type: e.type as OutboxEvent['type'],
    createdAt: e.createdAt ?? new Date(),
    data,
    callbackUrl: e.callbackUrl || null,
  };
};
export const toPaymentStatus = (s: PaymentStatus): billing.PaymentStatus => PAYMENT_STATUS[s];

const TRAINING_OUTCOME: Partial<Record<billing.TrainingOutcome, TrainingOutcome>> = {
  [billing.TrainingOutcome.TRAINING_OUTCOME_RUNNING]: 'running',
  [billing.TrainingOutcome.TRAINING_OUTCOME_READY]: 'ready',
  [billing.TrainingOutcome.TRAINING_OUTCOME_FAILED]: 'failed',
};

export function fromTrainingOutcome(o: billing.TrainingOutcome): TrainingOutcome {
  const outcome = TRAINING_OUTCOME[o];
  if (!outcome) throw Errors.invalid('outcome must be RUNNING, READY or FAILED');
  return outcome;
}
