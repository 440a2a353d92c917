import type { Queryable } from '@atelier/kit';
import type { Offer, OfferParams } from '../domain/offer.model';

interface OfferRow {
  id: string;
  name: string;
  template: string;
  negative_template: string;
  price_credits: number;
  create_qty: number;
  params: { width?: number; height?: number; num_inference_steps?: number; guidance_scale?: number };
  result_expiry_days: number | null;
  active: boolean;
}

const COLUMNS = `id, name, template, negative_template, price_credits, create_qty, params, result_expiry_days, active`;

function toOffer(r: OfferRow): Offer {
  const params: OfferParams = {};
  if (r.params.width !== undefined) params.width = r.params.width;
  if (r.params.height !== undefined) params.height = r.params.height;
  if (r.params.num_inference_steps !== undefined) params.numInferenceSteps = r.params.num_inference_steps;
  if (r.params.guidance_scale !== undefined) params.guidanceScale = r.params.guidance_scale;
  return {
    id: r.id,
    name: r.name,
    template: r.template,
    negativeTemplate: r.negative_template,
    priceCredits: r.price_credits,
    createQty: r.create_qty,
    params,
    resultExpiryDays: r.result_expiry_days,
    active: r.active,
  };
}

/** inferencer.offers: operator-defined prompt templates. */
export class OfferRepository {
  constructor(private readonly db: Queryable) {}

  async list(includeInactive: boolean): Promise<Offer[]> {
    const { rows } = await this.db.query<OfferRow>(
      `SELECT ${COLUMNS} FROM inferencer.offers WHERE active OR $1 ORDER BY name, id`,
      [includeInactive],
    );
    return rows.map(toOffer);
  }

  /** The offers with these ids (any order; missing ids are simply absent). */
  async findMany(ids: string[]): Promise<Offer[]> {
    const { rows } = await this.db.query<OfferRow>(
      `SELECT ${COLUMNS} FROM inferencer.offers WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    return rows.map(toOffer);
  }

  async upsert(o: Offer): Promise<void> {
    const params = {
      width: o.params.width,
      height: o.params.height,
      num_inference_steps: o.params.numInferenceSteps,
      guidance_scale: o.params.guidanceScale,
    };
    await this.db.query(
      `INSERT INTO inferencer.offers (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (id) DO UPDATE SET name = $2, template = $3, negative_template = $4, price_credits = $5,
         create_qty = $6, params = $7, result_expiry_days = $8, active = $9, updated_at = now()`,
      [
        o.id,
        o.name,
        o.template,
        o.negativeTemplate,
        o.priceCredits,
        o.createQty,
        JSON.stringify(params),
        o.resultExpiryDays,
        o.active,
      ],
    );
  }
}
