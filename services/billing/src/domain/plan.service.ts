import { Errors } from '@atelier/kit';
import type { PlanRepository, PlanRow } from '../repositories/plan.repository';
import { planProblems } from './plan.rules';

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
    const problems = planProblems(plan);
    if (problems.length) throw Errors.invalid(problems.join('; '), { errors: problems });
    return this.plans.upsert(plan);
  }
}
