import { Errors } from '@atelier/kit';
import { z } from '../../openapi/registry';
import { route } from '../define';
import { WebhookAck } from './schemas';

export const webhookRoutes = [
  route({
    method: 'post',
    path: '/api/v1/webhooks/replicate',
    summary: 'Replicate webhook for trainings and predictions (signed, each webhook-id once)',
    tags: ['webhooks'],
    auth: false,
    body: 'raw',
    query: z.object({ kind: z.enum(['training', 'prediction']).default('training') }),
    responses: { 200: { description: 'Event accepted (or ignored)', schema: WebhookAck } },
    handler: async ({ req, query }, { mesh }) => {
      const webhook = {
        webhookId: req.get('webhook-id') ?? '',
        webhookTimestamp: req.get('webhook-timestamp') ?? '',
        webhookSignature: req.get('webhook-signature') ?? '',
        body: req.rawBody ?? Buffer.alloc(0),
      };
      if (!webhook.webhookId || !webhook.webhookTimestamp || !webhook.webhookSignature) {
        throw Errors.invalidSignature('missing webhook-id, webhook-timestamp or webhook-signature header');
      }
      // The owner verifies the signature: trainings belong to trainer, predictions to inferencer.
      const owner = query.kind === 'prediction' ? mesh.inferencer : mesh.trainer;
      await owner.handleReplicateEvent(webhook);
      return { status: 200, body: { received: true } };
    },
  }),
];
