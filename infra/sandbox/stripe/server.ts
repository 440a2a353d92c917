/**
 * The Stripe sandbox: a local HTTP server speaking the part of Stripe's REST API Atelier uses, so the
 * official `stripe` client works against it unchanged (`new Stripe(secretKey, { host, port,
 * protocol: 'http' })`), plus the hosted checkout page and signed webhook delivery. State lives in
 * memory: it stands in for a paid external service, not for Atelier's storage.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { Api } from './api';
import { showCheckout, submitCheckout } from './checkout-page';
import { Errors, StripeApiError } from './errors';
import { EventLog } from './events';
import { Faults, type FaultAnswer } from './faults';
import { parseForm } from './form';
import { IdempotencyStore } from './idempotency';
import { newId } from './ids';
import { Ledger, type PayOutcome } from './ledger';
import type { EventObject, PromotionCodeObject, RefundObject, SessionObject } from './objects';
import type { NewPromotionCode } from './promotions';
import {
  DEFAULT_RETRY,
  WebhookDispatcher,
  type Delivery,
  type RetryPolicy,
  type SendOptions,
} from './webhooks';

export interface StripeSandboxOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The only API key accepted. Default `sk_test_sandbox`. */
  secretKey?: string;
  /** Signs webhooks. Default `whsec_sandbox`. */
  webhookSecret?: string;
  /** Where events are POSTed; none → events are recorded but not delivered. */
  webhookUrl?: string | null;
  /** Base of checkout page URLs when the browser reaches the sandbox by another address. */
  publicUrl?: string;
  /** `api_version` stamped on events. Default: the version the installed `stripe` package pins. */
  apiVersion?: string;
  webhookRetry?: Partial<RetryPolicy>;
  log?: (msg: string) => void;
}

/** A test-made event: the sandbox wraps `object` in an event of this `type`. */
export interface EventInput {
  type: string;
  object: object;
}

export interface StripeSandbox {
  /** `http://host:port` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly secretKey: string;
  readonly webhookSecret: string;
  /** Spread into the `stripe` client's config: `new Stripe(secretKey, { ...sandbox.clientConfig })`. */
  readonly clientConfig: { host: string; port: number; protocol: 'http' };
  setWebhookUrl(url: string | null): void;
  stop(): Promise<void>;

  /** The customer pays on the checkout page (same as `POST /checkout/:id?outcome=…`). */
  pay(sessionId: string, outcome?: PayOutcome): Promise<SessionObject>;
  /** Settles an `async_pending` payment: `checkout.session.async_payment_succeeded` or `_failed`. */
  settle(sessionId: string, outcome: 'succeed' | 'fail'): Promise<SessionObject>;
  /** The session times out (as `expires_at` passing would): `checkout.session.expired`. */
  expire(sessionId: string): Promise<SessionObject>;
  /** A refund made outside the API (the Dashboard): `charge.refunded` and `refund.created`. */
  refund(paymentIntentId: string, amount?: number): Promise<RefundObject>;
  /** The session as it is now, or undefined. */
  session(sessionId: string): SessionObject | undefined;
  /** Adds a promotion code (with its own coupon) beside the seeded ones. */
  addPromotionCode(input: NewPromotionCode): PromotionCodeObject;

  /** Every event raised so far, oldest first. */
  events(): EventObject[];
  /** Every webhook attempt so far, oldest first. */
  deliveries(): Delivery[];
  /**
   * POSTs one event once (no retries) and reports the attempt: a recorded event (redelivery), or
   * a new one built from `{ type, object }`. `opts` can forge the timestamp, signature or secret.
   */
  sendEvent(event: EventObject | EventInput, opts?: SendOptions): Promise<Delivery>;

  /**
   * The next `times` requests matching `route` answer `answer` (an HTTP status, Stripe's
   * `api_error` body) or hang until the client gives up. `route`: `'*'`, `'POST'`, `'/v1/refunds'`,
   * `'POST /v1/checkout/sessions'`. Note the `stripe` client retries 5xx twice by default.
   */
  failNext(route: string, answer?: FaultAnswer, times?: number): void;
  clearFaults(): void;
}

const MAX_BODY_BYTES = 1 << 20;

export async function startStripeSandbox(opts: StripeSandboxOptions = {}): Promise<StripeSandbox> {
  const host = opts.host ?? '127.0.0.1';
  const secretKey = opts.secretKey ?? 'sk_test_sandbox';
  const webhookSecret = opts.webhookSecret ?? 'whsec_sandbox';
  const apiVersion = opts.apiVersion ?? Stripe.API_VERSION;
  const log = opts.log ?? (() => undefined);
  let baseUrl = '';

  const events = new EventLog(apiVersion);
  const dispatcher = new WebhookDispatcher(
    opts.webhookUrl ?? null,
    webhookSecret,
    { ...DEFAULT_RETRY, ...opts.webhookRetry },
    (id) => events.delivered(id),
    log,
  );
  const ledger = new Ledger(
    (type, object, request) =>
      dispatcher.enqueue(events.create(type, object, request, dispatcher.hasEndpoint() ? 1 : 0)),
    (id) => `${baseUrl}/checkout/${id}`,
  );
  const api = new Api(ledger, events);
  const faults = new Faults();
  const idempotency = new IdempotencyStore();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newId.request();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const path = url.pathname;
    res.setHeader('Request-Id', requestId);
    res.setHeader('Stripe-Version', header(req, 'stripe-version') ?? apiVersion);

    const fault = faults.take(method, path);
    if (fault === 'hang') return log(`${method} ${path} → hanging (injected)`);
    if (fault !== undefined) return send(res, fault, JSON.stringify(Errors.injected(fault).toJSON()));

    try {
      const body = await readBody(req);
      const checkout = /^\/checkout\/([^/]+)$/.exec(path);
      if (path === '/health' && method === 'GET') return send(res, 200, '{"ok":true}');
      if (checkout && (method === 'GET' || method === 'POST')) {
        const id = decodeURIComponent(checkout[1] as string);
        const outcome = url.searchParams.get('outcome') ?? new URLSearchParams(body).get('outcome');
        const wantsJson = (header(req, 'accept') ?? '').includes('application/json');
        const page =
          method === 'GET' ? showCheckout(ledger, id) : submitCheckout(ledger, id, outcome, wantsJson);
        return send(res, page.status, page.body, page.headers);
      }
      if (!path.startsWith('/v1/')) throw Errors.unrecognizedUrl(method, path);
      authenticate(header(req, 'authorization'), secretKey);
      const params = parseForm(method === 'POST' ? body : url.search.slice(1));
      const idemKey = method === 'POST' ? header(req, 'idempotency-key') : undefined;
      const endpoint = `${method} ${path}`;
      if (idemKey !== undefined) {
        res.setHeader('Idempotency-Key', idemKey);
        const replay = idempotency.replay(idemKey, endpoint, params);
        if (replay) return send(res, replay.status, replay.body, { 'Idempotent-Replayed': 'true' });
      }
      const result = api.handle({
        method,
        path,
        params,
        request: { id: requestId, idempotency_key: idemKey ?? null },
      });
      const text = JSON.stringify(result, null, 2);
      if (idemKey !== undefined) idempotency.save(idemKey, endpoint, params, 200, text);
      send(res, 200, text);
    } catch (err) {
      if (err instanceof StripeApiError) return send(res, err.status, JSON.stringify(err.toJSON(), null, 2));
      log(
        `internal error on ${method} ${path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
      send(res, 500, JSON.stringify({ error: { type: 'api_error', message: 'An unknown error occurred.' } }));
    } finally {
      log(`${method} ${path} → ${res.statusCode} ${requestId}`);
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const reachableHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const url = `http://${reachableHost}:${port}`;
  baseUrl = (opts.publicUrl ?? url).replace(/\/+$/, '');

  const sweeper = setInterval(() => ledger.sweep(), 1000);
  sweeper.unref();

  return {
    url,
    host: reachableHost,
    port,
    secretKey,
    webhookSecret,
    clientConfig: { host: reachableHost, port, protocol: 'http' },
    setWebhookUrl: (next) => dispatcher.setUrl(next),
    async stop() {
      clearInterval(sweeper);
      await dispatcher.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive sockets (the stripe client's) and hung requests would hold close() open.
        server.closeAllConnections();
      });
    },
    pay: async (id, outcome = 'succeed') => structuredClone(ledger.pay(id, outcome)),
    settle: async (id, outcome) => structuredClone(ledger.settle(id, outcome)),
    expire: async (id) => structuredClone(ledger.expire(id, null)),
    refund: async (paymentIntentId, amount) =>
      structuredClone(
        ledger.refund(
          { payment_intent: paymentIntentId, ...(amount !== undefined ? { amount: String(amount) } : {}) },
          null,
        ),
      ),
    session(id) {
      try {
        return structuredClone(ledger.record(id).session);
      } catch {
        return undefined;
      }
    },
    addPromotionCode: (input) => ledger.promotions.add(input),
    events: () => structuredClone(events.all()),
    deliveries: () => dispatcher.deliveries(),
    async sendEvent(input, sendOpts) {
      let event: EventObject;
      if (input.object === 'event') {
        event = input;
        events.adopt(event);
      } else {
        const { type, object } = input;
        event = events.create(type, object, null, 1);
      }
      return dispatcher.sendOnce(event, sendOpts);
    },
    failNext: (route, answer = 500, times = 1) => faults.add(route, answer, times),
    clearFaults: () => faults.clear(),
  };
}

function authenticate(authorization: string | undefined, secretKey: string): void {
  if (!authorization) throw Errors.noApiKey();
  const [scheme = '', credential = ''] = authorization.split(/\s+/, 2);
  let key = credential;
  // Stripe also takes the key as the user name of HTTP Basic auth (`curl -u sk_test_…:`).
  if (scheme.toLowerCase() === 'basic')
    key = Buffer.from(credential, 'base64').toString('utf8').replace(/:.*$/s, '');
  else if (scheme.toLowerCase() !== 'bearer') throw Errors.noApiKey();
  if (key === '') throw Errors.noApiKey();
  if (key !== secretKey) throw Errors.invalidApiKey(key);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(Errors.invalid(undefined, 'Request body too large.'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'Content-Type': 'application/json',
    ...headers,
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
