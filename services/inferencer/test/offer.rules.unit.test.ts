import type { Offer, Pack } from '../src/domain/offer.model';
import {
  checkVariables,
  creditsUsed,
  packPrice,
  promptsOf,
  requestHash,
  variablesOf,
} from '../src/domain/offer.rules';

const offer = (over: Partial<Offer> = {}): Offer => ({
  id: '0ffe0000-0000-4000-8000-000000000001',
  name: 'Headshot',
  template: 'a photo of {trigger_word} {class} in {place}',
  negativeTemplate: '{avoid}',
  priceCredits: 10,
  createQty: 10,
  params: { width: 512 },
  resultExpiryDays: null,
  active: true,
  ...over,
});

describe('offer rules', () => {
  it("a template's variables exclude the version's own, each named once", () => {
    expect(variablesOf('{trigger_word} {class} {place} {place}', '{avoid}')).toEqual(['place', 'avoid']);
  });

  it('names every missing and unknown variable in one 400', () => {
    expect(() => checkVariables(['place', 'avoid'], { mood: 'x' })).toThrow(
      'missing variables: place, avoid; unknown variable: mood',
    );
    expect(() => checkVariables(['place'], { place: ' ' })).toThrow('missing variable: place');
    expect(() => checkVariables(['place'], { place: 'Paris' })).not.toThrow();
  });

  it('create_qty images become prompts of at most four, rendered with the values and the defaults', () => {
    const prompts = promptsOf(offer(), { trigger_word: 'TOK', class: 'man', place: 'Paris', avoid: 'blur' });
    expect(prompts.map((p) => p.numOutputs)).toEqual([4, 4, 2]);
    expect(prompts[0]).toEqual({
      prompt: 'a photo of TOK man in Paris',
      negativePrompt: 'blur',
      numOutputs: 4,
      width: 512,
    });
  });

  it('a pack costs its fixed price, or its offers less the discount rounded down', () => {
    const pack: Pack = {
      id: 'p',
      name: 'P',
      offerIds: [],
      priceCredits: null,
      discountPercent: 15,
      active: true,
    };
    expect(packPrice(pack, [offer({ priceCredits: 4 }), offer({ priceCredits: 3 })])).toBe(5);
    expect(packPrice({ ...pack, priceCredits: 6 }, [offer()])).toBe(6);
  });

  it('a run keeps the credits of the images produced, in proportion to its price', () => {
    expect(creditsUsed(10, 10, 7)).toBe(7);
    expect(creditsUsed(5, 10, 7)).toBe(3);
    expect(creditsUsed(10, 10, 12)).toBe(10);
    expect(creditsUsed(10, 10, 0)).toBe(0);
  });

  it('the request hash depends on account and inputs, not on the order of variables', () => {
    const a = requestHash('acc', 'offer', 'o', 'v', { x: '1', y: '2' });
    expect(requestHash('acc', 'offer', 'o', 'v', { y: '2', x: '1' })).toBe(a);
    expect(requestHash('acc2', 'offer', 'o', 'v', { x: '1', y: '2' })).not.toBe(a);
    expect(requestHash('acc', 'offer', 'o', 'v', { x: '1', y: '3' })).not.toBe(a);
  });
});
