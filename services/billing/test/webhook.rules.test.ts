import { Webhook } from 'standardwebhooks';
import {
  checkCallbackUrl,
  checkEventTypes,
  failedTooLong,
  isPublicAddress,
  liveSecrets,
  newSecret,
  nextAttemptAt,
  signatureHeader,
} from '../src/domain/webhook.rules';

describe('isPublicAddress', () => {
  it.each([
    ['93.184.216.34', true],
    ['8.8.8.8', true],
    ['172.32.0.1', true],
    ['100.128.0.1', true],
    ['127.0.0.1', false],
    ['127.255.255.254', false],
    ['10.1.2.3', false],
    ['172.16.0.1', false],
    ['172.31.255.255', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['192.0.2.1', false],
    ['224.0.0.1', false],
    ['255.255.255.255', false],
  ])('IPv4 %s → %s', (address, expected) => expect(isPublicAddress(address)).toBe(expected));

  it.each([
    ['2606:4700:4700::1111', true],
    ['2a00:1450:4001:81b::200e', true],
    ['::1', false],
    ['::', false],
    ['fe80::1', false],
    ['fe80::1%eth0', false],
    ['fc00::1', false],
    ['fd12:3456:789a::1', false],
    ['ff02::1', false],
    ['2001:db8::1', false],
    ['64:ff9b::7f00:1', false],
    ['2002:7f00:1::', false],
  ])('IPv6 %s → %s', (address, expected) => expect(isPublicAddress(address)).toBe(expected));

  it.each([
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['::ffff:10.0.0.1', false],
    ['::ffff:169.254.169.254', false],
    ['::ffff:a9fe:a9fe', false],
    ['::127.0.0.1', false],
    ['::ffff:93.184.216.34', true],
    ['::ffff:5db8:d822', true],
  ])('IPv4-mapped %s → %s', (address, expected) => expect(isPublicAddress(address)).toBe(expected));

  it('anything that is not an address is not public', () => {
    for (const bad of ['', 'localhost', '1.2.3', '::gg', '1:2:3:4:5:6:7:8:9'])
      expect(isPublicAddress(bad)).toBe(false);
  });
});

describe('checkCallbackUrl', () => {
  it('accepts https to a name or a public address', () => {
    expect(checkCallbackUrl('https://hooks.example.com/atelier', false)).toBe(
      'https://hooks.example.com/atelier',
    );
    expect(checkCallbackUrl('https://93.184.216.34/x', false)).toBe('https://93.184.216.34/x');
  });
  it.each([
    'http://hooks.example.com/',
    'https://127.0.0.1/',
    'https://[::1]/',
    'https://[::ffff:7f00:1]/',
    'https://169.254.169.254/latest/meta-data',
    'https://localhost/',
    'https://user:pw@hooks.example.com/',
    'ftp://hooks.example.com/',
    'not a url',
  ])('refuses %s', (url) => expect(() => checkCallbackUrl(url, false)).toThrow());
  it('allows http and private destinations when the operator allows them', () => {
    expect(checkCallbackUrl('http://127.0.0.1:9999/cb', true)).toBe('http://127.0.0.1:9999/cb');
  });
});

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
