import { isTier } from './tier.rules';

/**
 * The rules of a plan, free of I/O: the one definition of the training-photo defaults (also the
 * column defaults of billing.plans) and of what a valid plan is. A payment snapshots these values
 * when it is created; trainer and imager receive them through the claim, never a default of their own.
 */
export const PHOTO_LIMIT_DEFAULTS = { minImages: 5, maxImages: 30 } as const;

export interface PlanFields {
  id: string;
  name: string;
  price: number;
  currency: string;
  images: number;
  tier: string;
  min_images: number;
  max_images: number;
}

/** Every problem of a plan, or none. */
export function planProblems(plan: PlanFields): string[] {
  const problems: string[] = [];
  if (!/^[a-z0-9_]{1,64}$/.test(plan.id)) problems.push('id must match [a-z0-9_]{1,64}');
  if (!plan.name) problems.push('name is required');
  if (!Number.isInteger(plan.price) || plan.price < 0)
    problems.push('price must be a non-negative integer (minor units)');
  if (!/^[a-z]{3}$/.test(plan.currency)) problems.push('currency must be a lowercase ISO 4217 code');
  if (!Number.isInteger(plan.images) || plan.images <= 0) problems.push('images must be a positive integer');
  if (!isTier(plan.tier)) problems.push('tier must be free, standard or pro');
  if (plan.min_images < 1 || plan.max_images < plan.min_images)
    problems.push('need 1 <= min_images <= max_images');
  return problems;
}
