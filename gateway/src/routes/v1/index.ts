import type { AnyRoute } from '../define';
import { accountRoutes } from './account';
import { offerRoutes } from './offers';
import { webhookEndpointRoutes } from './webhook-endpoints';
import { paymentRoutes } from './payments';
import { planRoutes } from './plans';
import { promptRoutes } from './prompts';
import { versionRoutes } from './versions';
import { usageRoutes } from './usage';
import { webhookRoutes } from './webhooks';

/** The whole REST contract; the router and the OpenAPI document are both built from this list. */
export const v1Routes: AnyRoute[] = [
  ...planRoutes,
  ...paymentRoutes,
  ...versionRoutes,
  ...promptRoutes,
  ...usageRoutes,
  ...offerRoutes,
  ...webhookRoutes,
  ...accountRoutes,
  ...webhookEndpointRoutes,
];
