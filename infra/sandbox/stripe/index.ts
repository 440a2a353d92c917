export { startStripeSandbox, type StripeSandbox, type StripeSandboxOptions, type EventInput } from './server';
export { signatureHeader, type Delivery, type RetryPolicy, type SendOptions } from './webhooks';
export type { PayOutcome } from './ledger';
export type { FaultAnswer } from './faults';
export type { NewPromotionCode } from './promotions';
export type {
  ChargeObject,
  EventObject,
  PaymentIntentObject,
  PromotionCodeObject,
  RefundObject,
  SessionObject,
} from './objects';
