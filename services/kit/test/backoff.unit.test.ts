import { backoffMs, retryAfterMs } from '../src/backoff';

describe('backoffMs', () => {
  const policy = { baseMs: 100, maxMs: 1_000 };

  it('doubles per attempt from the base and stops at the cap', () => {
    const middle = () => 0.5; // no jitter either way
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, policy, 'spread', middle))).toEqual([
      100, 200, 400, 800, 1_000, 1_000,
    ]);
  });

  it("varies a step by ±25 % ('spread') or keeps half of it fixed ('equal')", () => {
    expect(backoffMs(3, policy, 'spread', () => 0)).toBe(300);
    expect(backoffMs(3, policy, 'spread', () => 1)).toBe(500);
    expect(backoffMs(3, policy, 'equal', () => 0)).toBe(200);
    expect(backoffMs(3, policy, 'equal', () => 1)).toBe(400);
  });

  it('stays finite for any attempt, capped or not', () => {
    expect(backoffMs(10_000, policy, 'spread', () => 0.5)).toBe(1_000);
    expect(Number.isFinite(backoffMs(10_000, { baseMs: 100 }))).toBe(true);
    expect(backoffMs(0, policy, 'spread', () => 0.5)).toBe(100);
  });
});

describe('retryAfterMs', () => {
  const now = Date.parse('2026-11-26T12:00:00Z');

  it('reads delay-seconds and HTTP-dates, never below zero', () => {
    expect(retryAfterMs('3', now)).toBe(3_000);
    expect(retryAfterMs('Thu, 26 Nov 2026 12:00:05 GMT', now)).toBe(5_000);
    expect(retryAfterMs('Thu, 26 Nov 2026 11:59:00 GMT', now)).toBe(0);
  });

  it('says nothing for a missing or unreadable header', () => {
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryAfterMs('', now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
  });
});
