import { z } from '../../openapi/registry';
import { route } from '../define';
import { Plan } from './schemas';
import { toPlanJson } from '@atelier/kit';

export const planRoutes = [
  route({
    method: 'get',
    path: '/api/v1/plans',
    summary: 'Plans on sale',
    tags: ['plans'],
    auth: false,
    responses: { 200: { description: 'Active plans', schema: z.object({ plans: z.array(Plan) }) } },
    handler: async (_ctx, { mesh }) => {
      const { plans } = await mesh.billing.listPlans({ includeDeprecated: false });
      return { status: 200, body: { plans: plans.map(toPlanJson) } };
    },
  }),
];
