import type { Queryable } from '@atelier/kit';
import type { Pack } from '../domain/offer.model';

interface PackRow {
  id: string;
  name: string;
  offer_ids: string[];
  price_credits: number | null;
  discount_percent: number;
  active: boolean;
}

const COLUMNS = `id, name, offer_ids, price_credits, discount_percent, active`;

const toPack = (r: PackRow): Pack => ({
  id: r.id,
  name: r.name,
  offerIds: r.offer_ids,
  priceCredits: r.price_credits,
  discountPercent: r.discount_percent,
  active: r.active,
});

/** inferencer.packs: bundles of offers at a fixed or discounted price. */
export class PackRepository {
  constructor(private readonly db: Queryable) {}

  async list(includeInactive: boolean): Promise<Pack[]> {
    const { rows } = await this.db.query<PackRow>(
      `SELECT ${COLUMNS} FROM inferencer.packs WHERE active OR $1 ORDER BY name, id`,
      [includeInactive],
    );
    return rows.map(toPack);
  }

  async find(id: string): Promise<Pack | undefined> {
    const { rows } = await this.db.query<PackRow>(`SELECT ${COLUMNS} FROM inferencer.packs WHERE id = $1`, [
      id,
    ]);
    return rows[0] && toPack(rows[0]);
  }

  async upsert(p: Pack): Promise<void> {
    await this.db.query(
      `INSERT INTO inferencer.packs (${COLUMNS}) VALUES ($1, $2, $3::uuid[], $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET name = $2, offer_ids = $3::uuid[], price_credits = $4,
         discount_percent = $5, active = $6, updated_at = now()`,
      [p.id, p.name, p.offerIds, p.priceCredits, p.discountPercent, p.active],
    );
  }
}
