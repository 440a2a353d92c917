import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createGrpcClient, toOfferJson } from '@atelier/kit';
import { inferencer } from '@atelier/protos';

/**
 * Operator commands for the offers and packs inferencer owns (default: the `make dev` inferencer).
 *   npm run admin -- offers list
 *   npm run admin -- offers upsert FILE.json   (one offer object or an array of them)
 *   npm run admin -- packs list
 *   npm run admin -- packs upsert FILE.json    (one pack object or an array of them)
 * Output is JSON on stdout; errors go to stderr with a non-zero exit code.
 */
const USAGE = `usage: admin offers list | offers upsert FILE | packs list | packs upsert FILE
env: INFERENCER_ADDR (default 127.0.0.1:50054)`;

interface OfferJson {
  offer_id: string;
  name: string;
  template: string;
  negative_template?: string;
  price_credits: number;
  create_qty: number;
  params?: { width?: number; height?: number; num_inference_steps?: number; guidance_scale?: number };
  result_expiry_days?: number | null;
  active?: boolean;
}

interface PackJson {
  pack_id: string;
  name: string;
  offer_ids: string[];
  /** Fixed price; leave out for the offers' prices less discount_percent. */
  price_credits?: number | null;
  discount_percent?: number;
  active?: boolean;
}

/** As the API shows an offer, and whether it is offered. */
const offerJson = (o: inferencer.Offer) => ({ ...toOfferJson(o), active: o.active });

const packJson = (p: inferencer.Pack) => ({
  pack_id: p.packId,
  name: p.name,
  offer_ids: p.offerIds,
  price_credits: p.fixedPriceCredits ?? null,
  discount_percent: p.discountPercent,
  active: p.active,
  run_price_credits: p.priceCredits,
  variables: p.variables,
});

function readList<T>(file: string | undefined, what: string): T[] {
  if (!file) throw new Error(`${what} upsert needs a JSON file`);
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as T | T[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

export async function run(argv: string[]): Promise<unknown> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' } },
  });
  const [resource, action, arg] = positionals;
  if (values.help || !resource) throw new Error(USAGE);
  const client = createGrpcClient(
    inferencer.InferencerServiceService,
    process.env.INFERENCER_ADDR ?? '127.0.0.1:50054',
    { timeoutMs: 10_000 },
  );
  try {
    switch (`${resource} ${action}`) {
      case 'offers list':
        return (await client.listOffers({ includeInactive: true })).offers.map(offerJson);
      case 'offers upsert': {
        const out = [];
        for (const o of readList<OfferJson>(arg, 'offers')) {
          const { offer } = await client.upsertOffer({
            offer: {
              offerId: o.offer_id,
              name: o.name,
              template: o.template,
              negativeTemplate: o.negative_template ?? '',
              priceCredits: o.price_credits,
              createQty: o.create_qty,
              params: {
                width: o.params?.width,
                height: o.params?.height,
                numInferenceSteps: o.params?.num_inference_steps,
                guidanceScale: o.params?.guidance_scale,
              },
              resultExpiryDays: o.result_expiry_days ?? undefined,
              active: o.active ?? true,
              variables: [],
            },
          });
          out.push(offerJson(offer!));
        }
        return out;
      }
      case 'packs list':
        return (await client.listPacks({ includeInactive: true })).packs.map(packJson);
      case 'packs upsert': {
        const out = [];
        for (const p of readList<PackJson>(arg, 'packs')) {
          const { pack } = await client.upsertPack({
            pack: {
              packId: p.pack_id,
              name: p.name,
              offerIds: p.offer_ids,
              fixedPriceCredits: p.price_credits ?? undefined,
              discountPercent: p.discount_percent ?? 0,
              active: p.active ?? true,
              priceCredits: 0,
              variables: [],
            },
          });
          out.push(packJson(pack!));
        }
        return out;
      }
      default:
        throw new Error(USAGE);
    }
  } finally {
    client.close();
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (result) => process.stdout.write(`${JSON.stringify(result, null, 2)}\n`),
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}
