import { Errors, type AsyncService } from '@atelier/kit';
import { billing } from '@atelier/protos';
import type { AccountService } from '../domain/account.service';
import type { PlanService } from '../domain/plan.service';
import { fromPlan, toAccount, toPlan } from './billing.mappers';

export interface BillingDomain {
  accounts: AccountService;
  plans: PlanService;
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
      return { accountId, keyPrefix: prefix };
    },
    async listPlans(req) {
      return { plans: (await d.plans.list(req.includeDeprecated)).map(toPlan) };
    },
    async upsertPlan(req) {
      if (!req.plan) throw Errors.invalid('plan is required');
      return { plan: toPlan(await d.plans.upsert(fromPlan(req.plan))) };
    },
  };
}
