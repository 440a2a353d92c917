import { DEFAULT_TIER_LIMITS, bestTier, isTier, tierLimitsOverride } from '../src/domain/tier.rules';

describe('tier rules', () => {
  it('orders tiers: the best of any set, free for none', () => {
    expect(bestTier([])).toBe('free');
    expect(bestTier(['standard', 'free'])).toBe('standard');
    expect(bestTier(['standard', 'pro', 'free'])).toBe('pro');
    expect(isTier('pro')).toBe(true);
    expect(isTier('gold')).toBe(false);
  });

  it("has PRODUCT.md's defaults", () => {
    expect(DEFAULT_TIER_LIMITS.free).toMatchObject({
      readsPerMinute: 60,
      writesPerMinute: 10,
      promptsRunning: 2,
    });
    expect(DEFAULT_TIER_LIMITS.standard).toMatchObject({
      readsPerMinute: 600,
      writesPerMinute: 120,
      promptsRunning: 8,
    });
    expect(DEFAULT_TIER_LIMITS.pro).toMatchObject({
      readsPerMinute: 3000,
      writesPerMinute: 600,
      promptsRunning: 32,
    });
  });

  it('TIER_LIMITS overrides what it names and keeps the rest; anything else is refused', () => {
    const parsed = tierLimitsOverride.parse('{"free":{"writesPerMinute":20}}');
    expect(parsed.free).toEqual({ ...DEFAULT_TIER_LIMITS.free, writesPerMinute: 20 });
    expect(parsed.pro).toEqual(DEFAULT_TIER_LIMITS.pro);
    expect(tierLimitsOverride.parse(undefined)).toEqual(DEFAULT_TIER_LIMITS);
    expect(tierLimitsOverride.safeParse('{"gold":{}}').success).toBe(false);
    expect(tierLimitsOverride.safeParse('{"free":{"writesPerMinute":0}}').success).toBe(false);
    expect(tierLimitsOverride.safeParse('not json').success).toBe(false);
  });
});
