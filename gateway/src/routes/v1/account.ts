import type { Request } from 'express';
import { Errors } from '@atelier/kit';
import type { GatewayConfig } from '../../config';
import { limiterSettings, windowBudgets } from '../../middleware/rate-limit';
import { route } from '../define';
import { Account, DeletionAccepted } from './schemas';

/**
 * The caller's tier and the limits it is held to, as billing said when the key was checked (the
 * cache is dropped the moment a payment of the account changes), with the read and write budgets
 * the limiter enforces, per minute.
 */
function tierOf(req: Request, config: GatewayConfig) {
  const { tier, limits } = req;
  if (!tier || !limits) throw Errors.internal('the account route ran before auth');
  const settings = limiterSettings(config);
  const perWindow = windowBudgets(limits, settings);
  const perMinute = (n: number) => Math.round((n * 60_000) / settings.windowMs);
  return {
    tier,
    limits: {
      reads_per_minute: perMinute(perWindow.reads),
      writes_per_minute: perMinute(perWindow.writes),
      prompts_at_once: limits.promptsRunning,
      creates_per_day: limits.createsPerDay,
      trainings_at_once: limits.trainingsRunning,
    },
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
    handler: async ({ req, accountId }, { mesh, config }) => {
      const { account, credits } = await mesh.billing.getAccount({ accountId });
      if (!account) throw Errors.unavailable('billing');
      return {
        status: 200,
        body: {
          account_id: account.accountId,
          email: account.email,
          created_at: account.createdAt?.toISOString() ?? null,
          ...tierOf(req, config),
          credits: {
            granted: credits?.granted ?? 0,
            used: credits?.used ?? 0,
            remaining: credits?.remaining ?? 0,
          },
        },
      };
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/account',
    summary:
      "Delete the caller's account: every model deleted as by DELETE /api/v1/versions/{version_id}, then its API keys revoked and its email erased",
    tags: ['account'],
    auth: true,
    responses: {
      202: {
        description:
          'Deletion accepted and under way; the keys keep working until every model is gone. A repeat answers 202 again',
        schema: DeletionAccepted,
      },
    },
    handler: async ({ accountId }, { mesh }) => {
      await mesh.billing.deleteAccount({ accountId });
      return {
        status: 202,
        body: { id: accountId, status: 'deleting', requested_at: new Date().toISOString() },
      };
    },
  }),
];
