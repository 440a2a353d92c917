/**
 * Postgres failing while a Stripe webhook is applied: the gateway must answer non-2xx (so Stripe
 * retries), nothing may be half-applied, and the retry must then apply the event exactly once.
 * Real failures only: a billing instance whose database path we cut, and a backend we kill
 * in the middle of the webhook's transaction.
 */
import net from 'node:net';
import { Client } from 'pg';
import { loadConfig, type RunningService } from '@atelier/kit';
import { billingConfigSchema, startBilling } from '@atelier/billing';
import { gatewayConfigSchema, startGateway, type RunningGateway } from '@atelier/gateway';
import { waitFor, type Mesh } from '@atelier/infra/testing';
import type { EventObject } from '@atelier/infra/sandbox/stripe';
import {
  checkout,
  createPayment,
  paymentStatus,
  sessionIdOf,
  startBillingSuite,
  stopBillingSuite,
} from './helpers';

let mesh: Mesh;
let db: Client;
let account: { accountId: string; apiKey: string };

beforeAll(async () => {
  ({ mesh, db, account } = await startBillingSuite());
});
afterAll(() => stopBillingSuite({ mesh, db }));

const webhookUrl = (gatewayUrl: string) => `${gatewayUrl}/api/v1/payments/webhook`;

async function eventRows(eventId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM billing.stripe_events WHERE id = $1',
    [eventId],
  );
  return (rows[0] as { n: number }).n;
}

const completedEventOf = (checkoutUrl: string): EventObject | undefined =>
  mesh.stripe
    .events()
    .find(
      (e) =>
        e.type === 'checkout.session.completed' &&
        (e.data.object as { id: string }).id === sessionIdOf(checkoutUrl),
    );

/** A TCP path to Postgres that the test can cut (refusing new connections, dropping open ones) and restore. */
class CuttableProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('Postgres down during a webhook', () => {
  let proxy: CuttableProxy;
  let billing2: RunningService;
  let gateway2: RunningGateway;

  beforeAll(async () => {
    const pg = new URL(mesh.db.serviceUrls.billing);
    proxy = new CuttableProxy({ host: pg.hostname, port: Number(pg.port) });
    await proxy.open();
    const viaProxy = new URL(mesh.db.serviceUrls.billing);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    // A second billing (and a gateway in front of it) whose only road to Postgres is the proxy.
    billing2 = await startBilling(
      loadConfig(billingConfigSchema, {
        ...mesh.envFor('billing'),
        DATABASE_URL: viaProxy.toString(),
        GRPC_PORT: '0',
      }),
    );
    gateway2 = await startGateway(
      loadConfig(gatewayConfigSchema, { ...mesh.env, BILLING_ADDR: billing2.address, HTTP_PORT: '0' }),
    );
  });
  afterAll(async () => {
    mesh.stripe.setWebhookUrl(webhookUrl(mesh.gateway.url));
    await gateway2?.stop();
    await billing2?.stop();
    await proxy?.cut();
  });

  it('answers non-2xx while the database is unreachable, changes nothing, and applies the event once it is back', async () => {
    const payment = await createPayment(mesh, account.apiKey, { plan_id: 'basic_init' });
    await proxy.cut();
    mesh.stripe.setWebhookUrl(webhookUrl(gateway2.url));
    await checkout(payment.checkout_url);
    const event = completedEventOf(payment.checkout_url)!;

    // Stripe's own delivery and its retries all fail with 503, none with a 2xx.
    const failed = await waitFor(
      () => {
        const attempts = mesh.stripe.deliveries().filter((d) => d.eventId === event.id);
        return attempts.length >= 2 ? attempts : undefined;
      },
      { timeoutMs: 10_000, what: 'two failed deliveries' },
    );
    for (const d of failed) expect(d.status).toBe(503);
    expect(await paymentStatus(mesh, account.apiKey, payment.payment_id)).toBe('pending');
    expect(await eventRows(event.id)).toBe(0);

    // The database is reachable again: Stripe's next retry is applied, exactly once.
    await proxy.open();
    await waitFor(async () => (await mesh.stripe.sendEvent(event)).status === 200, {
      timeoutMs: 10_000,
      what: 'billing2 to reach Postgres again',
    });
    expect(await paymentStatus(mesh, account.apiKey, payment.payment_id)).toBe('paid');
    expect((await mesh.stripe.sendEvent(event)).status).toBe(200);
    expect(await eventRows(event.id)).toBe(1);
  });
});

describe('Postgres connection lost in the middle of the webhook transaction', () => {
  it('rolls the whole event back (its id included), answers non-2xx, and the retry applies it once', async () => {
    mesh.stripe.setWebhookUrl(webhookUrl(mesh.gateway.url));
    const payment = await createPayment(mesh, account.apiKey, { plan_id: 'basic_init' });

    // Hold the payment's row, so the webhook transaction stops right after recording the event id.
    const holder = new Client({ connectionString: mesh.db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM billing.payments WHERE id = $1 FOR UPDATE', [payment.payment_id]);
      await checkout(payment.checkout_url);
      const event = completedEventOf(payment.checkout_url)!;

      // Find billing's backend waiting for that row, inside a transaction that already inserted the event.
      const victim = await waitFor(
        async () => {
          const { rows } = await db.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
                AND query ILIKE '%FROM billing.payments%FOR UPDATE%'`,
          );
          return rows[0]?.pid;
        },
        { timeoutMs: 10_000, what: 'the webhook transaction to wait for the payment row' },
      );
      await db.query('SELECT pg_terminate_backend($1)', [victim]);

      // That delivery failed with a non-2xx, and nothing of it is visible: no event id, payment still pending.
      const failed = await waitFor(
        () => mesh.stripe.deliveries().find((d) => d.eventId === event.id && d.status !== null),
        {
          what: 'the first delivery to finish',
        },
      );
      expect(failed.ok).toBe(false);
      expect(failed.status).toBe(503);
      expect(await eventRows(event.id)).toBe(0);
      expect(await paymentStatus(mesh, account.apiKey, payment.payment_id)).toBe('pending');

      // Let go of the row: Stripe's retry goes through.
      await holder.query('COMMIT');
      await waitFor(async () => (await paymentStatus(mesh, account.apiKey, payment.payment_id)) === 'paid', {
        timeoutMs: 15_000,
        what: 'a retry to apply the event',
      });
      expect(await eventRows(event.id)).toBe(1);
    } finally {
      await holder.end().catch(() => undefined);
    }
  });
});
