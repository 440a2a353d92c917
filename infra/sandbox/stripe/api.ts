/** The `/v1` routes the sandbox answers, on top of the ledger. Auth and idempotency are in server.ts. */
import { Errors } from './errors';
import type { EventLog } from './events';
import { expand } from './expand';
import type { FormObject } from './form';
import type { Ledger, RequestInfo } from './ledger';
import { expandList, optBool, optInt, optString, rejectUnknown } from './params';

export interface ApiRequest {
  method: string;
  path: string;
  params: FormObject;
  request: RequestInfo;
}

type Handler = (req: ApiRequest, id: string) => unknown;

const RETRIEVE = new Set(['expand']);
const REFUND_PARAMS = new Set([
  'amount',
  'charge',
  'currency',
  'customer',
  'expand',
  'instructions_email',
  'metadata',
  'origin',
  'payment_intent',
  'reason',
  'refund_application_fee',
  'reverse_transfer',
]);
const PROMO_LIST_PARAMS = new Set([
  'active',
  'code',
  'coupon',
  'created',
  'customer',
  'customer_account',
  'expand',
  'ending_before',
  'limit',
  'starting_after',
]);

export class Api {
  private readonly routes: Array<{ method: string; pattern: RegExp; handler: Handler }>;

  constructor(
    private readonly ledger: Ledger,
    private readonly events: EventLog,
  ) {
    const id = '([^/]+)';
    this.routes = [
      {
        method: 'POST',
        pattern: /^\/v1\/checkout\/sessions$/,
        handler: (r) => this.ledger.createSession(r.params),
      },
      {
        method: 'GET',
        pattern: new RegExp(`^/v1/checkout/sessions/${id}$`),
        handler: (r, i) => this.retrieve(r, this.ledger.record(i).session),
      },
      {
        method: 'POST',
        pattern: new RegExp(`^/v1/checkout/sessions/${id}/expire$`),
        handler: (r, i) => {
          rejectUnknown(r.params, RETRIEVE);
          return this.ledger.expire(i, r.request);
        },
      },
      { method: 'GET', pattern: /^\/v1\/promotion_codes$/, handler: (r) => this.listPromotionCodes(r) },
      {
        method: 'GET',
        pattern: new RegExp(`^/v1/promotion_codes/${id}$`),
        handler: (r, i) => this.retrieve(r, this.ledger.promotions.get(i), 'promotion code', i),
      },
      {
        method: 'GET',
        pattern: new RegExp(`^/v1/coupons/${id}$`),
        handler: (r, i) => this.retrieve(r, this.ledger.promotions.coupons.get(i), 'coupon', i),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/refunds$/,
        handler: (r) => {
          rejectUnknown(r.params, REFUND_PARAMS);
          return this.ledger.refund(r.params, r.request);
        },
      },
      {
        method: 'GET',
        pattern: new RegExp(`^/v1/refunds/${id}$`),
        handler: (r, i) => this.retrieveStored(r, i, 're_', 'refund'),
      },
      {
        method: 'GET',
        pattern: new RegExp(`^/v1/payment_intents/${id}$`),
        handler: (r, i) => this.retrieveStored(r, i, 'pi_', 'payment_intent'),
      },
      {
        method: 'GET',
        pattern: new RegExp(`^/v1/charges/${id}$`),
        handler: (r, i) => this.retrieveStored(r, i, 'ch_', 'charge'),
      },
      {
        method: 'GET',
        pattern: new RegExp(`^/v1/events/${id}$`),
        handler: (r, i) => this.retrieve(r, this.events.get(i), 'event', i),
      },
    ];
  }

  /** The response body for a request, or a thrown StripeApiError. */
  handle(req: ApiRequest): unknown {
    for (const route of this.routes) {
      const match = route.pattern.exec(req.path);
      if (match && route.method === req.method) {
        const body = route.handler(req, decodeURIComponent(match[1] ?? ''));
        return expand(body, expandList(req.params), (id) => this.ledger.find(id));
      }
    }
    // Stripe answers a known path with the wrong method the same way as an unknown one.
    throw Errors.unrecognizedUrl(req.method, req.path);
  }

  private retrieve(req: ApiRequest, found: object | undefined, kind?: string, id?: string): object {
    rejectUnknown(req.params, RETRIEVE);
    if (!found) throw Errors.resourceMissing(kind ?? 'object', id ?? '', 'id');
    return found;
  }

  private retrieveStored(req: ApiRequest, id: string, prefix: string, kind: string): object {
    return this.retrieve(req, id.startsWith(prefix) ? this.ledger.find(id) : undefined, kind, id);
  }

  private listPromotionCodes(req: ApiRequest): object {
    const p = req.params;
    rejectUnknown(p, PROMO_LIST_PARAMS);
    const code = optString(p['code'], 'code')?.toLowerCase();
    const active = optBool(p['active'], 'active');
    const coupon = optString(p['coupon'], 'coupon');
    const limit = optInt(p['limit'], 'limit') ?? 10;
    if (limit < 1 || limit > 100) throw Errors.invalid('limit', 'This value must be between 1 and 100.');
    let data = this.ledger.promotions
      .list()
      .filter(
        (c) =>
          (code === undefined || c.code.toLowerCase() === code) &&
          (active === undefined || c.active === active) &&
          (coupon === undefined || c.promotion.coupon === coupon),
      );
    const after = optString(p['starting_after'], 'starting_after');
    const before = optString(p['ending_before'], 'ending_before');
    if (after !== undefined) data = data.slice(cursor(data, after, 'starting_after') + 1);
    let page = data.slice(0, limit);
    if (before !== undefined) {
      data = data.slice(0, cursor(data, before, 'ending_before'));
      page = data.slice(-limit);
    }
    return { object: 'list', data: page, has_more: data.length > limit, url: '/v1/promotion_codes' };
  }
}

function cursor(data: Array<{ id: string }>, id: string, param: string): number {
  const index = data.findIndex((c) => c.id === id);
  if (index === -1) throw Errors.resourceMissing('promotion code', id, param);
  return index;
}
