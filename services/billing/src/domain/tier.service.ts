import { requireUuid } from '@atelier/kit';
import { isTier, type Tier, type TierLimits } from './tier.rules';

export interface AccountTierLimits extends TierLimits {
  tier: Tier;
}

/** What the tier lookup needs from storage. */
export interface PaidTiers {
  /** The best tier named by the plans of the account's paid (not refunded) payments. */
  bestPaidTier(accountId: string): Promise<string | undefined>;
}

/**
 * An account's tier follows from its payments at the moment of asking: paid → the plan's tier
 * counts, refunded → it no longer does. Nothing is cached here, so a payment's change shows in the
 * very next lookup.
 */
export class TierService {
  constructor(
    private readonly payments: PaidTiers,
    private readonly limits: Record<Tier, TierLimits>,
  ) {}

  async limitsFor(accountId: string): Promise<AccountTierLimits> {
    const found = await this.payments.bestPaidTier(requireUuid('account_id', accountId));
    const tier: Tier = found && isTier(found) ? found : 'free';
    return { tier, ...this.limits[tier] };
  }
}
