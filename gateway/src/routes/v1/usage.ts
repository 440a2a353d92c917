import { Errors } from '@atelier/kit';
import type { billing } from '@atelier/protos';
import { z } from '../../openapi/registry';
import { route } from '../define';

const Line = z
  .object({
    version_id: z.string().nullable(),
    images: z.number().int(),
    trainings: z.number().int(),
    predict_seconds: z.number(),
    amount_paid: z.number().int().describe('Paid and not refunded, in minor units'),
    currency: z.string().nullable(),
  })
  .openapi('UsageLine');

const Usage = z
  .object({
    from: z.string().nullable(),
    to: z.string().nullable(),
    versions: z.array(Line),
    total: Line,
  })
  .openapi('Usage');

const instant = z.iso.datetime({ offset: true }).optional();

const toLine = (u: billing.VersionUsage | undefined) => ({
  version_id: u?.versionId || null,
  images: u?.images ?? 0,
  trainings: u?.trainings ?? 0,
  predict_seconds: u?.predictSeconds ?? 0,
  amount_paid: u?.amountPaid ?? 0,
  currency: u?.currency || null,
});

export const usageRoutes = [
  route({
    method: 'get',
    path: '/api/v1/usage',
    summary: 'What my account used in [from, to): images, trainings, predict seconds, money paid',
    tags: ['usage'],
    auth: true,
    query: z.object({ from: instant, to: instant }),
    responses: { 200: { description: 'Per version and in total', schema: Usage } },
    handler: async ({ accountId, query }, { mesh }) => {
      const from = query.from ? new Date(query.from) : undefined;
      const to = query.to ? new Date(query.to) : undefined;
      if (from && to && from > to) throw Errors.invalid('from must not be after to');
      const res = await mesh.billing.getAccountUsage({ accountId, from, to });
      return {
        status: 200,
        body: {
          from: from?.toISOString() ?? null,
          to: to?.toISOString() ?? null,
          versions: res.versions.map(toLine),
          total: toLine(res.total),
        },
      };
    },
  }),
];
