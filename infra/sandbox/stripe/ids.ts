import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function base62(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  // 248 = 62 * 4: rejecting bytes above it keeps the alphabet uniform.
  for (let i = 0; out.length < length; i++) {
    const b = i < bytes.length ? (bytes[i] as number) : (randomBytes(1)[0] as number);
    if (b < 248) out += ALPHABET[b % 62];
  }
  return out;
}

/** Ids shaped like Stripe test-mode ids, so code that checks prefixes or lengths sees real ones. */
export const newId = {
  checkoutSession: () => `cs_test_a1${base62(56)}`,
  paymentIntent: () => `pi_3${base62(23)}`,
  charge: () => `ch_3${base62(23)}`,
  refund: () => `re_3${base62(23)}`,
  paymentMethod: () => `pm_1${base62(23)}`,
  event: () => `evt_1${base62(23)}`,
  request: () => `req_${base62(14)}`,
};
