import { createHmac, randomBytes } from 'node:crypto';
import { backoffMs, Errors, EVENT_TYPES } from '@atelier/kit';

/**
 * The rules of callbacks, free of I/O: secrets and signatures (Standard Webhooks), the retry
 * schedule, and what a registration may say (its URL: checkCallbackUrl in the kit).
 */

/** `whsec_` + base64 of 24 random bytes, as Standard Webhooks libraries expect. */
export const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;

/**
 * `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the secret's decoded bytes
 * (https://www.standardwebhooks.com). The timestamp is in seconds.
 */
function sign(secret: string, id: string, timestampS: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

/** The webhook-signature header: one signature per live secret, space-separated. */
export function signatureHeader(secrets: string[], id: string, timestampS: number, body: string): string {
  return secrets.map((s) => sign(s, id, timestampS, body)).join(' ');
}

/** The secrets that sign now: the current one, and the rotated-out one until it expires. */
export function liveSecrets(
  e: { secret: string; previous_secret: string | null; previous_secret_expires_at: Date | null },
  now: Date,
): string[] {
  const live = [e.secret];
  if (e.previous_secret && e.previous_secret_expires_at && e.previous_secret_expires_at > now)
    live.push(e.previous_secret);
  return live;
}

export interface RetryPolicy {
  /** Delay after the first failed attempt; doubles with each failure. */
  baseMs: number;
  maxDelayMs: number;
  /** An event older than this is not attempted again. */
  maxAgeMs: number;
}

/**
 * The due time of attempt `attempt + 1` after `attempt` failed, or null when the event would be
 * older than maxAge by then: exponential, capped, with "equal jitter" (half fixed, half random)
 * so the endpoints of one outage are not all retried in the same second.
 */
export function nextAttemptAt(
  policy: RetryPolicy,
  attempt: number,
  eventCreatedAt: Date,
  now: Date,
  random: () => number = Math.random,
): Date | null {
  const delay = backoffMs(attempt, { baseMs: policy.baseMs, maxMs: policy.maxDelayMs }, 'equal', random);
  const at = new Date(now.getTime() + delay);
  return at.getTime() - eventCreatedAt.getTime() > policy.maxAgeMs ? null : at;
}

/** True when an endpoint failing since `since` has failed long enough to be disabled. */
export const failedTooLong = (since: Date | null, now: Date, disableAfterMs: number) =>
  since !== null && now.getTime() - since.getTime() >= disableAfterMs;

export function checkEventTypes(events: string[]): string[] {
  const unknown = events.filter((e) => !(EVENT_TYPES as readonly string[]).includes(e));
  if (unknown.length) throw Errors.invalid(`unknown event type(s): ${unknown.join(', ')}`);
  return [...new Set(events)];
}
