/**
 * The hosted checkout page a session's `url` points at. `GET` shows what is being bought and two
 * buttons; `POST` is the customer paying (`outcome=succeed|fail|async`, from the query or the form).
 * Browsers are redirected (303) to `success_url` (with `{CHECKOUT_SESSION_ID}` filled in, as
 * Stripe does) or, for a failed payment, `cancel_url`; `Accept: application/json` gets the session.
 */
import { StripeApiError } from './errors';
import type { Ledger, PayOutcome } from './ledger';
import type { SessionObject } from './objects';

export interface PageResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const OUTCOMES: Record<string, PayOutcome> = {
  succeed: 'succeed',
  success: 'succeed',
  pay: 'succeed',
  fail: 'fail',
  async: 'async_pending',
  async_pending: 'async_pending',
};

function parseOutcome(raw: string | null | undefined): PayOutcome | undefined {
  return OUTCOMES[raw ?? 'succeed'];
}

export function showCheckout(ledger: Ledger, id: string): PageResponse {
  let session: SessionObject;
  let items;
  try {
    const record = ledger.record(id);
    session = record.session;
    items = record.lineItems;
  } catch {
    return html(404, page('Checkout not found', `<p>No Checkout Session ${escape(id)}.</p>`));
  }
  const currency = session.currency ?? 'usd';
  const rows = items
    .map(
      (li) =>
        `<tr><td>${escape(li.name)}${li.quantity > 1 ? ` × ${li.quantity}` : ''}</td><td>${formatMoney(li.unitAmount * li.quantity, currency)}</td></tr>`,
    )
    .join('');
  const discount = session.total_details?.amount_discount ?? 0;
  const summary =
    `<table>${rows}` +
    (discount > 0 ? `<tr><td>Discount</td><td>−${formatMoney(discount, currency)}</td></tr>` : '') +
    `<tr><th>Total</th><th>${formatMoney(session.amount_total ?? 0, currency)}</th></tr></table>`;
  if (session.status !== 'open') {
    return html(
      200,
      page('Checkout', `${summary}<p>This checkout is ${escape(session.status ?? 'closed')}.</p>`),
    );
  }
  const action = `/checkout/${encodeURIComponent(id)}`;
  const button = (outcome: string, label: string) =>
    `<form method="post" action="${action}?outcome=${outcome}"><button type="submit">${label}</button></form>`;
  const back = session.cancel_url ? `<p><a href="${escape(session.cancel_url)}">Back</a></p>` : '';
  return html(
    200,
    page(
      'Checkout',
      `${summary}${button('succeed', `Pay ${formatMoney(session.amount_total ?? 0, currency)}`)}` +
        `${button('fail', 'Fail the payment')}${button('async', 'Pay later (delayed method)')}${back}`,
    ),
  );
}

export function submitCheckout(
  ledger: Ledger,
  id: string,
  outcomeRaw: string | null,
  wantsJson: boolean,
): PageResponse {
  const outcome = parseOutcome(outcomeRaw);
  try {
    if (!outcome)
      throw new StripeApiError(400, {
        type: 'invalid_request_error',
        message: `Unknown outcome: ${outcomeRaw}`,
        param: 'outcome',
      });
    const session = ledger.pay(id, outcome);
    if (wantsJson) return json(200, session);
    const target = outcome === 'fail' ? (session.cancel_url ?? session.success_url) : session.success_url;
    if (target)
      return {
        status: 303,
        headers: { Location: target.replaceAll('{CHECKOUT_SESSION_ID}', session.id) },
        body: '',
      };
    return html(
      200,
      page('Checkout', outcome === 'fail' ? '<p>The payment failed.</p>' : '<p>Thanks for your payment.</p>'),
    );
  } catch (err) {
    if (!(err instanceof StripeApiError)) throw err;
    return wantsJson
      ? json(err.status, err.toJSON())
      : html(err.status, page('Checkout', `<p>${escape(err.message)}</p>`));
  }
}

const ZERO_DECIMAL = new Set([
  'bif',
  'clp',
  'djf',
  'gnf',
  'jpy',
  'kmf',
  'krw',
  'mga',
  'pyg',
  'rwf',
  'ugx',
  'vnd',
  'vuv',
  'xaf',
  'xof',
  'xpf',
]);

function formatMoney(minor: number, currency: string): string {
  const major = ZERO_DECIMAL.has(currency) ? minor : minor / 100;
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() }).format(
      major,
    );
  } catch {
    return `${major} ${currency.toUpperCase()}`;
  }
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)} · Stripe sandbox</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto}td,th{padding:.25rem 1rem .25rem 0;text-align:left}form{display:inline-block;margin:1rem 1rem 0 0}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function html(status: number, body: string): PageResponse {
  return { status, headers: { 'Content-Type': 'text/html; charset=utf-8' }, body };
}

function json(status: number, body: unknown): PageResponse {
  return { status, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
