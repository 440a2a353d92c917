import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createGrpcClient, toPlanJson } from '@atelier/kit';
import { billing } from '@atelier/protos';

/**
 * Operator commands against a running billing service (default: the `make dev` one).
 *   npm run admin -- accounts create --email EMAIL
 *   npm run admin -- accounts list
 *   npm run admin -- accounts delete ACCOUNT_ID   (every model and image, then keys and email; a durable job)
 *   npm run admin -- keys create --account ACCOUNT_ID
 *   npm run admin -- keys revoke PREFIX
 *   npm run admin -- plans list
 *   npm run admin -- plans upsert FILE.json   (one plan object or an array of them)
 *   npm run admin -- usage [--account ID] [--from ISO] [--to ISO]   (revenue vs estimated Replicate cost)
 * Output is JSON on stdout; errors go to stderr with a non-zero exit code.
 */
const USAGE = `usage: admin accounts create --email EMAIL | accounts list | accounts delete ID | keys create --account ID | keys revoke PREFIX | plans list | plans upsert FILE | usage [--account ID] [--from ISO] [--to ISO]
env: BILLING_ADDR (default 127.0.0.1:50051)`;

interface PlanJson {
  id: string;
  name: string;
  description?: string;
  price: number;
  currency: string;
  images: number;
  is_init: boolean;
  min_images?: number;
  max_images?: number;
  deprecated?: boolean;
  tier?: string;
}

/** As the API shows a plan, and what only operators see of it. */
const planJson = (p: billing.Plan) => ({ ...toPlanJson(p), deprecated: p.deprecated, tier: p.tier });

async function run(argv: string[]): Promise<unknown> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      email: { type: 'string' },
      account: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [resource, action, arg] = positionals;
  if (values.help || !resource) throw new Error(USAGE);
  const client = createGrpcClient(
    billing.BillingServiceService,
    process.env.BILLING_ADDR ?? '127.0.0.1:50051',
    { timeoutMs: 10_000 },
  );
  try {
    switch (`${resource} ${action}`) {
      case 'accounts create': {
        if (!values.email) throw new Error('accounts create needs --email EMAIL');
        const res = await client.createAccount({ email: values.email });
        return { account_id: res.account!.accountId, api_key: res.apiKey };
      }
      case 'accounts list':
        return (await client.listAccounts({})).accounts.map((a) => ({
          account_id: a.accountId,
          email: a.email,
          created_at: a.createdAt?.toISOString(),
          active_keys: a.activeKeys,
        }));
      case 'accounts delete': {
        if (!arg) throw new Error('accounts delete needs the account id');
        const res = await client.deleteAccount({ accountId: arg });
        return { account_id: res.accountId, status: 'deleting', versions: res.versions };
      }
      case 'keys create': {
        if (!values.account) throw new Error('keys create needs --account ACCOUNT_ID');
        const res = await client.createApiKey({ accountId: values.account });
        return { account_id: values.account, api_key: res.apiKey, prefix: res.prefix };
      }
      case 'keys revoke':
        if (!arg) throw new Error('keys revoke needs the key prefix (atl_XXXXXXXX)');
        return { prefix: arg, revoked: (await client.revokeApiKey({ prefix: arg })).revoked };
      case 'plans list':
        return (await client.listPlans({ includeDeprecated: true })).plans.map(planJson);
      case 'plans upsert': {
        if (!arg) throw new Error('plans upsert needs a JSON file');
        const parsed = JSON.parse(readFileSync(arg, 'utf8')) as PlanJson | PlanJson[];
        const out = [];
        for (const p of Array.isArray(parsed) ? parsed : [parsed]) {
          const { plan } = await client.upsertPlan({
            plan: {
              id: p.id,
              name: p.name,
              description: p.description ?? '',
              price: p.price,
              currency: p.currency,
              images: p.images,
              isInit: p.is_init,
              // 0: billing's default (plan.rules PHOTO_LIMIT_DEFAULTS).
              minImages: p.min_images ?? 0,
              maxImages: p.max_images ?? 0,
              deprecated: p.deprecated ?? false,
              tier: p.tier ?? 'standard',
            },
          });
          out.push(planJson(plan!));
        }
        return out;
      }
      case 'usage undefined': {
        // Default period: the last 30 days.
        const to = values.to ? new Date(values.to) : new Date();
        const from = values.from ? new Date(values.from) : new Date(to.getTime() - 30 * 24 * 3600 * 1000);
        if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()))
          throw new Error('--from and --to must be ISO dates');
        const { lines } = await client.getUsageReport({ accountId: values.account, from, to });
        return {
          from: from.toISOString(),
          to: to.toISOString(),
          lines: lines.map((l) => ({
            account_id: l.accountId,
            currency: l.currency,
            revenue: l.revenue,
            payments: l.payments,
            predict_seconds: l.predictSeconds,
            estimated_cost: l.costMicros / 1e6,
          })),
        };
      }
      default:
        throw new Error(USAGE);
    }
  } finally {
    client.close();
  }
}

run(process.argv.slice(2)).then(
  (result) => process.stdout.write(`${JSON.stringify(result, null, 2)}\n`),
  (err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  },
);
