/** Shared steps of trainer's tests: paid payments through the gateway and Stripe sandbox, a zip to train on, a trainer client. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import JSZip from 'jszip';
import type { Client } from 'pg';
import { createGrpcClient } from '@atelier/kit';
import { trainer } from '@atelier/protos';
import { waitFor, type Mesh } from '@atelier/infra/testing';

export interface PaymentJson {
  payment_id: string;
  checkout_url: string;
  status: string;
  version_id: string | null;
}

export async function createPayment(
  mesh: Mesh,
  apiKey: string,
  body: Record<string, unknown> = { plan_id: 'basic_init' },
): Promise<PaymentJson> {
  const res = await mesh.api('/api/v1/payments/create', { key: apiKey, method: 'POST', json: body });
  if (res.status !== 201) throw new Error(`create payment answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as PaymentJson;
}

export async function getPayment(mesh: Mesh, apiKey: string, paymentId: string): Promise<PaymentJson> {
  const res = await mesh.api(`/api/v1/payments/${paymentId}`, { key: apiKey });
  if (res.status !== 200) throw new Error(`get payment answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as PaymentJson;
}

/** A payment created through the gateway and paid on the sandbox's checkout page; the webhook made it paid. */
export async function paidPayment(
  mesh: Mesh,
  apiKey: string,
  body: Record<string, unknown> = { plan_id: 'basic_init' },
): Promise<PaymentJson> {
  const payment = await createPayment(mesh, apiKey, body);
  const res = await fetch(payment.checkout_url, { method: 'POST', headers: { accept: 'application/json' } });
  if (res.status !== 200) throw new Error(`checkout answered ${res.status}: ${await res.text()}`);
  return waitFor(
    async () => {
      const p = await getPayment(mesh, apiKey, payment.payment_id);
      return p.status === 'paid' ? p : undefined;
    },
    { timeoutMs: 10_000, what: `payment ${payment.payment_id} to be paid` },
  );
}

/** Serves one small zip of "photos": what a trainer downloads from the presigned dataset URL. */
export async function startDatasetServer(): Promise<{ url: string; close(): Promise<void> }> {
  const zip = new JSZip();
  for (let i = 0; i < 5; i++) zip.file(`photo-${i}.jpg`, Buffer.from([0xff, 0xd8, 0xff, 0xe0, i]));
  const body = await zip.generateAsync({ type: 'nodebuffer', compression: 'STORE' });
  const server = http.createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length }).end(body),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/datasets/photos.zip`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const trainerClient = (address: string) =>
  createGrpcClient(trainer.TrainerServiceService, address, { timeoutMs: 30_000 });

export async function versionRow(db: Client, id: string) {
  const { rows } = await db.query(
    `SELECT id, status, replicate_training_id, replicate_version, pushed_at, grant_settled_at, usage_recorded_at, settled_at,
            predict_time, cost_micros::float8 AS cost_micros, error, next_check_at, deadline_at
       FROM trainer.versions WHERE id = $1`,
    [id],
  );
  return rows[0] as
    | {
        id: string;
        status: string;
        replicate_training_id: string | null;
        replicate_version: string | null;
        pushed_at: Date | null;
        grant_settled_at: Date | null;
        usage_recorded_at: Date | null;
        settled_at: Date | null;
        predict_time: number | null;
        cost_micros: number | null;
        error: string | null;
      }
    | undefined;
}
