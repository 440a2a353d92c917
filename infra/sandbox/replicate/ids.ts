import { randomBytes } from 'node:crypto';

// Replicate's run ids are 26 lowercase base32 characters (`zz4ibbonubfz7carwiefibzgga`).
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export function runId(): string {
  const bytes = randomBytes(26);
  let id = '';
  for (const byte of bytes) id += BASE32[byte & 31];
  return id;
}

/** Model version ids are 64 hex characters (a sha256 in Replicate). */
export function versionId(): string {
  return randomBytes(32).toString('hex');
}

export const VERSION_ID = /^[0-9a-f]{64}$/;

export function webhookId(): string {
  return `msg_${randomBytes(16).toString('base64url')}`;
}

export function now(): string {
  return new Date().toISOString();
}
