/** Shared steps of billing's integration tests: real payments through the gateway and the Stripe sandbox. */
import { Client } from 'pg';
import { startMesh, waitFor, type Mesh } from '@atelier/infra/testing';

export interface PaymentJson {
  payment_id: string;
  checkout_url: string;
  status: string;
  plan_id: string;
  version_id: string | null;
  amount: number;
  promocode_applied: boolean;
}

export const sessionIdOf = (checkoutUrl: string) => new URL(checkoutUrl).pathname.split('/').pop()!;

export async function createPayment(
  mesh: Mesh,
  apiKey: string,
  body: Record<string, unknown>,
): Promise<PaymentJson> {
  const res = await mesh.api('/api/v1/payments/create', { key: apiKey, method: 'POST', json: body });
  if (res.status !== 201) throw new Error(`create payment answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as PaymentJson;
}

export async function paymentStatus(mesh: Mesh, apiKey: string, paymentId: string): Promise<string> {
  const res = await mesh.api(`/api/v1/payments/${paymentId}`, { key: apiKey });
  return ((await res.json()) as PaymentJson).status;
}

export const waitForStatus = (mesh: Mesh, apiKey: string, paymentId: string, status: string) =>
  waitFor(async () => (await paymentStatus(mesh, apiKey, paymentId)) === status, {
    timeoutMs: 10_000,
    what: `payment ${paymentId} to be ${status}`,
  });

/** Pays on the sandbox's checkout page, as the customer's browser would. */
export async function checkout(checkoutUrl: string, outcome?: 'fail' | 'async'): Promise<void> {
  const res = await fetch(outcome ? `${checkoutUrl}?outcome=${outcome}` : checkoutUrl, {
    method: 'POST',
    headers: { accept: 'application/json' },
  });
  if (res.status !== 200) throw new Error(`checkout answered ${res.status}: ${await res.text()}`);
}

/** An init payment, created through the gateway and paid on the sandbox; the webhook made it paid. */
export async function paidPayment(
  mesh: Mesh,
  apiKey: string,
  body: Record<string, unknown> = { plan_id: 'basic_init' },
): Promise<PaymentJson> {
  const payment = await createPayment(mesh, apiKey, body);
  await checkout(payment.checkout_url);
  await waitForStatus(mesh, apiKey, payment.payment_id, 'paid');
  return payment;
}

export async function balanceRow(db: Client, versionId: string) {
  const { rows } = await db.query<{ granted: number; used: number }>(
    'SELECT granted, used FROM billing.credit_balances WHERE version_id = $1',
    [versionId],
  );
  return rows[0];
}

export async function ledger(db: Client, versionId: string) {
  const { rows } = await db.query<{
    reason: string;
    granted_delta: number;
    used_delta: number;
    payment_id: string | null;
    reservation_id: string | null;
  }>(
    'SELECT reason, granted_delta, used_delta, payment_id, reservation_id FROM billing.credit_ledger WHERE version_id = $1 ORDER BY id',
    [versionId],
  );
  return rows;
}

/** The ledger must always add up to the balance: every change of it has its row. */
export async function expectLedgerMatchesBalance(db: Client, versionId: string): Promise<void> {
  const rows = await ledger(db, versionId);
  const balance = await balanceRow(db, versionId);
  const granted = rows.reduce((s, r) => s + r.granted_delta, 0);
  const used = rows.reduce((s, r) => s + r.used_delta, 0);
  if (!balance || balance.granted !== granted || balance.used !== used) {
    throw new Error(
      `ledger (granted ${granted}, used ${used}) disagrees with balance ${JSON.stringify(balance)}`,
    );
  }
}

/** The mesh, a database client and an account: what every billing test file starts from. */
export async function startBillingSuite(): Promise<{
  mesh: Mesh;
  db: Client;
  account: { accountId: string; apiKey: string };
}> {
  const mesh = await startMesh({ env: { RATE_LIMIT_PER_WINDOW: '10000' } });
  const db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  return { mesh, db, account: await mesh.createAccount() };
}

export async function stopBillingSuite(suite: { mesh?: Mesh; db?: Client }): Promise<void> {
  await suite.db?.end();
  await suite.mesh?.stop();
}
