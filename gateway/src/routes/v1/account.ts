import { Errors } from '@atelier/kit';
import type { GatewayConfig } from '../../config';
import { route } from '../define';
import { Account } from './schemas';

/**
 * The caller's tier and the limits it is held to. Until tiers exist (issue: tiers and usage)
 * every account is on the one tier the gateway enforces; this is the one place to replace.
 */
export function tierOf(config: GatewayConfig) {
  const perMinute = Math.round((config.RATE_LIMIT_PER_WINDOW * 60_000) / config.RATE_LIMIT_WINDOW_MS);
  return {
    tier: 'free',
    limits: { reads_per_minute: perMinute, writes_per_minute: perMinute, prompts_at_once: null },
  };
}

export const accountRoutes = [
  route({
    method: 'get',
    path: '/api/v1/account',
    summary: 'My account: email, tier, limits and credits over every version',
    tags: ['account'],
    auth: true,
    responses: { 200: { description: 'The account', schema: Account } },
    handler: async ({ accountId }, { mesh, config }) => {
      const { account, credits } = await mesh.billing.getAccount({ accountId });
      if (!account) throw Errors.unavailable('billing');
      return {
        status: 200,
        body: {
          account_id: account.accountId,
          email: account.email,
          created_at: account.createdAt?.toISOString() ?? null,
          ...tierOf(config),
          credits: {
            granted: credits?.granted ?? 0,
            used: credits?.used ?? 0,
            remaining: credits?.remaining ?? 0,
          },
        },
      };
    },
  }),
];
