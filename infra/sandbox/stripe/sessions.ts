/**
 * `POST /v1/checkout/sessions` params → a new session, validated as Stripe validates the subset
 * Atelier uses: one-time `price_data` line items in `mode=payment`, at most one discount, metadata,
 * `expires_at` between 30 minutes and 24 hours out. Real Checkout params the sandbox does not model
 * are accepted and ignored; names Stripe does not know are rejected, as Stripe rejects them.
 */
import { Errors } from './errors';
import type { FormObject } from './form';
import { newId } from './ids';
import { nowSeconds, type LineItem, type SessionRecord } from './objects';
import {
  at,
  metadata,
  optArray,
  optBool,
  optHash,
  optInt,
  optString,
  rejectUnknown,
  reqInt,
  reqString,
} from './params';
import type { Promotions } from './promotions';

// Every top-level SessionCreateParams field in stripe@23 (API 2026-10-28.endive).
const SESSION_PARAMS = new Set(
  (
    'adaptive_pricing after_expiration allow_promotion_codes allowed_payment_method_types automatic_tax ' +
    'billing_address_collection branding_settings cancel_url client_reference_id consent_collection currency ' +
    'custom_fields custom_text customer customer_account customer_creation customer_email customer_update ' +
    'discounts excluded_payment_method_types expand expires_at integration_identifier invoice_creation ' +
    'line_items locale managed_payments metadata mode name_collection optional_items origin_context ' +
    'payment_intent_data payment_method_collection payment_method_configuration payment_method_data ' +
    'payment_method_options permissions phone_number_collection redirect_on_completion return_url ' +
    'saved_payment_method_options setup_intent_data shipping_address_collection shipping_options submit_type ' +
    'subscription_data success_url tax_id_collection ui_mode wallet_options'
  ).split(' '),
);
const LINE_ITEM_PARAMS = new Set([
  'adjustable_quantity',
  'metadata',
  'price',
  'price_data',
  'quantity',
  'tax_rates',
]);
const PRICE_DATA_PARAMS = new Set([
  'currency',
  'product',
  'product_data',
  'recurring',
  'tax_behavior',
  'unit_amount',
  'unit_amount_decimal',
]);
const PRODUCT_DATA_PARAMS = new Set([
  'description',
  'images',
  'metadata',
  'name',
  'tax_code',
  'tax_details',
  'unit_label',
]);
const DISCOUNT_PARAMS = new Set(['coupon', 'promotion_code']);

const MIN_EXPIRY_S = 30 * 60;
const MAX_EXPIRY_S = 24 * 60 * 60;

export function createSession(
  params: FormObject,
  promotions: Promotions,
  checkoutUrl: (id: string) => string,
): SessionRecord {
  rejectUnknown(params, SESSION_PARAMS);
  const mode = reqString(params['mode'], 'mode');
  if (mode !== 'payment')
    throw Errors.invalid('mode', `The Stripe sandbox supports only mode=payment, not ${mode}.`);

  const lineItems = parseLineItems(params);
  const currency = (lineItems[0] as LineItem).currency;
  const subtotal = lineItems.reduce((sum, li) => sum + li.unitAmount * li.quantity, 0);

  const discounts = optArray(params['discounts'], 'discounts') ?? [];
  if (
    discounts.length > 0 &&
    optBool(params['allow_promotion_codes'], 'allow_promotion_codes') !== undefined
  ) {
    throw Errors.invalid(
      'allow_promotion_codes',
      'You may only specify one of these parameters: allow_promotion_codes, discounts.',
    );
  }
  if (discounts.length > 1) throw Errors.invalid('discounts', 'Checkout Sessions support only one discount.');
  let discount = 0;
  let promotionCodeId: string | null = null;
  let couponId: string | null = null;
  const discountEntries = discounts.map((raw, i) => {
    const path = at('discounts', i);
    const d = optHash(raw, path) ?? {};
    rejectUnknown(d, DISCOUNT_PARAMS, path);
    const promo = optString(d['promotion_code'], at(path, 'promotion_code'));
    const couponParam = optString(d['coupon'], at(path, 'coupon'));
    if ((promo === undefined) === (couponParam === undefined)) {
      throw Errors.invalid(
        path,
        'You must specify exactly one of `coupon` or `promotion_code` for each discount.',
      );
    }
    const coupon = promo
      ? promotions.redeemable(promo, currency, at(path, 'promotion_code')).coupon
      : promotions.coupons.get(couponParam as string);
    if (!coupon) throw Errors.resourceMissing('coupon', couponParam as string, at(path, 'coupon'));
    if (!coupon.valid) throw Errors.invalid(at(path, 'coupon'), `Coupon ${coupon.id} is no longer valid.`);
    discount =
      coupon.percent_off !== null
        ? Math.round((subtotal * coupon.percent_off) / 100)
        : Math.min(coupon.amount_off ?? 0, subtotal);
    promotionCodeId = promo ?? null;
    couponId = coupon.id;
    return { coupon: promo ? null : coupon.id, promotion_code: promo ?? null };
  });

  const created = nowSeconds();
  const expiresAt = optInt(params['expires_at'], 'expires_at') ?? created + MAX_EXPIRY_S;
  if (expiresAt < created + MIN_EXPIRY_S) {
    throw Errors.invalid(
      'expires_at',
      'The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.',
    );
  }
  if (expiresAt > created + MAX_EXPIRY_S) {
    throw Errors.invalid(
      'expires_at',
      'The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.',
    );
  }

  const clientReferenceId = optString(params['client_reference_id'], 'client_reference_id') ?? null;
  if (clientReferenceId !== null && clientReferenceId.length > 200) {
    throw Errors.invalid('client_reference_id', 'client_reference_id can be at most 200 characters long.');
  }
  const intentData = optHash(params['payment_intent_data'], 'payment_intent_data') ?? {};
  const id = newId.checkoutSession();
  return {
    lineItems,
    promotionCodeId,
    couponId,
    paymentIntentMetadata: metadata(intentData['metadata'], 'payment_intent_data[metadata]'),
    session: {
      id,
      object: 'checkout.session',
      allow_promotion_codes: optBool(params['allow_promotion_codes'], 'allow_promotion_codes') ?? null,
      amount_subtotal: subtotal,
      amount_total: subtotal - discount,
      // Required by Stripe's published session schema; the sandbox offers none of these features.
      automatic_tax: { enabled: false, liability: null, provider: null, status: null },
      custom_fields: [],
      custom_text: {
        after_submit: null,
        shipping_address: null,
        submit: null,
        terms_of_service_acceptance: null,
      },
      shipping_options: [],
      cancel_url: optUrl(params, 'cancel_url'),
      client_reference_id: clientReferenceId,
      client_secret: null,
      created,
      currency,
      customer: null,
      customer_creation: 'if_required',
      customer_details: null,
      customer_email: optString(params['customer_email'], 'customer_email') ?? null,
      discounts: discountEntries,
      expires_at: expiresAt,
      invoice: null,
      livemode: false,
      locale: null,
      metadata: metadata(params['metadata']),
      mode: 'payment',
      payment_intent: null,
      payment_link: null,
      payment_method_types: ['card'],
      payment_status: 'unpaid',
      recovered_from: null,
      setup_intent: null,
      status: 'open',
      submit_type: null,
      subscription: null,
      success_url: optUrl(params, 'success_url'),
      total_details: { amount_discount: discount, amount_shipping: 0, amount_tax: 0 },
      ui_mode: 'hosted_page',
      url: checkoutUrl(id),
    },
  };
}

function parseLineItems(params: FormObject): LineItem[] {
  const raw = optArray(params['line_items'], 'line_items');
  if (!raw || raw.length === 0) throw Errors.missingParam('line_items');
  const items = raw.map((entry, i): LineItem => {
    const path = at('line_items', i);
    const item = optHash(entry, path) ?? {};
    rejectUnknown(item, LINE_ITEM_PARAMS, path);
    const price = optString(item['price'], at(path, 'price'));
    if (price !== undefined) throw Errors.resourceMissing('price', price, at(path, 'price'));
    const pricePath = at(path, 'price_data');
    const priceData = optHash(item['price_data'], pricePath);
    if (!priceData)
      throw Errors.invalid(path, `You must specify either \`price\` or \`price_data\` in ${path}.`);
    rejectUnknown(priceData, PRICE_DATA_PARAMS, pricePath);
    if (priceData['recurring'] !== undefined) {
      throw Errors.invalid(
        at(pricePath, 'recurring'),
        'You specified `payment` mode but passed a recurring price.',
      );
    }
    const currency = reqString(priceData['currency'], at(pricePath, 'currency')).toLowerCase();
    const unitAmount = reqInt(priceData['unit_amount'], at(pricePath, 'unit_amount'));
    if (unitAmount < 0)
      throw Errors.invalid(at(pricePath, 'unit_amount'), 'This value must be greater than or equal to 0.');
    const product = optString(priceData['product'], at(pricePath, 'product'));
    if (product !== undefined) throw Errors.resourceMissing('product', product, at(pricePath, 'product'));
    const productPath = at(pricePath, 'product_data');
    const productData = optHash(priceData['product_data'], productPath);
    if (!productData) throw Errors.missingParam(productPath);
    rejectUnknown(productData, PRODUCT_DATA_PARAMS, productPath);
    const name = reqString(productData['name'], at(productPath, 'name'));
    const quantity = reqInt(item['quantity'], at(path, 'quantity'));
    if (quantity < 1)
      throw Errors.invalid(at(path, 'quantity'), 'This value must be greater than or equal to 1.');
    return { name, unitAmount, quantity, currency };
  });
  const currency = (items[0] as LineItem).currency;
  if (items.some((li) => li.currency !== currency)) {
    throw Errors.invalid('line_items', 'All line items must have the same currency.');
  }
  return items;
}

function optUrl(params: FormObject, name: string): string | null {
  const value = optString(params[name], name);
  if (value === undefined) return null;
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value;
  } catch {
    // fall through to Stripe's error
  }
  throw Errors.invalid(name, 'Not a valid URL');
}
