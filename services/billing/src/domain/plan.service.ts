import { Errors } from '@atelier/kit';
import { isTier } from './tier.rules';
import type { PlanRepository, PlanRow } from '../repositories/plan.repository';

export class PlanService {
  constructor(private readonly plans: PlanRepository) {}

  list(includeDeprecated = false): Promise<PlanRow[]> {
    return this.plans.list(includeDeprecated);
  }

  /** A plan a customer can buy now: unknown and deprecated plans are both "not found". */
  async purchasable(id: string): Promise<PlanRow> {
    const plan = await this.plans.find(id);
    if (!plan || plan.deprecated) throw Errors.notFound('plan', id);
    return plan;
  }

  find(id: string): Promise<PlanRow | undefined> {
    return this.plans.find(id);
  }

  async upsert(plan: PlanRow): Promise<PlanRow> {
    const problems: string[] = [];
    if (!/^[a-z0-9_]{1,64}$/.test(plan.id)) problems.push('id must match [a-z0-9_]{1,64}');
    if (!plan.name) problems.push('name is required');
    if (!Number.isInteger(plan.price) || plan.price < 0)
      problems.push('price must be a non-negative integer (minor units)');
    if (!/^[a-z]{3}$/.test(plan.currency)) problems.push('currency must be a lowercase ISO 4217 code');
    if (!Number.isInteger(plan.images) || plan.images <= 0)
      problems.push('images must be a positive integer');
    if (!isTier(plan.tier)) problems.push('tier must be free, standard or pro');
    if (plan.min_images < 1 || plan.max_images < plan.min_images)
      problems.push('need 1 <= min_images <= max_images');
    if (problems.length) throw Errors.invalid(problems.join('; '), { errors: problems });
    return this.plans.upsert(plan);
  }
}
