/**
 * Stripe's request encoding: `application/x-www-form-urlencoded` with bracket nesting, the same
 * scheme for POST bodies and GET query strings (`line_items[0][price_data][unit_amount]=1300`,
 * `metadata[payment_id]=…`, `expand[]=…`). Every leaf stays a string — Stripe coerces per
 * parameter, so the handlers do too (see `params.ts`).
 */
import { Errors } from './errors';

export type FormValue = string | FormValue[] | FormObject;
export interface FormObject {
  [key: string]: FormValue;
}

// Keys that would reach Object.prototype through a plain-object tree.
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

export function parseForm(encoded: string): FormObject {
  const root: FormObject = {};
  for (const [key, value] of new URLSearchParams(encoded)) {
    const path = splitKey(key);
    if (!path) throw Errors.invalid(key, `Invalid parameter name: ${key}`);
    insert(root, path, value, key);
  }
  return toArrays(root) as FormObject;
}

/** `a[b][0][]` → ['a', 'b', '0', ''] ; null when the brackets are malformed. */
function splitKey(key: string): string[] | null {
  const open = key.indexOf('[');
  if (open === -1) return key === '' ? null : [key];
  const head = key.slice(0, open);
  const rest = key.slice(open);
  if (head === '' || !/^(\[[^[\]]*\])+$/.test(rest)) return null;
  return [head, ...Array.from(rest.matchAll(/\[([^[\]]*)\]/g), (m) => m[1] ?? '')];
}

function insert(root: FormObject, path: string[], value: string, rawKey: string): void {
  let node: FormObject = root;
  for (let i = 0; i < path.length; i++) {
    let segment = path[i] as string;
    if (FORBIDDEN.has(segment)) throw Errors.invalid(rawKey, `Invalid parameter name: ${rawKey}`);
    // `a[]=x&a[]=y` appends: the next index is the number of entries so far.
    if (segment === '') segment = String(Object.keys(node).length);
    const last = i === path.length - 1;
    const existing = node[segment];
    if (last) {
      if (existing !== undefined && typeof existing !== 'string') throw conflict(rawKey);
      node[segment] = value;
      return;
    }
    if (existing === undefined) {
      const child: FormObject = {};
      node[segment] = child;
      node = child;
    } else if (typeof existing === 'string' || Array.isArray(existing)) {
      throw conflict(rawKey);
    } else {
      node = existing;
    }
  }
}

function conflict(rawKey: string) {
  return Errors.invalid(
    rawKey,
    `Invalid value for ${rawKey}: a parameter cannot be both a value and a hash.`,
  );
}

/** Objects whose keys are all array indices become arrays, ordered by index. */
function toArrays(value: FormValue): FormValue {
  if (typeof value === 'string' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  for (const k of keys) value[k] = toArrays(value[k] as FormValue);
  if (keys.length > 0 && keys.every((k) => /^(0|[1-9]\d{0,5})$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => value[k] as FormValue);
  }
  return value;
}
