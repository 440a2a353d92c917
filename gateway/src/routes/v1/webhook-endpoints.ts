import { Errors, toWebhookDeliveryJson, toWebhookEndpointJson } from '@atelier/kit';
import { z } from '../../openapi/registry';
import { route } from '../define';
import {
  CallbackSecret,
  CreateWebhookEndpointBody,
  PageQuery,
  WebhookDelivery,
  WebhookDeliveryList,
  WebhookEndpointList,
  WebhookEndpointWithSecret,
  uuid,
} from './schemas';

/** Callbacks to the customer's own server: endpoints, secrets and deliveries (billing owns them). */
export const webhookEndpointRoutes = [
  route({
    method: 'post',
    path: '/api/v1/webhook-endpoints',
    summary: 'Register a URL that receives my events, signed (Standard Webhooks); the secret is shown once',
    tags: ['callbacks'],
    auth: true,
    idempotent: true,
    body: CreateWebhookEndpointBody,
    responses: {
      201: { description: 'Endpoint created, with its signing secret', schema: WebhookEndpointWithSecret },
    },
    handler: async ({ accountId, body, newId }, { mesh }) => {
      const { endpoint, secret } = await mesh.billing.createWebhookEndpoint({
        accountId,
        // Derived from the Idempotency-Key: a retry after a lost answer finds the first endpoint
        // (and its secret) instead of making a second one.
        endpointId: newId('endpoint'),
        url: body.url,
        events: body.events,
        description: body.description,
      });
      if (!endpoint) throw Errors.unavailable('billing');
      return { status: 201, body: { ...toWebhookEndpointJson(endpoint), secret } };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/webhook-endpoints',
    summary: 'My webhook endpoints, with their status (a disabled one says since when and why)',
    tags: ['callbacks'],
    auth: true,
    responses: { 200: { description: 'The endpoints', schema: WebhookEndpointList } },
    handler: async ({ accountId }, { mesh }) => {
      const { endpoints } = await mesh.billing.listWebhookEndpoints({ accountId });
      return { status: 200, body: { endpoints: endpoints.map(toWebhookEndpointJson) } };
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/webhook-endpoints/{endpoint_id}',
    summary: 'Remove an endpoint and its deliveries',
    tags: ['callbacks'],
    auth: true,
    params: z.object({ endpoint_id: uuid('endpoint_id') }),
    responses: { 204: { description: 'Removed' }, 404: { description: 'Unknown endpoint' } },
    handler: async ({ accountId, params }, { mesh }) => {
      await mesh.billing.deleteWebhookEndpoint({ accountId, endpointId: params.endpoint_id });
      return { status: 204, body: null };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret',
    summary: 'A new signing secret; the old one keeps signing alongside it for 24 h',
    tags: ['callbacks'],
    auth: true,
    params: z.object({ endpoint_id: uuid('endpoint_id') }),
    responses: {
      200: { description: 'The endpoint and its new secret', schema: WebhookEndpointWithSecret },
      404: { description: 'Unknown endpoint' },
    },
    handler: async ({ accountId, params }, { mesh }) => {
      const { endpoint, secret } = await mesh.billing.rotateWebhookSecret({
        accountId,
        endpointId: params.endpoint_id,
      });
      if (!endpoint) throw Errors.unavailable('billing');
      return { status: 200, body: { ...toWebhookEndpointJson(endpoint), secret } };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/account/callback-secret',
    summary:
      'The secret that signs deliveries to per-request callback_url: made, or rotated (old one valid 24 h)',
    tags: ['callbacks'],
    auth: true,
    responses: { 200: { description: 'The new secret', schema: CallbackSecret } },
    handler: async ({ accountId }, { mesh }) => {
      const r = await mesh.billing.rotateCallbackSecret({ accountId });
      return {
        status: 200,
        body: {
          secret: r.secret,
          previous_secret_expires_at: r.previousSecretExpiresAt?.toISOString() ?? null,
        },
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/webhook-deliveries',
    summary: 'Deliveries of my events, newest first: status, attempts, last HTTP status, next attempt',
    tags: ['callbacks'],
    auth: true,
    query: PageQuery.extend({ status: z.enum(['pending', 'delivered', 'failed']).optional() }),
    responses: { 200: { description: 'A page of deliveries', schema: WebhookDeliveryList } },
    handler: async ({ accountId, query }, { mesh }) => {
      const page = await mesh.billing.listWebhookDeliveries({
        accountId,
        status: query.status ?? '',
        limit: query.limit ?? 0,
        cursor: query.cursor ?? '',
      });
      return {
        status: 200,
        body: {
          deliveries: page.deliveries.map(toWebhookDeliveryJson),
          next_cursor: page.nextCursor || null,
        },
      };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/webhook-deliveries/{delivery_id}/redeliver',
    summary: 'Deliver again now, with the same webhook-id (re-enables a disabled endpoint)',
    tags: ['callbacks'],
    auth: true,
    params: z.object({ delivery_id: uuid('delivery_id') }),
    responses: {
      202: { description: 'Scheduled now', schema: WebhookDelivery },
      404: { description: 'Unknown delivery' },
    },
    handler: async ({ accountId, params }, { mesh }) => {
      const { delivery } = await mesh.billing.redeliverWebhook({ accountId, deliveryId: params.delivery_id });
      if (!delivery) throw Errors.unavailable('billing');
      return { status: 202, body: toWebhookDeliveryJson(delivery) };
    },
  }),
];
