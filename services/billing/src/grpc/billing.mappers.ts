import type { billing } from '@atelier/protos';
import type { AccountRow } from '../repositories/account.repository';
import type { PlanRow } from '../repositories/plan.repository';

export const toPlan = (p: PlanRow): billing.Plan => ({
  id: p.id,
  name: p.name,
  description: p.description,
  price: p.price,
  currency: p.currency,
  images: p.images,
  isInit: p.is_init,
  minImages: p.min_images,
  maxImages: p.max_images,
  deprecated: p.deprecated,
});

export const fromPlan = (p: billing.Plan): PlanRow => ({
  id: p.id,
  name: p.name,
  description: p.description,
  price: p.price,
  currency: p.currency,
  images: p.images,
  is_init: p.isInit,
  min_images: p.minImages || 5,
  max_images: p.maxImages || 30,
  deprecated: p.deprecated,
});

export const toAccount = (a: AccountRow): billing.Account => ({
  accountId: a.id,
  email: a.email,
  createdAt: a.created_at,
  activeKeys: a.active_keys,
});
