/**
 * Replicate's webhook signature (the Standard Webhooks / Svix scheme): the key is the base64 part
 * of `whsec_<base64>`, the signed content is `${webhook-id}.${webhook-timestamp}.${body}`, and the
 * header is `v1,<base64 HMAC-SHA256>` (several may be space-separated).
 */
import { createHmac } from 'node:crypto';

// Fixed bytes so a sandbox restarted by the dev launcher keeps the secret services were given.
export const DEFAULT_WEBHOOK_SECRET = `whsec_${Buffer.from('atelier-replicate-sandbox-secret!').toString('base64')}`;

function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secretKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}
