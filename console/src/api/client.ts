import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema.gen';

export type Schemas = components['schemas'];
export type Plan = Schemas['Plan'];
export type Payment = Schemas['Payment'];
export type Version = Schemas['Version'];
export type Prompt = Schemas['Prompt'];
export type WebhookEndpoint = Schemas['WebhookEndpoint'];
export type WebhookDelivery = Schemas['WebhookDelivery'];
export type Offer = Schemas['Offer'];
export type Pack = Schemas['Pack'];
export type UsageLine = Schemas['UsageLine'];

/** A problem+json body (RFC 9457) as the gateway sends it. */
export interface Problem {
  type?: string;
  title: string;
  status?: number;
  detail?: string;
  request_id?: string;
  errors?: unknown[];
}

/** Thrown for every failed call: the screens show its title and detail, never a stack. */
export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? problem.title);
  }
}

export function toProblem(err: unknown): Problem {
  if (err instanceof ProblemError) return err.problem;
  // fetch rejects with a TypeError when the network is down; its message is all there is.
  return { title: 'Could not reach the server', detail: err instanceof Error ? err.message : String(err) };
}

export function asProblem(body: unknown, status: number): Problem {
  if (body && typeof body === 'object' && 'title' in body) return body as Problem;
  return { title: `Request failed (${status})`, status };
}

// The API key lives in session storage only: it goes with the tab, never into a URL or a cookie.
const KEY = 'atelier.apiKey';
export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  signIn: (key: string) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.removeItem(KEY),
};

const auth: Middleware = {
  onRequest({ request }) {
    const key = session.key();
    if (key) request.headers.set('Authorization', `Bearer ${key}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(auth);

/** Resolves openapi-fetch's `{data, error}` into the data or a thrown ProblemError. */
export async function call<T>(
  pending: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<NonNullable<T>> {
  const { data, error, response } = await pending;
  if (error !== undefined || !response.ok) {
    if (response.status === 401) window.dispatchEvent(new Event('atelier:unauthorized'));
    throw new ProblemError(asProblem(error, response.status));
  }
  return data as NonNullable<T>;
}

export const idempotencyKey = () => crypto.randomUUID();

export function formatMoney(minor: number, currency: string) {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency.toUpperCase() }).format(
      minor / 100,
    );
  } catch {
    return `${(minor / 100).toFixed(2)} ${currency.toUpperCase()}`;
  }
}
