import { randomUUID } from 'node:crypto';
import { Errors, requireUuid, type Logger } from '@atelier/kit';
import type { Repositories, Store } from '../repositories';
import type { Offer, Pack, Run, RunKind } from './offer.model';
import { checkVariables, creditsUsed, packPrice, promptsOf, requestHash, variablesOf } from './offer.rules';
import type { Prompt } from './prompt.model';
import { LIMITS, validateParams } from './prompt.rules';
import { isReserveRefusal, type CallLimits, type PromptService } from './prompt.service';
import type { Credits } from './ports';

export interface OfferServiceDeps {
  store: Store;
  credits: Credits;
  prompts: PromptService;
  logger: Logger;
  settings: {
    /** A repeated identical run request within this window returns the first run. */
    duplicateWindowMs: number;
  };
}

export interface RunResult {
  run: Run;
  prompts: Prompt[];
  /** True when this request repeated a recent identical one and got its run back. */
  duplicate: boolean;
  imagesRemaining: number;
}

/**
 * Settles a run's one reservation once it is launched and none of its prompts is unfinished:
 * the credits of the images produced are kept, the rest given back. Called inside the
 * transaction that finished a prompt (or launched the run), after the run's row lock, so the
 * last finisher settles exactly once; billing's settle is idempotent per reservation besides.
 */
export async function settleRunIfDone(repos: Repositories, credits: Credits, runId: string): Promise<void> {
  const run = await repos.runs.lock(runId);
  if (!run || !run.launched || run.settledCredits !== null) return;
  const { active, images } = await repos.runs.progress(runId);
  if (active > 0) return;
  const used = creditsUsed(run.priceCredits, run.imagesExpected, images);
  if (run.priceCredits > 0) await credits.settle(runId, used);
  await repos.runs.markSettled(runId, used);
}

/** Who runs an offer or a pack, on what, and the tier's cap on prompts at once (0: the configured one). */
interface RunInput {
  accountId: string;
  versionId: string;
  variables: Record<string, string>;
  maxRunning?: number;
}

/** Offers and packs: the catalogue operators manage and the runs customers buy from it. */
export class OfferService {
  constructor(private readonly d: OfferServiceDeps) {}

  listOffers(includeInactive = false): Promise<Offer[]> {
    return this.d.store.repos.offers.list(includeInactive);
  }

  listPacks(includeInactive = false): Promise<Pack[]> {
    return this.d.store.repos.packs.list(includeInactive);
  }

  async upsertOffer(offer: Offer): Promise<Offer> {
    const id = requireUuid('offer_id', offer.id);
    const problems: string[] = [];
    if (!offer.name.trim()) problems.push('name must not be empty');
    if (!Number.isInteger(offer.priceCredits) || offer.priceCredits < 0)
      problems.push(`price_credits must be a non-negative integer, got ${offer.priceCredits}`);
    if (!Number.isInteger(offer.createQty) || offer.createQty < 1 || offer.createQty > 40)
      problems.push(`create_qty must be an integer in 1..40, got ${offer.createQty}`);
    if (
      offer.resultExpiryDays !== null &&
      !(Number.isInteger(offer.resultExpiryDays) && offer.resultExpiryDays > 0)
    )
      problems.push(`result_expiry_days must be a positive integer, got ${offer.resultExpiryDays}`);
    if (problems.length) throw Errors.invalid(problems.join('; '));
    // The template and its defaults must make a valid prompt (variables left as written).
    validateParams({
      prompt: offer.template,
      negativePrompt: offer.negativeTemplate,
      numOutputs: Math.min(offer.createQty, LIMITS.numOutputs[1]),
      ...offer.params,
    });
    const clean: Offer = { ...offer, id };
    await this.d.store.repos.offers.upsert(clean);
    return clean;
  }

  async upsertPack(pack: Pack): Promise<Pack> {
    const id = requireUuid('pack_id', pack.id);
    const offerIds = pack.offerIds.map((o) => requireUuid('offer_id', o));
    const problems: string[] = [];
    if (!pack.name.trim()) problems.push('name must not be empty');
    if (!offerIds.length) problems.push('offer_ids must not be empty');
    if (pack.priceCredits !== null && !(Number.isInteger(pack.priceCredits) && pack.priceCredits >= 0))
      problems.push(`price_credits must be a non-negative integer, got ${pack.priceCredits}`);
    if (!Number.isInteger(pack.discountPercent) || pack.discountPercent < 0 || pack.discountPercent > 100)
      problems.push(`discount_percent must be an integer in 0..100, got ${pack.discountPercent}`);
    const known = new Set((await this.d.store.repos.offers.findMany(offerIds)).map((o) => o.id));
    const unknown = offerIds.filter((o) => !known.has(o));
    if (unknown.length) problems.push(`unknown offers: ${unknown.join(', ')}`);
    if (problems.length) throw Errors.invalid(problems.join('; '));
    const clean: Pack = { ...pack, id, offerIds };
    await this.d.store.repos.packs.upsert(clean);
    return clean;
  }

  async runOffer(input: RunInput & { offerId: string }, call: CallLimits = {}): Promise<RunResult> {
    const offerId = requireUuid('offer_id', input.offerId);
    const [offer] = await this.d.store.repos.offers.findMany([offerId]);
    if (!offer || !offer.active) throw Errors.notFound('offer', offerId);
    return this.run('offer', offerId, [offer], offer.priceCredits, input, call);
  }

  async runPack(input: RunInput & { packId: string }, call: CallLimits = {}): Promise<RunResult> {
    const packId = requireUuid('pack_id', input.packId);
    const pack = await this.d.store.repos.packs.find(packId);
    if (!pack || !pack.active) throw Errors.notFound('pack', packId);
    const found = new Map((await this.d.store.repos.offers.findMany(pack.offerIds)).map((o) => [o.id, o]));
    const offers = pack.offerIds.map((id) => found.get(id));
    if (offers.some((o) => !o || !o.active)) throw Errors.offerGone(packId);
    const list = offers as Offer[];
    return this.run('pack', packId, list, packPrice(pack, list), input, call);
  }

  /** A run and its prompts, listed together. */
  async getRun(accountId: string, runId: string): Promise<{ run: Run; prompts: Prompt[] }> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('run_id', runId);
    const run = await this.d.store.repos.runs.find(id);
    if (!run || run.accountId !== account) throw Errors.notFound('run', id);
    return { run, prompts: await this.d.store.repos.prompts.listByRun(id) };
  }

  /**
   * Validate → duplicate guard → one reservation for the whole run (all or nothing) → every
   * prompt through PromptService.create with the run paying → launched, and settled at once if
   * every prompt has already ended. A prompt that fails to start does not stop the others: the
   * run keeps the credits of the images produced only.
   */
  private async run(
    kind: RunKind,
    refId: string,
    offers: Offer[],
    price: number,
    input: RunInput,
    call: CallLimits,
  ): Promise<RunResult> {
    const accountId = requireUuid('account_id', input.accountId);
    const versionId = requireUuid('version_id', input.versionId);
    const variables = input.variables;
    checkVariables(variablesOf(...offers.flatMap((o) => [o.template, o.negativeTemplate])), variables);

    const version = await this.d.prompts.readyVersion(accountId, versionId);
    const values = { ...variables, trigger_word: version.triggerWord, class: version.className };
    const plan = offers.flatMap((o) => promptsOf(o, values));
    const imagesExpected = plan.reduce((s, p) => s + p.numOutputs, 0);

    const hash = requestHash(accountId, kind, refId, versionId, variables);
    const runId = randomUUID();
    const first = await this.d.store.transaction(async (repos) => {
      await repos.runs.lockRequest(hash);
      const recent = await repos.runs.findRecent(hash, this.d.settings.duplicateWindowMs);
      if (recent) return recent;
      await repos.runs.insert({
        id: runId,
        accountId,
        versionId,
        kind,
        refId,
        variables,
        requestHash: hash,
        priceCredits: price,
        imagesExpected,
        promptsExpected: plan.length,
      });
      return undefined;
    });
    if (first) {
      const prompts = await this.d.store.repos.prompts.listByRun(first.id);
      return { run: first, prompts, duplicate: true, imagesRemaining: 0 };
    }

    // The whole run must fit under the account's cap on prompts running at once (its tier's): a
    // run is bought as one, so it is refused whole rather than started in part. Concurrent
    // creates can still take the room meanwhile; a prompt refused then ends the run's share of it.
    const cap = this.d.prompts.runningCap(input.maxRunning);
    if ((await this.d.store.repos.prompts.countActiveOf(accountId)) + plan.length > cap) {
      await this.d.store.repos.runs.delete(runId);
      throw Errors.tooManyRunningPrompts(cap);
    }

    let remaining = 0;
    if (price > 0) {
      try {
        ({ remaining } = await this.d.credits.reserve(accountId, versionId, runId, price));
      } catch (err) {
        if (!isReserveRefusal(err))
          await this.d.credits
            .release(runId)
            .catch((e: unknown) =>
              this.d.logger.error(
                { err: e, run_id: runId },
                'could not release the reservation of a refused run',
              ),
            );
        await this.d.store.repos.runs.delete(runId);
        throw err;
      }
    }

    const results = await Promise.allSettled(
      plan.map((params) =>
        this.d.prompts.create(
          {
            accountId,
            versionId,
            promptId: randomUUID(),
            params,
            waitSeconds: 0,
            runId,
            maxRunning: cap,
            version,
          },
          call,
        ),
      ),
    );
    for (const r of results)
      if (r.status === 'rejected')
        this.d.logger.warn({ err: r.reason as unknown, run_id: runId }, 'a prompt of the run did not start');

    await this.d.store.transaction(async (repos) => {
      // The UPDATE takes the run's row lock, which settleRunIfDone relies on.
      await repos.runs.markLaunched(runId);
      await settleRunIfDone(repos, this.d.credits, runId);
    });
    const run = await this.d.store.repos.runs.find(runId);
    if (!run) throw new Error(`run ${runId} vanished`);
    return {
      run,
      prompts: await this.d.store.repos.prompts.listByRun(runId),
      duplicate: false,
      imagesRemaining: remaining,
    };
  }
}
