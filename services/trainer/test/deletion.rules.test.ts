import { retentionCutoff, retryDelayMs } from '../src/domain/deletion.rules';

const schedule = { retryBaseMs: 1_000, retryMaxMs: 60_000 };

it('doubles the retry delay per attempt up to the maximum, within ±25 % jitter', () => {
  const middle = () => 0.5; // no jitter
  expect([1, 2, 3, 4].map((n) => retryDelayMs(n, schedule, middle))).toEqual([1_000, 2_000, 4_000, 8_000]);
  expect(retryDelayMs(50, schedule, middle)).toBe(60_000);
  expect(retryDelayMs(1, schedule, () => 0)).toBe(750);
  expect(retryDelayMs(1, schedule, () => 0.999999)).toBe(1_250);
});

it('puts the retention cutoff the configured number of days before now', () => {
  const now = new Date('2026-11-26T12:00:00Z');
  expect(retentionCutoff(now, 7).toISOString()).toBe('2026-11-19T12:00:00.000Z');
  expect(retentionCutoff(now, 0).toISOString()).toBe(now.toISOString());
});
