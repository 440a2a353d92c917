import { Errors, type AsyncService } from '@atelier/kit';
import { billing } from '@atelier/protos';
import type { AccountService } from '../domain/account.service';
import type { CreditService } from '../domain/credit.service';
import type { PaymentService } from '../domain/payment.service';
import type { PlanService } from '../domain/plan.service';
import type { StripeEventService } from '../domain/stripe-event.service';
import type { TierService } from '../domain/tier.service';
import type { UsageService } from '../domain/usage.service';
import type { WebhookService } from '../domain/webhook.service';
import {
  fromOutboundEvent,
  fromPlan,
  toAccount,
  toBalance,
  toPayment,
  toPlan,
  toUsageLine,
  toWebhookDelivery,
  toWebhookEndpoint,
  toTierLimits,
  toVersionUsage,
  fromTrainingOutcome,
  toPaymentStatus,
} from './billing.mappers';

export interface BillingDomain {
  accounts: AccountService;
  plans: PlanService;
  payments: PaymentService;
  stripeEvents: StripeEventService;
  credits: CreditService;
  usage: UsageService;
  webhooks: WebhookService;
  tiers: TierService;
}

/** Thin: proto in, domain call, proto out. Errors are mapped by the kit. */
export function billingHandlers(d: BillingDomain): AsyncService<typeof billing.BillingServiceService> {
  return {
    async createAccount(req) {
      const { account, apiKey } = await d.accounts.createAccount(req.email);
      return { account: toAccount(account), apiKey };
    },
    async listAccounts() {
      return { accounts: (await d.accounts.listAccounts()).map(toAccount) };
    },
    async createApiKey(req) {
      const { key, prefix } = await d.accounts.createKey(req.accountId);
      return { apiKey: key, prefix };
    },
    async revokeApiKey(req) {
      await d.accounts.revokeKey(req.prefix);
      return { revoked: true };
    },
    async authenticateKey(req) {
      const { accountId, prefix } = await d.accounts.authenticate(req.apiKey);
      return { accountId, keyPrefix: prefix, limits: toTierLimits(await d.tiers.limitsFor(accountId)) };
    },
    async getAccountLimits(req) {
      return { limits: toTierLimits(await d.tiers.limitsFor(req.accountId)) };
    },
    async getAccountUsage(req) {
      const { versions, total } = await d.usage.forAccount({
        accountId: req.accountId,
        from: req.from,
        to: req.to,
      });
      return { versions: versions.map(toVersionUsage), total: toVersionUsage(total) };
    },
    async deleteAccount(req) {
      const { versions } = await d.accounts.deleteAccount(req.accountId);
      return { accountId: req.accountId, versions };
    },
    async eraseAccount(req) {
      return { keysRevoked: await d.accounts.erase(req.accountId) };
    },
    async forfeitCredits(req) {
      return { forfeited: await d.credits.forfeit(req.accountId, req.versionId) };
    },
    async listPlans(req) {
      return { plans: (await d.plans.list(req.includeDeprecated)).map(toPlan) };
    },
    async upsertPlan(req) {
      if (!req.plan) throw Errors.invalid('plan is required');
      return { plan: toPlan(await d.plans.upsert(fromPlan(req.plan))) };
    },

    async createPayment(req) {
      const payment = await d.payments.create({
        accountId: req.accountId,
        planId: req.planId,
        promocodeId: req.promocodeId,
        versionId: req.versionId,
        paymentId: req.paymentId,
      });
      return { payment: toPayment(payment) };
    },
    async getPayment(req) {
      return { payment: toPayment(await d.payments.get(req.accountId, req.paymentId)) };
    },
    async handleStripeEvent(req) {
      return d.stripeEvents.handle(Buffer.from(req.payload), req.signature);
    },
    async claimInitPayment(req) {
      const { payment, plan } = await d.payments.claimInit(req.accountId, req.paymentId, req.versionId);
      return { payment: toPayment(payment), plan: toPlan(plan) };
    },
    async releaseInitPayment(req) {
      return { released: await d.payments.releaseInit(req.paymentId, req.versionId) };
    },
    async reportTrainingOutcome(req) {
      const r = await d.payments.reportTraining(
        req.accountId,
        req.paymentId,
        req.versionId,
        fromTrainingOutcome(req.outcome),
      );
      return {
        paymentStatus: toPaymentStatus(r.status),
        keepTraining: r.keepTraining,
        balance: toBalance(r.balance),
      };
    },

    async reserveCredits(req) {
      return {
        balance: toBalance(
          await d.credits.reserve(req.accountId, req.versionId, req.reservationId, req.amount),
        ),
      };
    },
    async settleCredits(req) {
      return { balance: toBalance(await d.credits.settle(req.reservationId, req.used)) };
    },
    async releaseCredits(req) {
      return { balance: toBalance(await d.credits.release(req.reservationId)) };
    },
    async getCreditBalance(req) {
      return { balance: toBalance(await d.credits.balance(req.accountId, req.versionId)) };
    },

    async recordUsage(req) {
      return { recorded: await d.usage.record(req) };
    },
    async getAccount(req) {
      const { account, credits } = await d.accounts.summary(req.accountId);
      return { account: toAccount(account), credits };
    },
    async listPayments(req) {
      const page = await d.payments.list(req.accountId, req.limit, req.cursor);
      return { payments: page.payments.map(toPayment), nextCursor: page.nextCursor };
    },
    async listCreditBalances(req) {
      return { balances: (await d.credits.balances(req.accountId, req.versionIds)).map(toBalance) };
    },
    async createWebhookEndpoint(req) {
      const { endpoint, secret } = await d.webhooks.createEndpoint(req);
      return { endpoint: toWebhookEndpoint(endpoint), secret };
    },
    async listWebhookEndpoints(req) {
      return { endpoints: (await d.webhooks.listEndpoints(req.accountId)).map(toWebhookEndpoint) };
    },
    async deleteWebhookEndpoint(req) {
      await d.webhooks.deleteEndpoint(req.accountId, req.endpointId);
      return {};
    },
    async rotateWebhookSecret(req) {
      const { endpoint, secret } = await d.webhooks.rotateSecret(req.accountId, req.endpointId);
      return { endpoint: toWebhookEndpoint(endpoint), secret };
    },
    async rotateCallbackSecret(req) {
      const { secret, previousUntil } = await d.webhooks.rotateCallbackSecret(req.accountId);
      return { secret, previousSecretExpiresAt: previousUntil ?? undefined };
    },
    async publishEvents(req) {
      return { accepted: await d.webhooks.publish(req.events.map(fromOutboundEvent)) };
    },
    async listWebhookDeliveries(req) {
      const page = await d.webhooks.listDeliveries(req.accountId, req.status, req.limit, req.cursor);
      return { deliveries: page.deliveries.map(toWebhookDelivery), nextCursor: page.nextCursor };
    },
    async redeliverWebhook(req) {
      return { delivery: toWebhookDelivery(await d.webhooks.redeliver(req.accountId, req.deliveryId)) };
    },
    async getUsageReport(req) {
      return {
        lines: (await d.usage.report({ accountId: req.accountId, from: req.from, to: req.to })).map(
          toUsageLine,
        ),
      };
    },
  };
}
