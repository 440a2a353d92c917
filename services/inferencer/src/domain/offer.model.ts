/** Offers, packs and their runs, in the service's own terms (no proto, no SQL). */

/** Default parameters an offer's prompts run with (the API's names). */
export interface OfferParams {
  width?: number;
  height?: number;
  numInferenceSteps?: number;
  guidanceScale?: number;
}

export interface Offer {
  id: string;
  name: string;
  /** `{variables}`; `{trigger_word}` and `{class}` come from the version, the rest from the caller. */
  template: string;
  negativeTemplate: string;
  priceCredits: number;
  createQty: number;
  params: OfferParams;
  resultExpiryDays: number | null;
  active: boolean;
}

export interface Pack {
  id: string;
  name: string;
  offerIds: string[];
  /** A fixed price; null means the offers' prices less `discountPercent`. */
  priceCredits: number | null;
  discountPercent: number;
  active: boolean;
}

export type RunKind = 'offer' | 'pack';

export interface Run {
  id: string;
  accountId: string;
  versionId: string;
  kind: RunKind;
  refId: string;
  variables: Record<string, string>;
  requestHash: string;
  priceCredits: number;
  imagesExpected: number;
  promptsExpected: number;
  launched: boolean;
  settledCredits: number | null;
  createdAt: Date;
}
