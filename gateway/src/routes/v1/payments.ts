import { Errors } from '@atelier/kit';
import { z } from '../../openapi/registry';
import { route } from '../define';
import { CreatePaymentBody, PageQuery, Payment, PaymentList, WebhookAck, uuid } from './schemas';
import { toPaymentJson } from './mappers';

export const paymentRoutes = [
  route({
    method: 'post',
    path: '/api/v1/payments/create',
    summary: 'Start a Stripe Checkout payment for a plan',
    tags: ['payments'],
    auth: true,
    idempotent: true,
    body: CreatePaymentBody,
    responses: {
      201: { description: 'Checkout session created', schema: Payment },
      404: { description: 'Unknown or deprecated plan, or a version that is not yours' },
      409: { description: 'The version is not ready' },
      410: { description: 'The version was deleted' },
    },
    handler: async ({ accountId, body, newId }, { mesh }) => {
      const { payment } = await mesh.billing.createPayment({
        accountId,
        paymentId: newId('payment'),
        planId: body.plan_id,
        promocodeId: body.promocode_id,
        versionId: body.version_id,
      });
      if (!payment) throw Errors.unavailable('billing');
      return { status: 201, body: toPaymentJson(payment) };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/payments/{payment_id}',
    summary: 'A payment and its status',
    tags: ['payments'],
    auth: true,
    params: z.object({ payment_id: uuid('payment_id') }),
    responses: {
      200: { description: 'The payment', schema: Payment },
      404: { description: 'Unknown payment' },
    },
    handler: async ({ accountId, params }, { mesh }) => {
      const { payment } = await mesh.billing.getPayment({ accountId, paymentId: params.payment_id });
      if (!payment) throw Errors.notFound('payment', params.payment_id);
      return { status: 200, body: toPaymentJson(payment) };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/payments/webhook',
    summary: 'Stripe webhook (signed with Stripe-Signature)',
    tags: ['webhooks'],
    auth: false,
    body: 'raw',
    responses: { 200: { description: 'Event accepted (or ignored)', schema: WebhookAck } },
    handler: async ({ req }, { mesh, accountChanged }) => {
      const signature = req.get('stripe-signature');
      if (!signature) throw Errors.invalidSignature('missing Stripe-Signature header');
      const { accountId } = await mesh.billing.handleStripeEvent({
        payload: req.rawBody ?? Buffer.alloc(0),
        signature,
      });
      // Paid or refunded: the account's tier may have changed; its next request sees the new limits.
      if (accountId) accountChanged?.(accountId);
      return { status: 200, body: { received: true } };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/payments',
    summary: 'My payments, newest first',
    tags: ['payments'],
    auth: true,
    query: PageQuery,
    responses: { 200: { description: 'A page of payments', schema: PaymentList } },
    handler: async ({ accountId, query }, { mesh }) => {
      const page = await mesh.billing.listPayments({
        accountId,
        limit: query.limit ?? 0,
        cursor: query.cursor ?? '',
      });
      return {
        status: 200,
        body: { payments: page.payments.map(toPaymentJson), next_cursor: page.nextCursor || null },
      };
    },
  }),
];
