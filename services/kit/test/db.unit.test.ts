import { parseInt8 } from '@atelier/kit';

/** kit's pools read int8 (money in minor units, micros, counts) as numbers: exactly, or not at all. */
describe('parseInt8', () => {
  it('reads int8 beyond 32 bits as the exact number', () => {
    expect(parseInt8('10000000000')).toBe(10_000_000_000);
    expect(parseInt8('-2147483649')).toBe(-2_147_483_649);
    expect(parseInt8(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('refuses a value a JavaScript number would round', () => {
    // 2⁵³ + 1 would come back as 2⁵³: a wrong amount, silently.
    expect(() => parseInt8('9007199254740993')).toThrow(/beyond JavaScript's safe integers/);
    expect(() => parseInt8('9223372036854775807')).toThrow(RangeError);
  });
});
