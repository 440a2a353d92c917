import { createHash } from 'node:crypto';
import { Errors } from '@atelier/kit';
import type { Offer, Pack, RunKind } from './offer.model';
import { LIMITS } from './prompt.rules';
import type { PromptParams } from './prompt.model';

/** Filled from the version, never by the caller. */
const VERSION_VARIABLES: ReadonlySet<string> = new Set(['trigger_word', 'class']);

const VARIABLE_RE = /\{([a-z_][a-z0-9_]*)\}/g;

/** The caller's variables of a template (the version's own excluded), in order of appearance. */
export function variablesOf(...templates: string[]): string[] {
  const names = new Set<string>();
  for (const t of templates) for (const m of t.matchAll(VARIABLE_RE)) names.add(m[1]!);
  return [...names].filter((n) => !VERSION_VARIABLES.has(n));
}

/** Missing and unknown variables in one 400 that names each of them. */
export function checkVariables(expected: string[], given: Record<string, string>): void {
  const problems: string[] = [];
  const missing = expected.filter((n) => !(typeof given[n] === 'string' && given[n].trim()));
  const unknown = Object.keys(given).filter((n) => !expected.includes(n));
  if (missing.length)
    problems.push(`missing variable${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
  if (unknown.length)
    problems.push(`unknown variable${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
  for (const [n, v] of Object.entries(given))
    if (typeof v === 'string' && v.length > 200) problems.push(`variable ${n} is longer than 200 characters`);
  if (problems.length) throw Errors.invalid(problems.join('; '));
}

function render(template: string, values: Record<string, string>): string {
  return template.replace(VARIABLE_RE, (whole, name: string) => values[name] ?? whole);
}

/** A pack's price: its fixed price, or its offers' prices less the discount (rounded down). */
export function packPrice(pack: Pack, offers: Offer[]): number {
  if (pack.priceCredits !== null) return pack.priceCredits;
  const sum = offers.reduce((s, o) => s + o.priceCredits, 0);
  return Math.floor((sum * (100 - pack.discountPercent)) / 100);
}

/** An offer's prompts: create_qty images in prompts of at most the per-prompt maximum. */
export function promptsOf(offer: Offer, values: Record<string, string>): PromptParams[] {
  const prompt = render(offer.template, values);
  const negativePrompt = render(offer.negativeTemplate, values);
  const max = LIMITS.numOutputs[1];
  const out: PromptParams[] = [];
  for (let left = offer.createQty; left > 0; left -= max) {
    out.push({ prompt, negativePrompt, numOutputs: Math.min(max, left), ...offer.params });
  }
  return out;
}

/**
 * Credits kept when a run ends: the price in proportion to the images produced (exactly the
 * images produced when the price is one credit an image), never more than the price.
 */
export function creditsUsed(price: number, imagesExpected: number, imagesProduced: number): number {
  if (imagesExpected <= 0) return 0;
  return Math.min(price, Math.floor((price * Math.min(imagesProduced, imagesExpected)) / imagesExpected));
}

/** seed 003's request id: the same account asking the same thing gets the same hash. */
export function requestHash(
  accountId: string,
  kind: RunKind,
  refId: string,
  versionId: string,
  variables: Record<string, string>,
): string {
  const sorted = Object.keys(variables)
    .sort()
    .map((k) => [k, variables[k]]);
  return createHash('sha256')
    .update(JSON.stringify([accountId, kind, refId, versionId, sorted]))
    .digest('hex');
}
