import type { Pool } from '@atelier/kit';

export interface PlanRow {
  id: string;
  name: string;
  description: string;
  price: number;
  currency: string;
  images: number;
  is_init: boolean;
  min_images: number;
  max_images: number;
  deprecated: boolean;
  tier: string;
}

const COLUMNS =
  'id, name, description, price, currency, images, is_init, min_images, max_images, deprecated, tier';

export class PlanRepository {
  constructor(private readonly db: Pool) {}

  async list(includeDeprecated: boolean): Promise<PlanRow[]> {
    const { rows } = await this.db.query<PlanRow>(
      `SELECT ${COLUMNS} FROM billing.plans WHERE $1 OR NOT deprecated ORDER BY is_init DESC, price, id`,
      [includeDeprecated],
    );
    return rows;
  }

  async find(id: string): Promise<PlanRow | undefined> {
    const { rows } = await this.db.query<PlanRow>(`SELECT ${COLUMNS} FROM billing.plans WHERE id = $1`, [id]);
    return rows[0];
  }

  async upsert(plan: PlanRow): Promise<PlanRow> {
    const { rows } = await this.db.query<PlanRow>(
      `INSERT INTO billing.plans (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
         price = EXCLUDED.price, currency = EXCLUDED.currency, images = EXCLUDED.images,
         is_init = EXCLUDED.is_init, min_images = EXCLUDED.min_images, max_images = EXCLUDED.max_images,
         deprecated = EXCLUDED.deprecated, tier = EXCLUDED.tier, updated_at = now()
       RETURNING ${COLUMNS}`,
      [
        plan.id,
        plan.name,
        plan.description,
        plan.price,
        plan.currency,
        plan.images,
        plan.is_init,
        plan.min_images,
        plan.max_images,
        plan.deprecated,
        plan.tier,
      ],
    );
    return rows[0]!;
  }
}
