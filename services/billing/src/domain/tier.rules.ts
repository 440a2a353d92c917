import { z } from 'zod';

/** Tiers from least to most: an account is in the best tier any of its paid payments names. */
export const TIERS = ['free', 'standard', 'pro'] as const;
export type Tier = (typeof TIERS)[number];

export interface TierLimits {
  readsPerMinute: number;
  writesPerMinute: number;
  createsPerDay: number;
  promptsRunning: number;
  trainingsRunning: number;
}

/** PRODUCT.md's defaults; an operator overrides any of them with TIER_LIMITS. */
export const DEFAULT_TIER_LIMITS: Record<Tier, TierLimits> = {
  free: {
    readsPerMinute: 60,
    writesPerMinute: 10,
    createsPerDay: 30,
    promptsRunning: 2,
    trainingsRunning: 1,
  },
  standard: {
    readsPerMinute: 600,
    writesPerMinute: 120,
    createsPerDay: 2_000,
    promptsRunning: 8,
    trainingsRunning: 2,
  },
  pro: {
    readsPerMinute: 3_000,
    writesPerMinute: 600,
    createsPerDay: 20_000,
    promptsRunning: 32,
    trainingsRunning: 8,
  },
};

const count = z.number().int().positive();
/** TIER_LIMITS: JSON such as {"free":{"writesPerMinute":20}}; what it leaves out keeps its default. */
export const tierLimitsOverride = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (!raw) return DEFAULT_TIER_LIMITS;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON' });
      return z.NEVER;
    }
    const shape = z
      .object(
        Object.fromEntries(
          TIERS.map((t) => [
            t,
            z
              .object({
                readsPerMinute: count,
                writesPerMinute: count,
                createsPerDay: count,
                promptsRunning: count,
                trainingsRunning: count,
              })
              .partial()
              .strict()
              .optional(),
          ]),
        ) as unknown as Record<Tier, z.ZodOptional<z.ZodObject>>,
      )
      .strict()
      .safeParse(parsed);
    if (!shape.success) {
      for (const issue of shape.error.issues)
        ctx.addIssue({ code: 'custom', message: `${issue.path.join('.')}: ${issue.message}` });
      return z.NEVER;
    }
    const over = shape.data as Partial<Record<Tier, Partial<TierLimits>>>;
    return Object.fromEntries(TIERS.map((t) => [t, { ...DEFAULT_TIER_LIMITS[t], ...over[t] }])) as Record<
      Tier,
      TierLimits
    >;
  });

export const isTier = (value: string): value is Tier => (TIERS as readonly string[]).includes(value);

/** The better of two tiers. */
export const bestTier = (tiers: readonly Tier[]): Tier =>
  tiers.reduce<Tier>((best, t) => (TIERS.indexOf(t) > TIERS.indexOf(best) ? t : best), 'free');
