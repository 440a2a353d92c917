import { Webhook } from 'standardwebhooks';
import {
  checkEventTypes,
  failedTooLong,
  liveSecrets,
  newSecret,
  nextAttemptAt,
  signatureHeader,
} from '../src/domain/webhook.rules';

it('event types are the documented ones', () => {
  expect(checkEventTypes(['prompt.succeeded', 'prompt.succeeded'])).toEqual(['prompt.succeeded']);
  expect(() => checkEventTypes(['prompt.done'])).toThrow(/prompt.done/);
});

describe('signatures', () => {
  it('are Standard Webhooks signatures: the standardwebhooks library verifies them with either live secret', () => {
    const current = newSecret();
    const previous = newSecret();
    expect(current).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const body = JSON.stringify({ id: 'e', type: 'prompt.succeeded', data: { a: 1 } });
    const ts = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': 'evt_1',
      'webhook-timestamp': String(ts),
      'webhook-signature': signatureHeader([current, previous], 'evt_1', ts, body),
    };
    expect(new Webhook(current).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(previous).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow(/signature/);
    expect(() => new Webhook(current).verify(body.replace('1', '2'), headers)).toThrow(/signature/);
  });

  it('the rotated-out secret signs only until it expires', () => {
    const now = new Date('2026-01-01T12:00:00Z');
    const e = {
      secret: 'a',
      previous_secret: 'b',
      previous_secret_expires_at: new Date('2026-01-02T12:00:00Z'),
    };
    expect(liveSecrets(e, now)).toEqual(['a', 'b']);
    expect(liveSecrets(e, new Date('2026-01-02T12:00:01Z'))).toEqual(['a']);
    expect(liveSecrets({ ...e, previous_secret: null }, now)).toEqual(['a']);
  });
});

describe('retry schedule', () => {
  const policy = { baseMs: 5_000, maxDelayMs: 6 * 3600_000, maxAgeMs: 3 * 24 * 3600_000 };
  const created = new Date('2026-01-01T00:00:00Z');

  it('doubles from the base with jitter between half and all of the delay, capped', () => {
    const at = (attempt: number, r: number) =>
      nextAttemptAt(policy, attempt, created, created, () => r)!.getTime() - created.getTime();
    expect(at(1, 0)).toBe(2_500);
    expect(at(1, 1)).toBe(5_000);
    expect(at(2, 1)).toBe(10_000);
    expect(at(5, 0.5)).toBe(60_000);
    expect(at(30, 1)).toBe(policy.maxDelayMs);
    expect(at(1000, 1)).toBe(policy.maxDelayMs);
  });

  it('gives up once the next attempt would fall beyond the maximum age of the event', () => {
    const late = new Date(created.getTime() + policy.maxAgeMs - 1_000);
    expect(nextAttemptAt(policy, 20, created, late, () => 0)).toBeNull();
    expect(nextAttemptAt(policy, 1, created, late, () => 0)).toBeNull();
    const early = new Date(created.getTime() + 60_000);
    expect(nextAttemptAt(policy, 1, created, early, () => 0)).not.toBeNull();
  });

  it('an endpoint is disabled once it has failed for the whole period', () => {
    const since = new Date('2026-01-01T00:00:00Z');
    expect(failedTooLong(null, new Date('2026-02-01T00:00:00Z'), 1000)).toBe(false);
    expect(failedTooLong(since, new Date('2026-01-03T23:59:59Z'), 3 * 24 * 3600_000)).toBe(false);
    expect(failedTooLong(since, new Date('2026-01-04T00:00:00Z'), 3 * 24 * 3600_000)).toBe(true);
  });
});
